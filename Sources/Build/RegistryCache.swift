import Foundation
import OCI
import ImageStore
import Registry

/// `--cache-to/--cache-from type=registry,ref=R`: the cache travels as an image whose layers are
/// the cached layer blobs and whose config carries the step records (`dockbuild.cache`), so the
/// registry client's ordinary push and pull move it and every blob is verified on the way.
extension BuildCache {
    static let recordsKey = "dockbuild.cache"

    /// Writes the records of `keys` as an image named `ref` in the store and pushes it.
    public func exportRegistry(keys: [String], to ref: ImageReference) throws {
        var layers: [LayerRef] = []
        for k in keys {
            if let l = record(k)?.layer, !layers.contains(l) { layers.append(l) }
        }
        let value = try recordsValue(keys: keys)
        var cfg = ImageConfig(created: "1970-01-01T00:00:00Z", rootfs: RootFS(diffIDs: layers.map(\.diffID)))
        cfg.extra = [Self.recordsKey: value]
        let image = try store.putImage(config: cfg, layers: layers.map(\.descriptor), tag: ref)
        _ = try Builder.push(image, store: store, to: ref)
    }

    /// The records of `keys` as the JSON value stored under `dockbuild.cache` in a config.
    func recordsValue(keys: [String]) throws -> JSONValue {
        var records: [String: CacheRecord] = [:]
        for k in keys { if let rec = record(k) { records[k] = rec } }
        return try JSONDecoder().decode(JSONValue.self, from: try CanonicalJSON.encode(records))
    }

    /// Makes the records of the cache image `ref` hits for this process. Only its manifest and
    /// config are fetched now; a layer is fetched when a step actually reuses it (`lookup`), so a
    /// fresh store downloads what the build needs, not every layer the cache holds.
    public func importRegistry(from ref: ImageReference) throws {
        let client = RegistryClientFactory.client(for: ref)
        let store = self.store
        let (manifest, config) = try blocking { () -> (ImageManifest, ImageConfig) in
            let m = try await client.manifest(ref.path, reference: ref.digest?.description ?? ref.tag ?? "latest",
                                              displayName: ref.familiarString)
            let manifest = try JSONDecoder().decode(ImageManifest.self, from: m.data)
            try await client.pullBlob(ref.path, manifest.config, into: store)
            return (manifest, try JSONDecoder().decode(ImageConfig.self, from: Data(contentsOf: URL(fileURLWithPath: store.path(for: manifest.config.digest)))))
        }
        guard let value = config.extra?[Self.recordsKey] else {
            throw BuildError.notFound("--cache-from \(ref.familiarString): the image holds no dockbuild cache records")
        }
        let known = Set(manifest.layers.map(\.digest))
        let data = try JSONEncoder().encode(value)
        let records = try JSONDecoder().decode([String: CacheRecord].self, from: data)
        lock.lock(); defer { lock.unlock() }
        for (k, r) in records where r.layer.map({ known.contains($0.descriptor.digest) }) ?? true {
            imported[k] = (r, store.root + "/blobs")
            remote[k] = ref
        }
    }

    /// Fetches the layer of an imported registry record on first use.
    func fetchRemoteLayer(_ layer: LayerRef, from ref: ImageReference) -> Bool {
        let store = self.store
        let client = RegistryClientFactory.client(for: ref)
        return (try? blocking { try await client.pullBlob(ref.path, layer.descriptor, diffID: layer.diffID, into: store) }) != nil
    }
}
