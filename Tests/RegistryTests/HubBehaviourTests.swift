import Foundation
import OCI
import Testing
@testable import Registry

/// Behaviours Docker Hub relies on, against small servers in the test: blob redirects to
/// another host (a CDN) and 429 with Retry-After.
@Suite("Redirects and rate limits")
struct HubBehaviourTests {
    final class Seen: @unchecked Sendable {
        let lock = NSLock()
        var authorizations: [String?] = []
        var hits = 0
        func add(_ a: String?) { lock.withLock { authorizations.append(a) } }
        func hit() -> Int { lock.withLock { hits += 1; return hits } }
    }

    @Test func redirectToAnotherHostDropsAuthorization() async throws {
        let blob = randomBytes(200_000, seed: 9)
        let digest = Digest.compute(blob)
        let cdnSeen = Seen()
        let cdn = try TinyHTTPServer { req in
            cdnSeen.add(req.headers["authorization"])
            return .init(status: 200, body: blob)
        }
        defer { cdn.stop() }
        let registrySeen = Seen()
        let registry = try TinyHTTPServer { req in
            guard let auth = req.headers["authorization"], auth == "Basic " + Data("u:p".utf8).base64EncodedString() else {
                return .init(status: 401, headers: [("WWW-Authenticate", #"Basic realm="test""#)])
            }
            registrySeen.add(auth)
            if req.target == "/v2/" { return .init(status: 200) }
            return .init(status: 307, headers: [("Location", "http://127.0.0.1:\(cdn.port)/cdn/blob?sig=abc")])
        }
        defer { registry.stop() }
        let client = RegistryClient(registry: "127.0.0.1:\(registry.port)", credentials: .explicit(Credentials(username: "u", password: "p")))
        #expect(try await fetched(client, "library/x", digest, size: blob.count) == blob)
        #expect(cdnSeen.authorizations == [nil])
        #expect(!registrySeen.authorizations.isEmpty)
    }

    @Test func tooManyRequestsHonoursRetryAfter() async throws {
        let seen = Seen()
        let server = try TinyHTTPServer { req in
            if req.target == "/v2/" { return .init(status: 200) }
            if seen.hit() == 1 {
                return .init(status: 429, headers: [("Retry-After", "1")],
                             body: Data(#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#.utf8))
            }
            let body = Data(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.utf8)
            return .init(status: 200, headers: [("Content-Type", "application/vnd.oci.image.manifest.v1+json")], body: body)
        }
        defer { server.stop() }
        let client = RegistryClient(registry: "127.0.0.1:\(server.port)", credentials: .none, retry: RetryPolicy(baseDelay: 0.01))
        let start = Date()
        _ = try await client.manifest("library/x", reference: "latest")
        #expect(Date().timeIntervalSince(start) >= 0.9)
        #expect(seen.hits == 2)
    }

    /// A manifest whose bytes do not hash to the digest asked for, or to the registry's own
    /// `Docker-Content-Digest`, is refused; the right bytes are taken.
    @Test func manifestNotMatchingItsDigestIsRefused() async throws {
        let body = Data(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.utf8)
        let right = Digest.compute(body)
        let wrong = Digest.compute(Data("something else".utf8))
        let server = try TinyHTTPServer { req in
            let header = req.target.hasSuffix("/lying") ? wrong.description : right.description
            return .init(status: 200, headers: [("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
                                                ("Docker-Content-Digest", header)], body: body)
        }
        defer { server.stop() }
        let client = RegistryClient(registry: "127.0.0.1:\(server.port)", credentials: .none)
        for reference in [wrong.description, "lying"] {
            do {
                _ = try await client.manifest("x/y", reference: reference)
                Issue.record("manifest accepted for \(reference)")
            } catch let e as RegistryError {
                guard case let .digestMismatch(_, expected, actual) = e else { Issue.record("unexpected \(e)"); continue }
                #expect(expected == wrong)
                #expect(actual == right)
            }
        }
        #expect(try await client.manifest("x/y", reference: right.description).digest == right)
        #expect(try await client.manifest("x/y", reference: "v1").digest == right)
    }
}
