import Foundation
import Testing
@testable import RegistryServer

/// A bcrypt htpasswd line made by Apache's own `htpasswd` tool.
func htpasswdLine(_ user: String, _ password: String) throws -> String {
    guard let tool = which("htpasswd") else {
        throw RegistryServerError.auth("htpasswd is not installed; install apache2-utils (make deps)")
    }
    let (status, out) = try run(tool, ["-nbB", user, password])
    guard status == 0 else { throw RegistryServerError.auth("htpasswd failed: \(out)") }
    return out.trimmingCharacters(in: .whitespacesAndNewlines) + "\n"
}

func basic(_ user: String, _ password: String) -> String {
    "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
}

@Suite("authentication")
struct AuthTests {
    @Test func basicAuthWithBcryptHtpasswd() async throws {
        let reg = try TestRegistry(htpasswd: try htpasswdLine("alice", "s3cret"))
        defer { reg.stop() }
        let anon = try await http("GET", "\(reg.base)/v2/")
        #expect(anon.status == 401)
        #expect(anon.header("WWW-Authenticate")?.hasPrefix("Basic realm=") == true)
        #expect(anon.errorCode == "UNAUTHORIZED")
        #expect(try await http("GET", "\(reg.base)/v2/", headers: ["Authorization": basic("alice", "wrong")]).status == 401)
        #expect(try await http("GET", "\(reg.base)/v2/", headers: ["Authorization": basic("bob", "s3cret")]).status == 401)
        #expect(try await http("GET", "\(reg.base)/v2/", headers: ["Authorization": basic("alice", "s3cret")]).status == 200)
        let push = try await http("POST", "\(reg.base)/v2/p/blobs/uploads/?digest=\(digest(Data("x".utf8)))", body: Data("x".utf8),
                                  headers: ["Authorization": basic("alice", "s3cret"), "Content-Type": "application/octet-stream"])
        #expect(push.status == 201)
        #expect(try await http("GET", "\(reg.base)/v2/p/blobs/\(digest(Data("x".utf8)))").status == 401)
    }

    @Test func tokenAuthWithScopes() async throws {
        let reg = try TestRegistry(htpasswd: try htpasswdLine("alice", "s3cret"), tokenAuth: true)
        defer { reg.stop() }
        let anon = try await http("GET", "\(reg.base)/v2/team/app/tags/list")
        #expect(anon.status == 401)
        let challenge = try #require(anon.header("WWW-Authenticate"))
        #expect(challenge.contains("Bearer realm=\"http://127.0.0.1:\(reg.server.port)/token\""))
        #expect(challenge.contains("scope=\"repository:team/app:pull\""))

        #expect(try await http("GET", "\(reg.base)/token?service=dockbuild-registry&scope=repository:team/app:pull").status == 401)
        #expect(try await http("GET", "\(reg.base)/token?scope=repository:team/app:pull",
                               headers: ["Authorization": basic("alice", "nope")]).status == 401)
        let tokenReply = try await http("GET", "\(reg.base)/token?service=dockbuild-registry&scope=repository:team/app:pull",
                                        headers: ["Authorization": basic("alice", "s3cret")])
        #expect(tokenReply.status == 200)
        let token = try #require(tokenReply.json?["token"] as? String)
        #expect(token.split(separator: ".").count == 3)
        let bearer = ["Authorization": "Bearer \(token)"]
        // Pull scope: reading works (404: no such repository yet, but authorized) ...
        #expect(try await http("GET", "\(reg.base)/v2/team/app/tags/list", headers: bearer).status == 404)
        // ... pushing does not, and other repositories are out of scope.
        let push = try await http("POST", "\(reg.base)/v2/team/app/blobs/uploads/", headers: bearer)
        #expect(push.status == 401)
        #expect(push.header("WWW-Authenticate")?.contains("error=\"insufficient_scope\"") == true)
        #expect(try await http("GET", "\(reg.base)/v2/team/other/tags/list", headers: bearer).status == 401)
        // A tampered token is refused.
        var forged = Array(token.utf8)
        forged[forged.count - 3] = forged[forged.count - 3] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(try await http("GET", "\(reg.base)/v2/team/app/tags/list",
                               headers: ["Authorization": "Bearer \(String(decoding: forged, as: UTF8.self))"]).status == 401)

        let pushToken = try await http("GET", "\(reg.base)/token?service=dockbuild-registry&scope=repository:team/app:pull,push",
                                       headers: ["Authorization": basic("alice", "s3cret")])
        let t2 = try #require(pushToken.json?["token"] as? String)
        #expect(try await http("POST", "\(reg.base)/v2/team/app/blobs/uploads/", headers: ["Authorization": "Bearer \(t2)"]).status == 202)
    }

    @Test func es256SignatureEncodingRoundTrips() throws {
        let key = try ES256Key()
        let msg = Array("header.claims".utf8)
        let sig = try key.sign(msg)
        #expect(sig.count == 64)
        #expect(key.verify(msg, signature: sig))
        #expect(!key.verify(Array("header.claimz".utf8), signature: sig))
    }

    @Test func htpasswdRejectsNonBcrypt() {
        #expect(throws: RegistryServerError.self) { try Htpasswd(contents: "bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n") }
    }
}

