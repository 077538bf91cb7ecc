import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Debian's `docker-registry` (distribution 2.8) on a free loopback port with a temp config.
final class TestRegistry: @unchecked Sendable {
    enum Auth {
        case anonymous
        case htpasswd(user: String, password: String)
        case token(TokenIssuer)
    }

    let dir: TempDir
    let port: UInt16
    let process: Process
    var host: String { "127.0.0.1:\(port)" }
    var storage: String { dir.path + "/storage" }

    init(auth: Auth = .anonymous) throws {
        dir = try TempDir("docker-registry")
        var authYAML = ""
        switch auth {
        case .anonymous: break
        case let .htpasswd(user, password):
            let line = try runTool(["htpasswd", "-Bbn", user, password])
            try line.write(to: URL(fileURLWithPath: dir.path + "/htpasswd"))
            authYAML = """
            auth:
              htpasswd:
                realm: test-basic
                path: \(dir.path)/htpasswd
            """
        case let .token(issuer):
            authYAML = """
            auth:
              token:
                realm: http://127.0.0.1:\(issuer.port)/token
                service: \(issuer.service)
                issuer: \(issuer.issuer)
                rootcertbundle: \(issuer.certPath)
            """
        }
        var lastError: (any Error)?
        // The port is free when chosen; retry in the rare case another process takes it first.
        for _ in 0..<3 {
            let port = try Sock.freePort()
            let config = """
            version: 0.1
            log:
              level: error
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: \(dir.path)/storage
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:\(port)
            \(authYAML)
            """
            try config.write(toFile: dir.path + "/config.yml", atomically: true, encoding: .utf8)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["docker-registry", "serve", dir.path + "/config.yml"]
            p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            _ = FileManager.default.createFile(atPath: dir.path + "/registry.log", contents: nil)
            p.standardError = FileHandle(forWritingAtPath: dir.path + "/registry.log")
            try p.run()
            // Wait until it answers.
            var up = false
            for _ in 0..<200 {
                if !p.isRunning { break }
                if let fd = Sock.connect(port: port) { close(fd); up = true; break }
                usleep(25_000)
            }
            if up {
                self.port = port
                self.process = p
                return
            }
            if p.isRunning { p.terminate(); p.waitUntilExit() }
            if p.terminationStatus == 127 {
                dir.remove()
                throw TestError("docker-registry is not installed (run `make deps`: Debian package docker-registry)")
            }
            let log = (try? String(contentsOfFile: dir.path + "/registry.log", encoding: .utf8)) ?? ""
            lastError = TestError("docker-registry did not start: \(log.suffix(800))")
        }
        dir.remove()
        throw lastError ?? TestError("docker-registry did not start")
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        dir.remove()
    }
}

/// A token service for distribution's `auth: token`: signs RS256 JWTs with a key whose
/// self-signed certificate is the registry's `rootcertbundle`, carried in the `x5c` header.
final class TokenIssuer: @unchecked Sendable {
    let dir: TempDir
    let service = "test-registry"
    let issuer = "test-issuer"
    var certPath: String { dir.path + "/cert.pem" }
    var keyPath: String { dir.path + "/key.pem" }
    let users: [String: String]
    let allowAnonymousPull: Bool
    private var server: TinyHTTPServer!
    var port: UInt16 { server.port }
    private let certDER: String
    private let lock = NSLock()
    private var _requests: [TinyHTTPServer.Request] = []
    private var refreshTokens: [String: String] = [:]

    /// Token requests seen so far.
    var requests: [TinyHTTPServer.Request] { lock.withLock { _requests } }

    init(users: [String: String], allowAnonymousPull: Bool = false) throws {
        dir = try TempDir("token-issuer")
        self.users = users
        self.allowAnonymousPull = allowAnonymousPull
        try runTool(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir.path + "/key.pem",
                     "-out", dir.path + "/cert.pem", "-subj", "/CN=test-token-issuer", "-days", "2"])
        let der = try runTool(["openssl", "x509", "-in", dir.path + "/cert.pem", "-outform", "DER"])
        certDER = der.base64EncodedString()
        server = try TinyHTTPServer { [unowned self] req in self.handle(req) }
    }

    func stop() {
        server.stop()
        dir.remove()
    }

    private func handle(_ req: TinyHTTPServer.Request) -> TinyHTTPServer.Response {
        lock.withLock { _requests.append(req) }
        var params: [(String, String)] = []
        if let q = URLComponents(string: "http://x" + req.target)?.queryItems {
            params += q.map { ($0.name, $0.value ?? "") }
        }
        if req.method == "POST" {
            let form = String(decoding: req.body, as: UTF8.self)
            for pair in form.split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
                if kv.count == 2 { params.append((kv[0], kv[1])) }
            }
        }
        var user: String?
        if let auth = req.headers["authorization"], auth.hasPrefix("Basic "),
           let d = Data(base64Encoded: String(auth.dropFirst(6))), let s = String(data: d, encoding: .utf8),
           let colon = s.firstIndex(of: ":") {
            let u = String(s[..<colon]), p = String(s[s.index(after: colon)...])
            guard users[u] == p else { return .init(status: 401, body: Data(#"{"errors":[{"code":"UNAUTHORIZED","message":"bad password"}]}"#.utf8)) }
            user = u
        }
        if let grant = params.first(where: { $0.0 == "grant_type" })?.1 {
            guard grant == "refresh_token", let rt = params.first(where: { $0.0 == "refresh_token" })?.1,
                  let u = lock.withLock({ refreshTokens[rt] })
            else { return .init(status: 401, body: Data(#"{"errors":[{"code":"UNAUTHORIZED","message":"bad refresh token"}]}"#.utf8)) }
            user = u
        }
        var scopes: [String] = []
        for (k, v) in params where k == "scope" { scopes += v.split(separator: " ").map(String.init) }
        var access: [[String: Any]] = []
        for s in scopes {
            let parts = s.split(separator: ":")
            guard parts.count >= 3, parts[0] == "repository" else { continue }
            let name = parts[1..<(parts.count - 1)].joined(separator: ":")
            let wanted = parts[parts.count - 1].split(separator: ",").map(String.init)
            let granted = user != nil ? wanted : (allowAnonymousPull ? wanted.filter { $0 == "pull" } : [])
            access.append(["type": "repository", "name": name, "actions": granted])
        }
        let now = Int(Date().timeIntervalSince1970)
        let claims: [String: Any] = ["iss": issuer, "sub": user ?? "", "aud": service, "exp": now + 300, "nbf": now - 10,
                                     "iat": now, "jti": UUID().uuidString, "access": access]
        let header: [String: Any] = ["alg": "RS256", "typ": "JWT", "x5c": [certDER]]
        guard let h = try? JSONSerialization.data(withJSONObject: header), let c = try? JSONSerialization.data(withJSONObject: claims) else {
            return .init(status: 500)
        }
        let signingInput = base64url(h) + "." + base64url(c)
        guard let sig = try? runTool(["openssl", "dgst", "-sha256", "-sign", keyPath, "-binary"], input: Data(signingInput.utf8)) else {
            return .init(status: 500)
        }
        var reply: [String: Any] = ["token": signingInput + "." + base64url(sig), "expires_in": 300]
        if let user, params.contains(where: { $0.0 == "offline_token" && $0.1 == "true" }) {
            let rt = UUID().uuidString
            lock.withLock { refreshTokens[rt] = user }
            reply["refresh_token"] = rt
        }
        let body = (try? JSONSerialization.data(withJSONObject: reply)) ?? Data()
        return .init(status: 200, headers: [("Content-Type", "application/json")], body: body)
    }
}
