import OCI

/// Errors of the image store: what failed, on which blob, name or file, and what to do.
public enum ImageStoreError: Error, Equatable, Sendable, CustomStringConvertible {
    case io(String, path: String, errno: Int32)
    case digestMismatch(expected: Digest, actual: Digest)
    case sizeMismatch(digest: Digest?, expected: Int64, actual: Int64)
    case blobNotFound(Digest)
    case imageNotFound(String)
    case ambiguous(String, candidates: [String])
    case invalidContent(String)
    case busy(String)
    case inUse(String)
    case unsupported(String)
    /// A manifest list (`manifest create/add/annotate/rm`) that is missing, or a change it refuses.
    case manifestList(String)

    public var description: String {
        switch self {
        case let .io(what, path, e):
            "\(what) \(path): \(String(cString: strerror(e))) (check the path and its permissions, or choose another --root)"
        case let .digestMismatch(expected, actual):
            "content does not match its digest: expected \(expected), got \(actual); the source is corrupt or truncated, nothing was stored"
        case let .sizeMismatch(d, expected, actual):
            "content\(d.map { " \($0)" } ?? "") has \(actual) bytes, expected \(expected); the source is truncated or corrupt, nothing was stored"
        case let .blobNotFound(d):
            "blob \(d) is not in the store; pull or load the image again"
        case let .imageNotFound(n):
            "no such image: \(n) (see `dockbuild images`)"
        case let .ambiguous(n, c):
            "\"\(n)\" matches several images (\(c.joined(separator: ", "))); give more characters of the ID or a full name"
        case let .invalidContent(m):
            m
        case let .busy(m):
            m
        case let .inUse(m):
            m
        case let .unsupported(m):
            m
        case let .manifestList(m):
            m
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
