import Foundation

/// Facts about one stored file.
public struct StorageFileInfo: Sendable, Equatable {
    public var size: Int64
    public var isDirectory: Bool
    public var modified: Date
}

/// An open region of stored content. A driver that keeps files on a local disk hands out a
/// descriptor so the HTTP layer can `sendfile(2)` it; others hand out bytes.
public enum StorageContent: Sendable {
    case file(fd: Int32, size: Int64)
    case bytes([UInt8])
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
}
