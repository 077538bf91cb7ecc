import CArchive
import Glibc
import OCI

/// Applies layers onto directories: every tar dialect libarchive reads, any compression, OCI whiteouts,
/// and no way for an entry to write outside the target.
public enum LayerApplier {
    /// What to do with whiteout entries.
    public enum Whiteouts: Sendable, Equatable {
        /// Delete what they hide (a flattened rootfs, like `umoci unpack`).
        case apply
        /// Turn them into overlayfs whiteouts (0/0 character devices, `trusted.overlay.opaque=y`),
        /// for a directory used as an overlay lower layer. Needs root.
        case overlay
        /// Not a layer but a plain archive (Dockerfile `ADD x.tar.gz`): `.wh.` names are files.
        case literal
    }

    public struct Options: Sendable {
        /// chown entries to their recorded owner; by default only when running as root.
        public var preserveOwnership: Bool
        /// Whiteout handling.
        public var whiteouts: Whiteouts
        /// Set extended attributes (failures other than "not supported" are errors).
        public var xattrs: Bool
        /// Called for entries that were skipped (device nodes without root, sockets), with a reason.
        public var warn: (@Sendable (String) -> Void)?
        /// The layer's diffID from the image config: the uncompressed stream is hashed while it is
        /// applied (on the decompression thread) and a mismatch is an error.
        public var expectedDiffID: Digest?

        public init(preserveOwnership: Bool = geteuid() == 0, whiteouts: Whiteouts = .apply, xattrs: Bool = true,
                    warn: (@Sendable (String) -> Void)? = nil, expectedDiffID: Digest? = nil) {
            self.preserveOwnership = preserveOwnership
            self.whiteouts = whiteouts
            self.xattrs = xattrs
            self.warn = warn
            self.expectedDiffID = expectedDiffID
        }

        /// Internal switch for tests: resolve paths with the O_NOFOLLOW walk instead of openat2.
        var forceWalk = false
    }

    /// Apply a layer (any compression, detected) onto `directory`, honouring OCI whiteouts, never writing outside it.
    public static func apply(layer path: String, to directory: String, options: LayerApplier.Options = .init()) throws {
        let reader = try DecompressingReader(path: path)
        let source = ArchiveSource(reader: reader, hashing: options.expectedDiffID?.algorithm)
        // Joins the read-ahead thread on every way out (it must never outlive `source`).
        defer { source.stop() }
        // A layer with no bytes at all (after decompression) is an empty layer, as Go's tar reader sees it.
        if try source.prime() == 0 {
            try check(diffID: source.finishDigest(), expected: options.expectedDiffID, path: path)
            return
        }
        guard let a = archive_read_new() else {
            throw ArchiveError.compression(libarchiveReaderFailure())
        }
        defer { archive_read_free(a) }
        archive_read_support_format_tar(a)
        archive_read_support_format_gnutar(a)
        let client = Unmanaged.passUnretained(source).toOpaque()
        let opened = archive_read_open(a, client, nil, { _, client, buffer in
            guard let client, let buffer else { return -1 }
            let src = Unmanaged<ArchiveSource>.fromOpaque(client).takeUnretainedValue()
            return src.next(buffer)
        }, nil)
        if opened != ARCHIVE_OK {
            if let e = source.error { throw e }
            throw ArchiveError.malformed(entry: nil, reason: "\(path): \(libarchiveError(a))")
        }
        let root = try InRoot(path: directory, useOpenat2: !options.forceWalk)
        let applier = Applier(archive: a, root: root, options: options, layerPath: path)
        try withExtendedLifetime(source) {
            do {
                try applier.run()
            } catch let e as ArchiveError {
                guard let inner = source.error else { throw e }
                if case let .malformed(nil, reason) = inner, case let .malformed(entry?, _) = e {
                    throw ArchiveError.malformed(entry: entry, reason: reason)
                }
                throw inner
            }
        }
        // Read to the end: the rest of the stream must be end-of-archive padding, the decompressor's
        // trailer checks (gzip CRC-32/ISIZE, zstd checksums) must pass, and the diffID must match.
        let digest = try source.finishDigest()
        if options.whiteouts != .literal && !source.endsWithEndOfArchive {
            throw ArchiveError.malformed(entry: nil, reason: "\(path): the tar stream ends without its end-of-archive marker "
                + "(zero blocks after the last entry); the layer is truncated")
        }
        try check(diffID: digest, expected: options.expectedDiffID, path: path)
    }

