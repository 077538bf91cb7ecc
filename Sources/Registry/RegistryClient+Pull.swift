import Foundation
import ImageStore
import OCI

/// Choices for `pull`.
public struct PullOptions: Sendable {
    /// The platform to take from an index (the host's by default).
    public var platform: Platform = .host
    /// Take every manifest of an index.
    public var allPlatforms = false
    /// Blobs downloaded at once.
    public var maxConcurrent = 4
    public var progress: TransferProgress?

    public init(platform: Platform = .host, allPlatforms: Bool = false, maxConcurrent: Int = 4, progress: TransferProgress? = nil) {
        self.platform = platform
        self.allPlatforms = allPlatforms
        self.maxConcurrent = maxConcurrent
        self.progress = progress
    }
}

/// What a pull brought in.
public struct PullResult: Sendable {
    /// The top-level manifest or index, as named in the store.
    public var descriptor: Descriptor
    /// The image manifests pulled (one, or one per platform).
    public var manifests: [Descriptor]
    public var downloadedBlobs = 0
    public var skippedBlobs = 0
    public var downloadedBytes: Int64 = 0
}

/// The image store's ingest as a download destination.
///
/// The store fsyncs each blob on commit; to keep that from stalling the end of every
/// download, written ranges are handed to the kernel for writeback as the download goes
/// (`posix_fadvise(DONTNEED)` starts writeback of dirty pages), so the disk works while
/// the network does. One thread at a time uses it (the download's writer thread, then the
/// commit's), hence the unchecked Sendable.
final class IngestWriter: BlobWriter, @unchecked Sendable {
    let ingest: any ContentIngest
    private var flushFD: Int32 = -1
    private var flushed: Int64 = 0
    private var written: Int64 = 0
    static let writebackStep: Int64 = 16 << 20

    init(_ ingest: any ContentIngest) {
        self.ingest = ingest
        // Write-back hints only where the bytes land in a file (the image store's ingest).
        if let file = ingest as? BlobIngest { flushFD = open(file.tempPath, O_RDONLY | O_CLOEXEC) }
    }

    deinit { if flushFD >= 0 { close(flushFD) } }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try ingest.write(bytes)
        written += Int64(bytes.count)
        if flushFD >= 0, written - flushed >= IngestWriter.writebackStep {
            _ = posix_fadvise(flushFD, off_t(flushed), off_t(written - flushed), POSIX_FADV_DONTNEED)
            flushed = written
        }
    }

    func abort() { ingest.abort() }
}

/// One blob's way through `fetchBlobs`: its download task hands the written ingest to its
/// commit task.
enum BlobStep: Sendable {
    case skipped
    case fetched(Descriptor, TransferEvent.BlobKind, IngestWriter)
    case committed(Digest, Int64)
}

