import Foundation

/// Docker token authentication with the registry's own token endpoint (`/token`): clients get
/// a 401 naming the realm and scope, trade htpasswd credentials for a short-lived ES256 JWT
/// there, and send it as `Bearer`. Tokens carry `access` claims per repository and action.
public final class TokenAuthorizer: RegistryAuthorizer, @unchecked Sendable {
    public let users: Htpasswd
    public let service: String
    public let issuer = "dockbuild-registry"
    public var lifetime: TimeInterval = 300
    private let key: ES256Key
    private let keyID: String

    public init(users: Htpasswd, service: String = "dockbuild-registry") throws {
        self.users = users
        self.service = service
        key = try ES256Key()
        keyID = UUID().uuidString
    }

    static func parseScopes(_ values: [String]) -> [AccessScope] {
        var out: [AccessScope] = []
        for v in values {
            for item in v.split(separator: " ") {
                // type:name:actions, where name may itself hold ':' (a port).
                let parts = item.split(separator: ":", omittingEmptySubsequences: false)
                guard parts.count >= 3 else { continue }
                let type = String(parts[0])
                let actions = parts[parts.count - 1].split(separator: ",")
                let name = parts[1..<(parts.count - 1)].joined(separator: ":")
                for a in actions { out.append(AccessScope(type: type, name: name, action: String(a))) }
            }
        }
        return out
    }

    /// What a user may do: every authenticated user gets pull, push and delete on every
    /// repository and the catalog; anonymous users get nothing.
    func granted(_ requested: [AccessScope], user: String) -> [[String: Any]] {
        var byResource: [String: (type: String, name: String, actions: [String])] = [:]
        for s in requested {
            let allowed = s.type == "repository" ? ["pull", "push", "delete", "*"].contains(s.action)
                : (s.type == "registry" && s.name == "catalog")
            guard allowed else { continue }
            let k = s.type + ":" + s.name
            var e = byResource[k] ?? (s.type, s.name, [])
            if !e.actions.contains(s.action) { e.actions.append(s.action) }
            byResource[k] = e
        }
        return byResource.keys.sorted().compactMap { k in
            byResource[k].map { ["type": $0.type, "name": $0.name, "actions": $0.actions] }
        }
    }

    public func tokenResponse(_ request: HTTPRequest, context: HTTPRequestContext) -> HTTPResponse? {
        var user: String?
        var password: String?
        if let c = basicCredentials(request) { user = c.user; password = c.password }
        var scopes = request.queryValues("scope")
        if request.method == "POST" {
            // OAuth2 password grant (docker's `login` with identity tokens).
            let form = (try? request.body.readAll(limit: 64 * 1024)) ?? []
            let q = HTTPRequest(method: "POST", path: "", rawQuery: String(decoding: form, as: UTF8.self), version: "",
                                headers: [], body: .empty)
            if let u = q.query["username"] { user = u }
            if let p = q.query["password"] { password = p }
            scopes += q.queryValues("scope")
        }
        guard let user, let password, users.verify(user: user, password: password) else {
            var r = RegistryHandler.error(DistributionError(401, .unauthorized, "invalid or missing credentials",
                                                            detail: "send a user of the registry's htpasswd file with Basic auth"))
            r.headers.append(("WWW-Authenticate", "Basic realm=\"dockbuild registry token\""))
            return r
        }
        let now = Date()
        let claims: [String: Any] = [
            "iss": issuer, "sub": user, "aud": service,
            "iat": Int(now.timeIntervalSince1970), "nbf": Int(now.timeIntervalSince1970) - 10,
            "exp": Int(now.timeIntervalSince1970 + lifetime), "jti": UUID().uuidString,
            "access": granted(TokenAuthorizer.parseScopes(scopes), user: user),
        ]
        guard let token = try? sign(claims) else {
            return RegistryHandler.error(DistributionError(500, .unsupported, "could not sign a token"))
        }
        let issued = ISO8601DateFormatter().string(from: now)
        return RegistryHandler.json(["token": token, "access_token": token, "expires_in": Int(lifetime), "issued_at": issued])
    }

