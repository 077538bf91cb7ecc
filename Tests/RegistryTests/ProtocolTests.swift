import Foundation
import OCI
import Testing
@testable import Registry

/// Collects a blob in memory for the protocol-level tests.
final class MemoryWriter: BlobWriter, @unchecked Sendable {
    var data = Data()
    var aborted = false
    func write(_ bytes: UnsafeRawBufferPointer) throws { data.append(contentsOf: bytes) }
    func abort() { aborted = true }
}

/// A blob read back in full from `repo` (nil when the writer is not the one made here).
func fetched(_ client: RegistryClient, _ repo: String, _ digest: Digest, size: Int) async throws -> Data? {
    (try await client.fetchBlob(repo, digest, expectedSize: Int64(size)) { MemoryWriter() } as? MemoryWriter)?.data
}

func randomBytes(_ n: Int, seed: UInt64 = 42) -> Data {
    var state = seed
    var d = Data(count: n)
    d.withUnsafeMutableBytes { buf in
        let words = buf.bindMemory(to: UInt8.self)
        for i in 0..<n {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            words[i] = UInt8(truncatingIfNeeded: state >> 33)
        }
    }
    return d
}

/// Pushes a blob and a manifest referencing it, reads both back.
func roundTrip(_ client: RegistryClient, repo: String, blobSize: Int = 300_000, chunk: Int64 = 64 << 20) async throws {
    let blob = randomBytes(blobSize)
    let digest = Digest.compute(blob)
    let outcome = try await client.pushBlob(repo, digest: digest, size: Int64(blob.count), body: .data(blob), chunkSize: chunk)
    #expect(outcome == .uploaded)
    #expect(try await client.blobSize(repo, digest) == Int64(blob.count))
    let again = try await client.pushBlob(repo, digest: digest, size: Int64(blob.count), body: .data(blob))
    #expect(again == .alreadyPresent)
    #expect(try await fetched(client, repo, digest, size: blob.count) == blob)

    let config = Data(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.utf8)
    let cd = Digest.compute(config)
    _ = try await client.pushBlob(repo, digest: cd, size: Int64(config.count), body: .data(config))
    let manifest = Data("""
    {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(cd)","size":\(config.count)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\(digest)","size":\(blob.count)}]}
    """.utf8)
    let md = try await client.putManifest(repo, reference: "v1", data: manifest, mediaType: "application/vnd.oci.image.manifest.v1+json")
    #expect(md == Digest.compute(manifest))
    let fetched = try await client.manifest(repo, reference: "v1")
    #expect(fetched.data == manifest)
    #expect(fetched.digest == md)
    #expect(fetched.mediaType == "application/vnd.oci.image.manifest.v1+json")
    let byDigest = try await client.manifest(repo, reference: md.description)
    #expect(byDigest.data == manifest)
}

@Suite("Registry protocol against docker-registry and dockbuild's server")
struct ProtocolTests {
    @Test(arguments: RegistryKind.allCases)
    func anonymousRoundTrip(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let client = RegistryClient(registry: registry.host, credentials: .none)
        try await roundTrip(client, repo: "test/anon")
    }

    @Test(arguments: RegistryKind.allCases)
    func chunkedUploadAndCrossRepoMount(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let client = RegistryClient(registry: registry.host, credentials: .none)
        try await roundTrip(client, repo: "test/chunked", blobSize: 2_500_000, chunk: 1 << 20)
        let blob = randomBytes(2_500_000)
        let outcome = try await client.pushBlob("other/repo", digest: Digest.compute(blob), size: Int64(blob.count),
                                                body: .data(blob), mountFrom: ["test/chunked"])
        #expect(outcome == .mounted(from: "test/chunked"))
        #expect(try await client.blobSize("other/repo", Digest.compute(blob)) == Int64(blob.count))
    }

    @Test(arguments: RegistryKind.allCases)
    func basicAuth(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind, auth: .htpasswd(user: "alice", password: "s3cret"))
        defer { registry.stop() }
        let client = RegistryClient(registry: registry.host, credentials: .explicit(Credentials(username: "alice", password: "s3cret")))
        try await roundTrip(client, repo: "test/basic")

