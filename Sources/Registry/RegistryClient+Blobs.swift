import Foundation
import OCI

/// Where a downloaded blob's bytes go (the image store's ingest, a file...). A writer is
/// thrown away with `abort` when a download has to start over.
public protocol BlobWriter: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
    func abort()
}

/// Streams a blob body into a writer, keeping count so a broken transfer resumes with `Range`.
final class BlobSink: BodySink, @unchecked Sendable {
    private let makeWriter: () throws -> any BlobWriter
    private var pipe: PipelinedWriter?
    var writer: (any BlobWriter)? { pipe?.inner }
    private(set) var received: Int64 = 0
    private let progress: (@Sendable (Int64) -> Void)?
    private var lastReport: Int64 = 0
    /// The size the manifest gives: a body that runs past it is cut off at once (a broken or
    /// hostile registry must not fill the disk before the size check at the end).
    private let expectedSize: Int64?
    private let url: String

    init(url: String, expectedSize: Int64?, makeWriter: @escaping () throws -> any BlobWriter,
         progress: (@Sendable (Int64) -> Void)?) {
        self.url = url
        self.expectedSize = expectedSize
        self.makeWriter = makeWriter
        self.progress = progress
    }

    func begin(_ head: HTTPResponseHead) throws -> Bool {
        var start: Int64 = 0
        if head.status == 206, let cr = head.header("content-range") {
            // "bytes START-END/TOTAL"
            let spec = cr.replacingOccurrences(of: "bytes", with: "").trimmingCharacters(in: .whitespaces)
            start = Int64(spec.split(separator: "-").first ?? "") ?? -1
        }
        if pipe != nil, start == received, start > 0 { return true }
        guard start == 0 else {
            throw RegistryError.invalidResponse(url: url, reason: "range response starts at byte \(start), asked for \(received)")
        }
        // A fresh download, or the server restarted from byte 0: start over.
        pipe?.abort()
        pipe = nil
        pipe = PipelinedWriter(try makeWriter())
        received = 0
        return true
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let expectedSize, received + Int64(bytes.count) > expectedSize {
            throw RegistryError.sizeMismatch(url: url, expected: expectedSize, actual: received + Int64(bytes.count))
        }
        try pipe?.write(bytes)
        received += Int64(bytes.count)
        if let progress, received - lastReport >= 256 << 10 {
            lastReport = received
            progress(received)
        }
    }

    var resumeOffset: Int64 { received }

    /// Everything received is in the writer.
    func finish() throws { try pipe?.finish() }

    func abort() {
        pipe?.abort()
        pipe = nil
    }
}

/// How a blob reached the registry on push.
public enum BlobUploadOutcome: Sendable, Equatable {
    case alreadyPresent
    case mounted(from: String)
    case uploaded
}

/// A blob after the requests before its bytes: nothing left to send, or an open upload session.
enum BlobUploadStart: Sendable {
    case done(BlobUploadOutcome)
    case session(URL)
}

extension RegistryClient {
    func blobURL(_ repository: String, _ digest: Digest) -> URL {
        endpoint.url("/v2/\(repository)/blobs/\(digest)")
    }

    /// The blob's size when the repository has it, nil when it does not (HEAD).
    public func blobSize(_ repository: String, _ digest: Digest, push: Bool = false) async throws -> Int64? {
        let url = blobURL(repository, digest)
        let resp = try await send("HEAD", url, scopes: [RegistryClient.scope(repository, push: push)])
        switch resp.status {
        case 200: return Int64(resp.header("content-length") ?? "") ?? 0
        case 404: return nil
        default: throw httpError(resp, "HEAD", url)
        }
    }

    /// Downloads a blob into writers made by `makeWriter` (a new one if the download restarts),
    /// resuming with `Range` after broken connections. Returns the writer holding all bytes;
    /// the caller commits it (which verifies the digest).
    public func fetchBlob(_ repository: String, _ digest: Digest, expectedSize: Int64?,
                          progress: (@Sendable (Int64) -> Void)? = nil,
                          makeWriter: @escaping () throws -> any BlobWriter) async throws -> any BlobWriter {
        let url = blobURL(repository, digest)
        let sink = BlobSink(url: url.absoluteString, expectedSize: expectedSize, makeWriter: makeWriter, progress: progress)
        let resp: HTTPResponse
        do {
            resp = try await send("GET", url, scopes: [RegistryClient.scope(repository)], sink: sink)
        } catch {
            sink.abort()
            throw error
        }
        guard resp.status == 200 || resp.status == 206, let writer = sink.writer else {
            sink.abort()
            throw httpError(resp, "GET", url)
        }
        // Waits for the writer thread to write its last buffers: off the cooperative pool.
        do { try await onOwnThread { try sink.finish() } } catch {
            sink.abort()
            throw error
        }
        if let expectedSize, sink.received != expectedSize {
            writer.abort()
            throw RegistryError.sizeMismatch(url: url.absoluteString, expected: expectedSize, actual: sink.received)
        }
        progress?(sink.received)
        return writer
    }

