import CArchive
import Glibc

/// Builds the layer that turns one filesystem state into another.
public enum LayerDiff {
    /// Overlay upper dir -> layer: whiteout devices (0/0) and `*.overlay.whiteout` files become `.wh.NAME`,
    /// directories marked opaque (`trusted.overlay.opaque` or `user.overlay.opaque` = y) get `.wh..wh..opq`.
    public static func fromOverlayUpper(_ upper: String, to output: String, compression: Compression) throws -> LayerInfo {
        try fromOverlayUpper(upper, to: output, compression: compression, options: .init())
    }

    /// The same, with writer options (SOURCE_DATE_EPOCH, owner, threads, ...).
    public static func fromOverlayUpper(_ upper: String, to output: String, compression: Compression,
                                        options: LayerWriter.Options) throws -> LayerInfo {
        try produce(output: output, compression: compression, options: options) { tar in
            let fd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if fd < 0 { throw ArchiveError.sys(upper, "open directory") }
            defer { close(fd) }
            try walkUpper(tar, fd: fd, path: Array(upper.utf8), rel: [])
        }
    }

    /// Two plain directories (a snapshot and its parent) -> layer: what is new or changed in `upper`,
    /// and a whiteout for what `upper` no longer has. Files count as changed when type, mode, owner,
    /// size, mtime (with nanoseconds), link target, device or xattrs differ.
    public static func between(lower: String, upper: String, to output: String, compression: Compression) throws -> LayerInfo {
        try between(lower: lower, upper: upper, to: output, compression: compression, options: .init())
    }

