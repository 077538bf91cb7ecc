import Foundation
import OCI
#if canImport(Glibc)
import Glibc
#endif

/// Small file-system helpers the builder needs (copies that keep modes and times, tree digests).
typealias StatBuf = Glibc.stat

/// stat(2) under a name that does not clash with the struct.
func statFollow(_ p: String, _ st: inout StatBuf) -> Int32 { stat(p, &st) }

enum FS {
    static func info(_ p: String) -> StatBuf? {
        var st = StatBuf()
        return Glibc.lstat(p, &st) == 0 ? st : nil
    }
    static func follow(_ p: String) -> StatBuf? {
        var st = StatBuf()
        return statFollow(p, &st) == 0 ? st : nil
    }
    static func isDir(_ st: StatBuf) -> Bool { st.st_mode & S_IFMT == S_IFDIR }
    static func isLink(_ st: StatBuf) -> Bool { st.st_mode & S_IFMT == S_IFLNK }
    static func isReg(_ st: StatBuf) -> Bool { st.st_mode & S_IFMT == S_IFREG }
    static func exists(_ p: String) -> Bool { info(p) != nil }

    static func mkdirs(_ p: String, mode: mode_t = 0o755) throws {
        if let st = follow(p), isDir(st) { return }
        let parent = (p as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != p { try mkdirs(parent, mode: mode) }
        if mkdir(p, mode) != 0, errno != EEXIST { throw sys("create directory", p) }
    }

    static func sys(_ what: String, _ path: String) -> BuildError {
        .system("cannot \(what) \(path): \(String(cString: strerror(errno)))")
    }

    static func list(_ dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) { ptr in
                ptr.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func readLink(_ p: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4097)
        let n = readlink(p, &buf, 4096)
        guard n >= 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func removeTree(_ p: String) {
        guard let st = info(p) else { return }
        if isDir(st) {
            for n in list(p) { removeTree(p + "/" + n) }
            rmdir(p)
        } else { unlink(p) }
    }

    /// Copies one regular file's bytes, mode and times.
    static func copyFile(_ src: String, _ dst: String, st: StatBuf) throws {
        let i = open(src, O_RDONLY | O_CLOEXEC)
        guard i >= 0 else { throw sys("open", src) }
        defer { close(i) }
        unlink(dst)
        let o = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 0o7777)
        guard o >= 0 else { throw sys("create", dst) }
        defer { close(o) }
        var left = Int(st.st_size)
        var off: off_t = 0
        while left > 0 {
            let n = Glibc.sendfile(o, i, &off, min(left, 1 << 30))
            if n < 0 {
                if errno == EINVAL || errno == ENOSYS { try copyRead(i, o); break }
                throw sys("copy", src)
            }
            if n == 0 { break }
            left -= n
        }
        fchmod(o, st.st_mode & 0o7777)
        var times = [st.st_atim, st.st_mtim]
        futimens(o, &times)
    }

    private static func copyRead(_ i: Int32, _ o: Int32) throws {
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buf.withUnsafeMutableBytes { read(i, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            _ = buf.withUnsafeBytes { write(o, $0.baseAddress, n) }
        }
    }

    static func setTimes(_ p: String, _ st: StatBuf) {
        var times = [st.st_atim, st.st_mtim]
        utimensat(AT_FDCWD, p, &times, AT_SYMLINK_NOFOLLOW)
    }

    /// Copies `src` (file, link or directory) to `dst`. `skip(rel)` leaves out entries by their
    /// path relative to `src`'s root. Owner is set to `owner` (or kept when nil and `keepOwner`).
    static func copyTree(_ src: String, _ dst: String, rel: String = "", skip: (String) -> Bool,
                         descend: (String) -> Bool = { _ in false },
                         owner: (UInt32, UInt32)?, keepOwner: Bool, mode: mode_t?) throws {
        guard let st = info(src) else { throw BuildError.context("\(src) does not exist") }
        if isDir(st) {
            if let d = follow(dst), isDir(d) {} else {
                unlink(dst)
                if mkdir(dst, 0o755) != 0 { throw sys("create directory", dst) }
            }
            for n in list(src) {
                let r = rel.isEmpty ? n : rel + "/" + n
                if skip(r) {
                    // An excluded directory an exception may re-include something from: walk it,
                    // keep it only when something inside survives.
                    guard descend(r), let cst = info(src + "/" + n), isDir(cst) else { continue }
                    try copyTree(src + "/" + n, dst + "/" + n, rel: r, skip: skip, descend: descend, owner: owner, keepOwner: keepOwner, mode: mode)
                    rmdir(dst + "/" + n)
                    continue
                }
                try copyTree(src + "/" + n, dst + "/" + n, rel: r, skip: skip, descend: descend, owner: owner, keepOwner: keepOwner, mode: mode)
            }
            // --chmod keeps directories traversable: x wherever the mode grants r (current BuildKit).
            chmod(dst, mode.map { $0 | (($0 & 0o444) >> 2) } ?? (st.st_mode & 0o7777))
        } else if isLink(st) {
            guard let target = readLink(src) else { throw sys("read link", src) }
            unlink(dst)
            if symlink(target, dst) != 0 { throw sys("create link", dst) }
        } else if isReg(st) {
            try copyFile(src, dst, st: st)
            if let mode { chmod(dst, mode) }
        } else {
            unlink(dst)
            if mknod(dst, st.st_mode, st.st_rdev) != 0 { throw sys("create node", dst) }
        }
        if let owner { lchown(dst, owner.0, owner.1) } else if keepOwner { lchown(dst, st.st_uid, st.st_gid) }
        setTimes(dst, st)
    }

    /// Feeds a content digest of `path` (recursively) into `h`: names, types, modes, sizes,
    /// link targets and file contents; never times. `skip` works as in `copyTree`.
    static func hashTree(_ path: String, rel: String = "", into h: inout Digest.Hasher, skip: (String) -> Bool,
                         descend: (String) -> Bool = { _ in false }, withOwner: Bool, digests: ContextDigests? = nil) throws {
        guard let st = info(path) else { throw BuildError.context("\(path) does not exist") }
        var head = "\(rel)\u{0}\(st.st_mode)\u{0}"
        if withOwner { head += "\(st.st_uid):\(st.st_gid)\u{0}" }
        if isDir(st) {
            h.update(Data(head.utf8))
            for n in list(path) {
                let r = rel.isEmpty ? n : rel + "/" + n
                if skip(r) {
                    guard descend(r), let cst = info(path + "/" + n), isDir(cst) else { continue }
                    h.update(Data("descend\u{0}\(r)\u{0}".utf8))
                }
                try hashTree(path + "/" + n, rel: r, into: &h, skip: skip, descend: descend, withOwner: withOwner, digests: digests)
            }
        } else if isLink(st) {
            h.update(Data((head + (readLink(path) ?? "") + "\u{0}").utf8))
        } else if isReg(st) {
            // The file's own SHA-256, remembered across builds when the context index has it.
            let hex = try digests?.digest(of: path, st) ?? ContextDigests.hash(path)
            h.update(Data((head + "\(st.st_size)\u{0}" + hex + "\u{0}").utf8))
        } else {
            h.update(Data((head + "\(st.st_rdev)\u{0}").utf8))
        }
    }
}

/// `filepath.Clean` for slash paths, without a leading `/` ("" for the root).
func cleanPath(_ p: String) -> String {
    var out: [Substring] = []
    for part in p.split(separator: "/") {
        if part == "." || part.isEmpty { continue }
        if part == ".." { if !out.isEmpty { out.removeLast() }; continue }
        out.append(part)
    }
    return out.joined(separator: "/")
}
