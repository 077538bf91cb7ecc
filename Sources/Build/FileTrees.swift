import Foundation
import SystemSupport
import OCI
#if canImport(Glibc)
import Glibc
#endif

/// Small file-system helpers the builder needs (copies that keep modes and times, tree digests).
typealias StatBuf = Glibc.stat

/// stat(2) under a name that does not clash with the struct.
func statFollow(_ p: String, _ st: inout StatBuf) -> Int32 { stat(p, &st) }

/// `O_PATH` and `AT_EMPTY_PATH` (Linux), which Swift's Glibc module does not surface.
let oPath: Int32 = 0o10_000_000
let atEmptyPath: Int32 = 0x1000

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
        try io { try FileSystem.makeDirectories(p, mode: mode) }
    }

    /// Temp file (`temporaryPath`, on the same file system), rename: readers see the old or the
    /// new file. No fsync: what the builder writes this way (cache records, indexes) is rebuilt
    /// when lost.
    static func writeAtomic(_ data: Data, to path: String, temporaryPath: String? = nil) throws {
        try io { try FileSystem.writeAtomically(data, to: path, durability: .none, temporaryPath: temporaryPath) }
    }

    /// Runs a SystemSupport call with its error as the builder's (the same "cannot … path: reason").
    @discardableResult
    static func io<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as SystemError { throw BuildError.system(error.description) }
    }

    static func sys(_ what: String, _ path: String) -> BuildError {
        .system("cannot \(what) \(path): \(String(cString: strerror(errno)))")
    }

    /// The names in `dir`, sorted ([] when it cannot be read).
    static func list(_ dir: String) -> [String] {
        (FileSystem.entryNames(atPath: dir) ?? []).sorted()
    }

    static func readLink(_ p: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4097)
        let n = readlink(p, &buf, 4096)
        guard n >= 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func removeTree(_ p: String) {
        try? FileSystem.removeTree(p)
    }

    /// Copies one regular file's bytes, mode and times.
    /// Copies the regular file `src` to `dst` (replacing a file there) with `st`'s mode and
    /// times, or `mode`, and `owner` when given: everything through the new file's descriptor,
    /// with no path lookup after the open (a COPY of many small files spends its time in
    /// syscalls).
    static func copyFile(_ src: String, _ dst: String, st: StatBuf, owner: (UInt32, UInt32)? = nil, mode: mode_t? = nil) throws {
        let i = open(src, O_RDONLY | O_CLOEXEC)
        guard i >= 0 else { throw sys("open", src) }
        defer { close(i) }
        try copyOpened(i, display: src, to: AT_FDCWD, dst, st: st, owner: owner, mode: mode)
    }

    /// `copyFile` from the open file `i` to `name` under the directory descriptor `dirfd` (or a
    /// path with `AT_FDCWD`).
    static func copyOpened(_ i: Int32, display: String, to dirfd: Int32, _ name: String, st: StatBuf,
                           owner: (UInt32, UInt32)? = nil, mode: mode_t? = nil) throws {
        var o = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if o < 0 && errno == EEXIST {
            unlinkat(dirfd, name, 0)
            o = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        }
        guard o >= 0 else { throw sys("create", name) }
        defer { close(o) }
        var left = Int(st.st_size)
        var off: off_t = 0
        while left > 0 {
            let n = Glibc.sendfile(o, i, &off, min(left, 1 << 30))
            if n < 0 {
                if errno == EINVAL || errno == ENOSYS { try copyRead(i, o); break }
                throw sys("copy", display)
            }
            if n == 0 { break }
            left -= n
        }
        // owner before mode: a chown clears the setuid and setgid bits
        if let owner { fchown(o, owner.0, owner.1) }
        fchmod(o, mode ?? (st.st_mode & 0o7777))
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
            try copyFile(src, dst, st: st, owner: owner ?? (keepOwner ? (st.st_uid, st.st_gid) : nil), mode: mode)
            return
        } else {
            unlink(dst)
            if mknod(dst, st.st_mode, st.st_rdev) != 0 { throw sys("create node", dst) }
        }
        if let owner { lchown(dst, owner.0, owner.1) } else if keepOwner { lchown(dst, st.st_uid, st.st_gid) }
        setTimes(dst, st)
    }

    /// `copyTree`'s rules for a directory of the build context, read through descriptors only:
    /// each entry is opened with O_NOFOLLOW under its parent's descriptor, so nothing can swap a
    /// component for a symlink to a host path between the match and the copy, and no source
    /// file is hard-linked (a link changes the file's ctime, which the context index keys on, and
    /// costs a directory entry per file). Sockets are left out. `skip`/`descend` see paths
    /// relative to the copied directory, as `copyTree`'s.
    static func copyTreeAt(_ dirfd: Int32, to dst: String, rel: String = "", skip: (String) -> Bool,
                           descend: (String) -> Bool, owner: (UInt32, UInt32)?, keepOwner: Bool, mode: mode_t?) throws {
        var st = StatBuf()
        guard fstat(dirfd, &st) == 0 else { throw sys("stat", dst) }
        if let d = follow(dst), isDir(d) {} else {
            unlink(dst)
            if mkdir(dst, 0o755) != 0 { throw sys("create directory", dst) }
        }
        var files: [(name: String, rel: String, st: StatBuf)] = []
        for name in try names(dirfd, dst) {
            let r = rel.isEmpty ? name : rel + "/" + name
            var cst = StatBuf()
            guard fstatat(dirfd, name, &cst, AT_SYMLINK_NOFOLLOW) == 0 else { throw sys("stat", dst + "/" + name) }
            let target = dst + "/" + name
            if skip(r) {
                // An excluded directory an exception may re-include something from: walk it,
                // keep it only when something inside survives.
                guard descend(r), isDir(cst) else { continue }
                try copyDirectoryAt(dirfd, name, to: target, rel: r, skip: skip, descend: descend, owner: owner, keepOwner: keepOwner, mode: mode)
                rmdir(target)
                continue
            }
            switch cst.st_mode & S_IFMT {
            case S_IFDIR:
                try copyDirectoryAt(dirfd, name, to: target, rel: r, skip: skip, descend: descend, owner: owner, keepOwner: keepOwner, mode: mode)
                continue
            case S_IFREG:
                files.append((name, r, cst))
                continue
            case S_IFLNK:
                guard let link = readLinkAt(dirfd, name) else { throw sys("read link", target) }
                unlink(target)
                if symlink(link, target) != 0 { throw sys("create link", target) }
            case S_IFIFO, S_IFCHR, S_IFBLK:
                unlink(target)
                if mknod(target, cst.st_mode, cst.st_rdev) != 0 { throw sys("create node", target) }
            default:
                continue   // sockets
            }
            if let owner { lchown(target, owner.0, owner.1) } else if keepOwner { lchown(target, cst.st_uid, cst.st_gid) }
            setTimes(target, cst)
        }
        try copyFilesAt(dirfd, files, to: dst, owner: owner, keepOwner: keepOwner, mode: mode)
        // --chmod keeps directories traversable: x wherever the mode grants r (issue #15's rule).
        chmod(dst, mode.map { $0 | (($0 & 0o444) >> 2) } ?? (st.st_mode & 0o7777))
        if let owner { lchown(dst, owner.0, owner.1) } else if keepOwner { lchown(dst, st.st_uid, st.st_gid) }
        setTimes(dst, st)
    }

    /// Copies the regular files `files` of the directory `dirfd` into `dst`: each opened under
    /// `dirfd` with O_NOFOLLOW and created under `dst`'s descriptor (no path lookups per file), on
    /// every core when there are enough of them.
    private static func copyFilesAt(_ dirfd: Int32, _ files: [(name: String, rel: String, st: StatBuf)], to dst: String,
                                    owner: (UInt32, UInt32)?, keepOwner: Bool, mode: mode_t?) throws {
        guard !files.isEmpty else { return }
        let out = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard out >= 0 else { throw sys("open directory", dst) }
        defer { close(out) }
        @Sendable func one(_ f: (name: String, rel: String, st: StatBuf)) throws {
            let i = openat(dirfd, f.name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
            guard i >= 0 else { throw sys("open", dst + "/" + f.name) }
            defer { close(i) }
            var fst = StatBuf()
            guard fstat(i, &fst) == 0, isReg(fst) else { throw BuildError.context("\(f.rel) changed in the build context while it was copied") }
            try copyOpened(i, display: f.rel, to: out, f.name, st: f.st,
                           owner: owner ?? (keepOwner ? (f.st.st_uid, f.st.st_gid) : nil), mode: mode)
        }
        let workers = min(ProcessInfo.processInfo.activeProcessorCount, 8)
        let bytes = files.reduce(0) { $0 + Int($1.st.st_size) }
        guard workers > 1, files.count >= 16, bytes >= 1 << 20 else {
            for f in files { try one(f) }
            return
        }
        let errors = ErrorBox()
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            for i in stride(from: w, to: files.count, by: workers) {
                do { try one(files[i]) } catch { errors.set(error) }
            }
        }
        if let e = errors.error { throw e }
    }

    private static func copyDirectoryAt(_ dirfd: Int32, _ name: String, to target: String, rel: String, skip: (String) -> Bool,
                                        descend: (String) -> Bool, owner: (UInt32, UInt32)?, keepOwner: Bool, mode: mode_t?) throws {
        let child = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard child >= 0 else { throw sys("open directory", target) }
        defer { close(child) }
        try copyTreeAt(child, to: target, rel: rel, skip: skip, descend: descend, owner: owner, keepOwner: keepOwner, mode: mode)
    }

    /// Recreates the directory `dirfd` at `dst` (created, mode, owner and times kept) from
    /// descriptors only, never following a symlink: regular files hard-linked (copied where a
    /// link fails, e.g. across file systems), symlinks recreated, FIFOs made; device nodes made
    /// when `devices` (COPY), left out otherwise (bind mounts), sockets always left out.
    /// `skip(rel)` leaves out entries by their path relative to the context (`rel` is the
    /// directory's own); an excluded directory is still searched when the rules have
    /// `exceptions`, and kept only when something in it is. Returns whether `dst` was kept.
    @discardableResult
    static func linkTree(_ dirfd: Int32, to dst: String, rel: String, keepEmpty: Bool, exceptions: Bool,
                         devices: Bool = false, skip: (String) -> Bool) throws -> Bool {
        var st = StatBuf()
        guard fstat(dirfd, &st) == 0 else { throw sys("stat", dst) }
        if mkdir(dst, 0o700) != 0 { throw sys("create directory", dst) }
        var kept = false
        for name in try names(dirfd, dst) {
            let r = rel.isEmpty ? name : rel + "/" + name
            let ignored = skip(r)
            var cst = StatBuf()
            guard fstatat(dirfd, name, &cst, AT_SYMLINK_NOFOLLOW) == 0 else { throw sys("stat", dst + "/" + name) }
            let target = dst + "/" + name
            switch cst.st_mode & S_IFMT {
            case S_IFDIR:
                if ignored && !exceptions { continue }
                let child = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { throw sys("open directory", target) }
                defer { close(child) }
                if try linkTree(child, to: target, rel: r, keepEmpty: !ignored, exceptions: exceptions, devices: devices, skip: skip) { kept = true }
                continue
            case _ where ignored:
                continue
            case S_IFREG:
                if linkat(dirfd, name, AT_FDCWD, target, 0) != 0 {
                    let f = openat(dirfd, name, oPath | O_NOFOLLOW | O_CLOEXEC)
                    guard f >= 0 else { throw sys("open", target) }
                    defer { close(f) }
                    try copyFile("/proc/self/fd/\(f)", target, st: cst)
                    lchown(target, cst.st_uid, cst.st_gid)
                }
            case S_IFLNK:
                guard let link = readLinkAt(dirfd, name) else { throw sys("read link", target) }
                if symlink(link, target) != 0 { throw sys("create link", target) }
                lchown(target, cst.st_uid, cst.st_gid)
                setTimes(target, cst)
            case S_IFIFO:
                if mkfifo(target, cst.st_mode & 0o7777) != 0 { throw sys("create FIFO", target) }
                lchown(target, cst.st_uid, cst.st_gid)
            case S_IFCHR where devices, S_IFBLK where devices:
                if mknod(target, cst.st_mode, cst.st_rdev) != 0 { throw sys("create node", target) }
                lchown(target, cst.st_uid, cst.st_gid)
            default:
                continue
            }
            kept = true
        }
        if !kept && !keepEmpty {
            rmdir(dst)
            return false
        }
        chmod(dst, st.st_mode & 0o7777)
        lchown(dst, st.st_uid, st.st_gid)
        setTimes(dst, st)
        return true
    }

    /// One line per entry that `linkTree` would keep (path below the source, mode, and size and
    /// content digest, link target, or nothing), in the same order: the digest input of a context
    /// bind. `path` is the directory's path in the context (for `skip`), `rel` its path below the
    /// source.
    static func treeLines(_ dirfd: Int32, rel: String, path: String, keepEmpty: Bool, exceptions: Bool,
                          skip: (String) -> Bool) throws -> [String] {
        var st = StatBuf()
        guard fstat(dirfd, &st) == 0 else { throw sys("stat", path) }
        var lines: [String] = []
        for name in try names(dirfd, path) {
            let p = path.isEmpty ? name : path + "/" + name
            let r = rel.isEmpty ? name : rel + "/" + name
            let ignored = skip(p)
            var cst = StatBuf()
            guard fstatat(dirfd, name, &cst, AT_SYMLINK_NOFOLLOW) == 0 else { throw sys("stat", p) }
            let head = "\(r)\u{0}\(cst.st_mode)\u{0}"
            switch cst.st_mode & S_IFMT {
            case S_IFDIR:
                if ignored && !exceptions { continue }
                let child = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { throw sys("open directory", p) }
                defer { close(child) }
                lines += try treeLines(child, rel: r, path: p, keepEmpty: !ignored, exceptions: exceptions, skip: skip)
            case _ where ignored:
                continue
            case S_IFREG:
                let f = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                guard f >= 0 else { throw sys("open", p) }
                defer { close(f) }
                lines.append(head + "\(cst.st_size)\u{0}" + (try contentDigest(f, p, size: Int(cst.st_size))))
            case S_IFLNK:
                guard let link = readLinkAt(dirfd, name) else { throw sys("read link", p) }
                lines.append(head + link)
            case S_IFIFO:
                lines.append(head)
            default:
                continue
            }
        }
        if lines.isEmpty && !keepEmpty { return [] }
        return ["\(rel)\u{0}\(st.st_mode)\u{0}"] + lines
    }

    /// The SHA-256 of what remains to be read from `fd` (`size`: the expected size, to size the buffer).
    static func contentDigest(_ fd: Int32, _ display: String, size: Int) throws -> String {
        var h = Digest.Hasher()
        var buf = [UInt8](repeating: 0, count: max(4096, min(size + 1, 1 << 18)))
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw sys("read", display) }
            if n == 0 { break }
            buf.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        return h.finalize().encoded
    }

    /// The names in an open directory, sorted.
    static func names(_ dirfd: Int32, _ display: String) throws -> [String] {
        guard let names = FileSystem.entryNames(dirfd) else { throw sys("read directory", display) }
        return names.sorted()
    }

    static func readLinkAt(_ dirfd: Int32, _ name: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4097)
        let n = readlinkat(dirfd, name, &buf, 4096)
        guard n >= 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Feeds a content digest of `path` (recursively) into `h`: names, types, modes, sizes,
    /// link targets and file contents; never times. `skip` works as in `copyTree`.
    ///
    /// The tree is walked first; the regular files' own digests (the context index's, or read
    /// and hashed) are then computed on every core, and everything is fed into `h` in walk order,
    /// so the digest is the same as a one-pass walk's.
    static func hashTree(_ path: String, rel: String = "", into h: inout Digest.Hasher, skip: (String) -> Bool,
                         descend: (String) -> Bool = { _ in false }, withOwner: Bool, digests: ContextDigests? = nil) throws {
        var parts: [HashPart] = []
        try collectHashParts(path, rel: rel, into: &parts, skip: skip, descend: descend, withOwner: withOwner)
        let files = parts.indices.filter { parts[$0].file != nil }
        let hexes = try fileDigests(files.map { i in parts[i].file.map { ($0, parts[i].st) } ?? ("", StatBuf()) }, digests: digests)
        var next = 0
        for part in parts {
            if part.file != nil {
                h.update(Data((part.text + hexes[next] + "\u{0}").utf8))
                next += 1
            } else {
                h.update(Data(part.text.utf8))
            }
        }
    }

    /// One piece of a tree digest: its text, and for a regular file its path and stat (the
    /// file's own digest and a NUL follow the text).
    private struct HashPart {
        var text: String
        var file: String?
        var st: StatBuf
    }

    private static func collectHashParts(_ path: String, rel: String, into parts: inout [HashPart], skip: (String) -> Bool,
                                         descend: (String) -> Bool, withOwner: Bool) throws {
        guard let st = info(path) else { throw BuildError.context("\(path) does not exist") }
        var head = "\(rel)\u{0}\(st.st_mode)\u{0}"
        if withOwner { head += "\(st.st_uid):\(st.st_gid)\u{0}" }
        if isDir(st) {
            parts.append(HashPart(text: head, file: nil, st: st))
            for n in list(path) {
                let r = rel.isEmpty ? n : rel + "/" + n
                if skip(r) {
                    guard descend(r), let cst = info(path + "/" + n), isDir(cst) else { continue }
                    parts.append(HashPart(text: "descend\u{0}\(r)\u{0}", file: nil, st: cst))
                }
                try collectHashParts(path + "/" + n, rel: r, into: &parts, skip: skip, descend: descend, withOwner: withOwner)
            }
        } else if isLink(st) {
            parts.append(HashPart(text: head + (readLink(path) ?? "") + "\u{0}", file: nil, st: st))
        } else if isReg(st) {
            parts.append(HashPart(text: head + "\(st.st_size)\u{0}", file: path, st: st))
        } else {
            parts.append(HashPart(text: head + "\(st.st_rdev)\u{0}", file: nil, st: st))
        }
    }

    /// The SHA-256 (hex) of each file, from the context index when it knows the file, else read
    /// and hashed; on every core when there is enough to share.
    static func fileDigests(_ files: [(path: String, st: StatBuf)], digests: ContextDigests?) throws -> [String] {
        @Sendable func one(_ f: (path: String, st: StatBuf)) throws -> String {
            try digests?.digest(of: f.path, f.st) ?? ContextDigests.hash(f.path)
        }
        let workers = min(ProcessInfo.processInfo.activeProcessorCount, 8)
        let bytes = files.reduce(0) { $0 + Int($1.st.st_size) }
        guard workers > 1, files.count >= 16, bytes >= 1 << 20 else { return try files.map(one) }
        let out = DigestSlots(count: files.count)
        let errors = ErrorBox()
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            // Interleaved: neighbouring files (often of one size) go to different workers.
            for i in stride(from: w, to: files.count, by: workers) {
                do { out.set(i, try one(files[i])) } catch { errors.set(error) }
            }
        }
        if let e = errors.error { throw e }
        return out.values
    }
}

/// Results written by concurrent workers, one slot each.
private final class DigestSlots: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [String]
    init(count: Int) { slots = [String](repeating: "", count: count) }
    func set(_ i: Int, _ v: String) { lock.lock(); slots[i] = v; lock.unlock() }
    var values: [String] { lock.lock(); defer { lock.unlock() }; return slots }
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
