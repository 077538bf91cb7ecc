import Foundation

/// Facts about one stored file.
public struct StorageFileInfo: Sendable, Equatable {
    public var size: Int64
    public var isDirectory: Bool
    public var modified: Date
}

/// An open region of stored content. A driver that keeps files on a local disk hands out a
/// descriptor so the HTTP layer can `sendfile(2)` it; a remote store hands out a reader that
/// fetches only the ranges asked for, so serving a large blob never holds it in memory.
public enum StorageContent: Sendable {
    case file(fd: Int32, size: Int64)
    case bytes([UInt8])
    case reader(any StorageRangeReader)

    /// Bytes in the content.
    public var size: Int64 {
        switch self {
        case .file(_, let s): s
        case .bytes(let b): Int64(b.count)
        case .reader(let r): r.size
        }
    }

    /// Hands `length` bytes from `offset` to `sink` in order, a bounded piece at a time, and
    /// closes a file descriptor afterwards.
    public func read(offset: Int64, length: Int64, into sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        switch self {
        case .bytes(let b):
            try b.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset + length)])) }
        case .reader(let r):
            try r.read(offset: offset, length: length, into: sink)
        case .file(let fd, _):
            defer { close(fd) }
            let size = 1 << 20
            let buf = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            defer { buf.deallocate() }
            var off = offset
            let end = offset + length
            while off < end {
                let n = pread(fd, buf, Int(min(Int64(size), end - off)), off_t(off))
                if n < 0 { if errno == EINTR { continue }; throw RegistryServerError.io("pread", errno: errno) }
                if n == 0 { throw RegistryServerError.io("pread: file shorter than its size", errno: EIO) }
                try sink(UnsafeRawBufferPointer(start: buf, count: n))
                off += Int64(n)
            }
        }
    }

    /// The whole content in memory (for small objects such as manifests).
    public func readAll() throws -> [UInt8] {
        if case .bytes(let b) = self { return b }
        var out: [UInt8] = []
        out.reserveCapacity(Int(size))
        try read(offset: 0, length: size) { out.append(contentsOf: $0) }
        return out
    }
}

/// Content of a remote object read in ranges on demand.
public protocol StorageRangeReader: Sendable {
    /// Bytes in the object.
    var size: Int64 { get }
    /// Hands the bytes of `offset..<offset+length` to `sink` in order as they arrive, fetching
    /// only that range; throws when the object changed or vanished since it was opened.
    func read(offset: Int64, length: Int64, into sink: (UnsafeRawBufferPointer) throws -> Void) throws
}

/// Appends to an in-progress upload.
public protocol StorageWriter: AnyObject {
    /// Bytes in the file so far.
    var size: Int64 { get }
    func write(_ buffer: UnsafeRawBufferPointer) throws
    /// Makes the written bytes durable (fsync) and closes.
    func commit() throws
    /// Closes without the durability guarantee.
    func close()
    /// Closes without the durability guarantee, but reports a failure to store what was
    /// written (a remote store completes the object here).
    func finish() throws
}

extension StorageWriter {
    public func finish() throws { close() }
}

/// The small path-based interface the registry needs from a storage backend, after
/// distribution's driver model: keys are `/`-separated paths relative to the driver's root.
/// Every mutating call is atomic: a reader sees the old value or the new one, never a mix.
public protocol StorageDriver: Sendable {
    /// Whole content of a small file; throws `RegistryServerError.notFound` when absent.
    func getContent(_ path: String) throws -> [UInt8]
    /// Writes a small file atomically (temp file, fsync, rename).
    func putContent(_ path: String, _ bytes: [UInt8]) throws
    /// Information about a path, nil when it does not exist.
    func stat(_ path: String) -> StorageFileInfo?
    /// Names directly under a directory, sorted; empty when it does not exist.
    func list(_ path: String) -> [String]
    /// `list`, except that a directory that cannot be read throws instead of looking empty:
    /// garbage collection must never take an unreadable listing for "nothing references it".
    func listing(_ path: String) throws -> [String]
    /// Renames atomically, replacing the destination.
    func move(_ from: String, to: String) throws
    /// Removes a file or a directory tree; absent paths are fine.
    func delete(_ path: String) throws
    /// Opens a writer that appends to `path`, creating it.
    func writer(_ path: String) throws -> any StorageWriter
    /// Opens content for reading.
    func open(_ path: String) throws -> StorageContent
    /// Finds (and unless `dryRun` removes) temporary files a crashed writer left behind: those
    /// whose writing process provably exited, and unstamped ones older than `unstampedAge`
    /// seconds. Returns their paths relative to the root, sorted.
    func removeLeftovers(dryRun: Bool, unstampedAge: TimeInterval) -> [String]
    /// Whether servers on other hosts (or in other pid namespaces) may share this storage, as
    /// replicas on one bucket do: then a process stamp of another server cannot be checked
    /// from here, and what it owns is judged by age alone.
    var isShared: Bool { get }
    /// A URL from which a client may GET the file directly, valid for a short while, or nil
    /// when the driver serves it itself (distribution's `URLFor`, behind `storage.redirect`).
    func redirectURL(_ path: String) -> String?
}

extension StorageDriver {
    public var isShared: Bool { false }
    public func redirectURL(_ path: String) -> String? { nil }
}
