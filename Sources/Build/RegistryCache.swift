import Foundation
import OCI
import ImageStore

/// `--cache-to/--cache-from type=registry,ref=R`: the cache travels as an image whose layers are
/// the cached layer blobs and whose config carries the step records (`dockbuild.cache`), so the
/// registry client's ordinary push and pull move it and every blob is verified on the way.
extension BuildCache {
    static let recordsKey = "dockbuild.cache"

    /// Writes the records of `keys` as an image named `ref` in the store and pushes it.
    public func exportRegistry(keys: [String], to ref: ImageReference) throws {
        var records: [String: CacheRecord] = [:]
        var layers: [LayerRef] = []
        for k in keys {
            guard let rec = record(k) else { continue }
            records[k] = rec
            if let l = rec.layer, !layers.contains(l) { layers.append(l) }
        }
        let data = try CanonicalJSON.encode(records)
        let value = try JSONDecoder().decode(JSONValue.self, from: data)
        var cfg = ImageConfig(created: "1970-01-01T00:00:00Z", rootfs: RootFS(diffIDs: layers.map(\.diffID)))
        cfg.extra = [Self.recordsKey: value]
        let image = try store.putImage(config: cfg, layers: layers.map(\.descriptor), tag: ref)
        _ = try Builder.push(image, store: store, to: ref)
    }

    /// Pulls the cache image `ref` and makes its records hits for this process.
    public func importRegistry(from ref: ImageReference) throws {
        let store = self.store
        _ = try blocking {
            try await RegistryClientFactory.client(for: ref).pull(ref, into: store)
        }
        let image = try store.image(ref.description)
        guard let value = image.config.extra?[Self.recordsKey] else {
            throw BuildError.notFound("--cache-from \(ref.familiarString): the image holds no dockbuild cache records")
        }
        let data = try JSONEncoder().encode(value)
        let records = try JSONDecoder().decode([String: CacheRecord].self, from: data)
        lock.lock(); defer { lock.unlock() }
        for (k, r) in records { imported[k] = (r, store.root + "/blobs") }
    }
}
