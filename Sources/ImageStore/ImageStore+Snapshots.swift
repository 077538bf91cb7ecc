// The snapshotter: every layer unpacked once, read-only, and shared by builds, containers and
// views, as overlayfs lower directories.
//
//   root/snapshots/layers/<chainID>/fs     the layer's own files, whiteouts as overlayfs reads
//                                          them (0/0 character devices, trusted.overlay.opaque)
//   root/snapshots/layers/<chainID>/blob   the layer blob it was unpacked from
//   root/snapshots/empty                   an empty lower (overlayfs wants two lowers when
//                                          there is no upper)
//
// A layer snapshot is named by the chain ID of the stack it tops (image-spec
// config.md#layer-chainid), so one built or pulled image and every image or build step on top
// of it share their lower layers. Snapshots are never written after they are made: containers
// and RUN steps write to an overlay upper of their own. A snapshot lives as long as its layer
// blob or an image whose chain it is part of (`gc`).
import Archive
import Foundation
import OCI
import SystemSupport
#if canImport(Glibc)
import Glibc
#endif

/// One layer of a stack: the blob it is stored as and the digest of its uncompressed tar.
public struct SnapshotLayer: Sendable, Hashable {
    public var blob: Digest
    public var diffID: Digest
    public init(blob: Digest, diffID: Digest) {
        self.blob = blob
        self.diffID = diffID
    }
}

extension ImageStore {
    /// The store's snapshotter (cheap to make; all of its state is on disk).
    public var snapshotter: Snapshotter { Snapshotter(store: self) }

    /// Checks every layer blob of `image` against its config's diff_ids by reading it end to end
    /// (decompressor trailers included), without unpacking anything. `pull` calls it before it
    /// names an image; snapshots check the same while they unpack the layers.
    public func verifyLayers(of manifest: ImageManifest, config: ImageConfig, what: String) throws {
        let diffIDs = config.rootfs.diffIDs
        guard diffIDs.count == manifest.layers.count else {
            throw ImageStoreError.invalidContent("\(what) has \(manifest.layers.count) layers but its config lists \(diffIDs.count) diff_ids; the image is corrupt")
        }
        for (layer, diffID) in zip(manifest.layers, diffIDs) { try verifyLayer(layer, diffID: diffID, what: what) }
    }

    /// Checks one stored layer blob against the diff_id its config gives (see `verifyLayers`).
    public func verifyLayer(_ layer: Descriptor, diffID: Digest, what: String) throws {
        guard has(layer.digest) else { throw ImageStoreError.blobNotFound(layer.digest) }
        try verifyDiffID(file: path(for: layer.digest), digest: layer.digest, expected: diffID, layer: "\(layer.digest) of \(what)")
    }
}

/// Unpacked layers keyed by chain ID, and the one place that mounts overlays of them.
public struct Snapshotter: Sendable {
    public let store: ImageStore

    public init(store: ImageStore) { self.store = store }

    /// Where the layer snapshots live.
    public var layersDir: String { store.root + "/snapshots/layers" }

    /// The files of the snapshot of the layer that tops the chain `chainID` (present or not).
    public func path(chainID: Digest) -> String { "\(layersDir)/\(chainID.encoded)/fs" }

    /// True when the layer that tops `chainID` is unpacked.
    public func has(chainID: Digest) -> Bool { FileOps.isDirectory(path(chainID: chainID)) }

    /// The image's layers as a stack (its config's diff_ids beside its manifest's blobs).
    public static func layers(of image: Image) throws -> [SnapshotLayer] {
        let diffIDs = image.config.rootfs.diffIDs
        guard diffIDs.count == image.manifest.layers.count else {
            throw ImageStoreError.invalidContent("image \(image.id) has \(image.manifest.layers.count) layers but its config lists "
                + "\(diffIDs.count) diff_ids; the image is corrupt — pull or load it again")
        }
        return zip(image.manifest.layers, diffIDs).map { SnapshotLayer(blob: $0.digest, diffID: $1) }
    }

    /// The overlayfs lower directories of `image`, top layer first.
    public func lowers(for image: Image) throws -> [String] { try lowers(Self.layers(of: image)) }

