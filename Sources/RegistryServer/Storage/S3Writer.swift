import Foundation

/// One S3 multipart upload: parts sent in order, then completed into one object atomically.
final class MultipartUpload {
    let client: S3Client
    let key: String
    let id: String
    private(set) var etags: [String] = []

    init(client: S3Client, key: String) throws {
        self.client = client
        self.key = key
        let r = try client.send("POST", key: key, query: [("uploads", "")], headers: ["Content-Type: application/octet-stream"])
        guard r.status == 200, let id = S3XML.values("UploadId", in: r.text).first else {
            throw client.failure(r, "starting a multipart upload", key: key)
        }
        self.id = id
    }

    func upload(_ bytes: [UInt8]) throws {
        let r = try client.send("PUT", key: key, query: [("partNumber", String(etags.count + 1)), ("uploadId", id)], body: bytes)
        guard r.status == 200, let etag = r.headers["etag"] else { throw client.failure(r, "uploading part \(etags.count + 1)", key: key) }
        etags.append(etag)
    }

    /// Makes `size` bytes of object `from` the next parts, copied by the server in pieces of at
    /// most 5 GiB (all of them over the 5 MiB minimum when `size` is).
    func copyParts(from source: String, size: Int64) throws {
        let pieces = (size + S3Driver.maxCopySize - 1) / S3Driver.maxCopySize
        let each = (size + pieces - 1) / pieces
        var start: Int64 = 0
        while start < size {
            let end = min(size, start + each) - 1
            var headers = ["x-amz-copy-source: /\(client.config.bucket)/\(S3Client.encode(source, keepSlash: true))"]
            // The range only when needed: curl 7.88 lists x-amz-copy-source-range before
            // x-amz-copy-source in the signed headers, which radosgw rejects, so objects over
            // 5 GiB cannot be appended to through Debian 12's curl.
            if pieces > 1 { headers.append("x-amz-copy-source-range: bytes=\(start)-\(end)") }
            let r = try client.send("PUT", key: key, query: [("partNumber", String(etags.count + 1)), ("uploadId", id)], headers: headers)
            guard r.status == 200, !r.text.contains("<Error>"), let etag = S3XML.values("ETag", in: r.text).first else {
                throw client.failure(r, "copying \(source) into part \(etags.count + 1)", key: key)
            }
            etags.append(etag)
            start = end + 1
        }
    }

    func complete() throws {
        var xml = "<CompleteMultipartUpload>"
        for (i, e) in etags.enumerated() { xml += "<Part><PartNumber>\(i + 1)</PartNumber><ETag>\(S3XML.escape(e))</ETag></Part>" }
        xml += "</CompleteMultipartUpload>"
        let r = try client.send("POST", key: key, query: [("uploadId", id)], headers: ["Content-Type: application/xml"], body: Array(xml.utf8))
        guard r.status == 200, !r.text.contains("<Error>") else { throw client.failure(r, "completing a multipart upload", key: key) }
    }

    func abort() {
        _ = try? client.send("DELETE", key: key, query: [("uploadId", id)])
    }
}

/// Appends to an object by rewriting it whole (see `S3Driver`): parts stream out as they fill,
/// and `commit` or `close` replaces the object with the old content followed by the new.
final class S3Writer: StorageWriter {
    let driver: S3Driver
    let key: String
    private(set) var size: Int64
    private var buffer: [UInt8] = []
    /// Earlier content to copy server-side as the first parts, when too large to read back.
    private var copySize: Int64 = 0
    private var upload: MultipartUpload?
    private var finished = false
    private var wrote = false
    private let existed: Bool

    init(driver: S3Driver, key: String) throws {
        self.driver = driver
        self.key = key
        let head = try driver.client.send("HEAD", key: key)
        if head.status == 200 {
            existed = true
            size = Int64(head.headers["content-length"] ?? "") ?? 0
            if size >= Int64(S3Driver.minPartSize) {
                copySize = size
            } else if size > 0 {
                let r = try driver.client.send("GET", key: key)
                guard r.status == 200 else { throw driver.client.failure(r, "reading the upload so far", key: key) }
                buffer = r.body
                size = Int64(buffer.count)
            }
        } else if head.status == 404 {
            existed = false
            size = 0
        } else {
            throw driver.client.failure(head, "HEAD", key: key)
        }
    }

    deinit { close() }

    func write(_ chunk: UnsafeRawBufferPointer) throws {
        buffer.append(contentsOf: chunk)
        wrote = true
        size += Int64(chunk.count)
        if buffer.count >= driver.partSize { try sendPart() }
    }

    private func sendPart() throws {
        if upload == nil {
            let u = try MultipartUpload(client: driver.client, key: key)
            upload = u
            do { if copySize > 0 { try u.copyParts(from: key, size: copySize) } } catch { u.abort(); upload = nil; throw error }
        }
        guard let upload else { return }
        do { try upload.upload(buffer) } catch { upload.abort(); self.upload = nil; finished = true; throw error }
        buffer.removeAll(keepingCapacity: true)
    }

    func commit() throws {
        guard !finished else { return }
        finished = true
        if upload == nil {
            if existed && !wrote { return }  // nothing new
            if copySize == 0 {
                // small: one PUT of the whole
                let r = try driver.client.send("PUT", key: key, headers: ["Content-Type: application/octet-stream"], body: buffer)
                guard r.status == 200 else { throw driver.client.failure(r, "PUT", key: key) }
                return
            }
            try sendPart()
        } else if !buffer.isEmpty {
            try sendPart()
        }
        guard let upload else { return }
        do { try upload.complete() } catch { upload.abort(); throw error }
    }

    func close() { try? commit() }

    /// The object is completed either way; this says whether that worked.
    func finish() throws { try commit() }
}