    private static func check(diffID: Digest?, expected: Digest?, path: String) throws {
        guard let expected, let diffID, diffID != expected else { return }
        throw ArchiveError.diffIDMismatch(layer: layerName(path), expected: expected, actual: diffID)
    }

    /// `sha256:<hex>` for a blob of a store or OCI layout (`.../blobs/sha256/<hex>`), else the path.
    static func layerName(_ path: String) -> String {
        let parts = path.split(separator: "/")
        if parts.count >= 3, parts[parts.count - 3] == "blobs", let d = try? Digest(parsing: "\(parts[parts.count - 2]):\(parts[parts.count - 1])") {
            return "\(d) (\(path))"
        }
        return path
    }

    static func libarchiveError(_ a: OpaquePointer) -> String {
        if let s = archive_error_string(a) { return String(cString: s) }
        return "unknown libarchive error"
    }
}

/// Feeds libarchive the uncompressed bytes of a layer (our inflaters are faster than its built-in ones).
/// Decompression runs on its own thread, a few 1 MiB blocks ahead of the thread that writes files.
final class ArchiveSource: @unchecked Sendable {
    let reader: DecompressingReader
    private let monitor = Monitor()
    private var ready: [Chunk] = []
    private var finished = false
    private var stopping = false
    private var thread: OSThread?
    /// Held until the next call: libarchive may point into the block it was last given.
    private var current: Chunk?
    private var storedError: ArchiveError?
    /// Why reading stopped early, if it did.
    var error: ArchiveError? { monitor.locked { storedError } }

    private var hasher: Digest.Hasher?
    /// Zero bytes at the end of what has been read so far (written by whichever thread reads).
    private var trailingZeros = 0

    /// Whether the stream, read to its end, ends with at least the two zero blocks of a tar
    /// end-of-archive marker (libarchive accepts a stream that just stops between entries).
    var endsWithEndOfArchive: Bool {
        monitor.locked { scanner.reachedEnd || (scanner.gaveUp && trailingZeros >= 1024) }
    }
    /// Follows the tar structure ahead of libarchive (PAX records checked; see `TarScanner`).
    private var scanner = TarScanner()

    /// `hashing`: the algorithm of the digest of the whole stream to compute, if any.
    init(reader: DecompressingReader, hashing: Digest.Algorithm? = nil) {
        self.reader = reader
        if let hashing { hasher = Digest.Hasher(hashing) }
    }

    /// Runs the chunk through the scanner before libarchive gets it, and counts the run of zero
    /// bytes that ends the stream so far. Returns the scanner's error, if it found one.
    private func track(_ c: Chunk) -> ArchiveError? {
        let b = c.bytes
        var i = b.count
        while i > 0 && b[i - 1] == 0 { i -= 1 }
        let zeros = b.count - i
        return monitor.locked {
            trailingZeros = i == 0 ? trailingZeros + zeros : zeros
            scanner.feed(b)
            return scanner.error
        }
    }

    /// Reads what libarchive left (end-of-archive padding), stops the thread, and returns the digest
    /// of the whole uncompressed stream (nil when not hashing).
    func finishDigest() throws -> Digest? {
        while true {
            let more: Bool = monitor.locked {
                while ready.isEmpty && !finished { monitor.wait() }
                if ready.isEmpty { return false }
                ready.removeAll()
                monitor.broadcast()
                return true
            }
            if !more { break }
        }
        stop()
        if let e = error { throw e }
        return hasher.take()?.finalize()
    }

    deinit { stop() }

    /// Reads the first block and starts the read-ahead thread; returns the first block's size (0: the stream is empty).
    func prime() throws -> Int {
        let first = Chunk()
        first.count = try reader.read(into: UnsafeMutableRawBufferPointer(start: first.base, count: first.capacity))
        hasher?.update(first.bytes)
        if let e = track(first) { throw e }
        if first.count == 0 { finished = true; return 0 }
        ready.append(first)
        let t = OSThread { [unowned self] in self.readAhead() }
        thread = t
        try t.start()
        return first.count
    }

