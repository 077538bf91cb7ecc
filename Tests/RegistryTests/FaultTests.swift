import Foundation
import OCI
import Testing
@testable import Registry

@Suite("Faults: broken connections, server errors")
struct FaultTests {
    @Test(arguments: RegistryKind.allCases)
    func connectionCutMidBlobResumesWithRange(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let blob = randomBytes(3_000_000, seed: 7)
        let digest = Digest.compute(blob)
        let direct = RegistryClient(registry: registry.host, credentials: .none)
        _ = try await direct.pushBlob("fault/cut", digest: digest, size: Int64(blob.count), body: .data(blob))

        let proxy = try FlakyProxy(upstream: registry.port, fault: .cutFirstBlobGet(afterBytes: 1_000_000))
        defer { proxy.stop() }
        let client = RegistryClient(registry: proxy.host, credentials: .none, retry: RetryPolicy(baseDelay: 0.05))
        let w = try await client.fetchBlob("fault/cut", digest, expectedSize: Int64(blob.count)) { MemoryWriter() }
        #expect((w as? MemoryWriter)?.data == blob)
        let gets = proxy.log.filter { $0.hasPrefix("GET /v2/fault/cut/blobs/") }
        #expect(gets.count == 2)
        #expect(gets.last?.contains("bytes=1000000-") == true)
    }

    @Test(arguments: RegistryKind.allCases)
    func serverErrorThenSuccessRetries(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let client0 = RegistryClient(registry: registry.host, credentials: .none)
        try await roundTrip(client0, repo: "fault/retry")

        let proxy = try FlakyProxy(upstream: registry.port, fault: .fail500(pathContains: "/manifests/v1", count: 2))
        defer { proxy.stop() }
        let client = RegistryClient(registry: proxy.host, credentials: .none, retry: RetryPolicy(baseDelay: 0.05))
        let m = try await client.manifest("fault/retry", reference: "v1")
        #expect(m.mediaType == "application/vnd.oci.image.manifest.v1+json")
        #expect(proxy.log.filter { $0.hasPrefix("GET /v2/fault/retry/manifests/v1") }.count == 3)
    }

    @Test(arguments: RegistryKind.allCases)
    func persistentServerErrorShowsRegistryMessage(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let proxy = try FlakyProxy(upstream: registry.port, fault: .fail500(pathContains: "/manifests/", count: 100))
        defer { proxy.stop() }
        let client = RegistryClient(registry: proxy.host, credentials: .none, retry: RetryPolicy(maxRetries: 2, baseDelay: 0.01))
        do {
            _ = try await client.manifest("fault/down", reference: "v1")
            Issue.record("expected a failure")
        } catch let e as RegistryError {
            #expect(e.description.contains("500"))
            #expect(e.description.contains("injected failure"))
        }
    }

    @Test func unreachableRegistryIsATransportError() async throws {
        let port = try Sock.freePort()
        let client = RegistryClient(registry: "127.0.0.1:\(port)", credentials: .none, retry: RetryPolicy(maxRetries: 1, baseDelay: 0.01))
        do {
            _ = try await client.manifest("x/y", reference: "latest")
            Issue.record("expected a failure")
        } catch let e as RegistryError {
            guard case .transport = e else { Issue.record("unexpected \(e)"); return }
            #expect(e.description.contains("127.0.0.1:\(port)"))
        }
    }
}

@Suite("Faults: restarts and uploads")
struct MoreFaultTests {
    @Test(arguments: RegistryKind.allCases)
    func serverWithoutRangeSupportRestartsTheBlob(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let blob = randomBytes(3_000_000, seed: 11)
        let digest = Digest.compute(blob)
        let direct = RegistryClient(registry: registry.host, credentials: .none)
        _ = try await direct.pushBlob("fault/norange", digest: digest, size: Int64(blob.count), body: .data(blob))

        let proxy = try FlakyProxy(upstream: registry.port, fault: .cutFirstBlobGetIgnoringRange(afterBytes: 500_000))
        defer { proxy.stop() }
        let client = RegistryClient(registry: proxy.host, credentials: .none, retry: RetryPolicy(baseDelay: 0.05))
        var made: [MemoryWriter] = []
        let lock = NSLock()
        let w = try await client.fetchBlob("fault/norange", digest, expectedSize: Int64(blob.count)) {
            let m = MemoryWriter()
            lock.withLock { made.append(m) }
            return m
        }
        #expect((w as? MemoryWriter)?.data == blob)
        // The first, partial writer was thrown away.
        #expect(made.count == 2)
        #expect(made.first?.aborted == true)
    }

    @Test(arguments: RegistryKind.allCases)
    func chunkedPushThroughServerErrors(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let proxy = try FlakyProxy(upstream: registry.port, fault: .fail500(pathContains: "/blobs/uploads/", count: 3))
        defer { proxy.stop() }
        let client = RegistryClient(registry: proxy.host, credentials: .none, retry: RetryPolicy(baseDelay: 0.02))
        let blob = randomBytes(2_200_000, seed: 12)
        let digest = Digest.compute(blob)
        let outcome = try await client.pushBlob("fault/upload", digest: digest, size: Int64(blob.count), body: .data(blob), chunkSize: 1 << 20)
        #expect(outcome == .uploaded)
        let direct = RegistryClient(registry: registry.host, credentials: .none)
        let w = try await direct.fetchBlob("fault/upload", digest, expectedSize: Int64(blob.count)) { MemoryWriter() }
        #expect((w as? MemoryWriter)?.data == blob)
        #expect(proxy.log.filter { $0.hasPrefix("PATCH") }.count >= 3)
    }
}