    /// The overlayfs lower directories of a stack of layers (bottom first), top layer first.
    /// Each layer not yet unpacked is unpacked from its blob, which must hash to its diffID while
    /// it is read: the snapshot is named by the diffIDs, so an image whose blob is not what its
    /// config says could otherwise plant files under another image's chain ID.
    public func lowers(_ layers: [SnapshotLayer]) throws -> [String] {
        var diffIDs: [Digest] = []
        var out: [String] = []
        for layer in layers {
            diffIDs.append(layer.diffID)
            guard let chain = ImageConfig.chainID(diffIDs) else { continue }
            let fs = path(chainID: chain)
            if !FileOps.isDirectory(fs) { try unpack(layer, chainID: chain) }
            out.append(fs)
        }
        return out.reversed()
    }

    /// Unpacks one layer into a fresh directory and moves it into place (a concurrent winner
    /// keeps its copy).
    func unpack(_ layer: SnapshotLayer, chainID: Digest) throws {
        guard store.has(layer.blob) else { throw ImageStoreError.blobNotFound(layer.blob) }
        try make(chainID, layer: layer) { fs in
            do {
                try FileOps.mkdirs(fs)
                chmod(fs, 0o755)
                try LayerApplier.apply(layer: store.path(for: layer.blob), to: fs,
                                       options: .init(whiteouts: .overlay, expectedDiffID: layer.diffID))
            } catch {
                throw ImageStoreError.invalidContent("cannot unpack layer \(layer.blob) (diff_id \(layer.diffID)): \(error)")
            }
        }
    }

    /// Adopts `directory` (a finished overlay upper or staging tree, with overlay whiteouts, on
    /// the store's file system) as the snapshot of `layer` on top of `parents` (their diffIDs,
    /// bottom first), so that a build does not unpack the layer it has just written. The
    /// directory is moved; when the snapshot exists already, it is removed.
    public func commit(_ directory: String, parents: [Digest], layer: SnapshotLayer) throws {
        guard let chain = ImageConfig.chainID(parents + [layer.diffID]) else { return }
        if has(chainID: chain) { FileOps.removeTree(directory); return }
        do {
            try make(chain, layer: layer) { fs in
                guard rename(directory, fs) == 0 else {
                    throw ImageStoreError.io("cannot move the layer into the snapshots", path: directory, errno: errno)
                }
            }
        } catch {
            FileOps.removeTree(directory)
            throw error
        }
    }

    /// Makes the snapshot of `chainID`: `fill` puts the files at the path it is given, in a temp
    /// directory that gc leaves alone, which is then renamed into place (a concurrent maker's
    /// copy wins). Nothing is left behind when `fill` throws.
    private func make(_ chainID: Digest, layer: SnapshotLayer, _ fill: (String) throws -> Void) throws {
        try store.withScopedLease {
            try FileOps.mkdirs(layersDir)
            // An unpacked layer starts in block groups of its own (see FileSystem).
            FileSystem.spreadSubdirectories(layersDir)
            let work = "\(layersDir)/tmp-\(UUID().uuidString)"
            store.activeTemps.withLock { _ = $0.insert(work) }
            defer { store.activeTemps.withLock { _ = $0.remove(work) } }
            do {
                try FileOps.mkdirs(work)
                try fill(work + "/fs")
                // No fsync: the tree beside it is not synced either (a snapshot is derived from its
                // blob), and on ext4 without a journal fsyncing this directory wrote out the metadata
                // of the whole new tree, up to 0.1 s a layer. A marker lost in a crash makes gc
                // remove the snapshot, and it is unpacked again from its blob.
                try FileOps.writeAtomically(Data(layer.blob.description.utf8), to: work + "/blob", tempDir: work, durable: false)
            } catch {
                FileOps.removeTree(work)
                throw error
            }
            let dir = "\(layersDir)/\(chainID.encoded)"
            if rename(work, dir) != 0 {
                FileOps.removeTree(work)
                guard FileOps.isDirectory(dir + "/fs") else { throw ImageStoreError.io("cannot create snapshot", path: dir, errno: errno) }
            }
        }
    }

