import Foundation
import ImageStore
import OCI

/// Choices for `push`.
public struct PushOptions: Sendable {
    /// Blobs uploaded at once.
    public var maxConcurrent = 4
    /// Blobs larger than this go up in equal `PATCH` chunks of at most this size; smaller ones
    /// in one `PUT`. Each request costs the registry an fsync and a saved hash state, and
    /// distribution drops a session whose request broke (the blob starts over either way), so
    /// chunks stay large: 96 MiB keeps each request under the 100 MB body limit common on
    /// proxies in front of registries.
    public var chunkSize: Int64 = 96 << 20
    /// Repositories of the target registry that may hold the blobs (tried with a cross-repository
    /// mount). Names the store has for the image on the same registry are added automatically.
    public var mountFrom: [String] = []
    public var progress: TransferProgress?

    public init(maxConcurrent: Int = 4, chunkSize: Int64 = 96 << 20, mountFrom: [String] = [], progress: TransferProgress? = nil) {
        self.maxConcurrent = maxConcurrent
        self.chunkSize = chunkSize
        self.mountFrom = mountFrom
        self.progress = progress
    }
}

/// What a push sent.
public struct PushResult: Sendable {
    /// The top-level manifest or index as pushed (its digest is what the registry serves).
    public var descriptor: Descriptor
    public var uploadedBlobs = 0
    public var mountedBlobs = 0
    public var skippedBlobs = 0
    public var uploadedBytes: Int64 = 0
}

extension RegistryClient {
    /// Pushes the image `descriptor` (a manifest or index in `store`) as `reference`: blobs
    /// first (HEAD, mount, monolithic or chunked upload), then manifests by digest, then the
    /// top-level document by tag.
    public func push(_ descriptor: Descriptor, from store: any ContentStore, to reference: ImageReference,
                     options: PushOptions = PushOptions()) async throws -> PushResult {
        try RegistryClient.checkChunkSize(options.chunkSize)
        let repo = reference.path
        var mountFrom = options.mountFrom
        for n in store.names(pointingAt: descriptor.digest) where n.domain == reference.domain && n.path != repo && !mountFrom.contains(n.path) {
            mountFrom.append(n.path)
        }
        let sources = blobSources(store, registry: reference.domain, except: repo)
        var result = PushResult(descriptor: descriptor)
        let topData = try readLocal(store, descriptor.digest)

        if MediaType.isIndex(descriptor.mediaType) {
            let index: ImageIndex
            do { index = try ImageIndex.decode(topData) } catch {
                throw RegistryError.local("index \(descriptor.digest) in the store is invalid: \(error)")
            }
            for child in index.manifests {
                if store.has(child.digest), MediaType.isManifest(child.mediaType) {
                    try await pushManifestTree(child, store: store, repo: repo, mountFrom: mountFrom, sources: sources, options: options, result: &result)
                    _ = try await putManifest(repo, reference: child.digest.description, data: try readLocal(store, child.digest),
                                              mediaType: child.mediaType)
                } else if try await !hasManifest(repo, reference: child.digest.description, push: true) {
                    let p = child.platform?.description ?? child.digest.description
                    throw RegistryError.usage("the index \(descriptor.digest) lists \(p), which is neither in the local store nor in \(endpoint.name)/\(repo); pull the image with --all-platforms first")
                }
            }
        } else if MediaType.isManifest(descriptor.mediaType) {
            try await pushManifestTree(descriptor, store: store, repo: repo, mountFrom: mountFrom, sources: sources, options: options, result: &result)
        } else {
            throw RegistryError.usage("\(descriptor.digest) has media type \(descriptor.mediaType); only images (manifests and indexes) can be pushed")
        }
        let tagOrDigest = reference.tag ?? descriptor.digest.description
        let digest = try await putManifest(repo, reference: tagOrDigest, data: topData, mediaType: descriptor.mediaType)
        guard digest == descriptor.digest else {
            throw RegistryError.digestMismatch(url: endpoint.url("/v2/\(repo)/manifests/\(tagOrDigest)").absoluteString,
                                               expected: descriptor.digest, actual: digest)
        }
        options.progress?(.finished(digest: digest, kind: .manifest, outcome: .pushed, bytes: descriptor.size))
        return result
    }