    private func readAhead() {
        while true {
            let proceed = monitor.locked {
                while ready.count >= 4 && !stopping { monitor.wait() }
                return !stopping
            }
            if !proceed { return }
            let c = Chunk()
            var failure: ArchiveError?
            do {
                c.count = try reader.read(into: UnsafeMutableRawBufferPointer(start: c.base, count: c.capacity))
                hasher?.update(c.bytes)
                if c.count > 0 { failure = track(c) }
            } catch let e as ArchiveError {
                failure = e
            } catch {
                failure = .malformed(entry: nil, reason: "\(error)")
            }
            let done = monitor.locked {
                if let failure { storedError = failure; finished = true }
                else if c.count == 0 { finished = true }
                else { ready.append(c) }
                monitor.broadcast()
                return finished
            }
            if done { return }
        }
    }

    func stop() {
        monitor.locked {
            stopping = true
            monitor.broadcast()
        }
        thread?.join()
        thread = nil
    }

    func next(_ out: UnsafeMutablePointer<UnsafeRawPointer?>) -> Int {
        let chunk: Chunk? = monitor.locked {
            while ready.isEmpty && !finished { monitor.wait() }
            if ready.isEmpty { return nil }
            let c = ready.removeFirst()
            monitor.broadcast()
            return c
        }
        current = chunk
        guard let chunk else {
            return monitor.locked { storedError == nil ? 0 : -1 }
        }
        out.pointee = UnsafeRawPointer(chunk.base)
        return chunk.count
    }
}