extension RegistryClient {
    /// Pulls `reference` into `store`: index -> platform -> manifest (each digest-verified), then
    /// config and layers streamed through digest verification into the store, several at a
    /// time, skipping blobs the store has. Manifests are stored after their blobs and the name
    /// last, so a failed pull never leaves a name pointing at missing content.
    public func pull(_ reference: ImageReference, into store: any ContentStore, options: PullOptions = PullOptions()) async throws -> PullResult {
        let repo = reference.path
        let ref = reference.digest?.description ?? reference.tag ?? ImageReference.defaultTag
        let display = reference.familiarString
        let top = try await manifest(repo, reference: ref, displayName: display)
        let topDesc = Descriptor(mediaType: top.mediaType, digest: top.digest, size: top.size)
        options.progress?(.resolved(what: MediaType.isIndex(top.mediaType) ? "index" : "manifest", digest: top.digest))

        var manifests: [FetchedManifest] = []
        if MediaType.isIndex(top.mediaType) {
            let index: ImageIndex
            do { index = try ImageIndex.decode(top.data) } catch {
                throw RegistryError.invalidResponse(url: "\(endpoint.name)/\(repo)@\(top.digest)", reason: "bad index: \(error)")
            }
            let images = index.manifests.filter { MediaType.isManifest($0.mediaType) }
            var chosen: [Descriptor]
            if options.allPlatforms {
                chosen = images
            } else if let best = options.platform.best(of: images, platform: \.platform) {
                chosen = [best]
            } else if images.count == 1, images[0].platform == nil {
                chosen = images
            } else {
                let have = images.compactMap { $0.platform?.description }
                throw RegistryError.platformNotFound(reference: display, wanted: options.platform.description, available: have)
            }
            if chosen.isEmpty {
                throw RegistryError.invalidResponse(url: "\(endpoint.name)/\(repo)@\(top.digest)", reason: "the index lists no image manifests")
            }
            manifests = try await withThrowingTaskGroup(of: FetchedManifest.self) { group in
                for d in chosen {
                    group.addTask {
                        let m = try await self.manifest(repo, reference: d.digest.description, displayName: "\(display)@\(d.digest)")
                        guard MediaType.isManifest(m.mediaType) else {
                            throw RegistryError.invalidResponse(url: "\(self.endpoint.name)/\(repo)@\(d.digest)", reason: "index entry is a \(m.mediaType), not an image manifest")
                        }
                        return m
                    }
                }
                var out: [FetchedManifest] = []
                for try await m in group { out.append(m) }
                let order = chosen.map(\.digest)
                return out.sorted { (order.firstIndex(of: $0.digest) ?? 0) < (order.firstIndex(of: $1.digest) ?? 0) }
            }
        } else {
            manifests = [top]
        }

        // Every blob the chosen manifests need, once: configs first (small), so that each layer's
        // diff_id is known when it is downloaded and is checked before the layer enters the store.
        var configs: [(Descriptor, TransferEvent.BlobKind)] = []
        var layers: [(Descriptor, TransferEvent.BlobKind)] = []
        var seen: Set<Digest> = []
        var parsedManifests: [(FetchedManifest, ImageManifest)] = []
        for m in manifests {
            let parsed: ImageManifest
            do { parsed = try ImageManifest.decode(m.data) } catch {
                throw RegistryError.invalidResponse(url: "\(endpoint.name)/\(repo)@\(m.digest)", reason: "bad manifest: \(error)")
            }
            parsedManifests.append((m, parsed))
            if seen.insert(parsed.config.digest).inserted { configs.append((parsed.config, .config)) }
            for l in parsed.layers where seen.insert(l.digest).inserted { layers.append((l, .layer)) }
        }

        var result = PullResult(descriptor: topDesc, manifests: manifests.map { Descriptor(mediaType: $0.mediaType, digest: $0.digest, size: $0.size) })
        let configStats = try await fetchBlobs(repo, configs, into: store, options: options)
        let diffIDs = try layerDiffIDs(repo, parsedManifests, in: store)
        let stats = try await fetchBlobs(repo, layers, into: store, options: options, diffIDs: diffIDs)
        result.downloadedBlobs = configStats.0 + stats.0
        result.skippedBlobs = configStats.1 + stats.1
        result.downloadedBytes = configStats.2 + stats.2
        // Layers the store already had were not checked on the way in: check them against these configs.
        try await verifyLayers(repo, manifests, in: store, display: display, concurrency: options.maxConcurrent, except: stats.3)

        do {
            for m in manifests where !store.has(m.digest) { try store.writeData(m.data, expected: m.digest) }
            if MediaType.isIndex(top.mediaType), !store.has(top.digest) { try store.writeData(top.data, expected: top.digest) }
            try store.record(topDesc, as: reference.tag != nil ? reference : nil)
        } catch let e as RegistryError {
            throw e
        } catch {
            throw RegistryError.local("cannot record \(display) in the store at \(store.location): \(error)")
        }
        return result
    }

