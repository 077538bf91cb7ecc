import Foundation
import OCI

/// A manifest as stored: its bytes' digest, size and media type.
public struct StoredManifest: Sendable {
    public var digest: Digest
    public var mediaType: String
    public var content: StorageContent
    public var size: Int64
}

/// The registry's data model over a `StorageDriver`: content-addressed blobs stored once,
/// per-repository links to blobs and manifests, tags, referrers and upload sessions.
///
/// Layout (driver paths):
/// - `blobs/<alg>/<2 hex>/<hex>/data` — the bytes, written once, by rename
/// - `repositories/<name>/_layers/<alg>/<hex>` — the repository may serve that blob
/// - `repositories/<name>/_manifests/revisions/<alg>/<hex>` — content: media type
/// - `repositories/<name>/_manifests/tags/<tag>` — content: digest
/// - `repositories/<name>/_referrers/<alg>/<subject hex>/<alg>-<hex>` — content: descriptor JSON
/// - `_uploads/<uuid>/data`, `_uploads/<uuid>/repo` — sessions in progress, never visible as blobs;
///   `_uploads/<uuid>/owner` (a `ProcessStamp`) marks a session only its server process knows
///   (a monolithic upload), which dies with that process
public final class RegistryStore: @unchecked Sendable {
    public let driver: any StorageDriver
    /// Largest manifest accepted (the spec asks registries to take at least 4 MiB).
    public var maxManifestBytes = 4 * 1024 * 1024
    /// Upload sessions hashed while they stream (the rest hash their file at commit).
    static let maxStreamingHashes = 4096

    let lock = NSLock()
    var hashes: [String: UploadHash] = [:]
    /// Manifest bytes by digest, for shared (remote) storage.
    let manifestCache = ManifestCache(budget: 32 << 20)

    public init(driver: any StorageDriver) {
        self.driver = driver
    }

    // MARK: paths

    static func blobPath(_ d: Digest) -> String {
        "blobs/\(d.algorithm.rawValue)/\(d.encoded.prefix(2))/\(d.encoded)/data"
    }
    static func repoPath(_ name: String) -> String { "repositories/\(name)" }
    static func layerLink(_ name: String, _ d: Digest) -> String { "repositories/\(name)/_layers/\(d.algorithm.rawValue)/\(d.encoded)" }
    static func revisionLink(_ name: String, _ d: Digest) -> String { "repositories/\(name)/_manifests/revisions/\(d.algorithm.rawValue)/\(d.encoded)" }
    static func tagsDir(_ name: String) -> String { "repositories/\(name)/_manifests/tags" }
    static func tagPath(_ name: String, _ tag: String) -> String { "repositories/\(name)/_manifests/tags/\(tag)" }
    static func referrersDir(_ name: String, _ subject: Digest) -> String {
        "repositories/\(name)/_referrers/\(subject.algorithm.rawValue)/\(subject.encoded)"
    }
    static func uploadDir(_ id: String) -> String { "_uploads/\(id)" }

    // MARK: repositories

    public func repositoryExists(_ name: String) -> Bool {
        driver.stat(RegistryStore.repoPath(name) + "/_manifests") != nil || driver.stat(RegistryStore.repoPath(name) + "/_layers") != nil
    }

    /// Every repository name, sorted.
    public func catalog() -> [String] {
        var out: [String] = []
        func walk(_ prefix: String, _ path: String) {
            let children = driver.list(path)
            if children.contains("_manifests") || children.contains("_layers") { out.append(prefix) }
            for c in children where !c.hasPrefix("_") {
                if driver.stat(path + "/" + c)?.isDirectory == true {
                    walk(prefix.isEmpty ? c : prefix + "/" + c, path + "/" + c)
                }
            }
        }
        walk("", "repositories")
        return out.sorted()
    }

    // MARK: blobs

