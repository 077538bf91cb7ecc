import Foundation
import Logging
import OCI
import Registry

/// Where a pull-through cache fetches what it lacks: distribution's `proxy` section.
public struct ProxyConfig: Sendable, Equatable {
    /// The upstream registry, `https://host[:port]` or `http://host[:port]` (distribution's
    /// `proxy.remoteurl`).
    public var remoteURL: String
    /// Credentials for the upstream (Basic, or the password grant of its token service).
    public var username: String?
    public var password: String?
    /// Seconds a tag fetched or revalidated from the upstream is served without asking the
    /// upstream again (distribution's `proxy.ttl`, default 168h).
    public var ttl: TimeInterval = 168 * 3600
    /// Seconds one upstream exchange about a manifest, a tag or a blob's size may take in all
    /// (retries included) before the client gets 504; a blob download is bounded by the
    /// transport's stall timeout instead.
    public var timeout: TimeInterval = 30

    public init(remoteURL: String, username: String? = nil, password: String? = nil) {
        self.remoteURL = remoteURL
        self.username = username
        self.password = password
    }

    /// The upstream as the registry client names it: scheme and `host[:port]`; throws for
    /// anything but an `http(s)://host[:port]` URL.
    func endpoint() throws -> RegistryEndpoint {
        guard let c = URLComponents(string: remoteURL), let scheme = c.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = c.host, !host.isEmpty, c.path.isEmpty || c.path == "/", c.query == nil, c.user == nil else {
            throw RegistryServerError.invalidConfiguration("proxy remote URL \(remoteURL) must be http://HOST[:PORT] or https://HOST[:PORT] (no path, no credentials: give --proxy-username and --proxy-password-file)")
        }
        let hostPort = host.contains(":") ? "[\(host)]" : host
        return RegistryEndpoint(registry: c.port.map { "\(hostPort):\($0)" } ?? hostPort, scheme: scheme)
    }
}

/// A pull-through cache in front of one upstream registry (distribution's proxy mode).
/// Manifests by digest and blobs are served from storage once fetched; a miss is fetched from
/// the upstream with the project's registry client (auth, retries, digests checked), stored
/// and served. A tag is served from storage for `ttl` seconds after it was fetched or last
/// confirmed, then revalidated with a HEAD. When the upstream cannot be reached, what is
/// cached is still served and the rest is answered 503.
///
/// The time a tag was last confirmed is its link file's modification time, so replicas on one
/// storage share it and nothing else needs to be stored.
public final class PullThroughCache: @unchecked Sendable {
    public let config: ProxyConfig
    let client: RegistryClient
    let store: RegistryStore
    /// Upstream failures a client was told about, for the operator (warning level).
    let logger: Logger
    private let lock = NSLock()
    /// Blob downloads in progress: a second miss of the same digest waits for the first.
    private var inFlight: [Digest: BlobFetch] = [:]

    public init(config: ProxyConfig, store: RegistryStore, logger: Logger = Logger(label: "dockbuild.registry-server")) throws {
        guard config.ttl >= 0 else {
            throw RegistryServerError.invalidConfiguration("proxy TTL must be 0 or more seconds, not \(config.ttl)")
        }
        let endpoint = try config.endpoint()
        var options = TransportOptions()
        options.connectTimeout = 10
        options.stallTimeout = 30
        options.userAgent = "dockbuild-registry-proxy/0.1"
        let credentials: CredentialSource
        if let user = config.username, !user.isEmpty {
            credentials = .explicit(Credentials(username: user, password: config.password ?? ""))
        } else {
            credentials = .none
        }
        self.config = config
        self.store = store
        self.logger = logger
        // Few, short retries: a client waiting on a miss should hear "unavailable" in seconds.
        client = RegistryClient(endpoint: endpoint, credentials: credentials, transport: Transport(options: options),
                                retry: RetryPolicy(maxRetries: 2, baseDelay: 0.2, maxDelay: 1))
    }

    // MARK: manifests

