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
    static func writeAtomically(_ data: Data, to path: String, tempDir: String, durable: Bool = true) throws {
        try io {
            try FileSystem.writeAtomically(data, to: path, durability: durable ? .fileAndDirectory : .none,
                                           temporaryPath: tempDir + "/write-\(UUID().uuidString)")
        }
    }

    static func readFile(_ path: String) throws -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ImageStoreError.io("cannot open", path: path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        fstat(fd, &st)
        return try readFile(fd: fd, path: path, size: Int(st.st_size))
    }

    /// The rest of an open file, `size` (from fstat) the expected length.
    static func readFile(fd: Int32, path: String, size: Int) throws -> Data {
        // Read straight into the result, sized from fstat (+1 to see the end in one read):
        // `images` reads 200 small documents, and a zeroed 64 KiB buffer per file was a tenth
        // of its instructions. A file that grows meanwhile is still read to its end.
        var out = Data(count: max(size, 0) + 1)
        var used = 0
        while true {
            if used == out.count { out.count += max(out.count, 1 << 16) }
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress.map { $0 + used }, $0.count - used) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ImageStoreError.io("cannot read", path: path, errno: errno)
            }
            if n == 0 { break }
            used += n
        }
        out.count = used
        return out
    }

    /// Recursively removes `path` (no error if it does not exist).
    static func removeTree(_ path: String) {
        try? FileSystem.removeTree(path)
    }
}
