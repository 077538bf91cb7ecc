import Foundation
import OCI

/// What a garbage collection found (and removed unless it was a dry run).
public struct GarbageCollectionReport: Sendable {
    public var keptBlobs = 0
    public var removedBlobs: [Digest] = []
    public var freedBytes: Int64 = 0
    public var removedLinks = 0
    public var removedUploads: [String] = []
    /// Temporary files and directories of interrupted writes (paths under the storage root).
    public var removedTemporaries: [String] = []
}

/// What a crash-leftover sweep found (and removed unless it was a dry run).
public struct LeftoverReport: Sendable, Equatable {
    /// Temporary files and directories whose writer exited (paths under the storage root).
    public var temporaries: [String] = []
    /// Upload sessions only a dead server process knew (interrupted monolithic uploads).
    public var orphanedUploads: [String] = []
    /// Upload sessions idle for longer than the upload lifetime.
    public var staleUploads: [String] = []
    /// Bytes of the upload sessions removed (their data so far).
    public var reclaimedBytes: Int64 = 0

    public var isEmpty: Bool { temporaries.isEmpty && orphanedUploads.isEmpty && staleUploads.isEmpty }
}

extension RegistryStore {
    /// Mark and sweep: a blob survives when a manifest of some repository is it or names it
    /// (config, layers). Everything else goes, with the repository links to it, plus upload
    /// sessions older than `uploadAge`. Run it while nothing pushes: a blob pushed but not yet
    /// named by a manifest counts as garbage, as in distribution. Reads may go on meanwhile
    /// (replicas on S3 keep serving): only blobs no manifest names are removed.
    ///
    /// The mark phase fails rather than guesses: a listing or a manifest that cannot be read
    /// (a storage error, an S3 outage) stops the collection before anything is removed.
    public func collectGarbage(dryRun: Bool, uploadAge: TimeInterval = 3600) throws -> GarbageCollectionReport {
        var report = GarbageCollectionReport()
        var marked = Set<Digest>()
        let repos = try allRepositories()
        for repo in repos {
            for alg in Digest.Algorithm.allCases {
                let dir = "repositories/\(repo)/_manifests/revisions/\(alg.rawValue)"
                for hex in try driver.listing(dir) {
                    guard let d = try? Digest(algorithm: alg, encoded: hex) else { continue }
                    marked.insert(d)
                    let bytes: [UInt8]
                    do { bytes = try manifestBytes(d) } catch RegistryServerError.notFound { continue }
                    guard let m = try? ParsedManifest.parse(bytes, contentType: nil, algorithm: alg) else { continue }
                    marked.formUnion(m.blobs)
                }
            }
        }
        var present = Set<Digest>()
        for alg in Digest.Algorithm.allCases {
            for prefix in try driver.listing("blobs/\(alg.rawValue)") {
                for hex in try driver.listing("blobs/\(alg.rawValue)/\(prefix)") {
                    guard let d = try? Digest(algorithm: alg, encoded: hex) else { continue }
                    present.insert(d)
                    if marked.contains(d) { report.keptBlobs += 1; continue }
                    report.removedBlobs.append(d)
                    report.freedBytes += globalBlobSize(d) ?? 0
                    if !dryRun { try driver.delete("blobs/\(alg.rawValue)/\(prefix)/\(hex)") }
                }
            }
        }
        let removed = Set(report.removedBlobs)
        for repo in repos {
            for alg in Digest.Algorithm.allCases {
                for hex in try driver.listing("repositories/\(repo)/_layers/\(alg.rawValue)") {
                    guard let d = try? Digest(algorithm: alg, encoded: hex),
                          removed.contains(d) || (!present.contains(d) && globalBlobSize(d) == nil) else { continue }
                    report.removedLinks += 1
                    if !dryRun { try driver.delete(RegistryStore.layerLink(repo, d)) }
                }
            }
        }
        let leftovers = removeLeftovers(dryRun: dryRun, uploadLifetime: uploadAge)
        report.removedUploads = (leftovers.orphanedUploads + leftovers.staleUploads).sorted()
        report.removedTemporaries = leftovers.temporaries
        report.removedBlobs.sort()
        return report
    }

    /// Every repository name (as `catalog`), but a listing that fails throws.
    func allRepositories() throws -> [String] {
        var out: [String] = []
        func walk(_ prefix: String, _ path: String, depth: Int) throws {
            guard depth < 64 else { return }
            let children = try driver.listing(path)
            if children.contains("_manifests") || children.contains("_layers") { out.append(prefix) }
            // A file lists as empty, so every other child can be walked without a stat.
            for c in children where !c.hasPrefix("_") {
                try walk(prefix.isEmpty ? c : prefix + "/" + c, path + "/" + c, depth: depth + 1)
            }
        }
        try walk("", "repositories", depth: 0)
        return out.sorted()
    }

    /// Removes what a crashed or killed server left behind, and nothing a live one still uses:
    /// temporary files whose writing process exited (see `ProcessStamp`), upload sessions
    /// stamped with a process that exited (no client knows their id; not on shared storage such
    /// as S3, where the process may live on another host), and any upload session
    /// idle for longer than `uploadLifetime` seconds. Sessions a client was told about stay
    /// resumable across restarts until their lifetime is over. Unstamped temporaries (from
    /// older versions) count as dead after the same lifetime.
    public func removeLeftovers(dryRun: Bool, uploadLifetime: TimeInterval) -> LeftoverReport {
        var report = removeDeadUploads(dryRun: dryRun, uploadLifetime: uploadLifetime)
        report.temporaries = driver.removeLeftovers(dryRun: dryRun, unstampedAge: uploadLifetime)
        return report
    }

    /// The upload part of `removeLeftovers`, cheap enough to run periodically: only
    /// `_uploads` is read, never the whole tree.
    public func removeDeadUploads(dryRun: Bool, uploadLifetime: TimeInterval) -> LeftoverReport {
        var report = LeftoverReport()
        let cutoff = Date().addingTimeInterval(-uploadLifetime)
        let ids = driver.list("_uploads")
        if !dryRun {
            // Forget the in-stream hashes of sessions that are gone: finished or cancelled
            // through another replica. (One started since the listing just hashes at commit.)
            let live = Set(ids)
            lock.lock(); hashes = hashes.filter { live.contains($0.key) }; lock.unlock()
        }
        for id in ids {
            let dir = RegistryStore.uploadDir(id)
            // On shared storage (replicas on one bucket) another host's process cannot be
            // checked from here: its monolithic sessions go by age like any other.
            if !driver.isShared, let owner = try? driver.getContent(dir + "/owner"),
               let stamp = ProcessStamp(Substring(String(decoding: owner, as: UTF8.self))), !stamp.isAlive {
                report.orphanedUploads.append(id)
            } else if let info = driver.stat(dir + "/data") ?? driver.stat(dir), info.modified < cutoff {
                report.staleUploads.append(id)
            } else {
                continue
            }
            report.reclaimedBytes += driver.stat(dir + "/data")?.size ?? 0
            if !dryRun {
                lock.lock(); hashes[id] = nil; lock.unlock()
                try? driver.delete(dir)
            }
        }
        return report
    }
}