    /// Size of a blob the repository links, nil when it does not.
    public func blobSize(_ name: String, _ d: Digest) -> Int64? {
        guard driver.stat(RegistryStore.layerLink(name, d)) != nil else { return nil }
        return driver.stat(RegistryStore.blobPath(d))?.size
    }

    /// Whether the repository links the blob (whether the blob's bytes are there is not checked).
    public func linksBlob(_ name: String, _ d: Digest) -> Bool { driver.stat(RegistryStore.layerLink(name, d)) != nil }

    /// Size of a blob in the shared store, whichever repository linked it.
    public func globalBlobSize(_ d: Digest) -> Int64? { driver.stat(RegistryStore.blobPath(d))?.size }

    public func openBlob(_ d: Digest) throws -> StorageContent { try driver.open(RegistryStore.blobPath(d)) }

    public func linkBlob(_ name: String, _ d: Digest) throws {
        if driver.stat(RegistryStore.layerLink(name, d)) == nil {
            try driver.putContent(RegistryStore.layerLink(name, d), Array(d.description.utf8))
        }
    }

    /// Removes a repository's link to a blob; false when there was none.
    public func unlinkBlob(_ name: String, _ d: Digest) throws -> Bool {
        guard driver.stat(RegistryStore.layerLink(name, d)) != nil else { return false }
        try driver.delete(RegistryStore.layerLink(name, d))
        return true
    }

    /// Mounts a blob into `name`. With `from`, only when that repository has it; without,
    /// whenever the registry holds the blob (the spec's automatic content discovery).
    public func mount(_ name: String, _ d: Digest, from: String?) throws -> Bool {
        if let from {
            guard blobSize(from, d) != nil else { return false }
        } else if globalBlobSize(d) == nil {
            return false
        }
        try linkBlob(name, d)
        return true
    }

    // MARK: uploads

    final class UploadHash {
        var hasher: Digest.Hasher?
        var offset: Int64 = 0
        init() { hasher = Digest.Hasher(.sha256) }
    }

    /// Opens an upload session. `ownedByProcess` sessions are ones no client was told the id of (a
    /// monolithic POST): they are stamped with this process, so a restart can remove them.
    public func startUpload(_ name: String, ownedByProcess: Bool = false) throws -> String {
        let id = UUID().uuidString.lowercased()
        // Sessions need no durability: after a power loss one is simply unknown, and the
        // client starts over.
        if ownedByProcess {
            let o = try driver.writer(RegistryStore.uploadDir(id) + "/owner")
            try Array(ProcessStamp.current.description.utf8).withUnsafeBytes { try o.write($0) }
            try o.finish()
        }
        let r = try driver.writer(RegistryStore.uploadDir(id) + "/repo")
        try Array(name.utf8).withUnsafeBytes { try r.write($0) }
        try r.finish()
        let w = try driver.writer(RegistryStore.uploadDir(id) + "/data")
        try w.finish()
        // Sessions hash as they stream; past the cap a session is hashed from its file at
        // commit instead, so opening sessions without end cannot grow memory without end.
        lock.lock()
        if hashes.count < RegistryStore.maxStreamingHashes { hashes[id] = UploadHash() }
        lock.unlock()
        return id
    }

    /// Upload sessions present in storage (started, not finished or cancelled yet).
    public func uploadSessionCount() -> Int { driver.list("_uploads").count }

    /// The upload's current size; nil when no session `id` exists for repository `name`.

    public func uploadSize(_ name: String, _ id: String) -> Int64? {
        guard RegistryStore.validUploadID(id),
              let repo = try? driver.getContent(RegistryStore.uploadDir(id) + "/repo"),
              String(decoding: repo, as: UTF8.self) == name else { return nil }
        return driver.stat(RegistryStore.uploadDir(id) + "/data")?.size
    }