    /// For each blob, the repositories of `registry` that the store knows hold it: those of every
    /// local name on that registry whose image lists the blob (a base pulled from there, an
    /// image pushed there before). A push mounts from them instead of uploading the bytes again.
    func blobSources(_ store: any ContentStore, registry: String, except repo: String) -> [Digest: [String]] {
        var out: [Digest: [String]] = [:]
        func add(_ manifest: Digest, _ path: String) {
            guard let data = try? store.readBlob(manifest), let m = try? ImageManifest.decode(data) else { return }
            for d in [m.config] + m.layers where !(out[d.digest] ?? []).contains(path) { out[d.digest, default: []].append(path) }
        }
        for e in store.imageNames() {
            let n = e.reference
            guard n.domain == registry, n.path != repo else { continue }
            if MediaType.isIndex(e.descriptor.mediaType) {
                guard let data = try? store.readBlob(e.descriptor.digest), let idx = try? ImageIndex.decode(data) else { continue }
                for c in idx.manifests { add(c.digest, n.path) }
            } else {
                add(e.descriptor.digest, n.path)
            }
        }
        return out
    }

    func readLocal(_ store: any ContentStore, _ digest: Digest) throws -> Data {
        do { return try store.readBlob(digest) } catch {
            throw RegistryError.local("cannot read \(digest) from the store at \(store.location): \(error)")
        }
    }

