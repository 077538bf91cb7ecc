import Foundation
import SystemSupport

/// Stores everything under one local directory. Small files are written to a temp name,
/// fsynced and renamed; directories are fsynced after a rename so commits survive power loss.
public struct FilesystemDriver: StorageDriver {
    public let root: String
    /// Also fsync the directory after each rename, so a commit survives power loss and not
    /// only a crash of the process. Off by default: each costs a disk flush, and a lost
    /// rename still leaves the previous consistent state.
    public var syncDirectories = false

    public init(root: String) throws {
        self.root = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
        do {
            try FileSystem.makeDirectories(self.root)
        } catch {
            throw RegistryServerError.storage(path: root, reason: "cannot create the storage directory (\(error.path): \(error.reason)); pass a writable --root")
        }
    }

    func full(_ path: String) -> String { path.hasPrefix("/") ? root + path : root + "/" + path }

    static func parent(_ p: String) -> String {
        guard let slash = p.lastIndex(of: "/") else { return "." }
        return String(p[..<slash])
    }

    func makeParent(_ fullPath: String) throws {
        let dir = FilesystemDriver.parent(fullPath)
        if Glibc.access(dir, F_OK) == 0 { return }
        do { try FileSystem.makeDirectories(dir) } catch {
            throw RegistryServerError.storage(path: dir, reason: "cannot create directory \(error.path): \(error.reason)")
        }
    }

    static func fsyncDir(_ dir: String) { FileSystem.syncDirectory(dir) }

    public func getContent(_ path: String) throws -> [UInt8] {
        let p = full(path)
        let fd = Glibc.open(p, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { throw RegistryServerError.notFound(path) }
            throw RegistryServerError.storage(path: p, reason: String(cString: strerror(errno)))
        }
        defer { Glibc.close(fd) }
        var st = Glibc.stat()
        fstat(fd, &st)
        var out = [UInt8](repeating: 0, count: Int(st.st_size))
        var done = 0
        while done < out.count {
            let n = out.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 { if errno == EINTR { continue }; throw RegistryServerError.storage(path: p, reason: String(cString: strerror(errno))) }
            if n == 0 { out.removeSubrange(done...); break }
            done += n
        }
        return out
    }

    public func putContent(_ path: String, _ bytes: [UInt8]) throws {
        let p = full(path)
        try makeParent(p)
        do {
            try FileSystem.writeAtomically(bytes, to: p, durability: syncDirectories ? .fileAndDirectory : .file,
                                           temporaryPath: p + FilesystemDriver.tempSuffix())
        } catch {
            throw RegistryServerError.storage(path: error.path, reason: error.reason)
        }
    }

    public func stat(_ path: String) -> StorageFileInfo? {
        var st = Glibc.stat()
        guard fstatat(AT_FDCWD, full(path), &st, 0) == 0 else { return nil }
        return StorageFileInfo(size: Int64(st.st_size), isDirectory: (st.st_mode & S_IFMT) == S_IFDIR,
                               modified: Date(timeIntervalSince1970: Double(st.st_mtim.tv_sec)))
    }

    public func list(_ path: String) -> [String] {
        let names = FileSystem.entryNames(atPath: full(path)) ?? []
        return names.filter { !$0.contains(".tmp-") }.sorted()
    }

    public func listing(_ path: String) throws -> [String] {
        if FileSystem.entryNames(atPath: full(path)) != nil { return list(path) }
        var st = Glibc.stat()
        guard lstat(full(path), &st) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return [] }
            throw RegistryServerError.storage(path: full(path), reason: "cannot list: \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { return [] }
        throw RegistryServerError.storage(path: full(path), reason: "cannot read the directory; check its permissions")
    }

    public func move(_ from: String, to: String) throws {
        let src = full(from), dst = full(to)
        try makeParent(dst)
        guard rename(src, dst) == 0 else {
            let e = errno
            if e == ENOENT { throw RegistryServerError.notFound(from) }
            throw RegistryServerError.storage(path: dst, reason: "rename from \(src): \(String(cString: strerror(e)))")
        }
        if syncDirectories { FilesystemDriver.fsyncDir(FilesystemDriver.parent(dst)) }
    }

    public func delete(_ path: String) throws {
        let p = full(path)
        var st = Glibc.stat()
        guard lstat(p, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            // Rename first so a half-deleted tree is never visible under its name.
            let trash = p + FilesystemDriver.tempSuffix(deletion: true)
            let doomed = rename(p, trash) == 0 ? trash : p
            try? FileSystem.removeTree(doomed)
        } else if unlink(p) != 0 && errno != ENOENT {
            throw RegistryServerError.storage(path: p, reason: String(cString: strerror(errno)))
        }
    }

    public func writer(_ path: String) throws -> any StorageWriter {
        let p = full(path)
        try makeParent(p)
        let fd = Glibc.open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RegistryServerError.storage(path: p, reason: String(cString: strerror(errno))) }
        var st = Glibc.stat()
        fstat(fd, &st)
        return FileWriter(fd: fd, path: p, size: Int64(st.st_size))
    }

    public func open(_ path: String) throws -> StorageContent {
        let p = full(path)
        let fd = Glibc.open(p, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { throw RegistryServerError.notFound(path) }
            throw RegistryServerError.storage(path: p, reason: String(cString: strerror(errno)))
        }
        var st = Glibc.stat()
        fstat(fd, &st)
        return .file(fd: fd, size: Int64(st.st_size))
    }

    /// The local path of a key, for callers that hash or copy files directly.
    public func localPath(_ path: String) -> String { full(path) }
}

final class FileWriter: StorageWriter {
    let fd: Int32
    let path: String
    private(set) var size: Int64
    private var closed = false

    init(fd: Int32, path: String, size: Int64) {
        self.fd = fd
        self.path = path
        self.size = size
    }

    deinit { close() }

    func write(_ buffer: UnsafeRawBufferPointer) throws {
        do { try FileSystem.writeAll(fd, buffer, path: path) } catch {
            throw RegistryServerError.storage(path: path, reason: error.reason)
        }
        size += Int64(buffer.count)
    }

    func commit() throws {
        if fsync(fd) != 0 { throw RegistryServerError.storage(path: path, reason: "fsync: \(String(cString: strerror(errno)))") }
        close()
    }

    func close() {
        if !closed { closed = true; Glibc.close(fd) }
    }
}
