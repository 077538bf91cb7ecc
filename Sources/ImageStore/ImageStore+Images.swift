// Images: manifests, indexes and configs read from (and written to) the store.
import Foundation
import OCI

/// One image for one platform, loaded and verified: its manifest, its config, and the
/// descriptors that led to them.
public struct Image: Sendable, Hashable {
    /// The manifest's descriptor.
    public var descriptor: Descriptor
    /// The index the manifest was chosen from, when the name pointed at an index.
    public var index: Descriptor?
    public var manifest: ImageManifest
    public var config: ImageConfig
    /// The exact config bytes (what `inspect` shows and what the ID hashes).
    public var configData: Data

    /// Docker's image ID: the config digest.
    public var id: Digest { manifest.config.digest }
    /// The digest a registry knows the image by (the index when there is one).
    public var repoDigest: Digest { index?.digest ?? descriptor.digest }
    /// Key of the unpacked root filesystem.
    public var chainID: Digest? { config.chainID }
    /// The platform its config names (normalised: `aarch64` is `arm64`).
    public var platform: Platform {
        Platform(os: config.os, architecture: config.architecture, variant: config.variant).normalized()
    }
    /// Sum of the (compressed) layer sizes plus config: the size `images` shows.
    public var size: Int64 {
        // Sizes come from manifest JSON: saturate instead of trapping on an absurd sum.
        manifest.layers.reduce(manifest.config.size) { sum, l in
            let (r, overflow) = sum.addingReportingOverflow(l.size)
            return overflow ? (l.size < 0 ? Int64.min : Int64.max) : r
        }
    }
}

extension ImageStore {
    /// Reads and decodes a manifest blob.
    public func manifest(_ descriptor: Descriptor) throws -> ImageManifest {
        let data = try readBlob(descriptor.digest)
        do { return try ImageManifest.decode(data) } catch {
            throw ImageStoreError.invalidContent("manifest \(descriptor.digest): \(error)")
        }
    }

    /// Reads and decodes an index (or Docker manifest list) blob.
    public func index(_ descriptor: Descriptor) throws -> ImageIndex {
        let data = try readBlob(descriptor.digest)
        do { return try ImageIndex.decode(data) } catch {
            throw ImageStoreError.invalidContent("index \(descriptor.digest): \(error)")
        }
    }

    /// Reads and decodes a config blob.
    public func config(_ descriptor: Descriptor) throws -> ImageConfig {
        let data = try readBlob(descriptor.digest)
        do { return try ImageConfig.decode(data) } catch {
            throw ImageStoreError.invalidContent("config \(descriptor.digest): \(error)")
        }
    }

    /// Docker's ID of what `descriptor` points at: the config digest of a manifest, the digest
    /// of an index itself.
    public func imageID(of descriptor: Descriptor) throws -> Digest {
        if MediaType.isIndex(descriptor.mediaType) { return descriptor.digest }
        return try manifest(descriptor).config.digest
    }

    /// Loads the image `descriptor` points at; for an index, the manifest that best suits
    /// `platform` (the host by default).
    public func image(for descriptor: Descriptor, platform: Platform = .host) throws -> Image {
        if MediaType.isIndex(descriptor.mediaType) {
            let idx = try index(descriptor)
            let candidates = idx.manifests.filter { MediaType.isManifest($0.mediaType) && has($0.digest) }
            let chosen = platform.best(of: candidates, platform: \.platform)
                ?? (candidates.count == 1 && candidates[0].platform == nil ? candidates[0] : nil)
            guard let chosen else {
                let have = idx.manifests.compactMap { $0.platform?.description }
                throw ImageStoreError.imageNotFound(
                    "\(descriptor.digest) for platform \(platform) (the index has \(have.isEmpty ? "no platforms" : have.joined(separator: ", ")) stored; pull with --platform)")
            }
            var img = try image(for: chosen, platform: platform)
            img.index = descriptor
            return img
        }
        guard MediaType.isManifest(descriptor.mediaType) else {
            throw ImageStoreError.invalidContent("\(descriptor.digest) has media type \(descriptor.mediaType), which is not an image manifest or index")
        }
        let m = try manifest(descriptor)
        let configData = try readBlob(m.config.digest)
        let config: ImageConfig
        do { config = try ImageConfig.decode(configData) } catch {
            throw ImageStoreError.invalidContent("config \(m.config.digest) of \(descriptor.digest): \(error)")
        }
        return Image(descriptor: descriptor, index: nil, manifest: m, config: config, configData: configData)
    }

    /// What `images` lists for one name: the image ID, its creation time and its size, read
    /// from the same verified blobs as `image(for:)` but decoding only those fields (a list of
    /// a hundred images spent most of its time building full manifests and configs).
    public struct Summary: Sendable, Hashable {
        public var id: Digest
        public var created: Date?
        /// docker's size: the layers' files, uncompressed (`contentSize`).
        public var size: Int64
        /// The config's labels (`images --filter label=`).
        public var labels: [String: String] = [:]
    }

