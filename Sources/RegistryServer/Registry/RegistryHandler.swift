import Foundation
import OCI

/// What a request asks to do, for authorization: `repository:<name>:<action>` or
/// `registry:catalog:*`.
public struct AccessScope: Sendable, Equatable {
    public var type: String
    public var name: String
    public var action: String
}

/// Decides whether a request may proceed; nil means yes, otherwise the response to send.
public protocol RegistryAuthorizer: Sendable {
    func authorize(_ request: HTTPRequest, context: HTTPRequestContext, scope: AccessScope?) -> HTTPResponse?
    /// Answers the token endpoint when this authorizer issues tokens.
    func tokenResponse(_ request: HTTPRequest, context: HTTPRequestContext) -> HTTPResponse?
    /// Whether an already authorized request may also read `repository`: a cross-repository
    /// mount hands over that repository's blob, so it needs pull there too.
    func mayPull(_ repository: String, request: HTTPRequest, context: HTTPRequestContext) -> Bool
}

extension RegistryAuthorizer {
    /// Who sent `request`, for the access log, read from its `Authorization` header: a Basic
    /// user or a bearer token's `sub`. Only meaningful once `authorize` accepted that header
    /// (the token's signature is not checked again here).
    public func user(of request: HTTPRequest) -> String? {
        guard let h = request.header("Authorization") else { return nil }
        if h.lowercased().hasPrefix("bearer ") {
            let parts = h.dropFirst(7).trimmingCharacters(in: .whitespaces).split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 3, let cb = Base64URL.decode(parts[1]),
                  let claims = try? JSONSerialization.jsonObject(with: Data(cb)) as? [String: Any] else { return nil }
            return claims["sub"] as? String
        }
        return basicCredentials(request)?.user
    }

    /// By default the request's credentials must grant `repository:<name>:pull`.
    public func mayPull(_ repository: String, request: HTTPRequest, context: HTTPRequestContext) -> Bool {
        authorize(request, context: context, scope: AccessScope(type: "repository", name: repository, action: "pull")) == nil
    }
}

/// The distribution-spec v1.1 API over a `RegistryStore`. HTTP concerns stay in `HTTPServer`.
public struct RegistryHandler: HTTPHandler {
    public let store: RegistryStore
    public var readOnly: Bool
    public var authorizer: (any RegistryAuthorizer)?
    /// Whether DELETE of manifests and blobs is served; refused with 405 UNSUPPORTED when not.
    public var deleteEnabled = true
    /// Added to every response (distribution's `http.headers`).
    public var extraHeaders: [(name: String, value: String)] = []
    /// Pull-through cache mode: misses are fetched from this upstream, and every write is
    /// refused (`405 UNSUPPORTED`), as distribution's proxy mode does.
    public var proxy: PullThroughCache?

    public init(store: RegistryStore, readOnly: Bool = false, authorizer: (any RegistryAuthorizer)? = nil) {
        self.store = store
        self.readOnly = readOnly
        self.authorizer = authorizer
    }

    enum Route {
        case base
        case catalog
        case token
        case tags(String)
        case manifest(String, String)
        case blob(String, String)
        case uploads(String)
        case upload(String, String)
        case referrers(String, String)

        var repository: String? {
            switch self {
            case .base, .catalog, .token: nil
            case .tags(let n), .manifest(let n, _), .blob(let n, _), .uploads(let n), .upload(let n, _), .referrers(let n, _): n
            }
        }
    }

    /// The route's name for metrics and the access log (one of `RegistryMetrics.routes`) and
    /// the repository it names, if any.
    static func routeLabel(_ path: String) -> (name: String, repository: String?) {
        routeLabel(route(path))
    }

    /// `routeLabel` of a route already parsed.
    static func routeLabel(_ route: Route?) -> (name: String, repository: String?) {
        (RegistryMetrics.routes[routeIndex(route)], route?.repository)
    }

    /// The index of the route's name in `RegistryMetrics.routes` (`other` for no route).
    static func routeIndex(_ route: Route?) -> Int {
        guard let route else { return RegistryMetrics.routes.count - 1 }
        return switch route {
        case .base: 0
        case .blob: 1
        case .uploads, .upload: 2
        case .catalog: 3
        case .manifest: 4
        case .referrers: 5
        case .tags: 6
        case .token: 7
        }
    }

