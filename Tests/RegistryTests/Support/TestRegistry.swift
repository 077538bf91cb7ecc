import Foundation
import RegistryServer
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The registry servers the client suites run against: every scenario runs once per kind.
enum RegistryKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// Debian's `docker-registry` (distribution 2.8), a separate process with a temp config.
    case distribution
    /// dockbuild's own server (`dockbuild registry serve`, the RegistryServer library).
    case dockbuild

    var testDescription: String {
        switch self {
        case .distribution: "docker-registry"
        case .dockbuild: "dockbuild registry serve"
        }
    }
}

/// A registry on a free loopback port with temporary storage: Debian's `docker-registry`
/// started with a temp config, or dockbuild's server (in this process through the
/// RegistryServer library, or as `dockbuild registry serve` with `asProcess`).
final class TestRegistry: @unchecked Sendable {
    enum Auth {
        case anonymous
        case htpasswd(user: String, password: String)
        /// Distribution's `auth: token`; dockbuild's `--token-realm/-service/-issuer/-rootcert`.
        case token(TokenIssuer)
        /// dockbuild only: `--htpasswd FILE --token-auth`, the server's own `/token` endpoint.
        case ownToken(user: String, password: String)
    }

    let kind: RegistryKind
    let dir: TempDir
    let port: UInt16
    private let process: Process?
    private let server: RegistryServer?
    var host: String { "127.0.0.1:\(port)" }
    var storage: String { dir.path + "/storage" }

    /// `tls`: (certificate, key) files to serve HTTPS with. `asProcess`: run dockbuild's
    /// server as the built `dockbuild registry serve` binary instead of in this process.
    /// `extraArgs`: more `registry serve` flags for dockbuild's server run `asProcess`.
    init(_ kind: RegistryKind = .distribution, auth: Auth = .anonymous, tls: (cert: String, key: String)? = nil,
         asProcess: Bool = false, extraArgs: [String] = []) throws {
        self.kind = kind
        switch kind {
        case .distribution:
            (dir, port, process) = try TestRegistry.startDistribution(auth: auth, tls: tls)
            server = nil
        case .dockbuild where asProcess:
            (dir, port, process) = try TestRegistry.startDockbuildProcess(auth: auth, tls: tls, extraArgs: extraArgs)
            server = nil
        case .dockbuild:
            (dir, port, server) = try TestRegistry.startDockbuildInProcess(auth: auth, tls: tls)
            process = nil
        }
    }

    /// The server's stderr so far (the access log of a process), for failure messages.
    var log: String { (try? String(contentsOfFile: dir.path + "/registry.log", encoding: .utf8)) ?? "" }

    func stop() {
        server?.stop()
        if let process, process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        dir.remove()
    }

    /// An htpasswd file with one bcrypt entry, made by apache2-utils' `htpasswd`.
    private static func writeHtpasswd(_ dir: TempDir, user: String, password: String) throws -> String {
        let line = try runTool(["htpasswd", "-Bbn", user, password])
        try line.write(to: URL(fileURLWithPath: dir.path + "/htpasswd"))
        return dir.path + "/htpasswd"
    }

    private static func startDockbuildInProcess(auth: Auth, tls: (cert: String, key: String)?) throws -> (TempDir, UInt16, RegistryServer) {
        let dir = try TempDir("dockbuild-registry")
        do {
            var cfg = RegistryServerConfiguration(root: dir.path + "/storage")
            cfg.address = "127.0.0.1:0"
            cfg.logFormat = .none
            switch auth {
            case .anonymous: break
            case let .htpasswd(user, password):
                cfg.htpasswd = try writeHtpasswd(dir, user: user, password: password)
            case let .ownToken(user, password):
                cfg.htpasswd = try writeHtpasswd(dir, user: user, password: password)
                cfg.tokenAuth = true
            case let .token(issuer):
                cfg.externalToken = (realm: "http://127.0.0.1:\(issuer.port)/token", service: issuer.service,
                                     issuer: issuer.issuer, rootCertBundle: issuer.certPath)
            }
            cfg.tlsCertificate = tls?.cert
            cfg.tlsKey = tls?.key
            let server = try RegistryServer(configuration: cfg)
            try server.start()
            return (dir, UInt16(server.port), server)
        } catch {
            dir.remove()
            throw error
        }
    }

