// Small POSIX helpers: the store writes nothing in place (temp file, fsync, rename).
import Foundation
import OCI
#if canImport(Glibc)
import Glibc
#endif

enum FileOps {
    static func mkdirs(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw ImageStoreError.io("cannot create directory", path: path, errno: errno == 0 ? EACCES : errno)
        }
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func fileSize(_ path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int64(st.st_size)
    }

    static func writeAll(fd: Int32, _ buffer: UnsafeRawBufferPointer, path: String) throws {
        guard var p = buffer.baseAddress else { return }
        var left = buffer.count
        while left > 0 {
            let n = write(fd, p, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw ImageStoreError.io("cannot write", path: path, errno: errno)
            }
            p += n
            left -= n
        }
    }

    static func fsyncDirectory(_ dir: String) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    /// Writes `data` to `path` atomically: a temp file in `tempDir` (same filesystem),
    /// fsync, rename over `path`, fsync of the directory.
    static func writeAtomically(_ data: Data, to path: String, tempDir: String) throws {
        let tmp = tempDir + "/write-\(UUID().uuidString)"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ImageStoreError.io("cannot create", path: tmp, errno: errno) }
        do {
            try data.withUnsafeBytes { try writeAll(fd: fd, $0, path: tmp) }
            guard fsync(fd) == 0 else { throw ImageStoreError.io("cannot fsync", path: tmp, errno: errno) }
            close(fd)
            guard rename(tmp, path) == 0 else { throw ImageStoreError.io("cannot rename into", path: path, errno: errno) }
            fsyncDirectory((path as NSString).deletingLastPathComponent)
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
    }

    static func readFile(_ path: String) throws -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ImageStoreError.io("cannot open", path: path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        fstat(fd, &st)
        var out = Data(capacity: max(Int(st.st_size), 0))
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ImageStoreError.io("cannot read", path: path, errno: errno)
            }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    /// Recursively removes `path` (no error if it does not exist).
    static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A flock(2) on a file: shared or exclusive, across processes.
final class FileLock: @unchecked Sendable {
    let fd: Int32
    let path: String

    init(path: String) throws {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ImageStoreError.io("cannot open lock file", path: path, errno: errno) }
        self.path = path
    }

    deinit { close(fd) }

    func lock(exclusive: Bool) throws {
        while flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0 {
            if errno == EINTR { continue }
            throw ImageStoreError.io("cannot lock", path: path, errno: errno)
        }
    }

    /// Tries to take the lock until `timeout` seconds have passed; false when it could not.
    func tryLock(exclusive: Bool, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0 { return true }
            if errno != EWOULDBLOCK && errno != EINTR { return false }
            if Date() >= deadline { return false }
            usleep(50_000)
        }
    }

    func unlock() { flock(fd, LOCK_UN) }
}

/// A value behind a lock, for the store's little in-memory state.
final class Locked<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ value: T) { self.value = value }
    func withLock<R>(_ body: (inout T) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
