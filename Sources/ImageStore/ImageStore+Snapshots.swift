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
            let work = "\(layersDir)/tmp-\(UUID().uuidString)"
            store.activeTemps.withLock { _ = $0.insert(work) }
            defer { store.activeTemps.withLock { _ = $0.remove(work) } }
            do {
                try FileOps.mkdirs(work)
                try fill(work + "/fs")
                try FileOps.writeAtomically(Data(layer.blob.description.utf8), to: work + "/blob", tempDir: work)
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

/// overlayfs mounts (lowers top first).
public enum Overlay {
    /// Mounts `lowers` with an optional `upper`/`work` at `target`. Each lower is opened (no
    /// symlink followed at its last component) and named by its descriptor.
    ///
    /// `volatile` (with an upper) is for an upper that is thrown away after use (a `run --rm`
    /// container, a RUN step, a writable bind mount of a build): the kernel then skips syncing
    /// the upper's filesystem, which an overlay's unmount otherwise does in full (tens of
    /// milliseconds while other work writes to that disk). Where the kernel lacks the option
    /// (before 5.10) the mount is made without it.
    public static func mount(lowers: [String], upper: String?, work: String?, at target: String, flags: UInt,
                             volatile: Bool = false) throws {
        var fds: [Int32] = []
        defer { for fd in fds { close(fd) } }
        for l in lowers {
            let fd = open(l, InRootPath.oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw ImageStoreError.io("cannot open the overlay lower directory", path: l, errno: errno) }
            fds.append(fd)
        }
        var opts = "lowerdir=" + fds.map { "/proc/self/fd/\($0)" }.joined(separator: ":")
        if let upper, let work { opts += ",upperdir=\(upper),workdir=\(work)" }
        if volatile, upper != nil, let work {
            // A volatile upper mounted before leaves a marker that refuses the next mount until
            // removed; its content is thrown away anyway.
            rmdir("\(work)/work/incompat/volatile")
            if Glibc.mount("overlay", target, "overlay", flags, opts + ",volatile") == 0 { return }
            guard errno == EINVAL else {
                let e = errno
                throw ImageStoreError.io("cannot mount an overlay of \(lowers.count) layers at", path: target, errno: e)
            }
        }
        if Glibc.mount("overlay", target, "overlay", flags, opts) != 0 {
            let e = errno
            throw ImageStoreError.io("cannot mount an overlay of \(lowers.count) layers at", path: target, errno: e)
        }
    }
}
