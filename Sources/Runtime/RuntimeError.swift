#if canImport(Glibc)
import Glibc
#endif

/// The one error type of the Runtime library. Messages say what failed, on
/// which container or file, and what to do about it.
public struct RuntimeError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case invalidSpec, notFound, exists, invalidState, system, hook, cgroup, seccomp, cdi, usage
    }
    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// An error from a failed system call, with errno's text appended.
    static func sys(_ what: String, _ err: Int32 = errno) -> RuntimeError {
        RuntimeError(.system, "\(what): \(String(cString: strerror(err)))")
    }

    public var description: String { message }
}