    static func route(_ path: String) -> Route? {
        if path == "/v2" || path == "/v2/" { return .base }
        if path == "/token" || path == "/v2/token" || path == "/auth/token" { return .token }
        if path == "/v2/_catalog" { return .catalog }
        guard path.hasPrefix("/v2/") else { return nil }
        // Only the last three components decide the route; the name is what comes before.
        // Found by scanning back for slashes, with no array of components (this runs for
        // every request).
        let rest = path.dropFirst(4)
        let u = rest.utf8
        var s1: String.Index?, s2: String.Index?, s3: String.Index?
        var i = u.endIndex
        while i > u.startIndex {
            i = u.index(before: i)
            guard u[i] == UInt8(ascii: "/") else { continue }
            if s1 == nil { s1 = i } else if s2 == nil { s2 = i } else { s3 = i; break }
        }
        guard let s1, let s2 else { return nil }
        let last = rest[u.index(after: s1)...]
        let second = rest[u.index(after: s2)..<s1]
        let third = s3.map { rest[u.index(after: $0)..<s2] } ?? rest[..<s2]
        let name2 = String(rest[..<s2])
        if second == "tags", last == "list" { return .tags(name2) }
        if third == "blobs", second == "uploads" {
            guard let s3 else { return nil }
            let nm = String(rest[..<s3])
            return last.isEmpty ? .uploads(nm) : .upload(nm, String(last))
        }
        if second == "blobs", last == "uploads" { return .uploads(name2) }
        if last.isEmpty { return nil }
        if second == "manifests" { return .manifest(name2, String(last)) }
        if second == "blobs" { return .blob(name2, String(last)) }
        if second == "referrers" { return .referrers(name2, String(last)) }
        return nil
    }

    static func action(for method: String) -> String {
        switch method {
        case "GET", "HEAD": "pull"
        case "DELETE": "delete"
        default: "push"
        }
    }

    public func handle(_ request: HTTPRequest, context: HTTPRequestContext) -> HTTPResponse {
        let route = RegistryHandler.route(request.path)
        var response = dispatch(request, route: route, context: context)
        response.headers.append(("Docker-Distribution-API-Version", "registry/2.0"))
        // The id of this exchange, also in its access-log line, so a client's report can be found.
        let id = UUID().uuidString.lowercased()
        response.headers.append(("X-Request-Id", id))
        response.headers.append(contentsOf: extraHeaders)
        response.registryRoute = .some(route)
        response.requestID = id
        return response
    }

    func dispatch(_ request: HTTPRequest, route: Route?, context: HTTPRequestContext) -> HTTPResponse {
        guard let route else {
            return RegistryHandler.error(DistributionError(404, .unsupported, "no such endpoint", detail: request.path))
        }
        if case .token = route {
            guard let authorizer, var r = authorizer.tokenResponse(request, context: context) else {
                return RegistryHandler.error(DistributionError(404, .unsupported, "this registry issues no tokens"))
            }
            if r.status == 200 { r.user = basicCredentials(request)?.user }
            return r
        }
        if let name = route.repository, !Names.isValidRepository(name) {
            return RegistryHandler.error(DistributionError(400, .nameInvalid, "invalid repository name", detail: name))
        }
        if let authorizer {
            let scope: AccessScope?
            switch route {
            case .base: scope = nil
            case .catalog: scope = AccessScope(type: "registry", name: "catalog", action: "*")
            default: scope = AccessScope(type: "repository", name: route.repository ?? "", action: RegistryHandler.action(for: request.method))
            }
            if let denied = authorizer.authorize(request, context: context, scope: scope) { return denied }
            var r = serve(route, request, context: context)
            r.user = authorizer.user(of: request)
            return r
        }
        return serve(route, request, context: context)
    }

