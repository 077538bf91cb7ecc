import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How far a write goes to survive a crash.
package enum Durability: Sendable {
    /// Rename only: readers never see a partial file, but a power loss may lose it (state under /run).
    case none
    /// fsync the file before the rename: the new content, if visible, is complete on disk.
    case file
    /// fsync the file, rename, then fsync its directory: the rename itself survives power loss.
    case fileAndDirectory
}

/// The file-system primitives every module needs: nothing is written in place, directories
/// are made with their parents, trees are removed without following symlinks.
package enum FileSystem {
    /// Writes `bytes` to `path` so that readers see the old or the new content, never a mix:
    /// a new temp file (`temporaryPath`, or a unique name next to `path`; it must be on the same
    /// file system), written in full, fsynced per `durability`, renamed over `path`. On failure
    /// the temp file is removed and `path` is untouched.
    package static func writeAtomically(_ bytes: some ContiguousBytes, to path: String, mode: mode_t = 0o644,
                                        durability: Durability = .fileAndDirectory,
                                        temporaryPath: String? = nil) throws(SystemError) {
        let tmp = temporaryPath ?? temporaryName(for: path)
        do {
            try writeAtomically(to: path, mode: mode, durability: durability, temporaryPath: tmp) { fd in
                try bytes.withUnsafeBytes { try writeAll(fd, $0, path: tmp) }
            }
        } catch let error as SystemError {
            throw error
        } catch {
            throw SystemError("write", path: tmp, errno: EIO)  // not reached: only SystemErrors are thrown above
        }
    }

    /// The streaming form: `contents` writes the new file through the descriptor it is given
    /// (a tar, a large export); the rest is as for `writeAtomically(_:to:)`. An error `contents`
    /// throws is rethrown as it is, after the temp file is removed.
    package static func writeAtomically(to path: String, mode: mode_t = 0o644, durability: Durability = .fileAndDirectory,
                                        temporaryPath: String? = nil, contents: (_ fd: Int32) throws -> Void) throws {
        let tmp = temporaryPath ?? temporaryName(for: path)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SystemError("create", path: tmp) }
        do {
            defer { close(fd) }
            try contents(fd)
            if durability != .none, fsync(fd) != 0 { throw SystemError("fsync", path: tmp) }
        } catch {
            unlink(tmp)
            throw error
        }
        if rename(tmp, path) != 0 {
            let error = SystemError("rename into", path: path)
            unlink(tmp)
            throw error
        }
        if durability == .fileAndDirectory { syncDirectory(parent(of: path)) }
    }

    /// A fresh temp name next to `path`: `<path>.tmp-<pid>-<random>`.
    package static func temporaryName(for path: String) -> String {
        path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Writes all of `buffer` to `fd`, retrying short writes and EINTR; `path` names it in errors.
    package static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, path: String) throws(SystemError) {
        guard var p = buffer.baseAddress else { return }
        var left = buffer.count
        while left > 0 {
            let n = write(fd, p, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("write", path: path)
            }
            p += n
            left -= n
        }
    }

    /// fsyncs a directory so that renames and creations in it survive power loss (best effort).
    package static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    /// `mkdir -p`: creates `path` and any missing parents with `mode` (less the umask). A
    /// directory that exists already is fine; anything else there is an error naming the path.
    /// Returns the directories it created, outermost first.
    @discardableResult
    package static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(SystemError) -> [String] {
        // Usually only the last component is missing: one mkdir, walking up only on ENOENT.
        if mkdir(path, mode) == 0 { return [path] }
        switch errno {
        case EEXIST:
            guard isDirectory(path) else { throw SystemError("create directory", path: path, errno: ENOTDIR) }
            return []
        case ENOENT:
            let up = parent(of: path)
            guard up != path, !up.isEmpty else { throw SystemError("create directory", path: path) }
            var made = try makeDirectories(up, mode: mode)
            if mkdir(path, mode) == 0 {
                made.append(path)
            } else if errno != EEXIST || !isDirectory(path) {
                throw SystemError("create directory", path: path, errno: errno == EEXIST ? ENOTDIR : errno)
            }
            return made
        default:
            throw SystemError("create directory", path: path)
        }
    }

    /// Removes `path` and everything below it, never following a symlink (a link is removed,
    /// not its target). A missing path is not an error.
    package static func removeTree(_ path: String) throws(SystemError) {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw SystemError("remove", path: path)
        }
        if st.st_mode & S_IFMT != S_IFDIR {
            if unlink(path) != 0 && errno != ENOENT { throw SystemError("remove", path: path) }
            return
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open directory", path: path) }
        try removeContents(fd, path: path)
        close(fd)
        if rmdir(path) != 0 && errno != ENOENT { throw SystemError("remove", path: path) }
    }

    /// Removes everything in the open directory `dirfd` (closes nothing); `path` names it in errors.
    private static func removeContents(_ dirfd: Int32, path: String) throws(SystemError) {
        guard let names = entryNames(dirfd) else { throw SystemError("read directory", path: path) }
        for name in names {
            let child = path + "/" + name
            if unlinkat(dirfd, name, 0) == 0 || errno == ENOENT { continue }
            guard errno == EISDIR else { throw SystemError("remove", path: child) }
            let sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard sub >= 0 else { throw SystemError("open directory", path: child) }
            do { try removeContents(sub, path: child) } catch { close(sub); throw error }
            close(sub)
            if unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT { throw SystemError("remove", path: child) }
        }
    }

    /// The names in the directory open as `dirfd`, read from its start, "." and ".." left out,
    /// in directory order (sort them for a stable order); nil when it cannot be read. `dirfd`
    /// stays open and unmoved.
    package static func entryNames(_ dirfd: Int32) -> [String]? {
        let dup = fcntl(dirfd, F_DUPFD_CLOEXEC, 0)
        guard dup >= 0 else { return nil }
        guard let dir = fdopendir(dup) else {
            close(dup)
            return nil
        }
        defer { closedir(dir) }
        rewinddir(dir)
        return readNames(dir)
    }

    /// The names in the directory at `path`, as `entryNames(_:)` gives them; nil when it cannot be read.
    package static func entryNames(atPath path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        return readNames(dir)
    }

    private static func readNames(_ dir: OpaquePointer) -> [String] {
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { p in
                p.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Whether `path` is a directory (or a symlink to one).
    package static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
    }

    /// The directory part of a slash path ("." for a bare name, "/" for a top-level entry).
    package static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
