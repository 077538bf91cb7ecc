import Foundation
import Synchronization
import OCI

/// Retry settings for registry requests.
public struct RetryPolicy: Sendable {
    /// Attempts after the first for network errors, 5xx and 429.
    public var maxRetries: Int = 5
    public var baseDelay: Double = 0.25
    public var maxDelay: Double = 8
    public init(maxRetries: Int = 5, baseDelay: Double = 0.25, maxDelay: Double = 8) {
        self.maxRetries = maxRetries
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }
}

/// A client for one registry speaking the distribution v2 protocol.
///
/// Every request goes through `send`, which owns authentication (challenge, token per scope,
/// one retry after a 401), retries with backoff and jitter (network errors, 5xx, 429 with
/// `Retry-After`), redirects (dropping `Authorization` when they leave the registry) and
/// `Range` resume for sinks that can resume.
public final class RegistryClient: Sendable {
    /// The registry; for an insecure one its scheme becomes "http" when HTTPS does not answer.
    public var endpoint: RegistryEndpoint { endpointState.endpoint }
    public let transport: Transport
    public let retry: RetryPolicy
    let auth: AuthSession
    let endpointState: EndpointState

    public convenience init(registry: String, insecure: Bool = false, credentials: CredentialSource = .dockerConfig(DockerConfig()),
                            transport: Transport = Transport(), retry: RetryPolicy = RetryPolicy()) {
        self.init(endpoint: RegistryEndpoint(registry: registry, insecure: insecure), credentials: credentials,
                  transport: transport, retry: retry)
    }

    /// A client for an endpoint whose scheme was chosen by the caller (TLS to a loopback
    /// registry, for instance).
    public init(endpoint: RegistryEndpoint, credentials: CredentialSource = .dockerConfig(DockerConfig()),
                transport: Transport = Transport(), retry: RetryPolicy = RetryPolicy()) {
        endpointState = EndpointState(endpoint)
        self.transport = transport
        self.retry = retry
        auth = AuthSession(endpoint: endpointState, transport: transport, source: credentials)
    }

    /// For an insecure registry, once: does HTTPS answer (certificate unchecked)? If not, the
    /// client talks plain HTTP from then on (docker's order for insecure registries).
    func settleScheme() async {
        guard endpointState.needsProbe else { return }
        await endpointState.probe { [transport] e in
            var req = HTTPRequest(method: "GET", url: e.url("/v2/"))
            req.verifyTLS = false
            do {
                _ = try await transport.perform(req)
                return e
            } catch {
                return e.plainHTTP()
            }
        }
    }