    /// A request that passed routing and authorization.
    func serve(_ route: Route, _ request: HTTPRequest, context: HTTPRequestContext) -> HTTPResponse {
        let isRead = request.method == "GET" || request.method == "HEAD"
        if let proxy, !isRead {
            return RegistryHandler.error(.unsupported("this registry is a pull-through cache of \(proxy.config.remoteURL): it serves pulls only; push and delete on the upstream"))
        }
        if readOnly && !isRead {
            return RegistryHandler.error(.unsupported("the registry is read-only (started with --read-only)"))
        }
        if !deleteEnabled && request.method == "DELETE" {
            switch route {
            case .manifest, .blob:
                return RegistryHandler.error(DistributionError(405, .unsupported, "deletion is disabled (storage.delete.enabled is false in the config file)"))
            default: break
            }
        }
        do {
            switch (route, request.method) {
            case (.base, "GET"), (.base, "HEAD"):
                return HTTPResponse(status: 200, headers: [("Content-Type", "application/json")], body: .bytes(Array("{}".utf8)))
            case (.catalog, "GET"):
                return listing(request, all: store.catalog(), key: "repositories", name: nil, linkPath: "/v2/_catalog")
            case (.tags(let name), "GET"):
                if let proxy, let upstream = proxy.tags(name, rawQuery: request.rawQuery) { return upstream }
                guard store.repositoryExists(name) else { throw DistributionError.nameUnknown(name) }
                return listing(request, all: store.tags(name), key: "tags", name: name, linkPath: "/v2/\(name)/tags/list")
            case (.manifest(let name, let ref), "GET"), (.manifest(let name, let ref), "HEAD"):
                if let proxy {
                    guard let d = try proxy.manifest(name, ref) else { throw DistributionError.manifestUnknown(ref) }
                    return try getManifest(name, d.description)
                }
                return try getManifest(name, ref)
            case (.manifest(let name, let ref), "PUT"):
                return try putManifest(name, ref, request)
            case (.manifest(let name, let ref), "DELETE"):
                return try deleteManifest(name, ref)
            case (.blob(let name, let ds), "GET"), (.blob(let name, let ds), "HEAD"):
                if let proxy {
                    let d = try RegistryHandler.digest(ds)
                    if store.blobSize(name, d) == nil, let fetched = try proxy.blob(name, d, head: request.method == "HEAD") {
                        return fetched
                    }
                }
                return try getBlob(name, ds, request)
            case (.blob(let name, let ds), "DELETE"):
                let d = try RegistryHandler.digest(ds)
                guard try store.unlinkBlob(name, d) else { throw DistributionError.blobUnknown(ds) }
                return HTTPResponse(status: 202, headers: [("Docker-Content-Digest", d.description)])
            case (.uploads(let name), "POST"):
                return try postUpload(name, request, context: context)
            case (.upload(let name, let id), "GET"):
                guard let size = store.uploadSize(name, id) else { throw DistributionError.uploadUnknown(id) }
                return RegistryHandler.uploadResponse(204, name, id, size)
            case (.upload(let name, let id), "PATCH"):
                return try patchUpload(name, id, request)
            case (.upload(let name, let id), "PUT"):
                return try putUpload(name, id, request)
            case (.upload(let name, let id), "DELETE"):
                guard store.uploadSize(name, id) != nil else { throw DistributionError.uploadUnknown(id) }
                try store.cancelUpload(id)
                return HTTPResponse(status: 204)
            case (.referrers(let name, let ds), "GET"):
                return try referrers(name, ds, request)
            default:
                return RegistryHandler.error(DistributionError(405, .unsupported, "method \(request.method) is not allowed on \(request.path)"))
            }
        } catch let e as DistributionError {
            return RegistryHandler.error(e)
        } catch HTTPError.bodyTooLarge {
            return RegistryHandler.error(DistributionError(413, .manifestInvalid, "manifest is larger than \(store.maxManifestBytes) bytes"))
        } catch HTTPError.rejected(let status, let reason) {
            return RegistryHandler.error(DistributionError(status, .blobUploadInvalid, "request body framing: \(reason)"))
        } catch let e as HTTPError {
            return RegistryHandler.error(DistributionError(400, .blobUploadInvalid, "request body could not be read", detail: "\(e)"))
        } catch RegistryServerError.storage(let path, let reason) {
            // The storage failed (S3 unreachable, refusing, or failing after retries; a disk
            // error): the request may succeed later, and the client is told so at once.
            return RegistryHandler.error(DistributionError(503, .unavailable, "storage unavailable, try again later",
                                                           detail: "\(path): \(reason)"))
        } catch {
            return RegistryHandler.error(DistributionError(500, .unsupported, "internal error", detail: "\(error)"))
        }
    }

    // MARK: helpers

    static func error(_ e: DistributionError) -> HTTPResponse {
        HTTPResponse(status: e.status, headers: [("Content-Type", "application/json")], body: .bytes(e.body))
    }

    static func json(_ obj: Any, status: Int = 200, contentType: String = "application/json") -> HTTPResponse {
        let data = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return HTTPResponse(status: status, headers: [("Content-Type", contentType)], data: data)
    }

