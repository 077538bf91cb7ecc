import CArchive
import Glibc

/// Small wrappers over the *at system calls; paths stay raw bytes.
enum FS {
    static func isType(_ mode: mode_t, _ type: mode_t) -> Bool { (mode & S_IFMT) == type }

    static func major(_ dev: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))) }
    static func minor(_ dev: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))) }
    static func makedev(_ major: UInt32, _ minor: UInt32) -> UInt64 {
        let ma = UInt64(major), mi = UInt64(minor)
        return ((ma & 0xfff) << 8) | ((ma & ~UInt64(0xfff)) << 32) | (mi & 0xff) | ((mi & ~UInt64(0xff)) << 12)
    }

    static func string(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// Calls `body` with a NUL-terminated copy of `bytes`.
    @inline(__always)
    static func withCString<T>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        var z = bytes
        z.append(0)
        return try z.withUnsafeBufferPointer { buf in
            try buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buf.count) { try body($0) }
        }
    }

    static func lstatAt(_ dirfd: Int32, _ name: [UInt8]) -> stat? {
        var st = stat()
        let rc = withCString(name) { fstatat(dirfd, $0, &st, AT_SYMLINK_NOFOLLOW) }
        return rc == 0 ? st : nil
    }

    /// Directory entries except `.` and `..`, sorted bytewise (the order tar entries are written in).
    static func sortedNames(_ fd: Int32, path: String) throws -> [[UInt8]] {
        let dupfd = dup(fd)
        if dupfd < 0 { throw ArchiveError.sys(path, "dup") }
        guard let dir = fdopendir(dupfd) else {
            close(dupfd)
            throw ArchiveError.sys(path, "opendir")
        }
        defer { closedir(dir) }
        rewinddir(dir)
        var names: [[UInt8]] = []
        while true {
            errno = 0
            guard let ent = readdir(dir) else {
                if errno != 0 { throw ArchiveError.sys(path, "readdir") }
                break
            }
            let name: [UInt8] = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                let n = strnlen(raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count)
                return Array(raw.prefix(n))
            }
            if name == [0x2e] || name == [0x2e, 0x2e] { continue }
            names.append(name)
        }
        names.sort { $0.lexicographicallyPrecedes($1) }
        return names
    }

    static func readlinkAt(_ dirfd: Int32, _ name: [UInt8]) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = withCString(name) { p in buf.withUnsafeMutableBufferPointer { readlinkat(dirfd, p, UnsafeMutableRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), $0.count) } }
        if n < 0 { return nil }
        return Array(buf.prefix(n))
    }

    /// Extended attributes of `path` (not following a final symlink), sorted by name.
    static func xattrs(path: [UInt8]) -> [(name: [UInt8], value: [UInt8])] {
        withCString(path) { p in
            var size = dockbuild_llistxattr(p, nil, 0)
            if size <= 0 { return [] }
            var list = [CChar](repeating: 0, count: size)
            size = dockbuild_llistxattr(p, &list, size)
            if size <= 0 { return [] }
            var result: [(name: [UInt8], value: [UInt8])] = []
            var start = 0
            for i in 0..<size where list[i] == 0 {
                let name = list[start..<i].map { UInt8(bitPattern: $0) }
                start = i + 1
                if name.isEmpty { continue }
                var nameZ = list[(i - name.count)..<i].map { $0 }
                nameZ.append(0)
                let vsize = dockbuild_lgetxattr(p, nameZ, nil, 0)
                if vsize < 0 { continue }
                var value = [UInt8](repeating: 0, count: vsize)
                let got = vsize == 0 ? 0 : dockbuild_lgetxattr(p, nameZ, &value, vsize)
                if got < 0 { continue }
                result.append((name, Array(value.prefix(got))))
            }
            result.sort { $0.name.lexicographicallyPrecedes($1.name) }
            return result
        }
    }
}