    /// Makes the manifest `reference` of `name` current in storage and returns the digest to
    /// serve; nil when the upstream does not have it.
    func manifest(_ name: String, _ reference: String) throws -> Digest? {
        if reference.contains(":") {
            let d = try RegistryHandler.digest(reference)
            if store.resolve(name, reference) != nil { return d }
            let fetched = try upstream("GET manifest \(name)@\(d)") { [client] in
                try await client.manifest(name, reference: d.description)
            }
            guard let fetched else { return nil }
            try storeManifest(name, fetched, tag: nil)
            return d
        }
        guard Names.isValidTag(reference) else { return nil }
        let local = store.resolve(name, reference)
        if let local, let info = store.driver.stat(RegistryStore.tagPath(name, reference)),
           Date().timeIntervalSince(info.modified) < config.ttl {
            return local
        }
        // Stale or unknown: ask the upstream which digest the tag names now.
        let answer: UpstreamTag?
        do {
            answer = try upstream("HEAD manifest \(name):\(reference)") { [client] in
                try await PullThroughCache.headManifest(client, name, reference)
            }
        } catch let e as DistributionError where local != nil && e.status >= 500 {
            // The upstream is down: what is cached is still served.
            return local
        }
        guard let answer else { return nil }
        var current: Digest?
        if case .digest(let d) = answer { current = d }
        if let d = current, d == local {
            // Unchanged: confirmed now, so the TTL starts again.
            try store.driver.putContent(RegistryStore.tagPath(name, reference), Array(d.description.utf8))
            return d
        }
        if let d = current, store.resolve(name, d.description) != nil {
            try store.driver.putContent(RegistryStore.tagPath(name, reference), Array(d.description.utf8))
            return d
        }
        // Changed: fetch the digest the HEAD named (checked against it by the client, so a tag
        // moved again meanwhile cannot mix); by tag only when the HEAD named none.
        let wanted = current?.description ?? reference
        let fetched = try upstream("GET manifest \(name):\(reference)") { [client] in
            try await client.manifest(name, reference: wanted)
        }
        guard let fetched else { return nil }
        try storeManifest(name, fetched, tag: reference)
        return fetched.digest
    }

    /// What a HEAD of a tag said.
    enum UpstreamTag: Sendable {
        case digest(Digest)
        /// 200 without a usable `Docker-Content-Digest`: the manifest must be fetched to know.
        case noDigest
    }

    /// The digest the upstream's tag names now (HEAD); a 404 throws as one.
    static func headManifest(_ client: RegistryClient, _ name: String, _ tag: String) async throws -> UpstreamTag {
        let url = client.endpoint.url("/v2/\(name)/manifests/\(tag)")
        let resp = try await client.send("HEAD", url, headers: [HTTPHeader("Accept", RegistryClient.manifestAccept.joined(separator: ", "))],
                                         scopes: [RegistryClient.scope(name)])
        guard resp.status == 200 else {
            throw RegistryError.http(status: resp.status, method: "HEAD", url: url.absoluteString, errors: [], body: "")
        }
        return resp.header("docker-content-digest").flatMap { try? Digest(parsing: $0) }.map { .digest($0) } ?? .noDigest
    }

    private func storeManifest(_ name: String, _ fetched: FetchedManifest, tag: String?) throws {
        let bytes = [UInt8](fetched.data)
        guard bytes.count <= store.maxManifestBytes else {
            throw DistributionError(502, .unavailable, "the upstream's manifest is larger than \(store.maxManifestBytes) bytes (--max-manifest-bytes)")
        }
        let parsed: ParsedManifest
        do {
            parsed = try ParsedManifest.parse(bytes, contentType: fetched.mediaType, algorithm: fetched.digest.algorithm)
        } catch let e as DistributionError {
            throw DistributionError(502, .unavailable, "the upstream sent a manifest this registry cannot store: \(e.message)", detail: e.detail)
        }
        // The registry client checked the bytes against the digest asked for or announced.
        guard parsed.digest == fetched.digest else {
            throw DistributionError(502, .unavailable, "the upstream's manifest does not hash to its digest", detail: "\(parsed.digest) ≠ \(fetched.digest)")
        }
        // Blobs are fetched when asked for, so the manifest is stored without them.
        _ = try store.putManifest(name, bytes: bytes, manifest: parsed, tag: tag)
    }

