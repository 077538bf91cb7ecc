import Foundation
import Synchronization

/// Stores everything as objects in one S3 bucket (AWS, Ceph's radosgw, MinIO), signed with
/// SigV4 by libcurl. S3 has no directories: a "directory" is a key prefix, present while any
/// object lies under it. Each object write is atomic in S3, so readers never see a mix.
///
/// Appending (upload sessions) works on whole objects: a writer keeps what it is given in memory
/// until a part's worth (`partSize`) has gathered, then streams parts of a multipart upload; the
/// object's earlier content becomes the upload's first parts by server-side copy (or is read back
/// when it is smaller than S3's 5 MiB part minimum). `commit` and `close` both complete the upload,
/// so the object is replaced, whole, by old + new content, and an interrupted request keeps what
/// it wrote, as with the filesystem driver.
public struct S3Driver: StorageDriver {
    let client: S3Client
    /// Bytes gathered before a part is sent; S3 wants at least 5 MiB for all parts but the last.
    var partSize = 8 << 20
    static let minPartSize = 5 << 20
    /// Largest range one server-side copy (object or part) may take.
    static let maxCopySize: Int64 = 5 << 30

    public init(config: S3Config) throws {
        guard !config.bucket.isEmpty else { throw RegistryServerError.invalidConfiguration("storage.s3.bucket is empty; name the bucket to store into") }
        guard !config.region.isEmpty || !config.endpoint.isEmpty else {
            throw RegistryServerError.invalidConfiguration("storage.s3 needs a region (or a regionendpoint)")
        }
        guard !config.accessKey.isEmpty, !config.secretKey.isEmpty else {
            throw RegistryServerError.invalidConfiguration("storage.s3 has no credentials; set accesskey and secretkey, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        }
        var c = config
        if c.region.isEmpty { c.region = "us-east-1" }
        client = S3Client(config: c)
    }

    public var config: S3Config { client.config }

    /// Replicas on other hosts share the bucket.
    public var isShared: Bool { true }

    /// Seconds a presigned blob URL stays valid (distribution's S3 driver uses 20 minutes).
    static let redirectLifetime = 1200

    /// A presigned GET URL of the object when `redirect` is on.
    public func redirectURL(_ path: String) -> String? {
        guard config.redirect else { return nil }
        return S3Presign.url(client, key: key(path), expires: S3Driver.redirectLifetime)
    }

    /// Checks that the bucket exists and the credentials may use it, so a misconfigured
    /// registry fails at start with a clear message rather than on its first request.
    public func checkBucket() throws {
        let r = try client.send("GET", key: nil, query: [("list-type", "2"), ("max-keys", "1"), ("prefix", prefix(""))])
        guard r.status == 200 else { throw client.failure(r, "listing the bucket", key: "") }
    }

    func key(_ path: String) -> String {
        let clean = path.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
        if config.rootDirectory.isEmpty { return clean }
        return clean.isEmpty ? config.rootDirectory : config.rootDirectory + "/" + clean
    }

    /// The key prefix of everything under `path`, ending in `/` (empty for the bucket's root).
    func prefix(_ path: String) -> String {
        let k = key(path)
        return k.isEmpty ? "" : k + "/"
    }

    public func getContent(_ path: String) throws -> [UInt8] {
        let k = key(path)
        let r = try client.send("GET", key: k)
        if r.status == 200 { return r.body }
        if r.status == 404 && r.errorCode != "NoSuchBucket" { throw RegistryServerError.notFound(path) }
        throw client.failure(r, "GET", key: k)
    }

    public func putContent(_ path: String, _ bytes: [UInt8]) throws {
        let k = key(path)
        let r = try client.send("PUT", key: k, headers: ["Content-Type: application/octet-stream"], body: bytes)
        guard r.status == 200 else { throw client.failure(r, "PUT", key: k) }
    }

    static func parseDate(_ s: String?) -> Date {
        guard let s else { return Date(timeIntervalSince1970: 0) }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return f.date(from: s) ?? Date(timeIntervalSince1970: 0)
    }

    public func stat(_ path: String) -> StorageFileInfo? {
        let k = key(path)
        if !k.isEmpty, let r = try? client.send("HEAD", key: k), r.status == 200 {
            return StorageFileInfo(size: Int64(r.headers["content-length"] ?? "") ?? 0, isDirectory: false,
                                   modified: S3Driver.parseDate(r.headers["last-modified"]))
        }
        guard let page = try? listPage(prefix: prefix(path), delimiter: true, token: nil, max: 1),
              !page.keys.isEmpty || !page.prefixes.isEmpty else { return nil }
        return StorageFileInfo(size: 0, isDirectory: true, modified: Date(timeIntervalSince1970: 0))
    }

    struct ListPage {
        var keys: [String] = []
        var prefixes: [String] = []
        var next: String?
    }

    func listPage(prefix: String, delimiter: Bool, token: String?, max: Int = 1000) throws -> ListPage {
        var q = [("list-type", "2"), ("max-keys", String(max)), ("prefix", prefix)]
        if delimiter { q.append(("delimiter", "/")) }
        if let token { q.append(("continuation-token", token)) }
        let r = try client.send("GET", key: nil, query: q)
        guard r.status == 200 else { throw client.failure(r, "listing \(prefix)", key: prefix) }
        let xml = r.text
        var page = ListPage()
        page.keys = S3XML.values("Contents", in: xml).flatMap { S3XML.values("Key", in: $0) }
        page.prefixes = S3XML.values("CommonPrefixes", in: xml).flatMap { S3XML.values("Prefix", in: $0) }
        if S3XML.values("IsTruncated", in: xml).first == "true" { page.next = S3XML.values("NextContinuationToken", in: xml).first }
        return page
    }

    /// Every key under `prefix`, all levels.
    func allKeys(under prefix: String) throws -> [String] {
        var keys: [String] = []
        var token: String?
        repeat {
            let page = try listPage(prefix: prefix, delimiter: false, token: token)
            keys += page.keys
            token = page.next
        } while token != nil
        return keys
    }

    public func list(_ path: String) -> [String] {
        (try? listing(path)) ?? []
    }

    public func listing(_ path: String) throws -> [String] {
        let p = prefix(path)
        var names = Set<String>()
        var token: String?
        repeat {
            let page = try listPage(prefix: p, delimiter: true, token: token)
            for k in page.keys where k.count > p.count { names.insert(String(k.dropFirst(p.count))) }
            for d in page.prefixes where d.count > p.count + 1 { names.insert(String(d.dropFirst(p.count).dropLast())) }
            token = page.next
        } while token != nil
        return names.sorted()
    }

    /// A server-side copy of one object (multipart when over 5 GiB).
    func copy(_ fromKey: String, to toKey: String, size: Int64) throws {
        if size > S3Driver.maxCopySize {
            let upload = try MultipartUpload(client: client, key: toKey)
            do {
                try upload.copyParts(from: fromKey, size: size)
                try upload.complete()
            } catch { upload.abort(); throw error }
            return
        }
        let source = "x-amz-copy-source: /\(config.bucket)/\(S3Client.encode(fromKey, keepSlash: true))"
        let r = try client.send("PUT", key: toKey, headers: [source])
        // A copy can fail after S3 answered 200: the error is then in the body.
        guard r.status == 200, !r.text.contains("<Error>") else {
            if r.status == 404 && r.errorCode == "NoSuchKey" { throw RegistryServerError.notFound(fromKey) }
            throw client.failure(r, "copying from \(fromKey)", key: toKey)
        }
    }

    /// Copies then deletes (S3 has no rename): the destination is whole from the moment it
    /// appears, and the source lingers only until the delete.
    public func move(_ from: String, to: String) throws {
        guard let info = stat(from), !info.isDirectory else { throw RegistryServerError.notFound(from) }
        try copy(key(from), to: key(to), size: info.size)
        try deleteKey(key(from))
    }

    func deleteKey(_ k: String) throws {
        let r = try client.send("DELETE", key: k)
        guard r.status == 204 || r.status == 200 || (r.status == 404 && r.errorCode != "NoSuchBucket") else {
            throw client.failure(r, "DELETE", key: k)
        }
    }

    public func delete(_ path: String) throws {
        let k = key(path)
        if !k.isEmpty { try deleteKey(k) }
        let keys = try allKeys(under: prefix(path))
        guard !keys.isEmpty else { return }
        let failure = Mutex<(any Error)?>(nil)
        let workers = min(8, keys.count)
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            var i = w
            while i < keys.count {
                do { try deleteKey(keys[i]) } catch { failure.withLock { $0 = $0 ?? error } }
                i += workers
            }
        }
        if let e = failure.withLock({ $0 }) { throw e }
    }

    public func writer(_ path: String) throws -> any StorageWriter {
        try S3Writer(driver: self, key: key(path))
    }

    /// A reader of the object (one HEAD now; the bytes are fetched in ranges as they are read).
    public func open(_ path: String) throws -> StorageContent {
        let k = key(path)
        let r = try client.send("HEAD", key: k)
        if r.status == 404 { throw RegistryServerError.notFound(path) }
        guard r.status == 200 else { throw client.failure(r, "HEAD", key: k) }
        return .reader(S3ObjectReader(client: client, key: k, size: Int64(r.headers["content-length"] ?? "") ?? 0, etag: r.headers["etag"]))
    }

    /// Multipart uploads in progress under the root: key, upload id, when it was started.
    func multipartUploads() throws -> [(key: String, id: String, initiated: Date)] {
        var out: [(key: String, id: String, initiated: Date)] = []
        var keyMarker: String?, idMarker: String?
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        while true {
            var q = [("uploads", ""), ("prefix", prefix(""))]
            if let keyMarker { q.append(("key-marker", keyMarker)) }
            if let idMarker { q.append(("upload-id-marker", idMarker)) }
            let r = try client.send("GET", key: nil, query: q)
            guard r.status == 200 else { throw client.failure(r, "listing multipart uploads", key: prefix("")) }
            let xml = r.text
            for u in S3XML.values("Upload", in: xml) {
                guard let key = S3XML.values("Key", in: u).first, let id = S3XML.values("UploadId", in: u).first else { continue }
                let when = S3XML.values("Initiated", in: u).first ?? ""
                out.append((key, id, iso.date(from: when) ?? plain.date(from: when) ?? Date()))
            }
            guard S3XML.values("IsTruncated", in: xml).first == "true",
                  let k = S3XML.values("NextKeyMarker", in: xml).first else { break }
            keyMarker = k
            idMarker = S3XML.values("NextUploadIdMarker", in: xml).first
        }
        return out
    }

    /// S3 writers leave no temporary objects, but a writer killed mid-request leaves its
    /// multipart upload unfinished: invisible, yet its parts take space until aborted. Those
    /// started more than `unstampedAge` seconds ago are aborted (a live request's upload is
    /// younger: an upload session's PATCH would have to last the whole upload lifetime).
    /// Returned as `KEY (multipart upload ID)`, the key relative to the root.
    public func removeLeftovers(dryRun: Bool, unstampedAge: TimeInterval) -> [String] {
        guard let uploads = try? multipartUploads() else { return [] }
        let cutoff = Date().addingTimeInterval(-unstampedAge)
        var found: [String] = []
        let root = prefix("")
        for u in uploads where u.initiated < cutoff {
            if !dryRun { _ = try? client.send("DELETE", key: u.key, query: [("uploadId", u.id)]) }
            found.append("\(u.key.dropFirst(root.count)) (multipart upload \(u.id))")
        }
        return found.sorted()
    }
}