    static func validUploadID(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 64 && id.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) || $0 == 0x2D }
    }

    /// Streams a request body onto the end of an upload, hashing as it goes.
    public func appendUpload(_ id: String, from body: HTTPRequestBody) throws -> Int64 {
        let w = try driver.writer(RegistryStore.uploadDir(id) + "/data")
        var finished = false
        // An interrupted body keeps what arrived (close); a whole one must be stored (finish).
        defer { if !finished { w.close() } }
        lock.lock()
        var state = hashes[id]
        if state == nil || state?.offset != w.size {
            // The server restarted or lost track: hash from the file at commit time instead.
            state = nil
            hashes[id] = nil
        }
        lock.unlock()
        let size = 1 << 20
        let buf = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n = try body.read(into: buf, count: size)
            if n == 0 { break }
            let chunk = UnsafeRawBufferPointer(start: buf, count: n)
            try w.write(chunk)
            if let state {
                state.hasher?.update(chunk)
                state.offset += Int64(n)
            }
        }
        finished = true
        try w.finish()
        return w.size
    }

    public func cancelUpload(_ id: String) throws {
        lock.lock(); hashes[id] = nil; lock.unlock()
        try driver.delete(RegistryStore.uploadDir(id))
    }

    /// Verifies the upload against `digest` and makes it a blob of `name` in one rename.
    public func commitUpload(_ name: String, _ id: String, digest: Digest) throws -> Int64 {
        let dataPath = RegistryStore.uploadDir(id) + "/data"
        guard let info = driver.stat(dataPath) else { throw DistributionError.uploadUnknown(id) }
        lock.lock()
        let state = hashes.removeValue(forKey: id)
        lock.unlock()
        var actual: Digest?
        if let state, state.offset == info.size, digest.algorithm == .sha256, let h = state.hasher.take() {
            actual = h.finalize()
        }
        if actual == nil { actual = try hashStored(dataPath, algorithm: digest.algorithm) }
        guard actual == digest else {
            try? driver.delete(RegistryStore.uploadDir(id))
            throw DistributionError.digestInvalid("upload hashed to \(actual?.description ?? "?"), client said \(digest)")
        }
        try publishUpload(name, id, digest: digest)
        return info.size
    }

    /// Makes an upload whose bytes were verified against `digest` the blob `digest` of `name`:
    /// durable (already, when its writer was committed), then one rename (kept when the blob
    /// is already there), then the link.
    func publishUpload(_ name: String, _ id: String, digest: Digest, durable: Bool = false) throws {
        let dataPath = RegistryStore.uploadDir(id) + "/data"
        if globalBlobSize(digest) == nil {
            // Durable before it becomes visible.
            if !durable, case .file(let fd, _) = try driver.open(dataPath) { fsync(fd); close(fd) }
            try driver.move(dataPath, to: RegistryStore.blobPath(digest))
        }
        try linkBlob(name, digest)
        try? driver.delete(RegistryStore.uploadDir(id))
    }

    /// Opens a session for bytes this server fetches itself (a pull-through cache's miss):
    /// stamped with this process, so a crash mid-fetch leaves nothing a restart keeps.
    func startFetch(_ name: String) throws -> (id: String, writer: any StorageWriter) {
        let id = try startUpload(name, ownedByProcess: true)
        lock.lock(); hashes[id] = nil; lock.unlock()
        return (id, try driver.writer(RegistryStore.uploadDir(id) + "/data"))
    }

    func hashStored(_ path: String, algorithm: Digest.Algorithm) throws -> Digest {
        var h = Digest.Hasher(algorithm)
        let content = try driver.open(path)
        try content.read(offset: 0, length: content.size) { h.update($0) }
        return h.finalize()
    }

    // MARK: manifests and tags

    /// Resolves a tag or digest to the manifest's digest, nil when unknown.
    public func resolve(_ name: String, _ reference: String) -> Digest? {
        if reference.contains(":") {
            guard let d = try? Digest(parsing: reference), driver.stat(RegistryStore.revisionLink(name, d)) != nil else { return nil }
            return d
        }
        guard Names.isValidTag(reference),
              let bytes = try? driver.getContent(RegistryStore.tagPath(name, reference)),
              let d = try? Digest(parsing: String(decoding: bytes, as: UTF8.self)),
              driver.stat(RegistryStore.revisionLink(name, d)) != nil else { return nil }
        return d
    }

    public func getManifest(_ name: String, _ reference: String) throws -> StoredManifest? {
        guard driver.isShared else {
            guard let d = resolve(name, reference) else { return nil }
            let mediaType = String(decoding: try driver.getContent(RegistryStore.revisionLink(name, d)), as: UTF8.self)
            let content = try driver.open(RegistryStore.blobPath(d))
            return StoredManifest(digest: d, mediaType: mediaType, content: content, size: content.size)
        }
        // Shared (remote) storage, where each read is a round trip. A GET by tag reads the tag
        // every time (a moved tag shows at once on every replica) and, when the manifest's bytes
        // are cached and declare their media type, nothing else: a tag never outlives its
        // revision (`deleteManifest` removes the tags first, `putManifest` writes the revision
        // first), so the tag's existence vouches for the revision link. A GET by digest reads
        // the revision link, whose content doubles as its existence check. The bytes, immutable
        // under their digest, come from a small in-memory cache when they can.
        let d: Digest
        var mediaType: String?
        if reference.contains(":") {
            guard let parsed = try? Digest(parsing: reference) else { return nil }
            d = parsed
            guard let linked = try revisionMediaType(name, d) else { return nil }
            mediaType = linked
        } else {
            guard Names.isValidTag(reference),
                  let bytes = try? driver.getContent(RegistryStore.tagPath(name, reference)),
                  let parsed = try? Digest(parsing: String(decoding: bytes, as: UTF8.self)) else { return nil }
            d = parsed
        }
        let entry: ManifestCache.Entry
        if let cached = manifestCache.get(d) {
            entry = cached
        } else {
            let bytes = try driver.getContent(RegistryStore.blobPath(d))
            guard Digest.compute(bytes, algorithm: d.algorithm) == d else {
                throw RegistryServerError.storage(path: RegistryStore.blobPath(d), reason: "stored manifest does not match its digest \(d)")
            }
            entry = ManifestCache.Entry(bytes: bytes, declaredMediaType: ManifestCache.declaredMediaType(bytes))
            manifestCache.put(d, entry)
        }
        // A manifest without a `mediaType` field was stored with its PUT's Content-Type, which
        // only the revision link records.
        if mediaType == nil { mediaType = entry.declaredMediaType }
        if mediaType == nil {
            guard let linked = try revisionMediaType(name, d) else { return nil }
            mediaType = linked
        }
        return StoredManifest(digest: d, mediaType: mediaType ?? ParsedManifest.ociManifest, content: .bytes(entry.bytes), size: Int64(entry.bytes.count))
    }

    /// The media type a repository's revision link records, nil when the repository has no
    /// such manifest.
    func revisionMediaType(_ name: String, _ d: Digest) throws -> String? {
        do {
            return String(decoding: try driver.getContent(RegistryStore.revisionLink(name, d)), as: UTF8.self)
        } catch RegistryServerError.notFound {
            return nil
        }
    }

    public func manifestBytes(_ d: Digest) throws -> [UInt8] { try driver.getContent(RegistryStore.blobPath(d)) }

    /// Stores a validated manifest under its digest, and the tag when `tag` is given.
    public func putManifest(_ name: String, bytes: [UInt8], manifest: ParsedManifest, tag: String?) throws -> Digest {
        let d = manifest.digest
        if globalBlobSize(d) == nil {
            try driver.putContent(RegistryStore.blobPath(d), bytes)
        }
        try driver.putContent(RegistryStore.revisionLink(name, d), Array(manifest.mediaType.utf8))
        if let subject = manifest.subject {
            try driver.putContent(RegistryStore.referrersDir(name, subject) + "/\(d.algorithm.rawValue)-\(d.encoded)",
                                  manifest.referrerDescriptor(size: Int64(bytes.count)))
        }
        if let tag {
            try driver.putContent(RegistryStore.tagPath(name, tag), Array(d.description.utf8))
        }
        return d
    }

    public func tags(_ name: String) -> [String] { driver.list(RegistryStore.tagsDir(name)) }

    /// Deletes a tag; false when unknown.
    public func deleteTag(_ name: String, _ tag: String) throws -> Bool {
        guard Names.isValidTag(tag), driver.stat(RegistryStore.tagPath(name, tag)) != nil else { return false }
        try driver.delete(RegistryStore.tagPath(name, tag))
        return true
    }

    /// Deletes a manifest revision, the tags that point at it and its referrer entry. The tags
    /// go first, so that no tag ever names a missing revision: replicas on shared storage serve
    /// a GET by tag from the tag alone (`getManifest`).
    public func deleteManifest(_ name: String, _ d: Digest) throws -> Bool {
        guard driver.stat(RegistryStore.revisionLink(name, d)) != nil else { return false }
        for t in tags(name) {
            if let b = try? driver.getContent(RegistryStore.tagPath(name, t)), String(decoding: b, as: UTF8.self) == d.description {
                try driver.delete(RegistryStore.tagPath(name, t))
            }
        }
        if let bytes = try? manifestBytes(d), let parsed = try? ParsedManifest.parse(bytes, contentType: nil),
           let subject = parsed.subject {
            try driver.delete(RegistryStore.referrersDir(name, subject) + "/\(d.algorithm.rawValue)-\(d.encoded)")
        }
        try driver.delete(RegistryStore.revisionLink(name, d))
        return true
    }

    /// Descriptors of the manifests whose `subject` is `subject`, filtered by artifact type.
    public func referrers(_ name: String, _ subject: Digest, artifactType: String?) -> [[String: Any]] {
        let dir = RegistryStore.referrersDir(name, subject)
        var out: [[String: Any]] = []
        for entry in driver.list(dir) {
            guard let bytes = try? driver.getContent(dir + "/" + entry),
                  let obj = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
                  let ds = obj["digest"] as? String, let d = try? Digest(parsing: ds),
                  driver.stat(RegistryStore.revisionLink(name, d)) != nil else { continue }
            if let artifactType, (obj["artifactType"] as? String) != artifactType { continue }
            out.append(obj)
        }
        return out
    }
}