    /// Config and layers of one manifest, `maxConcurrent` uploads at a time, largest first.
    ///
    /// Largest first because the registry hashes each blob in one sequential stream: the
    /// biggest blob bounds the push from below, so it starts at once and the small ones fill
    /// the other lanes around it (longest-processing-time-first scheduling). The requests that
    /// come before a blob's bytes (HEAD, mount, the POST opening a session) run ahead of the
    /// uploads, so a lane that frees up sends the next blob at once. A lane frees up when its
    /// blob's last byte is sent, not when the registry answers: the registry then still hashes
    /// the tail and fsyncs the blob (about a tenth of a second for 80 MB), and the next blob's
    /// bytes keep its CPUs busy meanwhile.
    private func pushManifestTree(_ manifestDesc: Descriptor, store: any ContentStore, repo: String, mountFrom: [String],
                                  sources: [Digest: [String]], options: PushOptions, result: inout PushResult) async throws {
        let blobs = try blobsToPush(manifestDesc, store: store)
        let progress = options.progress
        let lanes = max(1, options.maxConcurrent)
        enum Step: Sendable {
            case started(Int, BlobUploadStart)
            case sent(Int)
            case finished(Int)
            case failed(any Error)
        }
        let (steps, post) = AsyncStream<Step>.makeStream()
        var outcomes: [(BlobUploadOutcome, Int64)] = []
        var sessions: [Int: URL] = [:]  // opened, not committed yet
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                var starts: [Int: BlobUploadStart] = [:]
                var nextStart = 0, nextUpload = 0, starting = 0
                var sending: Set<Int> = []    // bytes still going out: these hold the lanes
                var committing: Set<Int> = []  // all bytes sent, waiting for the registry
                func schedule() {
                    while true {
                        // Blobs whose bytes are out but not committed are capped at a lane's worth too.
                        if sending.count < lanes, committing.count < lanes, let s = starts.removeValue(forKey: nextUpload) {
                            let i = nextUpload
                            let (d, kind) = blobs[i]
                            nextUpload += 1
                            switch s {
                            case let .done(outcome):
                                let ev: TransferEvent.BlobOutcome = if case let .mounted(from) = outcome { .mounted(from: from) } else { .presentInRegistry }
                                progress?(.finished(digest: d.digest, kind: kind, outcome: ev, bytes: d.size))
                                outcomes.append((outcome, d.size))
                            case let .session(location):
                                sending.insert(i)
                                group.addTask {
                                    do {
                                        try await self.finishBlobUpload(
                                            repo, digest: d.digest, size: d.size,
                                            body: .file(path: store.path(for: d.digest), offset: 0, length: d.size),
                                            at: location, chunkSize: options.chunkSize,
                                            progress: { @Sendable n in
                                                progress?(.progress(digest: d.digest, bytes: n))
                                                if n >= d.size { post.yield(.sent(i)) }
                                            })
                                        progress?(.finished(digest: d.digest, kind: kind, outcome: .pushed, bytes: d.size))
                                        post.yield(.finished(i))
                                    } catch {
                                        post.yield(.failed(error))
                                    }
                                }
                            }
                            continue
                        }
                        // Open sessions at most two lanes' worth ahead of the uploads.
                        if starting < lanes, nextStart < blobs.count, nextStart < nextUpload + 2 * lanes {
                            let i = nextStart
                            let (d, kind) = blobs[i]
                            nextStart += 1
                            starting += 1
                            group.addTask {
                                progress?(.started(digest: d.digest, kind: kind, total: d.size))
                                do {
                                    post.yield(.started(i, try await self.startBlobUpload(repo, digest: d.digest, size: d.size,
                                                                                                    mountFrom: (sources[d.digest] ?? []) + mountFrom.filter { !(sources[d.digest] ?? []).contains($0) })))
                                } catch {
                                    post.yield(.failed(error))
                                }
                            }
                            continue
                        }
                        return
                    }
                }
                schedule()
                for await step in steps {
                    switch step {
                    case let .started(i, s):
                        starting -= 1
                        starts[i] = s
                        if case let .session(url) = s { sessions[i] = url }
                    case let .sent(i):
                        if sending.remove(i) != nil { committing.insert(i) }
                    case let .finished(i):
                        sending.remove(i)
                        committing.remove(i)
                        sessions[i] = nil
                        outcomes.append((.uploaded, blobs[i].0.size))
                    case let .failed(error):
                        throw error
                    }
                    schedule()
                    if outcomes.count == blobs.count { break }
                }
                post.finish()
            }
        } catch {
            post.finish()
            for (_, url) in sessions.sorted(by: { $0.key < $1.key }) {
                await cancelUpload(repo, at: url)
            }
            throw error
        }
        Self.tally(outcomes, into: &result)
    }

    /// The manifest's config and layers, each once, all present in the store, biggest first
    /// (equal sizes keep the manifest's order).
    private func blobsToPush(_ manifestDesc: Descriptor, store: any ContentStore) throws -> [(Descriptor, TransferEvent.BlobKind)] {
        let manifest: ImageManifest
        do { manifest = try ImageManifest.decode(try readLocal(store, manifestDesc.digest)) } catch let e as RegistryError {
            throw e
        } catch {
            throw RegistryError.local("manifest \(manifestDesc.digest) in the store is invalid: \(error)")
        }
        var blobs: [(Descriptor, TransferEvent.BlobKind)] = []
        var seen: Set<Digest> = []
        for (d, kind) in [(manifest.config, TransferEvent.BlobKind.config)] + manifest.layers.map({ ($0, TransferEvent.BlobKind.layer) })
        where seen.insert(d.digest).inserted {
            guard store.has(d.digest) else {
                throw RegistryError.local("blob \(d.digest) of \(manifestDesc.digest) is missing from the store at \(store.location); pull or build the image again")
            }
            blobs.append((d, kind))
        }
        // Stable: equal sizes keep the manifest's order.
        blobs = blobs.enumerated().sorted { ($0.element.0.size, $1.offset) > ($1.element.0.size, $0.offset) }.map(\.element)
        return blobs
    }

    /// Counts what each blob's upload came to in the push's result.
    private static func tally(_ outcomes: [(BlobUploadOutcome, Int64)], into result: inout PushResult) {
        for (o, n) in outcomes {
            switch o {
            case .alreadyPresent: result.skippedBlobs += 1
            case .mounted: result.mountedBlobs += 1
            case .uploaded:
                result.uploadedBlobs += 1
                result.uploadedBytes += n
            }
        }
    }
}