@Suite("TLS")
struct TLSTests {
    @Test func servesHTTPSWithAPEMCertificate() async throws {
        guard let openssl = which("openssl") else { throw RegistryServerError.invalidConfiguration("openssl CLI is not installed") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cert = dir.path + "/cert.pem", key = dir.path + "/key.pem"
        let (st, out) = try run(openssl, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                          "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                                          "-addext", "subjectAltName=IP:127.0.0.1"])
        #expect(st == 0, "openssl: \(out)")
        let reg = try TestRegistry(tls: (cert, key))
        defer { reg.stop() }
        let r = try await http("GET", "\(reg.base)/v2/", cacert: cert)
        #expect(r.status == 200)
        let data = Data((0..<300_000).map { UInt8($0 % 253) })
        let d = digest(data)
        let push = try await http("POST", "\(reg.base)/v2/tls/blobs/uploads/?digest=\(d)", body: data, cacert: cert)
        #expect(push.status == 201)
        let get = try await http("GET", "\(reg.base)/v2/tls/blobs/\(d)", cacert: cert)
        #expect(get.body == data)
        #expect(throws: RegistryServerError.self) {
            var cfg = RegistryServerConfiguration(root: dir.path + "/s")
            cfg.tlsCertificate = key
            cfg.tlsKey = key
            _ = try RegistryServer(configuration: cfg)
        }
    }
}

@Suite("external token service")
struct ExternalTokenTests {
    /// Signs `claims` as an RS256 JWT with `openssl dgst`, as an external token service would.
    func jwt(_ claims: [String: Any], key: String, dir: String, header extra: [String: Any] = [:]) throws -> String {
        func b64(_ d: Data) -> String {
            d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        let h = b64(try JSONSerialization.data(withJSONObject: (["alg": "RS256", "typ": "JWT"] as [String: Any]).merging(extra) { $1 }))
        let c = b64(try JSONSerialization.data(withJSONObject: claims))
        try Data("\(h).\(c)".utf8).write(to: URL(fileURLWithPath: dir + "/input"))
        guard let openssl = which("openssl") else { throw RegistryServerError.auth("openssl CLI is not installed") }
        let (st, out) = try run(openssl, ["dgst", "-sha256", "-sign", key, "-out", dir + "/sig", dir + "/input"])
        guard st == 0 else { throw RegistryServerError.auth("openssl dgst: \(out)") }
        return "\(h).\(c).\(b64(try Data(contentsOf: URL(fileURLWithPath: dir + "/sig"))))"
    }

    @Test func acceptsTokensSignedByTheConfiguredIssuer() async throws {
        guard let openssl = which("openssl") else { throw RegistryServerError.auth("openssl CLI is not installed") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-ext-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (st, out) = try run(openssl, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/key.pem",
                                          "-out", dir + "/cert.pem", "-days", "1", "-subj", "/CN=issuer"])
        #expect(st == 0, "openssl: \(out)")
        let reg = try TestRegistry(externalToken: ("http://auth.example/token", "svc", "the-issuer", dir + "/cert.pem"))
        defer { reg.stop() }
        let anon = try await http("GET", "\(reg.base)/v2/ext/app/tags/list")
        #expect(anon.status == 401)
        #expect(anon.header("WWW-Authenticate") == "Bearer realm=\"http://auth.example/token\",service=\"svc\",scope=\"repository:ext/app:pull\"")
        let now = Int(Date().timeIntervalSince1970)
        let good: [String: Any] = ["iss": "the-issuer", "aud": "svc", "exp": now + 300, "nbf": now - 5, "sub": "u",
                                   "access": [["type": "repository", "name": "ext/app", "actions": ["pull"]]]]
        let token = try jwt(good, key: dir + "/key.pem", dir: dir)
        #expect(try await http("GET", "\(reg.base)/v2/ext/app/tags/list", headers: ["Authorization": "Bearer \(token)"]).status == 404)
        #expect(try await http("POST", "\(reg.base)/v2/ext/app/blobs/uploads/", headers: ["Authorization": "Bearer \(token)"]).status == 401)
        var wrongIssuer = good
        wrongIssuer["iss"] = "someone-else"
        let bad = try jwt(wrongIssuer, key: dir + "/key.pem", dir: dir)
        #expect(try await http("GET", "\(reg.base)/v2/ext/app/tags/list", headers: ["Authorization": "Bearer \(bad)"]).status == 401)
        var expired = good
        expired["exp"] = now - 3600
        let old = try jwt(expired, key: dir + "/key.pem", dir: dir)
        #expect(try await http("GET", "\(reg.base)/v2/ext/app/tags/list", headers: ["Authorization": "Bearer \(old)"]).status == 401)
        #expect(try await http("GET", "\(reg.base)/token").status == 404)
    }

    /// openssl with `args`, failing the test on an error.
    func openssl(_ args: [String]) throws -> String {
        guard let tool = which("openssl") else { throw RegistryServerError.auth("openssl CLI is not installed") }
        let (st, out) = try run(tool, args)
        guard st == 0 else { throw RegistryServerError.auth("openssl \(args.joined(separator: " ")): \(out)") }
        return out
    }

    func claims(_ repo: String) -> [String: Any] {
        let now = Int(Date().timeIntervalSince1970)
        return ["iss": "the-issuer", "aud": "svc", "exp": now + 300, "nbf": now - 5, "sub": "u",
                "access": [["type": "repository", "name": repo, "actions": ["pull"]]]]
    }

    /// A token whose header carries its signer's certificate chain (`x5c`) is accepted only when
    /// the chain leads to the root bundle, as distribution checks it.
    @Test func x5cChainsMustLeadToTheRootBundle() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-x5c-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/ca.key", "-out", dir + "/ca.pem",
                         "-days", "1", "-subj", "/CN=token-ca"])
        _ = try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/leaf.key", "-out", dir + "/leaf.csr", "-subj", "/CN=signer"])
        _ = try openssl(["x509", "-req", "-in", dir + "/leaf.csr", "-CA", dir + "/ca.pem", "-CAkey", dir + "/ca.key",
                         "-CAcreateserial", "-out", dir + "/leaf.pem", "-days", "1"])
        _ = try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/rogue.key", "-out", dir + "/rogue.pem",
                         "-days", "1", "-subj", "/CN=signer"])
        func der(_ pem: String) throws -> String {
            _ = try openssl(["x509", "-in", pem, "-outform", "DER", "-out", pem + ".der"])
            return try Data(contentsOf: URL(fileURLWithPath: pem + ".der")).base64EncodedString()
        }
        let reg = try TestRegistry(externalToken: ("http://auth.example/token", "svc", "the-issuer", dir + "/ca.pem"))
        defer { reg.stop() }
        let url = "\(reg.base)/v2/ext/x5c/tags/list"
        let chained = try jwt(claims("ext/x5c"), key: dir + "/leaf.key", dir: dir, header: ["x5c": [try der(dir + "/leaf.pem")]])
        #expect(try await http("GET", url, headers: ["Authorization": "Bearer \(chained)"]).status == 404)
        // Signed by its own key, but that certificate does not lead to the root: refused.
        let rogue = try jwt(claims("ext/x5c"), key: dir + "/rogue.key", dir: dir, header: ["x5c": [try der(dir + "/rogue.pem")]])
        #expect(try await http("GET", url, headers: ["Authorization": "Bearer \(rogue)"]).status == 401)
        // The leaf's chain named, but the token signed by another key: refused.
        let mismatched = try jwt(claims("ext/x5c"), key: dir + "/rogue.key", dir: dir, header: ["x5c": [try der(dir + "/leaf.pem")]])
        #expect(try await http("GET", url, headers: ["Authorization": "Bearer \(mismatched)"]).status == 401)
    }

    /// Keys from a JSON Web Key Set file (`--token-jwks`, `auth.token.jwks`), picked by `kid`.
    @Test func jwksKeysSignTokens() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-jwks-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try openssl(["genrsa", "-out", dir + "/k1.key", "2048"])
        _ = try openssl(["genrsa", "-out", dir + "/other.key", "2048"])
        let modulus = try openssl(["rsa", "-in", dir + "/k1.key", "-noout", "-modulus"])
            .trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "Modulus=", with: "")
        var bytes: [UInt8] = []
        var i = modulus.startIndex
        while i < modulus.endIndex {
            let j = modulus.index(i, offsetBy: 2)
            bytes.append(UInt8(modulus[i..<j], radix: 16) ?? 0)
            i = j
        }
        func b64url(_ b: [UInt8]) -> String {
            Data(b).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        let set: [String: Any] = ["keys": [["kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256", "n": b64url(bytes), "e": "AQAB"]]]
        try JSONSerialization.data(withJSONObject: set).write(to: URL(fileURLWithPath: dir + "/jwks.json"))
        var cfg = RegistryServerConfiguration(root: dir + "/storage")
        cfg.address = "127.0.0.1:0"
        cfg.logFormat = .none
        cfg.externalToken = ("http://auth.example/token", "svc", "the-issuer", "")
        cfg.tokenJWKS = dir + "/jwks.json"
        let server = try RegistryServer(configuration: cfg)
        try server.start()
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)/v2/ext/jwks/tags/list"
        let good = try jwt(claims("ext/jwks"), key: dir + "/k1.key", dir: dir, header: ["kid": "k1"])
        #expect(try await http("GET", url, headers: ["Authorization": "Bearer \(good)"]).status == 404)
        let other = try jwt(claims("ext/jwks"), key: dir + "/other.key", dir: dir, header: ["kid": "k1"])
        #expect(try await http("GET", url, headers: ["Authorization": "Bearer \(other)"]).status == 401)
        // A JWKS that is not one is an error naming the file.
        try Data("[]".utf8).write(to: URL(fileURLWithPath: dir + "/bad.json"))
        #expect(throws: RegistryServerError.self) {
            try ExternalTokenAuthorizer(realm: "r", service: "s", issuer: "i", rootCertBundle: nil, jwks: dir + "/bad.json")
        }
    }
}