    /// Removes the snapshot of the layer that tops `chainID` (nothing may have it mounted).
    public func remove(chainID: Digest) { FileOps.removeTree("\(layersDir)/\(chainID.encoded)") }

    /// Bytes the unpacked layers take (apparent file sizes, each inode counted once).
    public func usage() -> Int64 {
        var seen = Set<UInt64>()
        var total: Int64 = 0
        guard let e = FileManager.default.enumerator(atPath: layersDir) else { return 0 }
        while let rel = e.nextObject() as? String {
            var st = stat()
            guard lstat(layersDir + "/" + rel, &st) == 0, seen.insert(UInt64(st.st_ino)).inserted else { continue }
            if st.st_mode & S_IFMT == S_IFREG { total += Int64(st.st_size) }
        }
        return total
    }

    /// An empty directory to stand in as a lower (never written: lowers are read-only).
    public func emptyDir() throws -> String {
        let d = store.root + "/snapshots/empty"
        try FileOps.mkdirs(d)
        return d
    }

    // MARK: mounting

    /// Mounts an overlay of `lowers` (top first) at `target`: read-write with `upper` and its
    /// `work` directory, else read-only. This is the only place that mounts layers. Lowers are
    /// passed as `/proc/self/fd/N` of directories opened here, so a stack of any depth fits in
    /// the mount's one page of options and no path needs escaping.
    /// `volatile`: see `Overlay.mount`.
    public func mount(lowers: [String], upper: String? = nil, work: String? = nil, at target: String, flags: UInt = 0,
                      volatile: Bool = false) throws {
        var dirs = lowers
        if upper == nil && dirs.count < 2 { dirs += Array(repeating: try emptyDir(), count: 2 - dirs.count) }
        if dirs.isEmpty { dirs = [try emptyDir()] }
        try Overlay.mount(lowers: dirs, upper: upper, work: work, at: target, flags: upper == nil ? flags | UInt(MS_RDONLY) : flags,
                          volatile: volatile)
    }

    /// Runs `body` with a read-only view of the stack mounted at a fresh directory, then
    /// unmounts it.
    public func withView<R>(_ lowers: [String], _ body: (String) throws -> R) throws -> R {
        try FileOps.mkdirs(store.tempDir)
        let m = "\(store.tempDir)/view-\(UUID().uuidString.prefix(12))"
        guard mkdir(m, 0o700) == 0 else { throw ImageStoreError.io("cannot create a view directory", path: m, errno: errno) }
        store.activeTemps.withLock { _ = $0.insert(m) }
        defer {
            umount2(m, Int32(MNT_DETACH))
            rmdir(m)
            store.activeTemps.withLock { _ = $0.remove(m) }
        }
        try mount(lowers: lowers, at: m, flags: UInt(MS_NOSUID | MS_NODEV))
        return try body(m)
    }
}

/// overlayfs mounts (lowers top first): the kernel's, or for an ordinary user whose kernel
/// refuses overlayfs in a user namespace (before Linux 5.11, or a distribution that turns it
/// off), `fuse-overlayfs` (docs/rootless.md).
public enum Overlay {
    /// Who mounts the overlays.
    public enum Driver: String, Sendable {
        case kernel = "overlay"
        case fuse = "fuse-overlayfs"
    }

    /// Test and operations knob: `fuse-overlayfs` or `overlay` forces a driver; unset (or
    /// `auto`) tries the kernel's and, rootless, falls back to fuse-overlayfs when it refuses.
    public static let driverEnvironment = "DOCKBUILD_OVERLAY"

    /// The driver forced by `DOCKBUILD_OVERLAY`, if any.
    public static var forcedDriver: Driver? {
        switch ProcessInfo.processInfo.environment[driverEnvironment] {
        case "fuse-overlayfs", "fuse": return .fuse
        case "overlay", "kernel": return .kernel
        default: return nil
        }
    }

    /// Where a rootless fallback is remembered, so that every later command (and `info`)
    /// uses fuse-overlayfs without trying the kernel again.
    static var fallbackRecord: String { StatePaths.runtimeDir() + "/overlay-driver" }