    static func digest(_ s: String) throws -> Digest {
        do { return try Digest(parsing: s) } catch {
            throw DistributionError(400, .digestInvalid, "invalid digest", detail: "\(error)")
        }
    }

    static func uploadResponse(_ status: Int, _ name: String, _ id: String, _ size: Int64) -> HTTPResponse {
        HTTPResponse(status: status, headers: [
            ("Location", "/v2/\(name)/blobs/uploads/\(id)"),
            ("Range", "0-\(max(size - 1, 0))"),
            ("Docker-Upload-UUID", id),
        ])
    }

    /// `n`/`last` pagination with a `Link` header, for tags and the catalog.
    func listing(_ request: HTTPRequest, all: [String], key: String, name: String?, linkPath: String) -> HTTPResponse {
        let q = request.query
        var items = all
        if let last = q["last"], !last.isEmpty { items = items.filter { $0 > last } }
        var link: String?
        if let nText = q["n"], let n = Int(nText), n >= 0 {
            if items.count > n {
                items = Array(items.prefix(n))
                if let lastItem = items.last {
                    let enc = lastItem.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? lastItem
                    link = "<\(linkPath)?n=\(n)&last=\(enc)>; rel=\"next\""
                }
            }
        }
        var obj: [String: Any] = [key: items]
        if let name { obj["name"] = name }
        var r = RegistryHandler.json(obj)
        if let link { r.headers.append(("Link", link)) }
        return r
    }

    // MARK: manifests

    func getManifest(_ name: String, _ ref: String) throws -> HTTPResponse {
        guard let m = try store.getManifest(name, ref) else {
            if ref.contains(":") { _ = try RegistryHandler.digest(ref) }
            throw DistributionError.manifestUnknown(ref)
        }
        let body: HTTPResponse.Body
        switch m.content {
        case .file(let fd, let size): body = .file(fd: fd, offset: 0, length: size)
        case .bytes(let b): body = .bytes(b)
        case .reader: body = .bytes(try m.content.readAll())
        }
        return HTTPResponse(status: 200, headers: [
            ("Content-Type", m.mediaType),
            ("Docker-Content-Digest", m.digest.description),
            ("Etag", "\"\(m.digest)\""),
        ], body: body)
    }