    /// Checks every layer of the pulled manifests against its config's diff_ids (the digests the
    /// snapshots are named by), several layers at once, before anything names the image: a layer
    /// whose compressed digest matches but whose content is not what the config says is refused.
    /// The diff_id each layer of the (image) manifests must have, from their configs (already in
    /// the store). A layer that two configs give different diff_ids is refused: one of them lies.
    func layerDiffIDs(_ repo: String, _ manifests: [(FetchedManifest, ImageManifest)], in store: any ContentStore) throws -> [Digest: Digest] {
        var out: [Digest: Digest] = [:]
        for (m, parsed) in manifests where MediaType.isConfig(parsed.config.mediaType) {
            let url = "\(endpoint.name)/\(repo)@\(m.digest)"
            let config: ImageConfig
            do { config = try ImageConfig.decode(try store.readBlob(parsed.config.digest)) } catch {
                throw RegistryError.invalidResponse(url: url, reason: "config \(parsed.config.digest) is not an image config: \(error)")
            }
            guard config.rootfs.diffIDs.count == parsed.layers.count else {
                throw RegistryError.invalidResponse(url: url, reason: "the manifest has \(parsed.layers.count) layers but config \(parsed.config.digest) lists \(config.rootfs.diffIDs.count) diff_ids; the image is corrupt")
            }
            for (l, d) in zip(parsed.layers, config.rootfs.diffIDs) {
                if let other = out[l.digest], other != d {
                    throw RegistryError.invalidResponse(url: url, reason: "layer \(l.digest) has diff_id \(d) in config \(parsed.config.digest) but \(other) in another config of the same pull")
                }
                out[l.digest] = d
            }
        }
        return out
    }

