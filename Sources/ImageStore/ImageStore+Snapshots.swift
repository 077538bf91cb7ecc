// Snapshots: unpacked root filesystems keyed by chain ID (image-spec config.md#layer-chainid).
import Foundation
import OCI

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
        throw ImageStoreError.unsupported("unpacking layers needs Archive's LayerApplier, which this build does not have yet")
    }
}
