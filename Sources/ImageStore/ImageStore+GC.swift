// Garbage collection: remove every blob and snapshot that no index entry or hold reaches.
import Foundation
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
        let held = leaseHeld.withLock { $0 }
        guard gcLease.tryLock(exclusive: true, timeout: wait) else {
            throw ImageStoreError.busy("another dockbuild process is writing to the store at \(root) (a pull, build, load or import); garbage collection waits for it — try again when it has finished")
        }
        defer { if held { try? gcLease.lock(exclusive: false) } else { gcLease.unlock() } }
        return try indexMutex.withLock { _ in
            try indexLock.lock(exclusive: true)
            defer { indexLock.unlock() }
            return try collect()
        }
    }

    private func collect() throws -> GCResult {
        var result = GCResult()
        let idx = try readIndex()
        var roots = idx.manifests.map { d -> Descriptor in var c = d; c.annotations = nil; return c }
        for (_, d) in holds() {
            if let e = roots.first(where: { $0.digest == d }) { roots.append(e) } else if has(d), let t = try? sniffMediaType(d) {
                roots.append(Descriptor(mediaType: t, digest: d, size: size(of: d) ?? 0))
            }
        }
        var live: Set<Digest> = []
        var chains: Set<String> = []
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
        let snapDir = root + "/snapshots"
        let active = activeTemps.withLock { $0 }
        for n in (try? FileManager.default.contentsOfDirectory(atPath: snapDir)) ?? []
        where !chains.contains(n) && !active.contains(snapDir + "/" + n) {
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
