import Foundation

/// Where a client gets credentials from.
public enum CredentialSource: Sendable {
    /// Anonymous only.
    case none
    /// These credentials, whatever config.json says.
    case explicit(Credentials)
    /// docker's config.json and its credential helpers (the default).
    case dockerConfig(DockerConfig)
}

/// A bearer token and when to stop using it.
struct BearerToken: Sendable {
    var token: String
    var expires: Date
}

/// Authentication state for one registry: the challenge learnt from `/v2/`, credentials, and
/// bearer tokens cached per scope until shortly before they expire. Concurrent requests for
/// the same scope share one token request.
actor AuthSession {
    let state: EndpointState
    var endpoint: RegistryEndpoint { state.endpoint }
    let transport: Transport
    let source: CredentialSource

    private var pinged = false
    private var challenge: AuthChallenge?
    private var credentialsLoaded = false
    private var cachedCredentials: Credentials?
    private var tokens: [String: BearerToken] = [:]
    private var inflight: [String: Task<(BearerToken, String?), any Error>] = [:]
    /// Refresh token returned by the token service (or the stored identity token).
    private var refreshToken: String?

    init(endpoint: EndpointState, transport: Transport, source: CredentialSource) {
        state = endpoint
        self.transport = transport
        self.source = source
    }

    func credentials() throws -> Credentials? {
        if credentialsLoaded { return cachedCredentials }
        credentialsLoaded = true
        switch source {
        case .none: cachedCredentials = nil
        case let .explicit(c): cachedCredentials = c
        case let .dockerConfig(config): cachedCredentials = try config.credentials(for: endpoint.name)
        }
        if let t = cachedCredentials?.identityToken { refreshToken = t }
        return cachedCredentials
    }

    /// GET /v2/ once to learn how this registry authenticates (distribution spec "API version check").
    func ping() async throws {
        if pinged { return }
        let url = endpoint.url("/v2/")
        var lastError: (any Error)?
        for attempt in 0..<3 {
            do {
                var req = HTTPRequest(method: "GET", url: url)
                req.verifyTLS = endpoint.verifyTLS
                let resp = try await transport.perform(req)
                if resp.status == 401 {
                    challenge = AuthChallenge.parse(resp.head.headers("www-authenticate")).first { $0.scheme == .bearer }
                        ?? AuthChallenge.parse(resp.head.headers("www-authenticate")).first
                } else if resp.status / 100 != 2 && resp.status != 404 {
                    throw RegistryError.http(status: resp.status, method: "GET", url: url.absoluteString,
                                             errors: RegistryError.details(from: resp.body), body: String(decoding: resp.body.prefix(300), as: UTF8.self))
                }
                pinged = true
                return
            } catch let RegistryError.transport(_, _, retryable) where retryable && attempt < 2 {
                lastError = RegistryError.transport(url: url.absoluteString, message: "", retryable: true)
                try await Task.sleep(nanoseconds: UInt64(200_000_000 * (attempt + 1)))
                continue
            }
        }
        if let lastError { throw lastError }
    }

    /// The Authorization header for a request needing `scopes`, nil when anonymous.
    ///
    /// Until a challenge is known the request goes out anonymously: an open registry then
    /// costs no extra round trip, and a closed one answers 401 with the challenge, after which
    /// the client retries with credentials (containerd does the same instead of pinging /v2/).
    func authorization(for scopes: [String]) async throws -> String? {
        guard let challenge else { return nil }
        switch challenge.scheme {
        case .basic:
            guard let c = try credentials() else { return nil }
            return "Basic " + Data("\(c.username):\(c.password)".utf8).base64EncodedString()
        case .bearer:
            return "Bearer " + (try await token(for: scopes, challenge: challenge)).token
        case .other:
            return nil
        }
    }

    /// A request came back 401: learn the new challenge and drop the token it was refused with.
    func unauthorized(headers: [String], scopes: [String]) {
        let parsed = AuthChallenge.parse(headers)
        if let c = parsed.first(where: { $0.scheme == .bearer }) ?? parsed.first {
            var merged = c
            // The scope in the challenge is the one the registry wants; keep our own as well.
            merged.parameters.removeValue(forKey: "scope")
            challenge = merged
        }
        tokens.removeValue(forKey: AuthSession.key(scopes))
        pinged = true
    }

    var currentChallenge: AuthChallenge? { challenge }

    /// For tests: changes the cached tokens (age them, spoil them) to exercise expiry and refusal.
    func adjustCachedTokens(_ change: @Sendable (inout BearerToken) -> Void) {
        tokens = tokens.mapValues { var t = $0; change(&t); return t }
    }

    var hasCredentials: Bool { (try? credentials()) != nil }

    static func key(_ scopes: [String]) -> String { Set(scopes).sorted().joined(separator: " ") }

    private func token(for scopes: [String], challenge: AuthChallenge) async throws -> BearerToken {
        let key = AuthSession.key(scopes)
        if let t = tokens[key], t.expires.timeIntervalSinceNow > 10 { return t }
        if let task = inflight[key] { return try await task.value.0 }
        let creds = try credentials()
        let refresh = refreshToken
        let transport = transport
        let registry = endpoint.name
        let task = Task {
            try await AuthSession.fetchToken(transport: transport, challenge: challenge, scopes: Set(scopes).sorted(),
                                             credentials: creds, refreshToken: refresh, registry: registry)
        }
        inflight[key] = task
        defer { inflight.removeValue(forKey: key) }
        let (token, newRefresh) = try await task.value
        if let newRefresh { refreshToken = newRefresh }
        tokens[key] = token
        return token
    }

    /// Docker's token protocol: GET realm?service&scope with Basic credentials, or the OAuth2
    /// POST form with a refresh token when one is known.
    static func fetchToken(transport: Transport, challenge: AuthChallenge, scopes: [String], credentials: Credentials?,
                           refreshToken: String?, registry: String, offline: Bool = false) async throws -> (BearerToken, String?) {
        guard let realm = challenge.realm, var components = URLComponents(string: realm), components.scheme != nil else {
            throw RegistryError.invalidResponse(url: registry, reason: "Bearer challenge without a usable realm")
        }
        var request: HTTPRequest
        if let refreshToken {
            var form: [(String, String)] = [("grant_type", "refresh_token"), ("refresh_token", refreshToken), ("client_id", "dockbuild")]
            if let s = challenge.service { form.append(("service", s)) }
            if !scopes.isEmpty { form.append(("scope", scopes.joined(separator: " "))) }
            guard let url = components.url else { throw RegistryError.invalidResponse(url: realm, reason: "bad token realm") }
            request = HTTPRequest(method: "POST", url: url,
                                  headers: [HTTPHeader("Content-Type", "application/x-www-form-urlencoded")],
                                  body: .data(Data(formEncode(form).utf8)))
        } else {
            var items = components.queryItems ?? []
            if let s = challenge.service { items.append(URLQueryItem(name: "service", value: s)) }
            for s in scopes { items.append(URLQueryItem(name: "scope", value: s)) }
            if offline {
                items.append(URLQueryItem(name: "offline_token", value: "true"))
                items.append(URLQueryItem(name: "client_id", value: "dockbuild"))
            }
            components.queryItems = items.isEmpty ? nil : items
            // '+' is legal in a query but means space to many servers.
            components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
            guard let url = components.url else { throw RegistryError.invalidResponse(url: realm, reason: "bad token realm") }
            request = HTTPRequest(method: "GET", url: url)
            if let c = credentials, !(c.username.isEmpty && c.password.isEmpty) {
                request.setHeader("Authorization", "Basic " + Data("\(c.username):\(c.password)".utf8).base64EncodedString())
            }
        }
        var resp: HTTPResponse?
        for attempt in 0..<4 {
            do {
                let r = try await transport.perform(request)
                if [429, 500, 502, 503, 504].contains(r.status), attempt < 3 {
                    try await Task.sleep(nanoseconds: Backoff.delay(attempt: attempt, retryAfter: r.header("retry-after")))
                    continue
                }
                resp = r
                break
            } catch let RegistryError.transport(_, _, retryable) where retryable && attempt < 3 {
                try await Task.sleep(nanoseconds: Backoff.delay(attempt: attempt, retryAfter: nil))
            }
        }
        guard let resp else { throw RegistryError.transport(url: realm, message: "token service unreachable", retryable: true) }
        if refreshToken != nil, resp.status == 404 || resp.status == 405, let c = credentials, !c.password.isEmpty {
            // A token service without the OAuth2 POST form: ask again the plain way, with the password.
            return try await fetchToken(transport: transport, challenge: challenge, scopes: scopes, credentials: c,
                                        refreshToken: nil, registry: registry, offline: offline)
        }
        if resp.status == 401 || resp.status == 403 {
            throw RegistryError.unauthorized(registry: registry, url: realm, errors: RegistryError.details(from: resp.body),
                                             hadCredentials: credentials != nil || refreshToken != nil)
        }
        guard resp.status / 100 == 2 else {
            throw RegistryError.http(status: resp.status, method: request.method, url: realm, errors: RegistryError.details(from: resp.body),
                                     body: String(decoding: resp.body.prefix(300), as: UTF8.self))
        }
        struct Reply: Decodable {
            var token: String?
            var access_token: String?
            var expires_in: Int?
            var refresh_token: String?
        }
        guard let reply = try? JSONDecoder().decode(Reply.self, from: resp.body),
              let token = reply.token ?? reply.access_token, !token.isEmpty
        else {
            throw RegistryError.invalidResponse(url: realm, reason: "token service reply has no token")
        }
        // The spec's minimum lifetime is 60 s when none is given.
        let life = max(reply.expires_in ?? 60, 60)
        return (BearerToken(token: token, expires: Date().addingTimeInterval(TimeInterval(life))), reply.refresh_token)
    }

    static func formEncode(_ items: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return items.map { k, v in
            "\(k.addingPercentEncoding(withAllowedCharacters: allowed) ?? k)=\(v.addingPercentEncoding(withAllowedCharacters: allowed) ?? v)"
        }.joined(separator: "&")
    }
}

/// Exponential backoff with full jitter; `Retry-After` wins when the server sends one.
enum Backoff {
    static func delay(attempt: Int, retryAfter: String?, base: Double = 0.25, cap: Double = 8) -> UInt64 {
        if let ra = retryAfter?.trimmingCharacters(in: .whitespaces) {
            if let secs = Double(ra) { return UInt64(min(max(secs, 0), 60) * 1e9) }
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "GMT")
            f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
            if let d = f.date(from: ra) { return UInt64(min(max(d.timeIntervalSinceNow, 0), 60) * 1e9) }
        }
        let ceiling = min(cap, base * pow(2, Double(attempt)))
        return UInt64(Double.random(in: ceiling / 2...ceiling) * 1e9)
    }
}
