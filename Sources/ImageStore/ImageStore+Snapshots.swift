// Snapshots: unpacked root filesystems keyed by chain ID (image-spec config.md#layer-chainid).
import Archive
import Foundation
import OCI
#if canImport(Glibc)
import Glibc
#endif

extension ImageStore {
    /// Directory of the snapshot for a chain ID (present or not).
    public func snapshotPath(chainID: Digest) -> String { "\(root)/snapshots/\(chainID.encoded)" }

    /// A directory holding the image's root filesystem with all layers applied, built once per
    /// chain ID and reused by every image with the same layers. Treat it as read-only.
    public func snapshot(for image: Image) throws -> String {
        guard let chain = image.chainID else {
            let empty = "\(root)/snapshots/empty"
            try FileOps.mkdirs(empty)
            return empty
        }
        let dir = snapshotPath(chainID: chain)
        if FileOps.isDirectory(dir) { return dir }
        // The snapshot is named by the config's diff_ids: each layer must hash to its diff_id while
        // it is applied, or an image could plant its files under another image's chain ID.
        let diffIDs = image.config.rootfs.diffIDs
        guard diffIDs.count == image.manifest.layers.count else {
            throw ImageStoreError.invalidContent("image \(image.id) has \(image.manifest.layers.count) layers but its config lists "
                + "\(diffIDs.count) diff_ids; the image is corrupt — pull or load it again")
        }
        try takeLease()
        let work = "\(root)/snapshots/tmp-\(UUID().uuidString)"
        activeTemps.withLock { _ = $0.insert(work) }
        defer { activeTemps.withLock { _ = $0.remove(work) } }
        try FileOps.mkdirs(work)
        do {
            for (layer, diffID) in zip(image.manifest.layers, diffIDs) {
                guard has(layer.digest) else { throw ImageStoreError.blobNotFound(layer.digest) }
                try LayerApplier.apply(layer: path(for: layer.digest), to: work, options: .init(expectedDiffID: diffID))
            }
            chmod(work, 0o755)
        } catch {
            FileOps.removeTree(work)
            throw ImageStoreError.invalidContent("cannot unpack image \(image.id): \(error)")
        }
        if rename(work, dir) != 0 {
            // Another process made it first: use theirs.
            FileOps.removeTree(work)
            guard FileOps.isDirectory(dir) else { throw ImageStoreError.io("cannot create snapshot", path: dir, errno: errno) }
        }
        return dir
    }

    /// Checks every layer blob of `image` against its config's diff_ids by reading it end to end
    /// (decompressor trailers included), without unpacking anything. `pull` calls it before it
    /// names an image; snapshots check the same while they apply the layers.
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
