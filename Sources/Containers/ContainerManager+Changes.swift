import CArchive
import Foundation

/// One difference between a container's file system and its image's, as `docker diff` lists it.
public struct ContainerChange: Sendable, Hashable {
    public enum Kind: String, Sendable { case added = "A", changed = "C", deleted = "D" }
    public var kind: Kind
    /// Absolute path in the container.
    public var path: String
    public init(_ kind: Kind, _ path: String) { self.kind = kind; self.path = path }
    /// docker's line: `C /etc`.
    public var line: String { "\(kind.rawValue) \(path)" }
}

extension ContainerManager {
    /// What the container changed in its file system, compared with its image (`docker diff`):
    /// the overlay upper dir against a read-only view of the image's layers. docker 20.10's rules
    /// (its "naive" diff): a file is changed when its mode, owner, device, size or mtime differs
    /// (or its `security.capability`), a directory only when its mode, owner or device does, and
    /// a directory that holds a change is listed as changed before it. Whiteouts and the entries
    /// an opaque directory hides are deletions; a deleted directory is one deletion. Mount points
    /// the runtime adds (/proc, /sys, /dev, /etc/hosts, ...) are left out, as docker's init
    /// layer leaves them out. Order: depth first, names in byte order, a directory's deletions
    /// after its other entries (one of the orders docker prints; docker's varies between runs).
    public func changes(_ id: String) throws -> [ContainerChange] {
        let c = try store.container(id)
        let s = try images()
        let image = try s.image(for: c.record.imageDescriptor)
        let snaps = s.snapshotter
        let lowers = try snaps.lowers(for: image)
        let upper = "\(c.directory)/upper"
        return try snaps.withView(lowers) { base in try UpperChanges(upper: upper, base: base).list() }
    }
}

/// Walks an overlay upper dir against the view of its lowers (see `ContainerManager.changes`).
struct UpperChanges {
    /// What docker's init layer holds in every container: mount points and files the engine
    /// provides. Where the image lacks them the runtime makes them in the upper dir; that is no
    /// change of the container's.
    static let initLayerPaths: Set<String> = ["/.dockerenv", "/dev", "/dev/console", "/dev/pts", "/dev/shm", "/etc",
                                              "/etc/hostname", "/etc/hosts", "/etc/mtab", "/etc/resolv.conf", "/proc", "/sys"]
    let upper: String
    let base: String

    func list() throws -> [ContainerChange] {
        let ufd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard ufd >= 0 else { throw ContainersError.system("cannot open the container's upper dir \(upper)", errno: errno) }
        defer { close(ufd) }
        let bfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard bfd >= 0 else { throw ContainersError.system("cannot open the image's view \(base)", errno: errno) }
        defer { close(bfd) }
        var out: [ContainerChange] = []
        try walk(ufd: ufd, bfd: bfd, rel: [], opaque: false, into: &out)
        return out
    }

