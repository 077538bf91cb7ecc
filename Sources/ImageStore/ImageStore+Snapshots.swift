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
        try takeLease()
        let work = "\(root)/snapshots/tmp-\(UUID().uuidString)"
        activeTemps.withLock { _ = $0.insert(work) }
        defer { activeTemps.withLock { _ = $0.remove(work) } }
        try FileOps.mkdirs(work)
        do {
            for layer in image.manifest.layers {
                guard has(layer.digest) else { throw ImageStoreError.blobNotFound(layer.digest) }
                try LayerApplier.apply(layer: path(for: layer.digest), to: work)
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
}