/// Manifest bytes by digest, at most `budget` bytes, oldest out first. Content under a digest
/// never changes, so an entry never goes stale; whether a repository still has the manifest is
/// checked on each request, outside the cache.
final class ManifestCache: @unchecked Sendable {
    struct Entry {
        var bytes: [UInt8]
        /// The body's own `mediaType` field, which fixes the media type for every repository.
        var declaredMediaType: String?
    }

    private let lock = NSLock()
    private var entries: [Digest: Entry] = [:]
    private var order: [Digest] = []
    private var bytes = 0
    let budget: Int

    init(budget: Int) { self.budget = budget }

    /// The top-level `mediaType` string of a JSON manifest, nil when absent or not JSON.
    static func declaredMediaType(_ bytes: [UInt8]) -> String? {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { return nil }
        return obj["mediaType"] as? String
    }

    func get(_ d: Digest) -> Entry? {
        lock.lock(); defer { lock.unlock() }
        return entries[d]
    }

    func put(_ d: Digest, _ value: Entry) {
        guard value.bytes.count <= budget / 8 else { return }
        lock.lock(); defer { lock.unlock() }
        guard entries[d] == nil else { return }
        entries[d] = value
        order.append(d)
        bytes += value.bytes.count
        while bytes > budget, !order.isEmpty {
            let old = order.removeFirst()
            bytes -= entries.removeValue(forKey: old)?.bytes.count ?? 0
        }
    }
}
