// Small POSIX helpers: the store writes nothing in place (temp file, fsync, rename).
import Foundation
import OCI
import SystemSupport
#if canImport(Glibc)
import Glibc
#endif

enum FileOps {
    /// Runs a SystemSupport call with its error as the store's own (same action and path).
    @discardableResult
    static func io<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as SystemError {
            if error.hint != nil { throw ImageStoreError.unsupported(error.description) }
            throw ImageStoreError.io("cannot \(error.action)", path: error.path, errno: error.errno)
        }
    }

    static func mkdirs(_ path: String) throws {
        try io { try FileSystem.makeDirectories(path) }
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
        try io { try FileSystem.writeAll(fd, buffer, path: path) }
    }

    static func fsyncDirectory(_ dir: String) { FileSystem.syncDirectory(dir) }

    /// Writes `data` to `path` atomically: a temp file in `tempDir` (same filesystem, where gc
    /// finds leftovers), fsync, rename over `path`, fsync of the directory.
    static func writeAtomically(_ data: Data, to path: String, tempDir: String) throws {
        try io { try FileSystem.writeAtomically(data, to: path, temporaryPath: tempDir + "/write-\(UUID().uuidString)") }
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
        try? FileSystem.removeTree(path)
    }
}
