// Garbage collection: remove every blob and layer snapshot that no index entry or hold reaches.
import Foundation
import SystemSupport
import OCI
#if canImport(Glibc)
import Glibc
#endif

/// What `gc()` removed.
public struct GCResult: Sendable, Equatable {
    public var removedBlobs: [Digest] = []
    public var reclaimedBytes: Int64 = 0
    public var removedSnapshots: [String] = []
    public var removedTempFiles = 0
}

extension ImageStore {
    /// Removes unreachable blobs, snapshots of layer stacks no image uses, and temp files left by
    /// crashed writers. Every other store (in any process) that has written blobs must be released
    /// first, because it may hold blobs not yet named: gc waits up to `wait` seconds for them and
    /// then throws `.busy`. Stores that only read do not hold it up.
    @discardableResult
    public func gc(wait: Double = 10) throws -> GCResult {
        let held = lease.withLock { $0.held || $0.scoped > 0 }
        guard gcLease.tryLock(exclusive: true, timeout: wait) else {
            throw ImageStoreError.busy("another dockbuild process is writing to the store at \(root) (a pull, build, load or import); garbage collection waits for it — try again when it has finished")
        }
        defer { if held { try? gcLease.lock(exclusive: false) } else { gcLease.unlock() } }
        return try indexMutex.withLock { _ in
            try FileOps.io { try indexLock.lock(exclusive: true) }
            defer { indexLock.unlock() }
            return try collect()
        }
    }

    private func collect() throws -> GCResult {
        var result = GCResult()
        let idx = try readIndex()
        var roots = idx.manifests.map { d -> Descriptor in var c = d; c.annotations = nil; return c }
        var live: Set<Digest> = []
        var chains: Set<String> = []
        for (_, d) in holds() {
            if let e = roots.first(where: { $0.digest == d }) { roots.append(e); continue }
            guard has(d) else { continue }
            // A held manifest or index keeps what it reaches; any other held blob (a build
            // cache record's layer) keeps itself. Only small blobs can be manifests.
            if (size(of: d) ?? 0) <= 4 << 20, let t = try? sniffMediaType(d) {
                roots.append(Descriptor(mediaType: t, digest: d, size: size(of: d) ?? 0))
            } else {
                live.insert(d)
            }
        }
        for r in roots {
            live.formUnion(reachable(from: r))
        }
        for d in live {
            // Keep snapshots of every chain-ID prefix of live images.
            if let t = try? sniffMediaType(d), MediaType.isManifest(t),
               let m = try? manifest(Descriptor(mediaType: t, digest: d, size: 0)), let c = try? config(m.config) {
                var ids: [Digest] = []
                for diff in c.rootfs.diffIDs {
                    ids.append(diff)
                    if let ch = ImageConfig.chainID(ids) { chains.insert(ch.encoded) }
                }
            }
        }
        for d in try listBlobs() where !live.contains(d) {
            let p = path(for: d)
            let sz = size(of: d) ?? 0
            if unlink(p) == 0 {
                result.removedBlobs.append(d)
                result.reclaimedBytes += sz
            }
        }
        let active = activeTemps.withLock { $0 }
        // A layer snapshot stays while its blob or an image with its chain does; anything else
        // under snapshots/ (a crashed unpack, the flattened snapshots of older versions) goes.
        let layersDir = root + "/snapshots/layers"
        for n in (try? FileManager.default.contentsOfDirectory(atPath: layersDir)) ?? [] where !active.contains(layersDir + "/" + n) {
            if chains.contains(n) { continue }
            if let text = try? String(contentsOfFile: "\(layersDir)/\(n)/blob", encoding: .utf8),
               let blob = try? Digest(parsing: text.trimmingCharacters(in: .whitespacesAndNewlines)), live.contains(blob) { continue }
            FileOps.removeTree(layersDir + "/" + n)
            result.removedSnapshots.append(n)
        }
        let snapDir = root + "/snapshots"
        for n in (try? FileManager.default.contentsOfDirectory(atPath: snapDir)) ?? []
        where n != "layers" && n != "empty" && !active.contains(snapDir + "/" + n) {
            FileOps.removeTree(snapDir + "/" + n)
            result.removedSnapshots.append(n)
        }
        for n in (try? FileManager.default.contentsOfDirectory(atPath: tempDir)) ?? [] where !active.contains(tempDir + "/" + n) {
            FileOps.removeTree(tempDir + "/" + n)
            result.removedTempFiles += 1
        }
        return result
    }
}
