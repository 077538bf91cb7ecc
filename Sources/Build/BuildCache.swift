import Foundation
import OCI
import Archive
import ImageStore
import SystemSupport
#if canImport(Glibc)
import Glibc
#endif

/// A layer of a built image: its blob descriptor and its diffID.
public struct LayerRef: Codable, Sendable, Hashable {
    public var descriptor: Descriptor
    public var diffID: Digest
    public init(descriptor: Descriptor, diffID: Digest) {
        self.descriptor = descriptor
        self.diffID = diffID
    }

    /// The layer as the store's snapshotter names it.
    public var snapshotLayer: SnapshotLayer { SnapshotLayer(blob: descriptor.digest, diffID: diffID) }
}

/// What one cached step produced: a layer, or nothing (an empty change).
public struct CacheRecord: Codable, Sendable, Hashable {
    public var layer: LayerRef?
    public var created: String?
}

/// The builder's state next to the image store (whose snapshotter holds the unpacked layers):
/// the step cache (key -> record, each record holding its blob against gc), cache
/// mounts, and imported caches (`--cache-from`).
public final class BuildCache: @unchecked Sendable {
    public let store: ImageStore
    public let dir: String
    let lock = NSLock()
    var imported: [String: (record: CacheRecord, blobDir: String)] = [:]
    /// Imported records whose layer is still in a registry (fetched on first use).
    var remote: [String: ImageReference] = [:]

    public init(store: ImageStore) throws {
        self.store = store
        dir = store.root + "/build"
        // Unpacked layers, RUN uppers and cache mounts hold whatever images and RUN steps put
        // there, setuid-root binaries included: only root may walk into them.
        try FS.mkdirs(dir)
        if chmod(dir, 0o700) != 0 { throw FS.sys("restrict the permissions of", dir) }
        for d in ["cache", "tmp", "mounts"] { try FS.mkdirs(dir + "/" + d) }
        // Each build's session dir (its COPY staging trees and RUN upper dirs) starts in block
        // groups of its own, away from the trees earlier builds deleted (see FileSystem).
        FileSystem.spreadSubdirectories(dir + "/tmp")
        // Unpacked layers live in the store's snapshotter now; older versions kept them here.
        FS.removeTree(dir + "/layers")
    }

    private let sessionLock = NSLock()
    private var sessionDir: String?

    /// This process's session directory under `<store>/build/tmp` (created on first use): every
    /// temporary file of the build goes there, so a killed build's leftovers can be found.
    var tmp: String {
        sessionLock.lock(); defer { sessionLock.unlock() }
        if let sessionDir { return sessionDir }
        do {
            let d = try BuildSession.create(in: dir + "/tmp")
            BuildInterrupts.register(session: d)
            sessionDir = d
            return d
        } catch {
            // the callers' mkdir reports the problem with its path
            return dir + "/tmp/" + BuildSession.prefix + "unwritable"
        }
    }

    /// Removes this process's session directory (after the build; nothing of it is in use).
    public func endSession() {
        sessionLock.lock(); defer { sessionLock.unlock() }
        guard let d = sessionDir else { return }
        BuildSession.cleanUp(d)
        BuildInterrupts.unregister(session: d)
        sessionDir = nil
    }

    /// A fresh empty directory under the builder's temp dir.
    func tempDir(_ prefix: String) throws -> String {
        let p = "\(tmp)/\(prefix)-\(UUID().uuidString.prefix(12))"
        if mkdir(p, 0o755) != 0 { throw FS.sys("create directory", p) }
        return p
    }

    /// Moves a finished directory into place; a concurrent winner keeps its copy.
    func adopt(_ t: String, as d: String) {
        if rename(t, d) != 0 { FS.removeTree(t) }
    }

    // MARK: records

    func recordPath(_ key: String) -> String { "\(dir)/cache/\(key).json" }

    /// The record for a key, from this store or an imported cache (whose blob is then copied in).
    func lookup(_ key: String) -> CacheRecord? {
        if let data = FileManager.default.contents(atPath: recordPath(key)),
           let rec = try? JSONDecoder().decode(CacheRecord.self, from: data) {
            if let l = rec.layer, !store.has(l.descriptor.digest) { return nil }
            return rec
        }
        lock.lock()
        let imp = imported[key]
        let ref = remote[key]
        lock.unlock()
        guard let imp else { return nil }
        if let l = imp.record.layer, !store.has(l.descriptor.digest), let ref {
            guard fetchRemoteLayer(l, from: ref) else { return nil }
        } else if let l = imp.record.layer, !store.has(l.descriptor.digest) {
            let src = "\(imp.blobDir)/\(l.descriptor.digest.algorithm.rawValue)/\(l.descriptor.digest.encoded)"
            guard (try? ingestFile(src, expected: l.descriptor.digest)) != nil else { return nil }
        }
        try? save(key, imp.record)
        return imp.record
    }

