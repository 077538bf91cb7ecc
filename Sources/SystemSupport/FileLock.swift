import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An flock(2) on a lock file, shared or exclusive, across processes. The lock belongs to
/// this object's descriptor: it excludes other processes and other `FileLock`s on the same
/// file, not threads sharing this one object (pair it with a `Mutex` for those). Closing the
/// descriptor (on deinit) releases it.
package final class FileLock: Sendable {
    package let fd: Int32
    package let path: String

    /// Opens (creating with `mode` when absent) the lock file at `path`.
    package init(path: String, mode: mode_t = 0o644) throws(SystemError) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SystemError("open lock file", path: path) }
        self.path = path
    }

    /// Opens the lock file at `path` only if it exists; nil when it does not.
    package init?(existing path: String) {
        fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        self.path = path
    }

    deinit { close(fd) }

    /// Blocks until the lock is held.
    package func lock(exclusive: Bool = true) throws(SystemError) {
        while flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0 {
            if errno == EINTR { continue }
            throw SystemError("lock", path: path)
        }
    }

    /// Takes the lock if no one else holds it; false at once otherwise.
    package func tryLock(exclusive: Bool = true) -> Bool {
        while true {
            if flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0 { return true }
            if errno != EINTR { return false }
        }
    }

    /// Tries to take the lock until `timeout` seconds have passed; false when it could not.
    package func tryLock(exclusive: Bool, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0 { return true }
            if errno != EWOULDBLOCK && errno != EINTR { return false }
            if Date() >= deadline { return false }
            usleep(50_000)
        }
    }

    package func unlock() { flock(fd, LOCK_UN) }

    /// Runs `body` holding the lock, released after.
    package func withLock<T, E: Error>(exclusive: Bool = true, _ body: () throws(E) -> T) throws -> T {
        try lock(exclusive: exclusive)
        defer { unlock() }
        return try body()
    }
}
