import Foundation
import OCI
import Testing
@testable import Registry

@Suite("TLS with a registry's own CA")
struct TLSTests {
    @Test(arguments: RegistryKind.allCases)
    func caFromCertsDirectoryIsTrusted(_ kind: RegistryKind) async throws {
        let dir = try TempDir("tls")
        defer { dir.remove() }
        let p = dir.path
        try runTool(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(p)/ca.key", "-out", "\(p)/ca.crt",
                     "-subj", "/CN=dockbuild-test-ca", "-days", "2"])
        try runTool(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(p)/srv.key", "-out", "\(p)/srv.csr", "-subj", "/CN=127.0.0.1"])
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: "\(p)/ext.cnf", atomically: true, encoding: .utf8)
        try runTool(["openssl", "x509", "-req", "-in", "\(p)/srv.csr", "-CA", "\(p)/ca.crt", "-CAkey", "\(p)/ca.key", "-CAcreateserial",
                     "-out", "\(p)/srv.crt", "-days", "2", "-extfile", "\(p)/ext.cnf"])
        let registry = try TestRegistry(kind, tls: (cert: "\(p)/srv.crt", key: "\(p)/srv.key"))
        defer { registry.stop() }

        // Without the CA: a certificate error, not retried, saying what to check.
        var untrusted = TransportOptions()
        untrusted.certsDirectory = "\(p)/certs.d"
        let bad = RegistryClient(endpoint: RegistryEndpoint(registry: registry.host, scheme: "https"), credentials: .none,
                                 transport: Transport(options: untrusted), retry: RetryPolicy(maxRetries: 1, baseDelay: 0.01))
        do {
            _ = try await bad.blobSize("tls/test", Digest.compute(Data()))
            Issue.record("an unknown CA was accepted")
        } catch let e as RegistryError {
            guard case let .transport(url, _, retryable) = e else { Issue.record("unexpected \(e)"); return }
            #expect(url.hasPrefix("https://"))
            #expect(!retryable)
        }

        // With /etc/docker/certs.d-style HOST:PORT/ca.crt: works, and a HOST/ca.crt (here
        // another CA) does not override the more specific directory.
        try FileManager.default.createDirectory(atPath: "\(p)/certs.d/\(registry.host)", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(p)/ca.crt", toPath: "\(p)/certs.d/\(registry.host)/ca.crt")
        try FileManager.default.createDirectory(atPath: "\(p)/certs.d/127.0.0.1", withIntermediateDirectories: true)
        try runTool(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(p)/other.key",
                     "-out", "\(p)/certs.d/127.0.0.1/ca.crt", "-subj", "/CN=another-ca", "-days", "2"])
        let good = RegistryClient(endpoint: RegistryEndpoint(registry: registry.host, scheme: "https"), credentials: .none,
                                  transport: Transport(options: untrusted))
        try await roundTrip(good, repo: "tls/test")

        // --insecure: HTTPS with the certificate unchecked, as docker does.
        let insecure = RegistryClient(registry: registry.host, insecure: true, credentials: .none,
                                      transport: Transport(options: untrusted))
        try await roundTrip(insecure, repo: "tls/insecure")
        #expect(insecure.endpoint.scheme == "https")
    }

    @Test(arguments: RegistryKind.allCases)
    func insecureFallsBackToPlainHTTP(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let client = RegistryClient(registry: registry.host, insecure: true, credentials: .none)
        try await roundTrip(client, repo: "plain/insecure")
        #expect(client.endpoint.scheme == "http")
        // Without --insecure, a registry that is not on loopback is never tried over plain HTTP.
        #expect(RegistryClient(registry: "registry.example.com", credentials: .none).endpoint.scheme == "https")
    }
}