    /// The driver mounts use now: forced, the recorded fallback, else the kernel's.
    public static var driver: Driver {
        if let forced = forcedDriver { return forced }
        if StatePaths.isRootless, (try? String(contentsOfFile: fallbackRecord, encoding: .utf8))?.hasPrefix(Driver.fuse.rawValue) == true {
            return .fuse
        }
        return .kernel
    }

    /// For `info`: the driver an ordinary user's overlays use and why, trying a small kernel
    /// mount when nothing decided it yet (which records a fallback as a mount would).
    public static func rootlessDescription(scratch: String) -> String {
        if forcedDriver == .fuse { return "fuse-overlayfs (forced by \(driverEnvironment))" }
        if driver == .fuse { return "fuse-overlayfs (the kernel refuses overlayfs in the user namespace)" }
        let dirs = ["l1", "l2", "m"].map { scratch + "/" + $0 }
        defer {
            umount2(scratch + "/m", Int32(MNT_DETACH))
            for d in dirs.reversed() { rmdir(d) }
            rmdir(scratch)
        }
        for d in [scratch] + dirs { mkdir(d, 0o700) }
        do {
            try mount(lowers: ["\(scratch)/l1", "\(scratch)/l2"], upper: nil, work: nil, at: "\(scratch)/m", flags: UInt(MS_RDONLY))
        } catch {
            return "none: \(error)"
        }
        return driver == .fuse ? "fuse-overlayfs (the kernel refuses overlayfs in the user namespace)" : "kernel overlayfs in the user namespace"
    }

    /// Mounts `lowers` with an optional `upper`/`work` at `target`. Each lower is opened (no
    /// symlink followed at its last component) and named by its descriptor.
    ///
    /// `volatile` (with an upper) is for an upper that is thrown away after use (a `run --rm`
    /// container, a writable bind mount of a build step): the kernel then skips syncing
    /// the upper's filesystem, which an overlay's unmount otherwise does in full (tens of
    /// milliseconds while other work writes to that disk). Where the kernel refuses the option
    /// (before 5.10) the mount is made without it. A build's RUN upper is volatile too: it
    /// becomes a layer snapshot, derived data like a COPY's staging tree, which is not synced
    /// either; the layer's blob is fsynced before anything names it.
    public static func mount(lowers: [String], upper: String?, work: String?, at target: String, flags: UInt,
                             volatile: Bool = false) throws {
        if driver == .fuse { return try fuseMount(lowers: lowers, upper: upper, work: work, at: target, flags: flags) }
        var fds: [Int32] = []
        defer { for fd in fds { close(fd) } }
        for l in lowers {
            let fd = open(l, InRootPath.oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw ImageStoreError.io("cannot open the overlay lower directory", path: l, errno: errno) }
            fds.append(fd)
        }
        var opts = "lowerdir=" + fds.map { "/proc/self/fd/\($0)" }.joined(separator: ":")
        if let upper, let work { opts += ",upperdir=\(upper),workdir=\(work)" }
        // in an ordinary user's namespace overlayfs cannot read trusted.* xattrs: opaque
        // directories are marked user.overlay.opaque there (LayerApplier)
        if StatePaths.inRootlessNamespace { opts += ",userxattr" }
        if volatile, upper != nil, let work {
            // A volatile upper mounted before leaves a marker that refuses the next mount until
            // removed; its content is thrown away anyway.
            rmdir("\(work)/work/incompat/volatile")
            if Glibc.mount("overlay", target, "overlay", flags, opts + ",volatile") == 0 { return }
            // refused (a kernel before 5.10 says EINVAL): the plain mount below decides
        }
        if Glibc.mount("overlay", target, "overlay", flags, opts) != 0 {
            let e = errno
            // an ordinary user's kernel that refuses overlayfs in a user namespace: fuse-overlayfs,
            // from now on (recorded), unless a driver was forced
            if StatePaths.inRootlessNamespace, forcedDriver == nil, [EPERM, EINVAL, ENODEV].contains(e), fuseOverlayfs != nil {
                try fuseMount(lowers: lowers, upper: upper, work: work, at: target, flags: flags)
                try? Data((Driver.fuse.rawValue + "\n").utf8).write(to: URL(fileURLWithPath: fallbackRecord))
                return
            }
            throw ImageStoreError.io("cannot mount an overlay of \(lowers.count) layers at", path: target, errno: e)
        }
    }