    /// Records the changes below one directory: `bfd` is the same directory in the image (-1
    /// when the image has none), `opaque` when the upper one hides the image's.
    private func walk(ufd: Int32, bfd: Int32, rel: [UInt8], opaque: Bool, into out: inout [ContainerChange]) throws {
        var present = Set<[UInt8]>()
        var deleted: [[UInt8]] = []
        for name in try Self.names(ufd, rel) {
            guard let st = Self.lstat(ufd, name) else { continue }  // gone meanwhile
            let path = rel + [0x2f] + name
            if isWhiteout(st, path) {
                if bfd >= 0, Self.lstat(bfd, name) != nil { deleted.append(name) }
                continue
            }
            present.insert(name)
            let isDir = (st.st_mode & S_IFMT) == S_IFDIR
            let old = bfd >= 0 ? Self.lstat(bfd, name) : nil
            let mark = out.count
            if old == nil && Self.initLayerPaths.contains(Self.string(path)) {
                // the engine's own: what the container added inside is a change, the rest is not
                if isDir {
                    try Self.withChild(ufd, name, path) { try walk(ufd: $0, bfd: -1, rel: path, opaque: false, into: &out) }
                    if out.count > mark { out.insert(ContainerChange(.changed, Self.string(path)), at: mark) }
                }
                continue
            }
            guard let old else {
                out.append(ContainerChange(.added, Self.string(path)))
                if isDir { try Self.withChild(ufd, name, path) { try walk(ufd: $0, bfd: -1, rel: path, opaque: false, into: &out) } }
                continue
            }
            let changed = Self.differ(old, st) || xattr(base + Self.string(path), "security.capability") != xattr(upper + Self.string(path), "security.capability")
            if changed { out.append(ContainerChange(.changed, Self.string(path))) }
            guard isDir else { continue }
            let oldDir = (old.st_mode & S_IFMT) == S_IFDIR
            let cbfd = oldDir ? Self.openDir(bfd, name) : -1
            defer { if cbfd >= 0 { close(cbfd) } }
            let hides = oldDir && ["trusted.overlay.opaque", "user.overlay.opaque"].contains { xattr(upper + Self.string(path), $0) == [UInt8(ascii: "y")] }
            try Self.withChild(ufd, name, path) { try walk(ufd: $0, bfd: cbfd, rel: path, opaque: hides, into: &out) }
            if !changed && out.count > mark { out.insert(ContainerChange(.changed, Self.string(path)), at: mark) }
        }
        if opaque && bfd >= 0 {
            for name in try Self.names(bfd, rel) where !present.contains(name) && !deleted.contains(name) { deleted.append(name) }
        }
        for name in deleted.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            out.append(ContainerChange(.deleted, Self.string(rel + [0x2f] + name)))
        }
    }

    /// A whiteout: overlayfs' 0/0 character device, or an empty file marked as one (xwhiteouts).
    private func isWhiteout(_ st: stat, _ path: [UInt8]) -> Bool {
        if (st.st_mode & S_IFMT) == S_IFCHR { return st.st_rdev == 0 }
        guard (st.st_mode & S_IFMT) == S_IFREG, st.st_size == 0 else { return false }
        let full = upper + Self.string(path)
        return xattr(full, "trusted.overlay.whiteout") != nil || xattr(full, "user.overlay.whiteout") != nil
    }

    /// docker's test for a change (archive's statDifferent): mode, owner and device; for what is
    /// not a directory also size and mtime (a side without nanoseconds matches any).
    static func differ(_ a: stat, _ b: stat) -> Bool {
        if a.st_mode != b.st_mode || a.st_uid != b.st_uid || a.st_gid != b.st_gid || a.st_rdev != b.st_rdev { return true }
        if (a.st_mode & S_IFMT) == S_IFDIR { return false }
        let sameTime = a.st_mtim.tv_sec == b.st_mtim.tv_sec
            && (a.st_mtim.tv_nsec == b.st_mtim.tv_nsec || a.st_mtim.tv_nsec == 0 || b.st_mtim.tv_nsec == 0)
        return a.st_size != b.st_size || !sameTime
    }

    private func xattr(_ path: String, _ name: String) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: 256)
        let n = dockbuild_lgetxattr(path, name, &buf, buf.count)
        return n < 0 ? nil : Array(buf[0..<n])
    }

    static func string(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    static func lstat(_ dirfd: Int32, _ name: [UInt8]) -> stat? {
        var st = stat()
        let rc = (name + [0]).withUnsafeBufferPointer { p in
            p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { fstatat(dirfd, $0, &st, AT_SYMLINK_NOFOLLOW) }
        }
        return rc == 0 ? st : nil
    }

    static func openDir(_ dirfd: Int32, _ name: [UInt8]) -> Int32 {
        (name + [0]).withUnsafeBufferPointer { p in
            p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) {
                openat(dirfd, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
        }
    }

    static func withChild(_ dirfd: Int32, _ name: [UInt8], _ path: [UInt8], _ body: (Int32) throws -> Void) throws {
        let fd = openDir(dirfd, name)
        guard fd >= 0 else { throw ContainersError.system("cannot open \(string(path)) in the container's upper dir", errno: errno) }
        defer { close(fd) }
        try body(fd)
    }

    /// The names in a directory, in byte order.
    static func names(_ fd: Int32, _ rel: [UInt8]) throws -> [[UInt8]] {
        let dupfd = dup(fd)
        guard dupfd >= 0, let dir = fdopendir(dupfd) else {
            if dupfd >= 0 { close(dupfd) }
            throw ContainersError.system("cannot list \(rel.isEmpty ? "/" : string(rel))", errno: errno)
        }
        defer { closedir(dir) }
        rewinddir(dir)
        var out: [[UInt8]] = []
        while let e = readdir(dir) {
            let name: [UInt8] = withUnsafePointer(to: &e.pointee.d_name) { p in
                p.withMemoryRebound(to: UInt8.self, capacity: 256) { Array(UnsafeBufferPointer(start: $0, count: strlen(UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)))) }
            }
            if name == [0x2e] || name == [0x2e, 0x2e] { continue }
            out.append(name)
        }
        return out.sorted { $0.lexicographicallyPrecedes($1) }
    }
}

extension ContainerManager {
    /// `ps -s`: bytes the container wrote (regular files in its upper dir, links not followed),
    /// and those plus its image's size (docker's "virtual" size).
    public func size(_ c: Container) -> (rw: Int64, virtual: Int64) {
        var rw: Int64 = 0
        func walk(_ dir: String) {
            guard let d = opendir(dir) else { return }
            defer { closedir(d) }
            while let e = readdir(d) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
                if name == "." || name == ".." { continue }
                let p = dir + "/" + name
                var st = stat()
                guard lstat(p, &st) == 0 else { continue }
                switch st.st_mode & S_IFMT {
                case S_IFDIR: walk(p)
                case S_IFREG: rw += Int64(st.st_size)
                default: break
                }
            }
        }
        walk("\(c.directory)/upper")
        let image = (try? images().summary(for: c.record.imageDescriptor).size) ?? 0
        return (rw, rw + image)
    }
}