    func sign(_ claims: [String: Any]) throws -> String {
        let header: [String: Any] = ["alg": "ES256", "typ": "JWT", "kid": keyID]
        let h = Base64URL.encode([UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])))
        let c = Base64URL.encode([UInt8](try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys, .withoutEscapingSlashes])))
        let input = Array("\(h).\(c)".utf8)
        return "\(h).\(c).\(Base64URL.encode(try key.sign(input)))"
    }

    /// The claims of a valid, unexpired token of ours; nil otherwise.
    func verify(_ token: String) -> [String: Any]? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let sig = Base64URL.decode(parts[2]),
              key.verify(Array("\(parts[0]).\(parts[1])".utf8), signature: sig),
              let hb = Base64URL.decode(parts[0]), let header = try? JSONSerialization.jsonObject(with: Data(hb)) as? [String: Any],
              header["alg"] as? String == "ES256",
              let cb = Base64URL.decode(parts[1]), let claims = try? JSONSerialization.jsonObject(with: Data(cb)) as? [String: Any],
              let exp = (claims["exp"] as? NSNumber)?.doubleValue, exp > Date().timeIntervalSince1970,
              claims["aud"] as? String == service, claims["iss"] as? String == issuer else { return nil }
        return claims
    }

    static func allows(_ claims: [String: Any], _ scope: AccessScope) -> Bool {
        guard let access = claims["access"] as? [[String: Any]] else { return false }
        for a in access where a["type"] as? String == scope.type && a["name"] as? String == scope.name {
            let actions = a["actions"] as? [String] ?? []
            if actions.contains(scope.action) || actions.contains("*") { return true }
        }
        return false
    }

    /// Any user with a valid token may be granted pull on every repository just by asking, so
    /// a mount needs no pull scope in the token (clients ask only for the target's scope when
    /// they mount without `from`).
    public func mayPull(_ repository: String, request: HTTPRequest, context: HTTPRequestContext) -> Bool { true }

    public func authorize(_ request: HTTPRequest, context: HTTPRequestContext, scope: AccessScope?) -> HTTPResponse? {
        var insufficient = false
        if let h = request.header("Authorization"), h.lowercased().hasPrefix("bearer ") {
            if let claims = verify(String(h.dropFirst(7)).trimmingCharacters(in: .whitespaces)) {
                guard let scope else { return nil }
                if TokenAuthorizer.allows(claims, scope) { return nil }
                insufficient = true
            }
        }
        let host = request.header("Host") ?? "127.0.0.1"
        return Self.challenge(realm: "\(context.isTLS ? "https" : "http")://\(host)/token", service: service,
                              scope: scope, insufficient: insufficient)
    }

    /// The 401 answer of a Bearer-token registry: distribution's UNAUTHORIZED body and a
    /// `WWW-Authenticate` challenge naming the realm, the service and the scope the request needs
    /// (push scopes ask for pull too, as docker's clients expect), with `insufficient_scope` when
    /// a valid token lacked it.
    static func challenge(realm: String, service: String, scope: AccessScope?, insufficient: Bool) -> HTTPResponse {
        var challenge = "Bearer realm=\"\(realm)\",service=\"\(service)\""
        if let scope {
            let actions = scope.action == "pull" || scope.action == "*" ? scope.action : "pull,\(scope.action)"
            challenge += ",scope=\"\(scope.type):\(scope.name):\(actions)\""
        }
        if insufficient { challenge += ",error=\"insufficient_scope\"" }
        var r = RegistryHandler.error(DistributionError(401, .unauthorized, "authentication required",
                                                        detail: scope.map { "\($0.type):\($0.name):\($0.action)" }))
        r.headers.append(("WWW-Authenticate", challenge))
        return r
    }
}