    /// A URL built for this registry before its scheme was settled, with the settled scheme.
    func settled(_ url: URL) -> URL {
        let e = endpoint
        guard e.insecure, url.scheme != e.scheme, let h = url.host, h.lowercased() == e.baseURL.host?.lowercased(),
              url.port == e.baseURL.port,
              var c = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return url }
        c.scheme = e.scheme
        return c.url ?? url
    }

    /// Scope string for a repository (token protocol "Scope").
    public static func scope(_ repository: String, push: Bool = false) -> String {
        "repository:\(repository):" + (push ? "pull,push" : "pull")
    }

    /// Performs one registry request with auth, retries and redirects. Returns whatever final
    /// response came back; callers check the status they expect.
    public func send(_ method: String, _ url: URL, headers: [HTTPHeader] = [], body: HTTPBody = .none,
                     scopes: [String], sink: (any BodySink)? = nil,
                     uploadProgress: (@Sendable (Int64) -> Void)? = nil) async throws -> HTTPResponse {
        await settleScheme()
        var url = settled(url)
        var method = method
        var body = body
        var attempt = 0
        var redirects = 0
        var authRetried = false
        while true {
            try Task.checkCancellation()
            var req = HTTPRequest(method: method, url: url, headers: headers, body: body)
            req.uploadProgress = uploadProgress
            let ours = endpoint.owns(url)
            var sentAuth = false
            if ours { req.verifyTLS = endpoint.verifyTLS }
            if ours, let a = try await auth.authorization(for: scopes) {
                req.setHeader("Authorization", a)
                sentAuth = true
            }
            if let sink, sink.resumeOffset > 0 {
                req.setHeader("Range", "bytes=\(sink.resumeOffset)-")
            }
            let resp: HTTPResponse
            do {
                resp = try await transport.perform(req, sink: sink)
            } catch let RegistryError.transport(u, message, retryable) {
                guard retryable, attempt < retry.maxRetries else {
                    throw RegistryError.transport(url: u, message: message + (attempt > 0 ? " (after \(attempt) retries)" : ""), retryable: retryable)
                }
                try await Task.sleep(nanoseconds: Backoff.delay(attempt: attempt, retryAfter: nil, base: retry.baseDelay, cap: retry.maxDelay))
                attempt += 1
                continue
            }
            switch resp.status {
            case 401 where ours && !authRetried:
                authRetried = true
                await auth.unauthorized(headers: resp.head.headers("www-authenticate"), scopes: scopes)
                continue
            case 401:
                let had = await auth.hasCredentials
                throw RegistryError.unauthorized(registry: endpoint.name, url: url.absoluteString,
                                                 errors: RegistryError.details(from: resp.body),
                                                 hadCredentials: sentAuth && had)
            case 301, 302, 303, 307, 308:
                guard let loc = resp.header("location"), let next = URL(string: loc, relativeTo: url)?.absoluteURL else {
                    throw RegistryError.invalidResponse(url: url.absoluteString, reason: "redirect without a Location")
                }
                redirects += 1
                guard redirects <= 10 else {
                    throw RegistryError.invalidResponse(url: url.absoluteString, reason: "more than 10 redirects")
                }
                if resp.status == 303 { method = method == "HEAD" ? "HEAD" : "GET"; body = .none }
                url = next
                continue
            case 429, 500, 502, 503, 504:
                guard attempt < retry.maxRetries else { return resp }
                try await Task.sleep(nanoseconds: Backoff.delay(attempt: attempt, retryAfter: resp.header("retry-after"),
                                                                base: retry.baseDelay, cap: retry.maxDelay))
                attempt += 1
                continue
            default:
                return resp
            }
        }
    }

    func httpError(_ resp: HTTPResponse, _ method: String, _ url: URL) -> RegistryError {
        if resp.status == 401 {
            return .unauthorized(registry: endpoint.name, url: url.absoluteString, errors: RegistryError.details(from: resp.body), hadCredentials: true)
        }
        return .http(status: resp.status, method: method, url: url.absoluteString, errors: RegistryError.details(from: resp.body),
                     body: String(decoding: resp.body.prefix(300), as: UTF8.self))
    }
}

/// The endpoint of a client, settled once for insecure registries (HTTPS or plain HTTP).
final class EndpointState: Sendable {
    private struct State {
        var current: RegistryEndpoint
        var settled: Bool
        var probing: Task<RegistryEndpoint, Never>?
    }
    private let state: Mutex<State>

    init(_ endpoint: RegistryEndpoint) {
        state = Mutex(State(current: endpoint, settled: !endpoint.insecure, probing: nil))
    }

    var endpoint: RegistryEndpoint { state.withLock { $0.current } }
    var needsProbe: Bool { state.withLock { !$0.settled } }

    /// Runs `check` once however many requests ask at the same time; all of them wait for it.
    func probe(_ check: @escaping @Sendable (RegistryEndpoint) async -> RegistryEndpoint) async {
        let task: Task<RegistryEndpoint, Never> = state.withLock { s in
            if let probing = s.probing { return probing }
            let e = s.current
            let t = Task { await check(e) }
            s.probing = t
            return t
        }
        let result = await task.value
        state.withLock {
            $0.current = result
            $0.settled = true
        }
    }
}