    func verifyLayers(_ repo: String, _ manifests: [FetchedManifest], in store: any ContentStore, display: String, concurrency: Int,
                      except checked: Set<Digest> = []) async throws {
        var work: [(Descriptor, Digest, String)] = []
        var seen: Set<Digest> = []
        for m in manifests where !store.has(m.digest) { // a stored manifest was checked when it came in
            let url = "\(endpoint.name)/\(repo)@\(m.digest)"
            guard let parsed = try? ImageManifest.decode(m.data), MediaType.isConfig(parsed.config.mediaType) else { continue }
            let config: ImageConfig
            do { config = try ImageConfig.decode(try store.readBlob(parsed.config.digest)) } catch {
                throw RegistryError.invalidResponse(url: url, reason: "config \(parsed.config.digest) is not an image config: \(error)")
            }
            guard config.rootfs.diffIDs.count == parsed.layers.count else {
                throw RegistryError.invalidResponse(url: url, reason: "the manifest has \(parsed.layers.count) layers but config \(parsed.config.digest) lists \(config.rootfs.diffIDs.count) diff_ids; the image is corrupt")
            }
            for (l, d) in zip(parsed.layers, config.rootfs.diffIDs) where !checked.contains(l.digest) && seen.insert(l.digest).inserted {
                work.append((l, d, url))
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func addNext() {
                guard next < work.count else { return }
                let (layer, diffID, url) = work[next]
                next += 1
                group.addTask {
                    try await onOwnThread {
                        do { try store.verifyLayer(layer, diffID: diffID, what: "\(display)") } catch {
                            throw RegistryError.invalidResponse(url: url, reason: "\(error)")
                        }
                    }
                }
            }
            for _ in 0..<max(1, concurrency) { addNext() }
            while try await group.next() != nil { addNext() }
        }
    }

    /// Downloads blobs the store lacks, `maxConcurrent` at a time, largest first. A download's
    /// lane frees when its last byte is in the temp file: the commit (digest check, fsync,
    /// rename) runs beside the next downloads, on a thread of its own, so a blob's fsync never
    /// delays the next transfer nor blocks the cooperative pool. A layer with an entry in `diffIDs`
    /// is checked against it in its commit, before it enters the store. Returns (downloaded,
    /// skipped, bytes, the layers checked against `diffIDs`).
    func fetchBlobs(_ repo: String, _ blobs: [(Descriptor, TransferEvent.BlobKind)], into store: any ContentStore,
                    options: PullOptions, diffIDs: [Digest: Digest] = [:]) async throws -> (Int, Int, Int64, Set<Digest>) {
        var downloaded = 0, skipped = 0
        var checked: Set<Digest> = []
        var bytes: Int64 = 0
        let progress = options.progress
        // Longest first: the last transfer to end is a small one, and so is its fsync.
        let order = blobs.enumerated().sorted { ($0.element.0.size, $1.offset) > ($1.element.0.size, $0.offset) }.map(\.element)
        try await withThrowingTaskGroup(of: BlobStep.self) { group in
            var next = 0
            func addNext() {
                guard next < order.count else { return }
                let (d, kind) = order[next]
                next += 1
                group.addTask {
                    if store.has(d.digest) {
                        progress?(.finished(digest: d.digest, kind: kind, outcome: .alreadyExists, bytes: d.size))
                        return .skipped
                    }
                    progress?(.started(digest: d.digest, kind: kind, total: d.size))
                    let writer = try await self.fetchBlob(
                        repo, d.digest, expectedSize: d.size,
                        progress: progress.map { p in { @Sendable n in p(.progress(digest: d.digest, bytes: n)) } },
                        makeWriter: {
                            do { return IngestWriter(try store.beginIngest(algorithm: d.digest.algorithm)) } catch {
                                throw RegistryError.local("cannot write into the store at \(store.location): \(error)")
                            }
                        })
                    guard let ingest = writer as? IngestWriter else {
                        writer.abort()
                        throw RegistryError.local("internal: unexpected blob writer")
                    }
                    return .fetched(d, kind, ingest)
                }
            }
            func commit(_ d: Descriptor, _ kind: TransferEvent.BlobKind, _ ingest: IngestWriter) {
                let url = blobURL(repo, d.digest).absoluteString
                group.addTask {
                    try await onOwnThread {
                        do {
                            _ = try ingest.ingest.commit(expected: d.digest, expectedSize: d.size, diffID: diffIDs[d.digest])
                        } catch let ImageStoreError.digestMismatch(expected, actual) {
                            throw RegistryError.digestMismatch(url: url, expected: expected, actual: actual)
                        } catch let ImageStoreError.sizeMismatch(_, expected, actual) {
                            throw RegistryError.sizeMismatch(url: url, expected: expected, actual: actual)
                        } catch let ImageStoreError.invalidContent(reason) {
                            throw RegistryError.invalidResponse(url: url, reason: reason) // the layer is not what its config says
                        } catch {
                            throw RegistryError.local("cannot store blob \(d.digest) in \(store.location): \(error)")
                        }
                    }
                    progress?(.finished(digest: d.digest, kind: kind, outcome: .downloaded, bytes: d.size))
                    return .committed(d.digest, d.size)
                }
            }
            for _ in 0..<max(1, options.maxConcurrent) { addNext() }
            do {
                while let step = try await group.next() {
                    switch step {
                    case .skipped:
                        skipped += 1
                        addNext()
                    case let .fetched(d, kind, ingest):
                        commit(d, kind, ingest)
                        addNext()
                    case let .committed(digest, n):
                        if diffIDs[digest] != nil { checked.insert(digest) }
                        downloaded += 1
                        bytes += n
                    }
                }
            } catch {
                // One blob failed: stop the others, and drop the temp files of downloads that
                // ended meanwhile and will never be committed, before the error reaches the caller.
                group.cancelAll()
                while true {
                    do {
                        guard let step = try await group.next() else { break }
                        if case let .fetched(_, _, ingest) = step { ingest.abort() }
                    } catch {
                        continue
                    }
                }
                throw error
            }
        }
        return (downloaded, skipped, bytes, checked)
    }
}

extension RegistryClient {
    /// Fetches one blob of `repository` into `store` (digest and size verified on commit), unless
    /// the store has it: what a lazy user such as a build cache import needs, one layer at a time.
    /// With `diffID` (a layer's uncompressed digest from its config) the layer is also checked
    /// against it before it enters the store.
    public func pullBlob(_ repository: String, _ descriptor: Descriptor, diffID: Digest? = nil, into store: any ContentStore) async throws {
        if store.has(descriptor.digest) { return }
        let writer = try await fetchBlob(repository, descriptor.digest, expectedSize: descriptor.size) {
            IngestWriter(try store.beginIngest(algorithm: descriptor.digest.algorithm))
        }
        guard let ingest = writer as? IngestWriter else { writer.abort(); return }
        do {
            _ = try await onOwnThread { try ingest.ingest.commit(expected: descriptor.digest, expectedSize: descriptor.size, diffID: diffID) }
        } catch {
            ingest.abort()
            throw error
        }
    }
}