    /// The fuse-overlayfs binary, if installed.
    static var fuseOverlayfs: String? {
        ["/usr/bin/fuse-overlayfs", "/usr/local/bin/fuse-overlayfs", "/bin/fuse-overlayfs"].first { access($0, X_OK) == 0 }
    }

    /// The same overlay through fuse-overlayfs, which forks into the background as the mount's
    /// server (its output goes to a file: a pipe would stay open in the daemon). Unmounting
    /// ends it.
    static func fuseMount(lowers: [String], upper: String?, work: String?, at target: String, flags: UInt) throws {
        guard let exe = fuseOverlayfs else {
            throw ImageStoreError.io("fuse-overlayfs is not installed (the kernel's overlayfs is refused or \(driverEnvironment) asks for it): apt-get install fuse-overlayfs; cannot mount", path: target, errno: ENOENT)
        }
        // the option syntax has no quoting: ':' separates lowers, ',' options
        for d in lowers + [upper, work].compactMap({ $0 }) where d.contains(":") || d.contains(",") {
            throw ImageStoreError.io("fuse-overlayfs cannot take a directory whose path has ':' or ','", path: d, errno: EINVAL)
        }
        var opts = ["lowerdir=" + lowers.joined(separator: ":")]
        if let upper, let work { opts.append("upperdir=\(upper),workdir=\(work)") }
        if flags & UInt(MS_RDONLY) != 0 { opts.append("ro") }
        if flags & UInt(MS_NOSUID) != 0 { opts.append("nosuid") }
        if flags & UInt(MS_NODEV) != 0 { opts.append("nodev") }
        let logFile = (target as NSString).deletingLastPathComponent + "/.fuse-overlayfs-\(getpid())-\(UUID().uuidString.prefix(8)).log"
        guard FileManager.default.createFile(atPath: logFile, contents: nil) else {
            throw ImageStoreError.io("cannot create fuse-overlayfs's log", path: logFile, errno: errno)
        }
        defer { unlink(logFile) }
        // posix_spawn and waitpid on the one pid (Foundation's Process waits through a SIGCHLD
        // watcher that a container monitor's own reaping starves); only stdio is inherited
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, logFile, O_WRONLY | O_APPEND, 0)
        posix_spawn_file_actions_adddup2(&fa, 1, 2)
        // the daemon keeps what it inherits: nothing but stdio (a monitor's report pipe, say)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            guard let fd = Int32(name), fd > 2, fcntl(fd, F_GETFD) & FD_CLOEXEC == 0 else { continue }
            posix_spawn_file_actions_addclose(&fa, fd)
        }
        let args = [exe, "-o", opts.joined(separator: ","), target]
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &fa, nil, &argv, environ)
        guard rc == 0 else { throw ImageStoreError.io("cannot start fuse-overlayfs to mount", path: target, errno: rc) }
        var status: Int32 = 0
        var r: pid_t
        repeat { r = waitpid(pid, &status, 0) } while r < 0 && errno == EINTR
        // reaped by someone else (ECHILD): the mount itself says whether it worked
        var mine = stat(), parent = stat()
        let mounted = stat(target, &mine) == 0 && stat(target + "/..", &parent) == 0 && mine.st_dev != parent.st_dev
        let ok = r == pid ? (status & 0x7f == 0 && (status >> 8) & 0xff == 0) : mounted
        guard ok else {
            let said = (try? String(contentsOfFile: logFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            throw ImageStoreError.io("fuse-overlayfs could not mount an overlay of \(lowers.count) layers (wait status \(status): \(said); "
                + "/dev/fuse must be usable by the user, as Debian makes it: chmod 0666 /dev/fuse) at", path: target, errno: EIO)
        }
    }
}
