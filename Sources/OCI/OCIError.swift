/// Errors of the OCI model: what was wrong, and with which input.
public enum OCIError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidDigest(String, reason: String)
    case invalidReference(String, reason: String)
    case invalidPlatform(String, reason: String)
    case invalidDocument(String)

    public var description: String {
        switch self {
        case let .invalidDigest(s, reason): "invalid digest \"\(s)\": \(reason)"
        case let .invalidReference(s, reason): "invalid reference \"\(s)\": \(reason)"
        case let .invalidPlatform(s, reason): "invalid platform \"\(s)\": \(reason)"
        case let .invalidDocument(reason): "invalid OCI document: \(reason)"
        }
    }
}
