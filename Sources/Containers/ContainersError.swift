import Foundation

/// Everything the Containers library can fail with, each case saying what to do next.
public enum ContainersError: Error, CustomStringConvertible, Sendable {
    case notFound(String)
    case ambiguous(String, candidates: [String])
    case nameInUse(String, id: String)
    case invalidArgument(String)
    case invalidState(String)
    case runtime(String)
    case system(String, errno: Int32)
    case network(String)
    case volume(String)
    case missingTool(String)

    public var description: String {
        switch self {
        case let .notFound(n):
            return "no such container: \(n) (see `dockbuild ps -a`)"
        case let .ambiguous(n, c):
            return "\"\(n)\" matches several containers (\(c.prefix(5).joined(separator: ", "))): give more of the id or the name"
        case let .nameInUse(n, id):
            return "the name \"\(n)\" is already used by container \(id.prefix(12)): remove it (`dockbuild rm \(n)`) or choose another --name"
        case let .invalidArgument(m): return m
        case let .invalidState(m): return m
        case let .runtime(m): return "runtime: \(m)"
        case let .system(m, e): return "\(m): \(String(cString: strerror(e)))"
        case let .network(m): return "network: \(m)"
        case let .volume(m): return "volume: \(m)"
        case let .missingTool(t): return "\(t) is needed for this and is not installed (apt-get install \(t))"
        }
    }
}
