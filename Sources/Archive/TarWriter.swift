import Glibc

/// Streams a PAX tar into a `LayerSink`: headers from `PaxEncoder`, file contents read straight into
/// the sink's buffers, hard links detected by (device, inode).
final class TarWriter {
    struct Settings {
        var sourceDateEpoch: Int64?
        var owner: (uid: UInt32, gid: UInt32)?
        var ownerNames: Bool
        var xattrs: Bool
        var prefix: [UInt8]
    }

    private let sink: LayerSink
    private let settings: Settings
    private var inodes: [InodeKey: [UInt8]] = [:]
    private var userNames: [UInt32: [UInt8]] = [:]
    private var groupNames: [UInt32: [UInt8]] = [:]
    private let zeros = [UInt8](repeating: 0, count: 1024)

    struct InodeKey: Hashable { let dev: UInt64; let ino: UInt64 }

    private let skip: InodeKey?

    init(sink: LayerSink, settings: Settings) {
        self.sink = sink
        self.settings = settings
        skip = sink.outputIdentity
    }

    /// Ends the archive with two zero blocks.
    func close() throws {
        try zeros.withUnsafeBytes { try sink.write($0) }
    }

    func write(header: TarHeader) throws {
        let bytes = PaxEncoder.encode(header)
        try bytes.withUnsafeBytes { try sink.write($0) }
    }

    /// Writes every entry below the directory `fd` (not the directory itself), depth first, sorted.
    func addTree(fd: Int32, path: [UInt8], rel: [UInt8]) throws {
        let names = try FS.sortedNames(fd, path: FS.string(path))
        for name in names {
            guard let st = FS.lstatAt(fd, name) else {
                if errno == ENOENT { continue } // vanished while we walked
                throw ArchiveError.sys(FS.string(path + [0x2f] + name), "stat")
            }
            if let skip, UInt64(st.st_ino) == skip.ino, UInt64(st.st_dev) == skip.dev { continue } // our own output
            let childRel = rel.isEmpty ? name : rel + [0x2f] + name
            try addPath(dirfd: fd, name: name, st: st, dirPath: path, rel: childRel, recurse: true)
        }
    }

    /// Writes one filesystem object (and, for a directory when `recurse`, everything below it).
    func addPath(dirfd: Int32, name: [UInt8], st: stat, dirPath: [UInt8], rel: [UInt8], recurse: Bool,
                 skipXattr: ((_ name: [UInt8]) -> Bool)? = nil) throws {
        let fullPath = dirPath + [0x2f] + name
        let entryName = settings.prefix + rel
        var h = TarHeader(name: entryName, kind: .regular)
        h.mode = UInt32(st.st_mode) & 0o7777
        h.uid = settings.owner?.uid ?? st.st_uid
        h.gid = settings.owner?.gid ?? st.st_gid
        if settings.ownerNames {
            h.uname = userName(h.uid)
            h.gname = groupName(h.gid)
        }
        var mtime = Int64(st.st_mtim.tv_sec)
        if let epoch = settings.sourceDateEpoch, mtime > epoch { mtime = epoch }
        h.mtime = mtime
        let mode = st.st_mode
        if settings.xattrs {
            var xs = FS.xattrs(path: fullPath)
            xs.removeAll { x in
                x.name.starts(with: Array("security.selinux".utf8)) || isOverlayXattr(x.name) || (skipXattr?(x.name) ?? false)
            }
            h.xattrs = xs
        }
        if FS.isType(mode, S_IFREG) {
            if st.st_nlink > 1 {
                let key = InodeKey(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
                if let first = inodes[key] {
                    h.kind = .hardlink
                    h.linkname = first
                    h.size = 0
                    try write(header: h)
                    return
                }
                inodes[key] = entryName
            }
            h.size = Int64(st.st_size)
            let fd = FS.withCString(name) { openat(dirfd, $0, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }
            if fd < 0 { throw ArchiveError.sys(FS.string(fullPath), "open") }
            defer { Glibc.close(fd) }
            try write(header: h)
            try copyContent(fd: fd, size: h.size, path: fullPath)
        } else if FS.isType(mode, S_IFDIR) {
            h.kind = .directory
            h.name = entryName + [0x2f]
            try write(header: h)
            if recurse {
                let fd = FS.withCString(name) { openat(dirfd, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                if fd < 0 { throw ArchiveError.sys(FS.string(fullPath), "open") }
                defer { Glibc.close(fd) }
                try addTree(fd: fd, path: fullPath, rel: rel)
            }
        } else if FS.isType(mode, S_IFLNK) {
            h.kind = .symlink
            guard let target = FS.readlinkAt(dirfd, name) else { throw ArchiveError.sys(FS.string(fullPath), "readlink") }
            h.linkname = target
            try write(header: h)
        } else if FS.isType(mode, S_IFCHR) || FS.isType(mode, S_IFBLK) {
            h.kind = FS.isType(mode, S_IFCHR) ? .charDevice : .blockDevice
            h.devmajor = FS.major(UInt64(st.st_rdev))
            h.devminor = FS.minor(UInt64(st.st_rdev))
            try write(header: h)
        } else if FS.isType(mode, S_IFIFO) {
            h.kind = .fifo
            try write(header: h)
        }
        // Sockets cannot be represented in tar; like GNU tar, skip them.
    }

    /// A whiteout entry `.wh.NAME` (or the opaque marker `.wh..wh..opq`) at `rel`.
    func addWhiteout(rel: [UInt8]) throws {
        var h = TarHeader(name: settings.prefix + rel, kind: .regular)
        h.mode = 0
        h.mtime = 0
        try write(header: h)
    }

    private func copyContent(fd: Int32, size: Int64, path: [UInt8]) throws {
        var remaining = size
        while remaining > 0 {
            if sink.current.free == 0 { try sink.flushChunk() }
            let c = sink.current
            let want = Int(min(Int64(c.free), remaining))
            let n = read(fd, c.base + c.count, want)
            if n < 0 {
                if errno == EINTR { continue }
                throw ArchiveError.sys(FS.string(path), "read")
            }
            if n == 0 {
                throw ArchiveError.io(path: FS.string(path), operation: "read (file shrank while it was archived)", errno: EIO)
            }
            c.count += n
            remaining -= Int64(n)
        }
        let r = Int(size % 512)
        if r != 0 { try zeros.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<(512 - r)])) } }
    }

    private func userName(_ uid: UInt32) -> [UInt8] {
        if let n = userNames[uid] { return n }
        var name: [UInt8] = []
        if let pw = getpwuid(uid), let p = pw.pointee.pw_name { name = Array(String(cString: p).utf8) }
        userNames[uid] = name
        return name
    }

    private func groupName(_ gid: UInt32) -> [UInt8] {
        if let n = groupNames[gid] { return n }
        var name: [UInt8] = []
        if let gr = getgrgid(gid), let p = gr.pointee.gr_name { name = Array(String(cString: p).utf8) }
        groupNames[gid] = name
        return name
    }
}

/// overlayfs keeps its bookkeeping in `trusted.overlay.*` / `user.overlay.*`; it never belongs in a layer.
func isOverlayXattr(_ name: [UInt8]) -> Bool {
    name.starts(with: Array("trusted.overlay.".utf8)) || name.starts(with: Array("user.overlay.".utf8))
}