/// The state of one apply: directories whose metadata is set last, and what this layer created
/// (whiteouts only hide what lower layers made).
private final class Applier {
    let a: OpaquePointer
    let root: InRoot
    let options: LayerApplier.Options
    let layerPath: String
    var created = Set<[UInt8]>()
    var directories: [(components: [[UInt8]], mode: UInt32, mtime: timespec)] = []
    let isRoot = geteuid() == 0
    let euid = geteuid()
    let egid = getegid()
    let umask = currentUmask()
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 64)

    init(archive: OpaquePointer, root: InRoot, options: LayerApplier.Options, layerPath: String) {
        a = archive
        self.root = root
        self.options = options
        self.layerPath = layerPath
    }

    deinit { buffer.deallocate() }

    func run() throws {
        var entry: OpaquePointer?
        var lastName: String?
        while true {
            let rc = archive_read_next_header(a, &entry)
            if rc == ARCHIVE_EOF { break }
            if rc == ARCHIVE_FATAL || entry == nil {
                throw ArchiveError.malformed(entry: lastName, reason: (lastName == nil ? "at the first entry: " : "after this entry: ")
                                                + LayerApplier.libarchiveError(a))
            }
            guard let e = entry else { break }
            let raw = archive_entry_pathname(e).map { Array(UnsafeRawBufferPointer(start: $0, count: strlen($0))) } ?? []
            let name = FS.string(raw)
            lastName = name
            if rc == ARCHIVE_FAILED {
                throw ArchiveError.malformed(entry: name, reason: LayerApplier.libarchiveError(a))
            }
            do {
                try validate(e)
                try apply(e, raw: raw)
            } catch let ArchiveError.unsafeEntry(entry, reason) where entry != name {
                throw ArchiveError.unsafeEntry(entry: name, reason: "\(reason) (at \"\(entry)\")")
            } catch let ArchiveError.malformed(entry, reason) where entry == nil {
                throw ArchiveError.malformed(entry: name, reason: reason)
            }
        }
        try finishDirectories()
    }

    /// Numbers from the archive that the system calls below take as narrower types (PAX `uid`,
    /// `gid`, `size`, device numbers may hold anything): out of range is an error, never a trap.
    func validate(_ e: OpaquePointer) throws {
        let maxID = Int64(UInt32.max) - 1 // (uid_t)-1 means "leave unchanged" to chown
        for (what, v) in [("uid", archive_entry_uid(e)), ("gid", archive_entry_gid(e))] where v < 0 || v > maxID {
            throw ArchiveError.malformed(entry: nil, reason: "\(what) \(v) is out of range (0-\(maxID))")
        }
        if archive_entry_size_is_set(e) != 0 && archive_entry_size(e) < 0 {
            throw ArchiveError.malformed(entry: nil, reason: "size \(archive_entry_size(e)) is negative")
        }
        let type = archive_entry_filetype(e)
        if type == UInt32(Glibc.S_IFCHR) || type == UInt32(Glibc.S_IFBLK) {
            for (what, v) in [("major", archive_entry_rdevmajor(e)), ("minor", archive_entry_rdevminor(e))] where UInt32(exactly: v) == nil {
                throw ArchiveError.malformed(entry: nil, reason: "device \(what) number \(v) is out of range (0-\(UInt32.max))")
            }
        }
    }

    /// Splits an entry name into safe components or refuses it.
    func components(_ raw: [UInt8], what: String) throws -> [[UInt8]] {
        let name = FS.string(raw)
        if raw.count > 4096 { throw ArchiveError.unsafeEntry(entry: String(name.prefix(200)) + "...", reason: "\(what) is \(raw.count) bytes long (limit 4096)") }
        var p = raw[...]
        while p.starts(with: [0x2e, 0x2f]) { p = p.dropFirst(2) }
        if p.first == 0x2f { throw ArchiveError.unsafeEntry(entry: name, reason: "\(what) is absolute") }
        var out: [[UInt8]] = []
        for part in p.split(separator: 0x2f, omittingEmptySubsequences: true) {
            if part.elementsEqual([0x2e]) { continue }
            if part.elementsEqual([0x2e, 0x2e]) { throw ArchiveError.unsafeEntry(entry: name, reason: "\(what) contains \"..\"") }
            if part.count > 255 { throw ArchiveError.unsafeEntry(entry: name, reason: "a component of the \(what) is longer than 255 bytes") }
            out.append(Array(part))
        }
        return out
    }

    func apply(_ e: OpaquePointer, raw: [UInt8]) throws {
        let name = FS.string(raw)
        let comps = try components(raw, what: "path")
        guard let base = comps.last else { return } // the root itself: keep the target's own metadata
        let parentComps = Array(comps.dropLast())
        let key = Array(comps.joined(separator: [0x2f]))

        // Whiteouts.
        if options.whiteouts != .literal, base.starts(with: Array(".wh.".utf8)) {
            if options.whiteouts == .overlay { return try overlayWhiteout(base: base, parent: parentComps, name: name) }
            if base == Array(".wh..wh..opq".utf8) {
                let dir = try root.directory(parentComps, create: true)
                let prefix = parentComps.isEmpty ? [] : Array(parentComps.joined(separator: [0x2f])) + [0x2f]
                for child in try FS.sortedNames(dir, path: root.display(parentComps)) where !created.contains(prefix + child) {
                    try root.removeTree(root.directory(parentComps, create: false), child)
                }
                return
            }
            let hidden = Array(base.dropFirst(4))
            if hidden.isEmpty || hidden == [0x2e] || hidden == [0x2e, 0x2e] {
                throw ArchiveError.unsafeEntry(entry: name, reason: "whiteout names no file")
            }
            let hiddenKey = parentComps.isEmpty ? hidden : Array(parentComps.joined(separator: [0x2f])) + [0x2f] + hidden
            if created.contains(hiddenKey) { return } // whiteouts only hide lower layers
            let dir: Int32
            do { dir = try root.directory(parentComps, create: false) } catch ArchiveError.io(_, _, ENOENT) { return }
            try root.removeTree(dir, hidden)
            return
        }

        let type = archive_entry_filetype(e)
        let mode = UInt32(archive_entry_perm(e)) & 0o7777
        let dir = try root.directory(parentComps, create: true)
        created.insert(key)
        let path = root.display(comps)

        if let link = archive_entry_hardlink(e) {
            let target = Array(UnsafeRawBufferPointer(start: link, count: strlen(link)))
            return try hardlink(target: target, dir: dir, parentComps: parentComps, base: base, name: name, path: path)
        }
        switch type {
        case UInt32(Glibc.S_IFDIR):
            if FS.withCString(base, { mkdirat(dir, $0, 0o755) }) != 0 {
                guard errno == EEXIST else { throw ArchiveError.sys(path, "mkdir") }
                // Something is there: a directory is merged into, anything else replaced.
                if let st = FS.lstatAt(dir, base), !FS.isType(st.st_mode, Glibc.S_IFDIR) {
                    try root.removeTree(dir, base)
                    try mkdir(root.directory(parentComps, create: true), base, path)
                }
            }
            let d = try root.directory(parentComps, create: true)
            let fd = FS.withCString(base) { openat(d, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            if fd < 0 { throw ArchiveError.sys(path, "open directory") }
            defer { close(fd) }
            try chown(fd: fd, e, path)
            try setXattrs(fd: fd, e, path)
            directories.append((comps, mode, mtime(e)))
        case UInt32(Glibc.S_IFREG):
            // Created with its final permission bits when the umask leaves them alone (the fd is writable
            // whatever the mode); setuid/setgid bits always go through fchmod, after chown.
            let createMode = mode & 0o777
            let direct = (mode & 0o7000) == 0 && (createMode & umask) == 0
            let initial = direct ? createMode : 0o600
            var fd = FS.withCString(base) { openat(dir, $0, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, initial) }
            if fd < 0 && errno == EEXIST {
                try root.removeTree(dir, base)
                let d = try root.directory(parentComps, create: true)
                fd = FS.withCString(base) { openat(d, $0, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, initial) }
            }
            if fd < 0 { throw ArchiveError.sys(path, "create") }
            defer { close(fd) }
            try writeData(fd: fd, e, path: path, name: name)
            try chown(fd: fd, e, path)
            if !direct, fchmod(fd, mode_t(mode)) != 0 { throw ArchiveError.sys(path, "chmod") }
            try setXattrs(fd: fd, e, path)
            var times = [mtime(e), mtime(e)]
            if futimens(fd, &times) != 0 { throw ArchiveError.sys(path, "set times") }
        case UInt32(Glibc.S_IFLNK):
            let target = archive_entry_symlink(e).map { Array(UnsafeRawBufferPointer(start: $0, count: strlen($0))) } ?? []
            try replacing(dir, base, parentComps, path) { d in
                FS.withCString(target) { t in FS.withCString(base) { symlinkat(t, d, $0) } }
            }
            try finishAt(parentComps, base, e, path, chmod: nil)
        case UInt32(Glibc.S_IFCHR), UInt32(Glibc.S_IFBLK):
            guard isRoot else {
                options.warn?("skipped device node \(name): creating device nodes needs root")
                created.remove(key)
                return
            }
            let dev = FS.makedev(UInt32(truncatingIfNeeded: archive_entry_rdevmajor(e)), UInt32(truncatingIfNeeded: archive_entry_rdevminor(e))) // checked in validate
            let kind = type == UInt32(Glibc.S_IFCHR) ? Glibc.S_IFCHR : Glibc.S_IFBLK
            try replacing(dir, base, parentComps, path) { d in
                FS.withCString(base) { mknodat(d, $0, kind | mode_t(mode), dev_t(dev)) }
            }
            try finishAt(parentComps, base, e, path, chmod: mode)
        case UInt32(Glibc.S_IFIFO):
            try replacing(dir, base, parentComps, path) { d in
                FS.withCString(base) { mknodat(d, $0, Glibc.S_IFIFO | mode_t(mode), 0) }
            }
            try finishAt(parentComps, base, e, path, chmod: mode)
        default:
            options.warn?("skipped \(name): unsupported entry type \(String(type, radix: 8))")
            created.remove(key)
        }
    }

    private func mkdir(_ dir: Int32, _ base: [UInt8], _ path: String) throws {
        if FS.withCString(base, { mkdirat(dir, $0, 0o755) }) != 0 && errno != EEXIST {
            throw ArchiveError.sys(path, "mkdir")
        }
    }

    /// Runs `create` in the parent; if the name exists (not as a directory we merge into), removes it and retries.
    private func replacing(_ dir: Int32, _ base: [UInt8], _ parentComps: [[UInt8]], _ path: String,
                           _ create: (Int32) -> Int32) throws {
        if create(dir) == 0 { return }
        guard errno == EEXIST else { throw ArchiveError.sys(path, "create") }
        try root.removeTree(dir, base)
        let d = try root.directory(parentComps, create: true)
        if create(d) != 0 { throw ArchiveError.sys(path, "create") }
    }

    private func hardlink(target: [UInt8], dir: Int32, parentComps: [[UInt8]], base: [UInt8], name: String, path: String) throws {
        let tcomps = try components(target, what: "hard link target \"\(FS.string(target))\"")
        guard let tbase = tcomps.last else { throw ArchiveError.unsafeEntry(entry: name, reason: "hard link to the root directory") }
        if tcomps == parentComps + [base] { return }
        let tdirTmp = try InRoot.dupDirectory(root, Array(tcomps.dropLast()), entry: name)
        defer { close(tdirTmp) }
        guard let st = FS.lstatAt(tdirTmp, tbase) else {
            throw ArchiveError.malformed(entry: name, reason: "hard link target \"\(FS.string(target))\" does not exist in the layer or below it")
        }
        if FS.isType(st.st_mode, Glibc.S_IFDIR) {
            throw ArchiveError.unsafeEntry(entry: name, reason: "hard link to a directory")
        }
        let d = try root.directory(parentComps, create: true)
        try replacing(d, base, parentComps, path) { d in
            FS.withCString(tbase) { t in FS.withCString(base) { linkat(tdirTmp, t, d, $0, 0) } }
        }
    }

    /// Ownership, mode, xattrs and times of a non-regular entry, set through its parent without following it.
    private func finishAt(_ parentComps: [[UInt8]], _ base: [UInt8], _ e: OpaquePointer, _ path: String, chmod mode: UInt32?) throws {
        let d = try root.directory(parentComps, create: true)
        if options.preserveOwnership {
            let rc = FS.withCString(base) { fchownat(d, $0, uid_t(archive_entry_uid(e)), gid_t(archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW) }
            if rc != 0 && !(errno == EPERM && !isRoot) && !Self.unmappedID(errno) { throw ArchiveError.sys(path, "chown") }
        }
        if let mode, FS.withCString(base, { fchmodat(d, $0, mode_t(mode), 0) }) != 0 {
            throw ArchiveError.sys(path, "chmod")
        }
        if options.xattrs && archive_entry_xattr_reset(e) > 0 {
            let procPath = "/proc/self/fd/\(d)/" + FS.string(base)
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK {
                guard let name else { continue }
                if dockbuild_lsetxattr(procPath, name, value, size) != 0 { try xattrFailed(path, name) }
            }
        }
        var times = [mtime(e), mtime(e)]
        if FS.withCString(base, { utimensat(d, $0, &times, AT_SYMLINK_NOFOLLOW) }) != 0 {
            throw ArchiveError.sys(path, "set times")
        }
    }

    private func xattrFailed(_ path: String, _ name: UnsafePointer<CChar>) throws {
        let e = errno
        if e == ENOTSUP || e == EOPNOTSUPP { return }
        if e == EPERM && !isRoot { return } // trusted./security. need root; a rootless apply keeps going
        throw ArchiveError.io(path: path, operation: "set xattr \(String(cString: name)) on", errno: e)
    }

    private func chown(fd: Int32, _ e: OpaquePointer, _ path: String) throws {
        guard options.preserveOwnership else { return }
        // A new file already belongs to us; most image files are root's, so this saves a syscall each.
        if archive_entry_uid(e) == Int64(euid) && archive_entry_gid(e) == Int64(egid) { return }
        if fchown(fd, uid_t(archive_entry_uid(e)), gid_t(archive_entry_gid(e))) != 0 && !(errno == EPERM && !isRoot)
            && !Self.unmappedID(errno) {
            throw ArchiveError.sys(path, "chown")
        }
    }

    /// chown's EINVAL: the id has no mapping in this user namespace (rootless with only the
    /// user's own id mapped). The file stays the user's (root inside), as rootless podman keeps
    /// it with ignore_chown_errors; the engine warned when it set the namespace up.
    private static func unmappedID(_ err: Int32) -> Bool { err == EINVAL }

    private func setXattrs(fd: Int32, _ e: OpaquePointer, _ path: String) throws {
        guard options.xattrs, archive_entry_xattr_reset(e) > 0 else { return }
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK {
            guard let name else { continue }
            if dockbuild_fsetxattr(fd, name, value, size) != 0 { try xattrFailed(path, name) }
        }
    }

    private func mtime(_ e: OpaquePointer) -> timespec {
        timespec(tv_sec: Int(archive_entry_mtime(e)), tv_nsec: Int(archive_entry_mtime_nsec(e)))
    }

    private func writeData(fd: Int32, _ e: OpaquePointer, path: String, name: String) throws {
        var block: UnsafeRawPointer?
        var size = 0
        var offset: la_int64_t = 0
        var end: Int64 = 0
        while true {
            let rc = archive_read_data_block(a, &block, &size, &offset)
            if rc == ARCHIVE_EOF { break }
            if rc != ARCHIVE_OK && rc != ARCHIVE_WARN {
                throw ArchiveError.malformed(entry: name, reason: LayerApplier.libarchiveError(a))
            }
            guard let block, size > 0 else { continue }
            let (blockEnd, overflow) = Int64(offset).addingReportingOverflow(Int64(size))
            if overflow || offset < 0 { throw ArchiveError.malformed(entry: name, reason: "data block at offset \(offset) is out of range") }
            var done = 0
            while done < size {
                let n = pwrite(fd, block + done, size - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ArchiveError.sys(path, "write")
                }
                done += n
            }
            end = max(end, blockEnd)
        }
        let declared = archive_entry_size_is_set(e) != 0 ? Int64(archive_entry_size(e)) : end
        if declared > end, ftruncate(fd, off_t(declared)) != 0 { throw ArchiveError.sys(path, "truncate") }
    }

    private func overlayWhiteout(base: [UInt8], parent: [[UInt8]], name: String) throws {
        let dir = try root.directory(parent, create: true)
        let path = root.display(parent + [base])
        if base == Array(".wh..wh..opq".utf8) {
            let value: [UInt8] = [UInt8(ascii: "y")]
            var rc = value.withUnsafeBytes { dockbuild_fsetxattr(dir, "trusted.overlay.opaque", $0.baseAddress, 1) }
            // an ordinary user (in its user namespace) may not write trusted.*: the unprivileged
            // name, which its overlays read (kernel overlayfs with userxattr, fuse-overlayfs)
            if rc != 0 && errno == EPERM {
                rc = value.withUnsafeBytes { dockbuild_fsetxattr(dir, "user.overlay.opaque", $0.baseAddress, 1) }
            }
            if rc != 0 { throw ArchiveError.sys(root.display(parent), "set trusted.overlay.opaque on") }
            return
        }
        let hidden = Array(base.dropFirst(4))
        if hidden.isEmpty || hidden == [0x2e] || hidden == [0x2e, 0x2e] {
            throw ArchiveError.unsafeEntry(entry: name, reason: "whiteout names no file")
        }
        try replacing(dir, hidden, parent, path) { d in
            FS.withCString(hidden) { mknodat(d, $0, Glibc.S_IFCHR | 0o000, 0) }
        }
    }

    private func finishDirectories() throws {
        for d in directories.reversed() {
            let path = root.display(d.components)
            let parent = try root.directory(Array(d.components.dropLast()), create: false)
            guard let base = d.components.last else { continue }
            if FS.withCString(base, { fchmodat(parent, $0, mode_t(d.mode), 0) }) != 0 { throw ArchiveError.sys(path, "chmod") }
            var times = [d.mtime, d.mtime]
            if FS.withCString(base, { utimensat(parent, $0, &times, AT_SYMLINK_NOFOLLOW) }) != 0 {
                throw ArchiveError.sys(path, "set times")
            }
        }
    }
}

extension InRoot {
    /// A directory fd that the caller owns (the cached one may be replaced by the next lookup).
    static func dupDirectory(_ root: InRoot, _ components: [[UInt8]], entry: String) throws -> Int32 {
        do {
            let fd = try root.directory(components, create: false)
            let d = dup(fd)
            if d < 0 { throw ArchiveError.sys(root.display(components), "dup") }
            return d
        } catch ArchiveError.io(_, _, ENOENT) {
            throw ArchiveError.malformed(entry: entry, reason: "hard link target directory \"\(FS.string(Array(components.joined(separator: [0x2f]))))\" does not exist")
        }
    }
}

/// The process umask, read without changing it (a library must not race other threads' file creation).
func currentUmask() -> UInt32 {
    if let status = try? RootFile.readAbsolute("/proc/self/status") {
        for line in String(decoding: status, as: UTF8.self).split(separator: "\n") where line.hasPrefix("Umask:") {
            if let v = UInt32(line.dropFirst(6).trimmingCharacters(in: " \t"), radix: 8) { return v }
        }
    }
    return 0o022
}

private extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self[...]
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