    // MARK: tags

    /// The upstream's tag list, passed through (with its `Link` for the next page); nil when
    /// the upstream cannot answer, so the local list is served.
    func tags(_ name: String, rawQuery: String) -> HTTPResponse? {
        let path = "/v2/\(name)/tags/list" + (rawQuery.isEmpty ? "" : "?" + rawQuery)
        let resp = try? upstream("GET tags \(name)") { [client] () async throws -> Registry.HTTPResponse in
            try await client.send("GET", client.endpoint.url(path), scopes: [RegistryClient.scope(name)])
        }
        guard let r = resp else { return nil }
        switch r.status {
        case 200:
            var out = HTTPResponse(status: 200, headers: [("Content-Type", "application/json")], data: r.body)
            if let link = r.header("link") { out.headers.append(("Link", link)) }
            return out
        case 404:
            return RegistryHandler.error(.nameUnknown(name))
        default:
            return nil
        }
    }

    // MARK: blobs

    /// Serves a blob the repository lacks: HEAD answers with the upstream's size; GET streams
    /// it from the upstream while it is stored. Returns nil when storage has it by now (another
    /// request fetched it meanwhile), so the caller serves it from there.
    func blob(_ name: String, _ d: Digest, head: Bool) throws -> HTTPResponse? {
        if let running = lock.withLock({ inFlight[d] }) {
            _ = running.wait()
            return try servedLocally(name, d)
        }
        if store.globalBlobSize(d) != nil {
            return try servedLocally(name, d)
        }
        let size = try upstream("HEAD blob \(name)@\(d)") { [client] in
            try await client.blobSize(name, d)
        }
        guard let size, let size else { throw DistributionError.blobUnknown(d.description) }
        let headers: [(name: String, value: String)] = [
            ("Content-Type", "application/octet-stream"),
            ("Docker-Content-Digest", d.description),
            ("Etag", "\"\(d)\""),
        ]
        if head {
            var r = HTTPResponse(status: 200, headers: headers)
            r.contentLengthOverride = size
            return r
        }
        // One download per digest: whoever registers first fetches, the others wait for it.
        let (fetch, started): (BlobFetch, Bool) = lock.withLock {
            if let f = inFlight[d] { return (f, false) }
            let f = BlobFetch(digest: d, size: size)
            inFlight[d] = f
            return (f, true)
        }
        guard started else {
            _ = fetch.wait()
            return try servedLocally(name, d)
        }
        Task.detached { [self] in
            let outcome = await download(name, fetch)
            lock.withLock { inFlight[d] = nil }
            fetch.finish(outcome)
        }
        return HTTPResponse(status: 200, headers: headers, body: .stream(length: size, ProxiedBlobBody(fetch)))
    }

    /// nil when storage has the blob (linked into `name` now), so the handler serves it.
    private func servedLocally(_ name: String, _ d: Digest) throws -> HTTPResponse? {
        guard store.globalBlobSize(d) != nil else {
            throw DistributionError(502, .unavailable, "fetching \(d) from the upstream failed; retry", detail: config.remoteURL)
        }
        try store.linkBlob(name, d)
        return nil
    }

    /// Downloads the blob into an upload session, hashing as it streams, and publishes it
    /// under its digest only when the bytes match; nothing else ever becomes visible.
    private func download(_ name: String, _ fetch: BlobFetch) async -> Result<Void, DistributionError> {
        let d = fetch.digest
        let store = self.store
        do {
            let written = try await client.fetchBlob(name, d, expectedSize: fetch.size) {
                try FetchWriter(store: store, name: name, fetch: fetch)
            }
            guard let writer = written as? FetchWriter else {
                written.abort()
                return .failure(DistributionError(500, .unavailable, "internal error: unexpected blob writer"))
            }
            let outcome = writer.publish()
            if case .failure(let e) = outcome { _ = logged(e) }
            return outcome
        } catch {
            return .failure(logged(PullThroughCache.mapped(error, what: "GET blob \(name)@\(d)", remote: config.remoteURL)))
        }
    }