    /// Uploads a blob unless the repository has it: HEAD, then a cross-repository mount from
    /// `mountFrom` (repositories of this registry known to hold it), then a monolithic PUT up to
    /// `chunkSize` bytes or chunked PATCHes beyond.
    public func pushBlob(_ repository: String, digest: Digest, size: Int64, body: HTTPBody,
                         mountFrom: [String] = [], chunkSize: Int64 = 96 << 20,
                         progress: (@Sendable (Int64) -> Void)? = nil) async throws -> BlobUploadOutcome {
        try RegistryClient.checkChunkSize(chunkSize)
        switch try await startBlobUpload(repository, digest: digest, size: size, mountFrom: mountFrom) {
        case let .done(outcome):
            return outcome
        case let .session(location):
            try await finishBlobUpload(repository, digest: digest, size: size, body: body, at: location,
                                       chunkSize: chunkSize, progress: progress)
            return .uploaded
        }
    }

    /// The requests that come before a blob's bytes: HEAD (the repository may have it), the
    /// cross-repository mounts, and the POST that opens an upload session. `push` runs these
    /// ahead of the uploads, so a lane that finishes a blob starts sending the next one at once.
    func startBlobUpload(_ repository: String, digest: Digest, size: Int64, mountFrom: [String]) async throws -> BlobUploadStart {
        if let existing = try await blobSize(repository, digest, push: true), existing == size || size < 0 {
            return .done(.alreadyPresent)
        }
        let pushScope = RegistryClient.scope(repository, push: true)
        for source in mountFrom where source != repository {
            var c = URLComponents(url: endpoint.url("/v2/\(repository)/blobs/uploads/"), resolvingAgainstBaseURL: false)
            c?.queryItems = [URLQueryItem(name: "mount", value: digest.description), URLQueryItem(name: "from", value: source)]
            guard let url = c?.url else { continue }
            // A registry may refuse the mount outright (docker-registry answers 401 when the
            // token lacks pull on `from`): that source is out, the bytes get uploaded instead.
            let resp: HTTPResponse
            do {
                resp = try await send("POST", url, scopes: [pushScope, RegistryClient.scope(source)])
            } catch RegistryError.unauthorized {
                continue
            }
            if resp.status == 201 { return .done(.mounted(from: source)) }
            if resp.status == 202 { return .session(try uploadLocation(resp, url)) }
        }
        return .session(try await openUploadSession(repository))
    }

    /// Sends a blob's bytes into the upload session at `start` and commits it with its digest:
    /// one `PUT` up to `chunkSize` bytes, `PATCH` chunks with `Content-Range` beyond.
    ///
    /// After a broken connection a chunk is resent from where the registry says it stopped.
    /// Registries that drop a session whose last request broke (distribution answers
    /// BLOB_UPLOAD_INVALID once the bytes it holds differ from the session state) get a new
    /// session and the blob again from byte 0, at most twice.
    func finishBlobUpload(_ repository: String, digest: Digest, size: Int64, body: HTTPBody, at start: URL,
                          chunkSize: Int64, progress: (@Sendable (Int64) -> Void)?) async throws {
        var location = start
        var restarts = 0
        while true {
            do {
                try await sendBlobBytes(repository, digest: digest, size: size, body: body, at: location,
                                        chunkSize: chunkSize, progress: progress)
                progress?(size)
                return
            } catch let RegistryError.http(status, _, _, errors, _)
                        where restarts < 2 && RegistryClient.sessionLost(status: status, errors: errors) {
                restarts += 1
                location = try await openUploadSession(repository)
            }
        }
    }

    /// A chunk size the upload arithmetic can use (checked before any request goes out).
    static func checkChunkSize(_ chunkSize: Int64) throws {
        guard chunkSize > 0 else { throw RegistryError.usage("chunk size must be positive, not \(chunkSize)") }
    }

    /// Whether an upload request failed because the registry no longer has the session.
    static func sessionLost(status: Int, errors: [RegistryErrorDetail]) -> Bool {
        let codes = Set(errors.map(\.code))
        return status == 404 && (codes.isEmpty || codes.contains("BLOB_UPLOAD_UNKNOWN") || codes.contains("BLOB_UPLOAD_INVALID"))
            || status == 400 && codes.contains("BLOB_UPLOAD_INVALID")
    }

    /// `POST /v2/NAME/blobs/uploads/`: a new upload session.
    func openUploadSession(_ repository: String) async throws -> URL {
        let url = endpoint.url("/v2/\(repository)/blobs/uploads/")
        let resp = try await send("POST", url, scopes: [RegistryClient.scope(repository, push: true)])
        guard resp.status == 202 else { throw httpError(resp, "POST", url) }
        return try uploadLocation(resp, url)
    }

