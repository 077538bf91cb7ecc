import CArchive
import Glibc

/// Reads files inside an unpacked root filesystem the way the container will see them: symlinks
/// resolve inside the root, so `/etc/passwd -> /host/passwd` cannot make us read the host's file.
public enum RootFile {
    /// The contents of `path` (absolute or relative to `root`), or nil when it does not exist.
    public static func read(root: String, path: String, limit: Int = 16 << 20) throws -> [UInt8]? {
        let r = try InRoot(path: root)
        var comps = path.split(separator: "/").map { Array($0.utf8) }
        guard let base = comps.popLast() else { return nil }
        let dir: Int32
        do { dir = try r.directory(comps, create: false) } catch ArchiveError.io(_, _, ENOENT) { return nil }
        // The final component may itself be a symlink: resolve the whole path in root.
        var fd = FS.withCString(Array(path.utf8)) { dockbuild_openat_in_root(r.rootfd, $0, O_RDONLY | O_CLOEXEC, 0) }
        if fd < 0 && errno == ENOSYS {
            fd = FS.withCString(base) { openat(dir, $0, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }
        }
        if fd < 0 {
            if errno == ENOENT || errno == ENOTDIR || errno == ELOOP { return nil }
            throw ArchiveError.sys(root + "/" + path, "open")
        }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while out.count < limit {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ArchiveError.sys(root + "/" + path, "read")
            }
            if n == 0 { break }
            out += buf.prefix(n)
        }
        return out
    }

    /// A whole small file by absolute path (for /proc files).
    static func readAbsolute(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw ArchiveError.sys(path, "open") }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buf.prefix(n)
        }
        return out
    }
}