    // MARK: the upstream

    /// Runs one upstream exchange from a connection thread, for at most `config.timeout`
    /// seconds. Upstream failures become the client's error: 404s come back as nil, an
    /// unreachable upstream as 503, a bad answer as 502, a timeout as 504.
    func upstream<T: Sendable>(_ what: String, _ body: @escaping @Sendable () async throws -> T) throws -> T? {
        let box = UpstreamResult<T>()
        let done = DispatchSemaphore(value: 0)
        let task = Task.detached {
            do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
            done.signal()
        }
        if done.wait(timeout: .now() + config.timeout) == .timedOut {
            task.cancel()
            throw logged(DistributionError(504, .unavailable, "the upstream registry did not answer \(what) within \(Int(config.timeout)) s",
                                           detail: config.remoteURL))
        }
        switch box.result {
        case .success(let v)?: return v
        case .failure(RegistryError.http(404, _, _, _, _))?: return nil
        case .failure(let e)?: throw logged(PullThroughCache.mapped(e, what: what, remote: config.remoteURL))
        case nil: throw DistributionError(500, .unavailable, "internal error: \(what) ended without a result")
        }
    }

    /// Logs an upstream failure a client is about to hear of.
    func logged(_ e: DistributionError) -> DistributionError {
        logger.warning("pull-through cache: \(e.message)", metadata: ["upstream": "\(config.remoteURL)", "status": "\(e.status)",
                                                                    "detail": "\(e.detail ?? "")"])
        return e
    }

    static func mapped(_ error: any Error, what: String, remote: String) -> DistributionError {
        switch error {
        case let e as DistributionError:
            return e
        case RegistryError.transport(_, let message, _):
            return DistributionError(503, .unavailable, "the upstream registry cannot be reached (\(what)): \(message)", detail: remote)
        case RegistryError.unauthorized:
            return DistributionError(502, .unavailable, "the upstream registry refused the proxy's credentials (\(what)); check proxy.username and proxy.password",
                                     detail: "\(error)")
        case RegistryError.http(let status, _, _, _, _) where status == 429:
            return DistributionError(429, .tooManyRequests, "the upstream registry is rate-limiting this proxy (\(what)); retry later", detail: remote)
        default:
            return DistributionError(502, .unavailable, "the upstream registry failed \(what)", detail: "\(error)")
        }
    }
}

/// The outcome of an upstream exchange, handed from its task to the waiting connection thread
/// (written before the semaphore is signalled, read after).
final class UpstreamResult<T: Sendable>: @unchecked Sendable {
    var result: Result<T, any Error>?
}

/// One blob download of the cache, shared by the request that started it (which streams its
/// bytes as they arrive) and any request for the same digest meanwhile (which waits for the end).
final class BlobFetch: @unchecked Sendable {
    let digest: Digest
    let size: Int64
    private let cond = NSCondition()
    private var chunks: [[UInt8]] = []
    private var queued = 0
    /// Whether the first request still takes the bytes; a client that stops reading is let go
    /// and the download goes on into storage.
    private var streaming = true
    /// Bytes handed to the stream so far: a download that restarts from 0 is not sent twice.
    private var delivered: Int64 = 0
    private var outcome: Result<Void, DistributionError>?
    static let queueLimit = 16 << 20
    static let clientPatience: TimeInterval = 60

    init(digest: Digest, size: Int64) {
        self.digest = digest
        self.size = size
    }

    /// Bytes at `offset` of the download, in order (from the download's thread).
    func deliver(_ bytes: UnsafeRawBufferPointer, at offset: Int64) {
        cond.lock()
        defer { cond.unlock() }
        let end = offset + Int64(bytes.count)
        guard streaming, end > delivered else { return }
        let skip = Int(delivered - offset)
        let deadline = Date().addingTimeInterval(BlobFetch.clientPatience)
        while streaming && queued > 0 && queued + bytes.count > BlobFetch.queueLimit {
            if !cond.wait(until: deadline) { dropStream(); return }
        }
        guard streaming else { return }
        chunks.append(Array(bytes[skip...]))
        queued += bytes.count - skip
        delivered = end
        cond.broadcast()
    }