    private static func startDockbuildProcess(auth: Auth, tls: (cert: String, key: String)?, extraArgs: [String]) throws -> (TempDir, UInt16, Process) {
        let dir = try TempDir("dockbuild-registry")
        var args = ["registry", "serve", "--root", dir.path + "/root", "--storage", dir.path + "/storage",
                    "--addr", "127.0.0.1:0", "--log-format", "text"]
        do {
            switch auth {
            case .anonymous: break
            case let .htpasswd(user, password):
                args += ["--htpasswd", try writeHtpasswd(dir, user: user, password: password)]
            case let .ownToken(user, password):
                args += ["--htpasswd", try writeHtpasswd(dir, user: user, password: password), "--token-auth"]
            case let .token(issuer):
                args += ["--token-realm", "http://127.0.0.1:\(issuer.port)/token", "--token-service", issuer.service,
                         "--token-issuer", issuer.issuer, "--token-rootcert", issuer.certPath]
            }
            if let tls { args += ["--tls-cert", tls.cert, "--tls-key", tls.key] }
            args += extraArgs
            let p = Process()
            p.executableURL = URL(fileURLWithPath: try dockbuildBinary())
            p.arguments = args
            p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            let logPath = dir.path + "/registry.log"
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
            p.standardError = FileHandle(forWritingAtPath: logPath)
            try p.run()
            // The first stderr line names the port: "dockbuild registry listening on http://127.0.0.1:PORT storage=…".
            for _ in 0..<400 {
                let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                if let line = log.split(separator: "\n").first(where: { $0.contains("listening on ") }),
                   let url = line.split(separator: " ").first(where: { $0.hasPrefix("http://") || $0.hasPrefix("https://") }),
                   let portText = url.split(separator: ":").last, let port = UInt16(portText) {
                    return (dir, port, p)
                }
                if !p.isRunning { break }
                usleep(25_000)
            }
            if p.isRunning { p.terminate(); p.waitUntilExit() }
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw TestError("dockbuild registry serve did not start: \(log.suffix(800))")
        } catch {
            dir.remove()
            throw error
        }
    }

    private static func startDistribution(auth: Auth, tls: (cert: String, key: String)?) throws -> (TempDir, UInt16, Process) {
        let dir = try TempDir("docker-registry")
        var authYAML = ""
        switch auth {
        case .anonymous: break
        case let .htpasswd(user, password):
            let file = try writeHtpasswd(dir, user: user, password: password)
            authYAML = """
            auth:
              htpasswd:
                realm: test-basic
                path: \(file)
            """
        case .ownToken:
            dir.remove()
            throw TestError("docker-registry has no token endpoint of its own; use .token with a TokenIssuer")
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
            \(tls.map { "  tls:\n    certificate: \($0.cert)\n    key: \($0.key)\n" } ?? "")
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
            if up { return (dir, port, p) }
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

    /// user -> repositories that user is granted nothing on.
    let denied: [String: Set<String>]

    /// Answers the OAuth2 POST form with 405, like token services that only know GET.
    let refusePost: Bool

    init(users: [String: String], allowAnonymousPull: Bool = false, denied: [String: Set<String>] = [:], refusePost: Bool = false) throws {
        self.refusePost = refusePost
        dir = try TempDir("token-issuer")
        self.users = users
        self.allowAnonymousPull = allowAnonymousPull
        self.denied = denied
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
        if refusePost, req.method == "POST" { return .init(status: 405) }
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
            var granted = user != nil ? wanted : (allowAnonymousPull ? wanted.filter { $0 == "pull" } : [])
            if let user, denied[user]?.contains(name) == true { granted = [] }
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
