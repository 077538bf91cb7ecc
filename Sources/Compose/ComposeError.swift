import Foundation

/// Everything the Compose library can fail with. Each message says what is wrong, where (the
/// compose file, its line, the service and the key) and what to do.
public enum ComposeError: Error, CustomStringConvertible, Sendable {
    /// A compose file, or a value in it, that cannot be used: the message names file, line, service and key.
    case invalidFile(String)
    /// No compose file was found or given.
    case noComposeFile(String)
    /// A command-line argument that cannot be used (an unknown service, a bad flag value).
    case invalidArgument(String)
    /// A service could not be brought up or down; the message names it.
    case service(String)

    public var description: String {
        switch self {
        case let .invalidFile(m), let .noComposeFile(m), let .invalidArgument(m), let .service(m): return m
        }
    }
}

/// Where a value came from: a compose file and a line (1-based; 0 when unknown).
public struct SourceMark: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public init(file: String, line: Int) { self.file = file; self.line = line }
    public var description: String { line > 0 ? "\(file):\(line)" : file }
}
