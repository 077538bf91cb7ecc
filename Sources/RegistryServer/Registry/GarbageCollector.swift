import Foundation
import OCI

/// What a garbage collection found (and removed unless it was a dry run).
public struct GarbageCollectionReport: Sendable {
    public var keptBlobs = 0
    public var removedBlobs: [Digest] = []
    public var freedBytes: Int64 = 0
    public var removedLinks = 0
    public var removedUploads: [String] = []
}

extension RegistryStore {
    /// Mark and sweep: a blob survives when a manifest of some repository is it or names it
    /// (config, layers). Everything else goes, with the repository links to it, plus upload
    /// sessions older than `uploadAge`. Run it while nothing pushes: a blob pushed but not yet
    /// named by a manifest counts as garbage, as in distribution.
    public func collectGarbage(dryRun: Bool, uploadAge: TimeInterval = 3600) throws -> GarbageCollectionReport {
        var report = GarbageCollectionReport()
        var marked = Set<Digest>()
        let repos = catalog()
        for repo in repos {
            for alg in Digest.Algorithm.allCases {
                let dir = "repositories/\(repo)/_manifests/revisions/\(alg.rawValue)"
                for hex in driver.list(dir) {
                    guard let d = try? Digest(algorithm: alg, encoded: hex) else { continue }
                    marked.insert(d)
                    guard let bytes = try? manifestBytes(d), let m = try? ParsedManifest.parse(bytes, contentType: nil, algorithm: alg) else { continue }
                    marked.formUnion(m.blobs)
                }
            }
        }
        for alg in Digest.Algorithm.allCases {
            for prefix in driver.list("blobs/\(alg.rawValue)") {
                for hex in driver.list("blobs/\(alg.rawValue)/\(prefix)") {
                    guard let d = try? Digest(algorithm: alg, encoded: hex) else { continue }
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
                for hex in driver.list("repositories/\(repo)/_layers/\(alg.rawValue)") {
                    guard let d = try? Digest(algorithm: alg, encoded: hex), removed.contains(d) || globalBlobSize(d) == nil else { continue }
                    report.removedLinks += 1
                    if !dryRun { try driver.delete(RegistryStore.layerLink(repo, d)) }
                }
            }
        }
        let cutoff = Date().addingTimeInterval(-uploadAge)
        for id in driver.list("_uploads") {
            if let info = driver.stat("_uploads/\(id)/data") ?? driver.stat("_uploads/\(id)"), info.modified < cutoff {
                report.removedUploads.append(id)
                if !dryRun { try driver.delete("_uploads/\(id)") }
            }
        }
        report.removedBlobs.sort()
        return report
    }
}