    func finish(_ result: Result<Void, DistributionError>) {
        cond.lock()
        outcome = result
        cond.broadcast()
        cond.unlock()
    }

    /// Waits for the end of the download.
    func wait() -> Result<Void, DistributionError> {
        cond.lock()
        defer { cond.unlock() }
        while outcome == nil { cond.wait() }
        return outcome ?? .success(())
    }

    /// The next bytes for the stream; nil once the download ended well; throws when it failed.
    func take() throws -> [UInt8]? {
        cond.lock()
        defer { cond.unlock() }
        while chunks.isEmpty && outcome == nil { cond.wait() }
        if !chunks.isEmpty {
            let c = chunks.removeFirst()
            queued -= c.count
            cond.broadcast()
            return c
        }
        if case .failure(let e)? = outcome { throw e }
        return nil
    }

    /// The stream stops taking bytes (its client is gone); the download goes on.
    func detach() {
        cond.lock()
        dropStream()
        cond.unlock()
    }

    private func dropStream() {
        streaming = false
        chunks = []
        queued = 0
        cond.broadcast()
    }
}

/// The client's side of a fetch: bytes as they arrive, all but the last one at once. The last
/// byte goes out only when what was sent hashes to the digest, so a client never receives a
/// whole wrong blob: a mismatch cuts the connection one byte short.
final class ProxiedBlobBody: HTTPBodyStream, @unchecked Sendable {
    let fetch: BlobFetch
    init(_ fetch: BlobFetch) { self.fetch = fetch }

    func send(_ write: (UnsafeRawBufferPointer) throws -> Void) throws {
        var hasher = Digest.Hasher(fetch.digest.algorithm)
        var sent: Int64 = 0
        var held: [UInt8] = []
        do {
            while var chunk = try fetch.take() {
                hasher.update(chunk)
                if sent + Int64(chunk.count) >= fetch.size, let last = chunk.popLast() { held = [last] }
                try chunk.withUnsafeBytes { try write($0) }
                sent += Int64(chunk.count)
            }
        } catch {
            fetch.detach()
            throw error
        }
        guard hasher.finalize() == fetch.digest else {
            throw DistributionError(502, .unavailable, "the bytes streamed for \(fetch.digest) do not match it")
        }
        try held.withUnsafeBytes { try write($0) }
    }

    func cancel() { fetch.detach() }
}

/// Where the registry client writes a cache miss: an upload session of the store, hashed as
/// it fills, with each piece also handed to the waiting client.
final class FetchWriter: BlobWriter, @unchecked Sendable {
    let store: RegistryStore
    let name: String
    let fetch: BlobFetch
    let id: String
    private let writer: any StorageWriter
    private var hasher: Digest.Hasher?
    private var offset: Int64 = 0

    init(store: RegistryStore, name: String, fetch: BlobFetch) throws {
        self.store = store
        self.name = name
        self.fetch = fetch
        (id, writer) = try store.startFetch(name)
        hasher = Digest.Hasher(fetch.digest.algorithm)
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try writer.write(bytes)
        hasher?.update(bytes)
        fetch.deliver(bytes, at: offset)
        offset += Int64(bytes.count)
    }

    func abort() {
        writer.close()
        try? store.cancelUpload(id)
    }

    /// Verifies and publishes the download; on a mismatch the session is removed.
    func publish() -> Result<Void, DistributionError> {
        let actual = hasher.take()?.finalize()
        guard let actual, actual == fetch.digest else {
            abort()
            return .failure(DistributionError(502, .unavailable, "the upstream sent bytes for \(fetch.digest) that hash to \(actual?.description ?? "?"); nothing was stored"))
        }
        do {
            try writer.commit()
            try store.publishUpload(name, id, digest: fetch.digest, durable: true)
            return .success(())
        } catch {
            try? store.cancelUpload(id)
            return .failure(DistributionError(500, .unavailable, "storing \(fetch.digest) failed", detail: "\(error)"))
        }
    }
}
