#if canImport(Glibc)
import Glibc
#endif

/// The one error type of the Runtime library. Messages say what failed, on
/// which container or file, and what to do about it.
public struct RuntimeError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case invalidSpec, notFound, exists, invalidState, system, hook, cgroup, seccomp, cdi, usage
        /// The process's program cannot be executed: not found, a directory, no execute bit.
        case exec
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

    /// The exit code docker gives a container or exec whose program cannot be executed:
    /// 127 when it is not there, 126 when it is not executable (a directory, no execute bit);
    /// nil for any other error.
    public var execExitCode: Int32? { RuntimeError.execExitCode(forMessage: message) }

    /// The same for the error text of any OCI runtime (dockbuild's, runc's, crun's), as docker
    /// reads the runtime's error: the exec failure must be named, not just any missing file.
    public static func execExitCode(forMessage m: String) -> Int32? {
        let lower = m.lowercased()
        let isExec = lower.contains("exec: \"") || lower.contains("exec: \\\"") || lower.contains("executable file")
            || lower.contains("exec failed") || lower.contains("open executable")
        guard isExec else { return nil }
        if lower.contains("executable file not found") || lower.contains("no such file or directory")
            || (lower.contains("executable file `") && lower.contains("not found")) { return 127 }
        if lower.contains("permission denied") || lower.contains("is a directory") { return 126 }
        return nil
    }
}