    func save(_ key: String, _ record: CacheRecord) throws {
        let data = try CanonicalJSON.encode(record)
        try FS.writeAtomic(data, to: recordPath(key), temporaryPath: "\(tmp)/rec-\(UUID().uuidString.prefix(12))")
        // Not fsynced, as the record is not: a hold lost in a crash lets gc take a layer no image
        // names, and the step is a miss (`lookup` checks the blob) that runs again.
        if let l = record.layer { try store.hold(l.descriptor.digest, by: "buildcache-\(key.prefix(32))", durable: false) }
    }

    func ingestFile(_ path: String, expected: Digest) throws {
        let ing = try store.ingest()
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { ing.abort(); throw FS.sys("open", path) }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { ing.abort(); throw FS.sys("read", path) }
            if n == 0 { break }
            try buf.withUnsafeBytes { try ing.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        _ = try ing.commit(expected: expected)
    }

    /// All keys of this store's cache.
    public func keys() -> [String] {
        FS.list(dir + "/cache").filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
    }

    // MARK: export / import (type=local)

    struct ExportIndex: Codable { var version = 1; var records: [String: CacheRecord] }

    /// Writes the records of `keys` (and their blobs) to `dest`: `index.json` + `blobs/`.
    public func exportLocal(keys: [String], to dest: String) throws {
        try FS.mkdirs(dest + "/blobs/sha256")
        var records: [String: CacheRecord] = [:]
        let old = dest + "/index.json"
        if let data = FileManager.default.contents(atPath: old), let idx = try? JSONDecoder().decode(ExportIndex.self, from: data) {
            records = idx.records
        }
        for k in keys {
            guard let data = FileManager.default.contents(atPath: recordPath(k)),
                  let rec = try? JSONDecoder().decode(CacheRecord.self, from: data) else { continue }
            records[k] = rec
            if let l = rec.layer {
                let out = "\(dest)/blobs/\(l.descriptor.digest.algorithm.rawValue)/\(l.descriptor.digest.encoded)"
                if !FS.exists(out), let st = FS.follow(store.path(for: l.descriptor.digest)) {
                    try FS.copyFile(store.path(for: l.descriptor.digest), out + ".tmp", st: st)
                    rename(out + ".tmp", out)
                }
            }
        }
        let data = try CanonicalJSON.encode(ExportIndex(records: records))
        try FS.writeAtomic(data, to: old)
    }

    /// Makes the records under `src` available as cache hits for this process.
    public func importLocal(from src: String) throws {
        guard let data = FileManager.default.contents(atPath: src + "/index.json") else {
            throw BuildError.notFound("cache import: \(src)/index.json not found (was it written by --cache-to type=local,dest=\(src)?)")
        }
        let idx = try JSONDecoder().decode(ExportIndex.self, from: data)
        lock.lock(); defer { lock.unlock() }
        for (k, r) in idx.records { imported[k] = (r, src + "/blobs") }
    }

    /// The record stored for a key in this store.
    public func record(_ key: String) -> CacheRecord? {
        guard let data = FileManager.default.contents(atPath: recordPath(key)) else { return nil }
        return try? JSONDecoder().decode(CacheRecord.self, from: data)
    }

    /// Removes records, oldest first, until their layers take at most `keepBytes`, with their holds
    /// and unpacked layers; the store's gc then frees the blobs.
    public func prune(keepBytes: Int64 = 0) -> Int {
        var entries: [(key: String, mtime: Int, size: Int64)] = keys().map { k in
            let m = FS.info(recordPath(k)).map { Int($0.st_mtim.tv_sec) } ?? 0
            return (k, m, record(k)?.layer?.descriptor.size ?? 0)
        }
        entries.sort { $0.mtime > $1.mtime }
        var kept: Int64 = 0
        var n = 0
        for e in entries {
            if kept + e.size <= keepBytes && keepBytes > 0 { kept += e.size; continue }
            unlink(recordPath(e.key))
            store.release(holder: "buildcache-\(e.key.prefix(32))")
            n += 1
        }
        return n
    }
}