    public func summary(for descriptor: Descriptor, platform: Platform = .host) throws -> Summary {
        if MediaType.isIndex(descriptor.mediaType) {
            return try summary(for: try image(for: descriptor, platform: platform).descriptor, platform: platform)
        }
        guard MediaType.isManifest(descriptor.mediaType) else {
            throw ImageStoreError.invalidContent("\(descriptor.digest) has media type \(descriptor.mediaType), which is not an image manifest or index")
        }
        let m: SummaryDecode.Manifest
        do { m = try SummaryDecode.manifest(try readBlob(descriptor.digest)) } catch let e as ImageStoreError { throw e } catch {
            throw ImageStoreError.invalidContent("manifest \(descriptor.digest): \(error)")
        }
        let c: SummaryDecode.Created
        do { c = try SummaryDecode.created(try readBlob(m.config.digest)) } catch let e as ImageStoreError { throw e } catch {
            throw ImageStoreError.invalidContent("config \(m.config.digest) of \(descriptor.digest): \(error)")
        }
        let size = contentSize(of: (m.layers ?? []).map { Descriptor(mediaType: $0.mediaType, digest: $0.digest, size: $0.size) })
        return Summary(id: m.config.digest, created: c.created.flatMap(ImageConfig.parseDate), size: size,
                       labels: c.config?.Labels ?? [:])
    }

    /// Resolves `name` (see `resolve`) and loads the image for `platform`.
    public func image(_ name: String, platform: Platform = .host) throws -> Image {
        try image(for: try resolve(name), platform: platform)
    }

    /// Writes a config and an OCI manifest over `layers` (already in the store) and names the
    /// result `tag` (or records it as a dangling image). The config's `rootfs.diff_ids` must
    /// list one diffID per layer.
    @discardableResult
    public func putImage(config: ImageConfig, layers: [Descriptor], tag: ImageReference?,
                         annotations: [String: String]? = nil) throws -> Image {
        for l in layers where !has(l.digest) { throw ImageStoreError.blobNotFound(l.digest) }
        guard config.rootfs.diffIDs.count == layers.count else {
            throw ImageStoreError.invalidContent("the config lists \(config.rootfs.diffIDs.count) diff_ids for \(layers.count) layers")
        }
        let configData = try CanonicalJSON.encode(config)
        let configDigest = try writeBlob(configData)
        let configDesc = Descriptor(mediaType: MediaType.imageConfig, digest: configDigest, size: Int64(configData.count))
        let manifest = ImageManifest(config: configDesc, layers: layers, annotations: annotations)
        let manifestDesc = try putJSON(manifest, mediaType: MediaType.imageManifest)
        if let tag { try self.tag(tag, descriptor: manifestDesc) } else { try addUnnamed(manifestDesc) }
        return Image(descriptor: manifestDesc, index: nil, manifest: manifest, config: config, configData: configData)
    }

    /// Every blob a descriptor reaches (itself, children of indexes, config and layers of
    /// manifests); blobs that are absent are skipped (an index may name platforms not pulled).
    public func reachable(from descriptor: Descriptor) -> Set<Digest> {
        var seen: Set<Digest> = []
        var stack = [descriptor]
        while let d = stack.popLast() {
            guard seen.insert(d.digest).inserted, has(d.digest) else { continue }
            if MediaType.isIndex(d.mediaType), let idx = try? index(d) {
                stack.append(contentsOf: idx.manifests)
                if let s = idx.subject { stack.append(s) }
            } else if MediaType.isManifest(d.mediaType), let m = try? manifest(d) {
                stack.append(m.config)
                stack.append(contentsOf: m.layers)
            }
        }
        return seen
    }
}

extension ImageStore {
    /// Writes an OCI image index over `manifests` (each already in the store, with its
    /// `platform`) and names it `tag` (or records it as a dangling image). The children's own
    /// dangling entries go: the index holds them now, so `images` lists the index once.
    @discardableResult
    public func putIndex(manifests: [Descriptor], tag: ImageReference?, annotations: [String: String]? = nil) throws -> Descriptor {
        for m in manifests where !has(m.digest) { throw ImageStoreError.blobNotFound(m.digest) }
        let desc = try putJSON(ImageIndex(manifests: manifests, annotations: annotations), mediaType: MediaType.imageIndex)
        if let tag { try self.tag(tag, descriptor: desc) } else { try addUnnamed(desc) }
        let children = Set(manifests.map(\.digest))
        try updateIndex { idx in
            idx.manifests.removeAll { children.contains($0.digest) && ImageStore.entryName($0) == nil }
        }
        return desc
    }
}