    func putManifest(_ name: String, _ ref: String, _ request: HTTPRequest) throws -> HTTPResponse {
        var tag: String?
        var expected: Digest?
        if ref.contains(":") {
            expected = try RegistryHandler.digest(ref)
        } else {
            guard Names.isValidTag(ref) else {
                throw DistributionError(400, .manifestInvalid, "invalid tag", detail: "\(ref) does not match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
            }
            tag = ref
        }
        let bytes = try request.body.readAll(limit: store.maxManifestBytes)
        let m = try ParsedManifest.parse(bytes, contentType: request.header("Content-Type"), algorithm: expected?.algorithm ?? .sha256)
        if let expected, expected != m.digest {
            throw DistributionError(400, .digestInvalid, "manifest digest does not match the reference", detail: "content is \(m.digest), URL says \(expected)")
        }
        for b in m.blobs where store.blobSize(name, b) == nil {
            throw DistributionError(400, .manifestBlobUnknown, "manifest references a blob this repository does not have", detail: b.description)
        }
        for c in m.manifests where store.resolve(name, c.description) == nil {
            throw DistributionError(400, .manifestBlobUnknown, "index references a manifest this repository does not have", detail: c.description)
        }
        // Push by digest may tag in the same request: `?tag=a&tag=b` (distribution-spec 1.1.1+).
        let extraTags = expected == nil ? [] : request.queryValues("tag")
        for t in extraTags where !Names.isValidTag(t) {
            throw DistributionError(400, .manifestInvalid, "invalid tag", detail: "\(t) does not match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
        }
        let d = try store.putManifest(name, bytes: bytes, manifest: m, tag: tag)
        for t in extraTags { _ = try store.putManifest(name, bytes: bytes, manifest: m, tag: t) }
        var headers: [(name: String, value: String)] = [
            ("Location", "/v2/\(name)/manifests/\(d)"),
            ("Docker-Content-Digest", d.description),
        ]
        if let s = m.subject { headers.append(("OCI-Subject", s.description)) }
        if !extraTags.isEmpty { headers.append(("OCI-Tag", extraTags.joined(separator: ","))) }
        return HTTPResponse(status: 201, headers: headers)
    }

    func deleteManifest(_ name: String, _ ref: String) throws -> HTTPResponse {
        if ref.contains(":") {
            let d = try RegistryHandler.digest(ref)
            guard try store.deleteManifest(name, d) else { throw DistributionError.manifestUnknown(ref) }
        } else {
            guard try store.deleteTag(name, ref) else { throw DistributionError.manifestUnknown(ref) }
        }
        return HTTPResponse(status: 202)
    }

    // MARK: blobs

    /// Parses `bytes=a-b`, `bytes=a-`, `bytes=-n`; nil means serve it whole; throws for 416.
    static func byteRange(_ header: String?, size: Int64) -> ClosedRange<Int64>?? {
        guard let header, header.hasPrefix("bytes=") else { return .some(nil) }
        let spec = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
        if spec.contains(",") { return .some(nil) }
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        if parts[0].isEmpty {
            guard let n = Int64(parts[1]), n > 0, size > 0 else { return nil }
            return .some(max(0, size - n)...(size - 1))
        }
        guard let a = Int64(parts[0]), a >= 0, a < size else { return nil }
        if parts[1].isEmpty { return .some(a...(size - 1)) }
        guard let b = Int64(parts[1]), b >= a else { return nil }
        return .some(a...min(b, size - 1))
    }

    func getBlob(_ name: String, _ ds: String, _ request: HTTPRequest) throws -> HTTPResponse {
        let d = try RegistryHandler.digest(ds)
        // The link first; the blob's own existence and size come with opening it (one storage
        // round trip less on S3).
        guard store.linksBlob(name, d) else { throw DistributionError.blobUnknown(ds) }
        // With redirects on (S3), the bytes come straight from the store; HEAD is answered here.
        if request.method == "GET", let url = store.driver.redirectURL(RegistryStore.blobPath(d)) {
            guard store.globalBlobSize(d) != nil else { throw DistributionError.blobUnknown(ds) }
            return HTTPResponse(status: 307, headers: [("Location", url), ("Docker-Content-Digest", d.description)])
        }
        let content: StorageContent
        do { content = try store.openBlob(d) } catch RegistryServerError.notFound { throw DistributionError.blobUnknown(ds) }
        var headers: [(name: String, value: String)] = [
            ("Content-Type", "application/octet-stream"),
            ("Docker-Content-Digest", d.description),
            ("Accept-Ranges", "bytes"),
            ("Etag", "\"\(d)\""),
            ("Cache-Control", "max-age=31536000"),
        ]
        let size = content.size
        guard let range = RegistryHandler.byteRange(request.header("Range"), size: size) else {
            if case .file(let fd, _) = content { close(fd) }
            headers.append(("Content-Range", "bytes */\(size)"))
            return HTTPResponse(status: 416, headers: headers)
        }
        let lower = range?.lowerBound ?? 0
        let length = range.map { $0.upperBound - $0.lowerBound + 1 } ?? size
        if let range { headers.append(("Content-Range", "bytes \(range.lowerBound)-\(range.upperBound)/\(size)")) }
        let body: HTTPResponse.Body
        switch content {
        case .file(let fd, _): body = .file(fd: fd, offset: lower, length: length)
        case .bytes(let b): body = .bytes(Array(b[Int(lower)..<Int(lower + length)]))
        case .reader(let r):
            // Only the range asked for is fetched, a piece at a time as the client takes it.
            body = .stream(length: length, ProducedBody { sink in try r.read(offset: lower, length: length, into: sink) })
        }
        return HTTPResponse(status: range == nil ? 200 : 206, headers: headers, body: body)
    }

    // MARK: uploads

    func postUpload(_ name: String, _ request: HTTPRequest, context: HTTPRequestContext) throws -> HTTPResponse {
        let q = request.query
        if let mountText = q["mount"] {
            let d = try RegistryHandler.digest(mountText)
            var from = q["from"].flatMap { $0.isEmpty ? nil : $0 }
            if let from, !Names.isValidRepository(from) {
                throw DistributionError(400, .nameInvalid, "invalid repository name in from=", detail: from)
            }
            // With authentication on, mount only from a repository the caller may pull from
            // (without `from`: the first such repository holding the blob); otherwise fall
            // through to an ordinary upload (202), so naming a digest never leaks a blob.
            var allowed = true
            if let authorizer {
                if let source = from {
                    allowed = authorizer.mayPull(source, request: request, context: context)
                } else {
                    from = store.catalog().first {
                        $0 != name && store.blobSize($0, d) != nil && authorizer.mayPull($0, request: request, context: context)
                    }
                    allowed = from != nil
                }
            }
            if allowed, try store.mount(name, d, from: from) {
                return HTTPResponse(status: 201, headers: [("Location", "/v2/\(name)/blobs/\(d)"), ("Docker-Content-Digest", d.description)])
            }
        }
        if let ds = q["digest"] {
            let d = try RegistryHandler.digest(ds)
            let id = try store.startUpload(name, ownedByProcess: true)
            do {
                _ = try store.appendUpload(id, from: request.body)
                _ = try store.commitUpload(name, id, digest: d)
            } catch {
                try? store.cancelUpload(id)
                throw error
            }
            return HTTPResponse(status: 201, headers: [("Location", "/v2/\(name)/blobs/\(d)"), ("Docker-Content-Digest", d.description)])
        }
        let id = try store.startUpload(name)
        var size: Int64 = 0
        if request.body.isPresent { size = try store.appendUpload(id, from: request.body) }
        var r = RegistryHandler.uploadResponse(202, name, id, size)
        r.headers.append(("OCI-Chunk-Min-Length", "0"))
        return r
    }

    /// Checks `Content-Range: <start>-<end>` against the upload's size.
    func checkContentRange(_ request: HTTPRequest, name: String, id: String, size: Int64) throws -> HTTPResponse? {
        guard let cr = request.header("Content-Range") else { return nil }
        let spec = cr.hasPrefix("bytes ") ? String(cr.dropFirst(6)) : cr
        let parts = spec.split(separator: "/").first?.split(separator: "-") ?? []
        guard parts.count == 2, let a = Int64(parts[0]), let b = Int64(parts[1]), b >= a else {
            throw DistributionError(400, .blobUploadInvalid, "malformed Content-Range", detail: cr)
        }
        if a != size {
            var r = RegistryHandler.uploadResponse(416, name, id, size)
            r.headers.append(("Content-Type", "application/json"))
            r.body = .bytes(DistributionError(416, .blobUploadInvalid, "chunk out of order: the upload has \(size) bytes, the chunk starts at \(a)").body)
            return r
        }
        if let len = request.body.contentLength, len != b - a + 1 {
            throw DistributionError(400, .sizeInvalid, "Content-Range \(cr) disagrees with Content-Length \(len)")
        }
        return nil
    }

    func patchUpload(_ name: String, _ id: String, _ request: HTTPRequest) throws -> HTTPResponse {
        guard let size = store.uploadSize(name, id) else { throw DistributionError.uploadUnknown(id) }
        if let refused = try checkContentRange(request, name: name, id: id, size: size) { return refused }
        let newSize = try store.appendUpload(id, from: request.body)
        return RegistryHandler.uploadResponse(202, name, id, newSize)
    }

    func putUpload(_ name: String, _ id: String, _ request: HTTPRequest) throws -> HTTPResponse {
        guard let size = store.uploadSize(name, id) else { throw DistributionError.uploadUnknown(id) }
        guard let ds = request.query["digest"] else {
            throw DistributionError(400, .digestInvalid, "PUT to finish an upload needs ?digest=")
        }
        let d = try RegistryHandler.digest(ds)
        if request.body.isPresent {
            if let refused = try checkContentRange(request, name: name, id: id, size: size) { return refused }
            _ = try store.appendUpload(id, from: request.body)
        }
        _ = try store.commitUpload(name, id, digest: d)
        return HTTPResponse(status: 201, headers: [("Location", "/v2/\(name)/blobs/\(d)"), ("Docker-Content-Digest", d.description)])
    }

    // MARK: referrers

    func referrers(_ name: String, _ ds: String, _ request: HTTPRequest) throws -> HTTPResponse {
        let d = try RegistryHandler.digest(ds)
        let filter = request.query["artifactType"].flatMap { $0.isEmpty ? nil : $0 }
        let list = store.referrers(name, d, artifactType: filter)
        var r = RegistryHandler.json(["schemaVersion": 2, "mediaType": ParsedManifest.ociIndex, "manifests": list],
                                     contentType: ParsedManifest.ociIndex)
        if filter != nil { r.headers.append(("OCI-Filters-Applied", "artifactType")) }
        return r
    }
}