        let anonymous = RegistryClient(registry: registry.host, credentials: .none)
        await #expect(throws: RegistryError.self) { try await anonymous.manifest("test/basic", reference: "v1") }
        let wrong = RegistryClient(registry: registry.host, credentials: .explicit(Credentials(username: "alice", password: "nope")))
        do {
            _ = try await wrong.manifest("test/basic", reference: "v1")
            Issue.record("wrong password accepted")
        } catch let e as RegistryError {
            guard case let .unauthorized(_, _, _, had) = e else { Issue.record("unexpected \(e)"); return }
            #expect(had)
            #expect(e.description.contains("dockbuild login"))
        }
    }

    /// `login --insecure` to a plain-HTTP registry: HTTPS is tried first, then plain HTTP, and
    /// the credentials are checked there (a wrong password is refused).
    @Test(arguments: RegistryKind.allCases)
    func loginToAnInsecurePlainRegistry(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind, auth: .htpasswd(user: "alice", password: "s3cret"))
        defer { registry.stop() }
        let ok = try await RegistryClient.login(registry: registry.host, credentials: Credentials(username: "alice", password: "s3cret"),
                                                insecure: true)
        #expect(ok.username == "alice")
        do {
            _ = try await RegistryClient.login(registry: registry.host, credentials: Credentials(username: "alice", password: "nope"),
                                               insecure: true)
            Issue.record("a wrong password was accepted")
        } catch let e as RegistryError {
            guard case .unauthorized = e else { Issue.record("unexpected \(e)"); return }
        }
    }

    @Test(arguments: RegistryKind.allCases)
    func tokenAuth(_ kind: RegistryKind) async throws {
        let issuer = try TokenIssuer(users: ["bob": "hunter2"], allowAnonymousPull: true)
        defer { issuer.stop() }
        let registry = try TestRegistry(kind, auth: .token(issuer))
        defer { registry.stop() }
        let client = RegistryClient(registry: registry.host, credentials: .explicit(Credentials(username: "bob", password: "hunter2")))
        try await roundTrip(client, repo: "test/token")
        // Tokens are cached per scope: a second round of pulls asks for no new token.
        let before = issuer.requests.count
        _ = try await client.manifest("test/token", reference: "v1")
        _ = try await client.manifest("test/token", reference: "v1")
        #expect(issuer.requests.count == before)

        // Anonymous pull is allowed by this issuer, push is not.
        let anonymous = RegistryClient(registry: registry.host, credentials: .none)
        _ = try await anonymous.manifest("test/token", reference: "v1")
        let blob = Data("nope".utf8)
        await #expect(throws: RegistryError.self) {
            _ = try await anonymous.pushBlob("test/token", digest: Digest.compute(blob), size: 4, body: .data(blob))
        }
    }

    @Test(arguments: RegistryKind.allCases)
    func refreshTokenFromIdentityToken(_ kind: RegistryKind) async throws {
        let issuer = try TokenIssuer(users: ["carol": "pw"])
        defer { issuer.stop() }
        let registry = try TestRegistry(kind, auth: .token(issuer))
        defer { registry.stop() }
        // Log in the way `dockbuild login` does and get an identity (refresh) token.
        let login = try await RegistryClient.login(registry: registry.host, credentials: Credentials(username: "carol", password: "pw"))
        let identity = try #require(login.identityToken)
        let client = RegistryClient(registry: registry.host,
                                    credentials: .explicit(Credentials(username: "", password: "", identityToken: identity)))
        try await roundTrip(client, repo: "test/refresh")
        #expect(issuer.requests.contains { $0.method == "POST" && String(decoding: $0.body, as: UTF8.self).contains("grant_type=refresh_token") })
    }

    /// A cached token is used until 10 s before it expires, then a new one is fetched; a token
    /// the registry refuses (401) is dropped and fetched again, once, and the request succeeds.
    @Test(arguments: RegistryKind.allCases)
    func tokensAreRefetchedNearExpiryAndAfterARefusal(_ kind: RegistryKind) async throws {
        let issuer = try TokenIssuer(users: ["bob": "hunter2"])
        defer { issuer.stop() }
        let registry = try TestRegistry(kind, auth: .token(issuer))
        defer { registry.stop() }
        let client = RegistryClient(registry: registry.host, credentials: .explicit(Credentials(username: "bob", password: "hunter2")))
        let blob = randomBytes(1000, seed: 5)
        let digest = Digest.compute(blob)
        _ = try await client.pushBlob("test/expiry", digest: digest, size: Int64(blob.count), body: .data(blob))
        func tokenRequests() -> Int { issuer.requests.count }
        let afterPush = tokenRequests()
        #expect(try await client.blobSize("test/expiry", digest, push: true) == 1000)
        #expect(tokenRequests() == afterPush)  // cached

        // 5 s left of its life: not worth sending, a new one is fetched first.
        await client.auth.adjustCachedTokens { $0.expires = Date().addingTimeInterval(5) }
        #expect(try await client.blobSize("test/expiry", digest, push: true) == 1000)
        #expect(tokenRequests() == afterPush + 1)

        // A token the registry does not accept (its signature spoilt): 401, new token, success.
        await client.auth.adjustCachedTokens { $0.token = String($0.token.dropLast(4)) + "AAAA" }
        #expect(try await client.blobSize("test/expiry", digest, push: true) == 1000)
        #expect(tokenRequests() == afterPush + 2)
    }

    /// A token service without the OAuth2 POST form (405): with a password at hand the client
    /// asks again with GET and Basic credentials, as containerd does.
    @Test(arguments: RegistryKind.allCases)
    func refreshPostRefusedFallsBackToGet(_ kind: RegistryKind) async throws {
        let issuer = try TokenIssuer(users: ["carol": "pw"], refusePost: true)
        defer { issuer.stop() }
        let registry = try TestRegistry(kind, auth: .token(issuer))
        defer { registry.stop() }
        let client = RegistryClient(registry: registry.host,
                                    credentials: .explicit(Credentials(username: "carol", password: "pw", identityToken: "stale")))
        try await roundTrip(client, repo: "test/nopost")
        #expect(issuer.requests.contains { $0.method == "POST" })
        #expect(issuer.requests.contains { $0.method == "GET" && $0.headers["authorization"]?.hasPrefix("Basic ") == true })
    }

    /// A cross-repository mount needs pull access to the source repository: a user who may
    /// not read `secret/app` cannot get its blob into their own repository by naming its
    /// digest. docker-registry refuses such a mount with 401 (it asks for pull on `from`);
    /// dockbuild's server opens an ordinary upload instead (202, as the spec allows), and it
    /// mounts without `from` only when authentication is off. Either way the client falls
    /// back to uploading the bytes, and the blob is never mounted.
    @Test(arguments: RegistryKind.allCases)
    func mountNeedsPullOnTheSourceRepository(_ kind: RegistryKind) async throws {
        let issuer = try TokenIssuer(users: ["bob": "pw1", "eve": "pw2"], denied: ["eve": ["secret/app"]])
        defer { issuer.stop() }
        let registry = try TestRegistry(kind, auth: .token(issuer))
        defer { registry.stop() }
        let blob = randomBytes(100_000, seed: 21)
        let digest = Digest.compute(blob)
        let bob = RegistryClient(registry: registry.host, credentials: .explicit(Credentials(username: "bob", password: "pw1")))
        #expect(try await bob.pushBlob("secret/app", digest: digest, size: Int64(blob.count), body: .data(blob)) == .uploaded)

        let eve = RegistryClient(registry: registry.host, credentials: .explicit(Credentials(username: "eve", password: "pw2")))
        await #expect(throws: RegistryError.self) { _ = try await eve.blobSize("secret/app", digest) }
        // Without `from`: no automatic mount under authentication, an upload session opens.
        let url = try #require(URL(string: "http://\(registry.host)/v2/eve/auto/blobs/uploads/?mount=\(digest)"))
        let auto = try await eve.send("POST", url, scopes: [RegistryClient.scope("eve/auto", push: true)])
        #expect(auto.status == 202)
        #expect(try await eve.blobSize("eve/auto", digest) == nil)
        // With `from`: refused (docker-registry) or ignored (dockbuild); the bytes get uploaded.
        let outcome = try await eve.pushBlob("eve/app", digest: digest, size: Int64(blob.count), body: .data(blob), mountFrom: ["secret/app"])
        #expect(outcome == .uploaded)
        #expect(try await eve.blobSize("eve/app", digest) == Int64(blob.count))
        // With pull access on the source, the same mount works.
        #expect(try await bob.pushBlob("bob/app", digest: digest, size: Int64(blob.count), body: .data(blob), mountFrom: ["secret/app"])
                == .mounted(from: "secret/app"))
    }

    /// dockbuild's server only (distribution has no token endpoint of its own):
    /// `--htpasswd FILE --token-auth` hands out its own ES256 tokens from `/token`.
    @Test func dockbuildOwnTokenEndpoint() async throws {
        let registry = try TestRegistry(.dockbuild, auth: .ownToken(user: "dave", password: "pa55"))
        defer { registry.stop() }
        let login = try await RegistryClient.login(registry: registry.host, credentials: Credentials(username: "dave", password: "pa55"))
        #expect(login.identityToken == nil)
        let client = RegistryClient(registry: registry.host, credentials: .explicit(Credentials(username: "dave", password: "pa55")))
        try await roundTrip(client, repo: "test/own-token", blobSize: 1_500_000, chunk: 1 << 20)
        // Every user may read every repository here, so mounts need no extra scope, with or without `from`.
        let blob = randomBytes(1_500_000)
        let digest = Digest.compute(blob)
        #expect(try await client.pushBlob("test/mounted", digest: digest, size: Int64(blob.count), body: .data(blob),
                                          mountFrom: ["test/own-token"]) == .mounted(from: "test/own-token"))
        let url = try #require(URL(string: "http://\(registry.host)/v2/test/auto/blobs/uploads/?mount=\(digest)"))
        #expect(try await client.send("POST", url, scopes: [RegistryClient.scope("test/auto", push: true)]).status == 201)
        #expect(try await client.blobSize("test/auto", digest) == Int64(blob.count))

        // Documented: without credentials nothing is readable; a wrong password is refused by /token.
        for (credentials, had) in [(CredentialSource.none, false), (.explicit(Credentials(username: "dave", password: "nope")), true)] {
            let other = RegistryClient(registry: registry.host, credentials: credentials)
            do {
                _ = try await other.manifest("test/own-token", reference: "v1")
                Issue.record("read without valid credentials")
            } catch let e as RegistryError {
                guard case let .unauthorized(_, _, _, hadCredentials) = e else { Issue.record("unexpected \(e)"); continue }
                #expect(hadCredentials == had)
            }
        }
    }
}