    private func sendBlobBytes(_ repository: String, digest: Digest, size: Int64, body: HTTPBody, at start: URL,
                               chunkSize: Int64, progress: (@Sendable (Int64) -> Void)?) async throws {
        let pushScope = RegistryClient.scope(repository, push: true)
        var location = start
        if size > chunkSize {
            // Equal pieces of at most chunkSize: no runt request at the end.
            let pieces = (size + chunkSize - 1) / chunkSize
            let piece = (size + pieces - 1) / pieces
            var offset: Int64 = 0
            var stalls = 0
            while offset < size {
                let len = min(piece, size - offset)
                let base = offset
                let req = [HTTPHeader("Content-Type", "application/octet-stream"),
                           HTTPHeader("Content-Range", "\(offset)-\(offset + len - 1)")]
                let resp = try await send("PATCH", location, headers: req, body: slice(body, offset, len), scopes: [pushScope],
                                          uploadProgress: progress.map { p in { @Sendable n in p(base + n) } })
                if resp.status == 202 {
                    location = try uploadLocation(resp, location)
                    offset = uploadedEnd(resp) ?? (offset + len)
                } else if resp.status == 416, stalls < 3 {
                    // The registry holds a different amount than we think (a broken PATCH): ask it.
                    stalls += 1
                    let st = try await send("GET", location, scopes: [pushScope])
                    guard st.status == 204 else { throw httpError(st, "GET", location) }
                    location = try uploadLocation(st, location)
                    offset = uploadedEnd(st, status: true) ?? 0
                } else {
                    throw httpError(resp, "PATCH", location)
                }
            }
            let url = try withDigest(location, digest)
            let resp = try await send("PUT", url, body: .data(Data()), scopes: [pushScope])
            guard resp.status == 201 else { throw httpError(resp, "PUT", url) }
            try checkDigestHeader(resp, digest, url)
        } else {
            let url = try withDigest(location, digest)
            let resp = try await send("PUT", url, headers: [HTTPHeader("Content-Type", "application/octet-stream")], body: body,
                                      scopes: [pushScope], uploadProgress: progress)
            guard resp.status == 201 else { throw httpError(resp, "PUT", url) }
            try checkDigestHeader(resp, digest, url)
        }
    }

    /// Gives up an upload session (`DELETE`), once and without retries: a push that failed
    /// leaves no sessions it opened ahead behind. Errors are ignored; registries purge stale
    /// sessions on their own.
    func cancelUpload(_ repository: String, at location: URL) async {
        var req = HTTPRequest(method: "DELETE", url: location)
        req.verifyTLS = endpoint.verifyTLS
        if endpoint.owns(location), let a = try? await auth.authorization(for: [RegistryClient.scope(repository, push: true)]) {
            req.setHeader("Authorization", a)
        }
        _ = try? await transport.perform(req)
    }

    private func slice(_ body: HTTPBody, _ offset: Int64, _ len: Int64) -> HTTPBody {
        switch body {
        case .none: return .none
        case let .data(d):
            let s = d.startIndex + Int(offset)
            return .data(d.subdata(in: s..<(s + Int(len))))
        case let .file(path, o, _): return .file(path: path, offset: o + offset, length: len)
        }
    }

    /// The `Location` of an upload session, absolute.
    func uploadLocation(_ resp: HTTPResponse, _ base: URL) throws -> URL {
        guard let loc = resp.header("location"), let url = URL(string: loc, relativeTo: endpoint.baseURL)?.absoluteURL else {
            throw RegistryError.invalidResponse(url: base.absoluteString, reason: "upload response without a Location header")
        }
        return url
    }

    /// One past the last byte the registry holds, from `Range: 0-N`. Registries write `0-0`
    /// for an empty session as well as for one byte; after a `PATCH` (which sent bytes) it means
    /// one byte, in the answer to a session's status (`status`) it is read as none: resending
    /// a byte costs nothing, skipping one would corrupt the blob.
    func uploadedEnd(_ resp: HTTPResponse, status: Bool = false) -> Int64? {
        guard let r = resp.header("range") else { return nil }
        let spec = r.replacingOccurrences(of: "bytes=", with: "")
        guard let last = spec.split(separator: "-").last, let n = Int64(last) else { return nil }
        if status, n == 0 { return 0 }
        return n + 1
    }

    func withDigest(_ location: URL, _ digest: Digest) throws -> URL {
        guard var c = URLComponents(url: location, resolvingAgainstBaseURL: true) else {
            throw RegistryError.invalidResponse(url: location.absoluteString, reason: "bad upload location")
        }
        var items = c.queryItems ?? []
        items.append(URLQueryItem(name: "digest", value: digest.description))
        c.queryItems = items
        c.percentEncodedQuery = c.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        guard let url = c.url else { throw RegistryError.invalidResponse(url: location.absoluteString, reason: "bad upload location") }
        return url
    }

    func checkDigestHeader(_ resp: HTTPResponse, _ digest: Digest, _ url: URL) throws {
        if let h = resp.header("docker-content-digest"), let d = try? Digest(parsing: h), d != digest {
            throw RegistryError.digestMismatch(url: url.absoluteString, expected: digest, actual: d)
        }
    }
}
