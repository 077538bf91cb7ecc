import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A failed system call on a path: what was attempted, where, and the errno. Modules with an
/// error type of their own wrap it at the call site (`action` and `path` keep their messages).
package struct SystemError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What failed, as it reads after "cannot": "create directory", "rename into", "lock".
    package let action: String
    /// The path the call was made on (the temp file for a failed write, the target for a rename).
    package let path: String
    package let errno: Int32
    /// What to do about it, when the errno alone does not say (a directory owned by another user).
    package let hint: String?

    package init(_ action: String, path: String, errno: Int32 = Glibc.errno, hint: String? = nil) {
        self.action = action
        self.path = path
        self.errno = errno
        self.hint = hint
    }

    /// `strerror` of `errno`: "No such file or directory".
    package var reason: String { String(cString: strerror(errno)) }

    package var description: String { "cannot \(action) \(path): " + (hint ?? reason) }
}