    /// The same, with writer options (SOURCE_DATE_EPOCH, owner, threads, ...).
    public static func between(lower: String, upper: String, to output: String, compression: Compression,
                               options: LayerWriter.Options) throws -> LayerInfo {
        try produce(output: output, compression: compression, options: options) { tar in
            let lfd = open(lower, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if lfd < 0 { throw ArchiveError.sys(lower, "open directory") }
            defer { close(lfd) }
            let ufd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if ufd < 0 { throw ArchiveError.sys(upper, "open directory") }
            defer { close(ufd) }
            try walkBoth(tar, lfd: lfd, lpath: Array(lower.utf8), ufd: ufd, upath: Array(upper.utf8), rel: [])
        }
    }

    private static func produce(output: String, compression: Compression, options: LayerWriter.Options,
                                _ body: (TarWriter) throws -> Void) throws -> LayerInfo {
        let sink = try LayerSink(path: output, compression: compression, threads: options.resolvedThreads, gzipLibrary: options.gzipLibrary)
        let tar = TarWriter(sink: sink, settings: options.tarSettings)
        do {
            try body(tar)
            try tar.close()
            return try sink.finish(sync: options.sync)
        } catch {
            unlink(output)
            throw error
        }
    }

    private static func join(_ rel: [UInt8], _ name: [UInt8]) -> [UInt8] { rel.isEmpty ? name : rel + [0x2f] + name }

    private static func xattr(_ path: [UInt8], _ name: String) -> [UInt8]? {
        FS.withCString(path) { p in
            var buf = [UInt8](repeating: 0, count: 16)
            let n = dockbuild_lgetxattr(p, name, &buf, buf.count)
            return n < 0 ? nil : Array(buf.prefix(n))
        }
    }

    private static func isOpaque(_ path: [UInt8]) -> Bool {
        xattr(path, "trusted.overlay.opaque") == [UInt8(ascii: "y")] || xattr(path, "user.overlay.opaque") == [UInt8(ascii: "y")]
    }

    private static func walkUpper(_ tar: TarWriter, fd: Int32, path: [UInt8], rel: [UInt8]) throws {
        for name in try FS.sortedNames(fd, path: FS.string(path)) {
            guard let st = FS.lstatAt(fd, name) else { throw ArchiveError.sys(FS.string(path + [0x2f] + name), "stat") }
            let childRel = join(rel, name)
            let full = path + [0x2f] + name
            if FS.isType(st.st_mode, S_IFCHR) && st.st_rdev == 0 {
                try tar.addWhiteout(rel: join(rel, Array(".wh.".utf8) + name))
                continue
            }
            if FS.isType(st.st_mode, S_IFREG) && st.st_size == 0
                && (xattr(full, "trusted.overlay.whiteout") != nil || xattr(full, "user.overlay.whiteout") != nil) {
                try tar.addWhiteout(rel: join(rel, Array(".wh.".utf8) + name))
                continue
            }
            if FS.isType(st.st_mode, S_IFDIR) || FS.isType(st.st_mode, S_IFREG) { try checkOverlayFeatures(full) }
            try tar.addPath(dirfd: fd, name: name, st: st, dirPath: path, rel: childRel, recurse: false)
            if FS.isType(st.st_mode, S_IFDIR) {
                if isOpaque(full) { try tar.addWhiteout(rel: join(childRel, Array(".wh..wh..opq".utf8))) }
                let cfd = FS.withCString(name) { openat(fd, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                if cfd < 0 { throw ArchiveError.sys(FS.string(full), "open directory") }
                defer { close(cfd) }
                try walkUpper(tar, fd: cfd, path: full, rel: childRel)
            }
        }
    }

    private static func same(_ a: stat, _ b: stat, _ apath: [UInt8], _ bpath: [UInt8], _ adir: Int32, _ bdir: Int32, _ name: [UInt8]) -> Bool {
        if (a.st_mode & Glibc.S_IFMT) != (b.st_mode & Glibc.S_IFMT) || a.st_mode != b.st_mode || a.st_uid != b.st_uid || a.st_gid != b.st_gid {
            return false
        }
        if a.st_mtim.tv_sec != b.st_mtim.tv_sec || a.st_mtim.tv_nsec != b.st_mtim.tv_nsec { return false }
        if !FS.isType(a.st_mode, S_IFDIR) && a.st_size != b.st_size { return false }
        if (FS.isType(a.st_mode, S_IFCHR) || FS.isType(a.st_mode, S_IFBLK)) && a.st_rdev != b.st_rdev { return false }
        if FS.isType(a.st_mode, S_IFLNK) && FS.readlinkAt(adir, name) != FS.readlinkAt(bdir, name) { return false }
        let ax = FS.xattrs(path: apath), bx = FS.xattrs(path: bpath)
        if ax.count != bx.count { return false }
        for (x, y) in zip(ax, bx) where x.name != y.name || x.value != y.value { return false }
        // Whole-second mtimes (copied out of a tar, or a filesystem without nanoseconds) cannot tell
        // a rewrite within the same second from no change: compare the bytes then.
        if FS.isType(a.st_mode, S_IFREG) && a.st_mtim.tv_nsec == 0 && a.st_size > 0 {
            return sameContent(adir, bdir, name)
        }
        return true
    }

    private static func sameContent(_ adir: Int32, _ bdir: Int32, _ name: [UInt8]) -> Bool {
        let fa = FS.withCString(name) { openat(adir, $0, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }
        if fa < 0 { return false }
        defer { close(fa) }
        let fb = FS.withCString(name) { openat(bdir, $0, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }
        if fb < 0 { return false }
        defer { close(fb) }
        var ba = [UInt8](repeating: 0, count: 65536), bb = [UInt8](repeating: 0, count: 65536)
        while true {
            let na = ba.withUnsafeMutableBytes { read(fa, $0.baseAddress, $0.count) }
            var nb = 0
            while nb < max(na, 0) {
                let n = bb.withUnsafeMutableBytes { read(fb, $0.baseAddress! + nb, na - nb) }
                if n <= 0 { break }
                nb += n
            }
            if na < 0 || na != nb { return false }
            if na == 0 { return true }
            if memcmp(ba, bb, na) != 0 { return false }
        }
    }

    /// overlayfs features whose upper dirs do not hold what a layer needs.
    private static func checkOverlayFeatures(_ path: [UInt8]) throws {
        for feature in ["redirect", "metacopy"] {
            if xattr(path, "trusted.overlay." + feature) != nil || xattr(path, "user.overlay." + feature) != nil {
                throw ArchiveError.invalidArgument("\(FS.string(path)) carries the overlayfs \(feature) attribute: "
                    + "its content lives in a lower layer; mount the overlay with redirect_dir=off and metacopy=off to diff it")
            }
        }
    }

    private static func walkBoth(_ tar: TarWriter, lfd: Int32, lpath: [UInt8], ufd: Int32, upath: [UInt8], rel: [UInt8]) throws {
        let unames = try FS.sortedNames(ufd, path: FS.string(upath))
        let lnames = try FS.sortedNames(lfd, path: FS.string(lpath))
        let inUpper = Set(unames)
        var all = Array(Set(unames).union(lnames))
        all.sort { $0.lexicographicallyPrecedes($1) }
        for name in all {
            let childRel = join(rel, name)
            guard inUpper.contains(name) else {
                try tar.addWhiteout(rel: join(rel, Array(".wh.".utf8) + name))
                continue
            }
            guard let ust = FS.lstatAt(ufd, name) else { throw ArchiveError.sys(FS.string(upath + [0x2f] + name), "stat") }
            guard let lst = FS.lstatAt(lfd, name) else {
                try tar.addPath(dirfd: ufd, name: name, st: ust, dirPath: upath, rel: childRel, recurse: true)
                continue
            }
            let ufull = upath + [0x2f] + name, lfull = lpath + [0x2f] + name
            let bothDirs = FS.isType(ust.st_mode, S_IFDIR) && FS.isType(lst.st_mode, S_IFDIR)
            if bothDirs {
                if !same(lst, ust, lfull, ufull, lfd, ufd, name) {
                    try tar.addPath(dirfd: ufd, name: name, st: ust, dirPath: upath, rel: childRel, recurse: false)
                }
                let cu = FS.withCString(name) { openat(ufd, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                if cu < 0 { throw ArchiveError.sys(FS.string(ufull), "open directory") }
                defer { close(cu) }
                let cl = FS.withCString(name) { openat(lfd, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                if cl < 0 { throw ArchiveError.sys(FS.string(lfull), "open directory") }
                defer { close(cl) }
                try walkBoth(tar, lfd: cl, lpath: lfull, ufd: cu, upath: ufull, rel: childRel)
            } else if !same(lst, ust, lfull, ufull, lfd, ufd, name) {
                // A changed file, or a type change (the applier replaces what is there, a directory included).
                try tar.addPath(dirfd: ufd, name: name, st: ust, dirPath: upath, rel: childRel, recurse: true)
            }
        }
    }
}
