import Foundation

/// Errors of the registry server library that reach a user (startup, configuration, storage).
/// Errors a registry client sees travel as `DistributionError` in HTTP responses instead.
public enum RegistryServerError: Error, Sendable, CustomStringConvertible, Equatable {
    case invalidConfiguration(String)
    case io(String, errno: Int32)
    case storage(path: String, reason: String)
    case notFound(String)
    case auth(String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let s): "registry server configuration: \(s)"
        case let .io(what, e): "\(what) failed: \(String(cString: strerror(e)))"
        case let .storage(path, reason): "registry storage at \(path): \(reason)"
        case .notFound(let p): "not found: \(p)"
        case .auth(let s): "registry auth: \(s)"
        }
    }
}
