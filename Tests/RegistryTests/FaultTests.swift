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
        #expect(try await fetched(client, "fault/cut", digest, size: blob.count) == blob)
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

    /// A registry that sends more bytes than the manifest's size is cut off as soon as the body
    /// passes that size, not after the whole body is on disk; the writer is thrown away.
    @Test(arguments: RegistryKind.allCases)
    func bodyLongerThanItsSizeIsCutOff(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let blob = randomBytes(3_000_000, seed: 9)
        let digest = Digest.compute(blob)
        let client = RegistryClient(registry: registry.host, credentials: .none, retry: RetryPolicy(baseDelay: 0.01))
        _ = try await client.pushBlob("fault/long", digest: digest, size: Int64(blob.count), body: .data(blob))
        let lock = NSLock()
        var made: [MemoryWriter] = []
        do {
            _ = try await client.fetchBlob("fault/long", digest, expectedSize: 100_000) {
                let m = MemoryWriter()
                lock.withLock { made.append(m) }
                return m
            }
            Issue.record("a body longer than its size was accepted")
        } catch let e as RegistryError {
            guard case let .sizeMismatch(_, expected, actual) = e else { Issue.record("unexpected \(e)"); return }
            #expect(expected == 100_000)
            #expect(actual > 100_000)
        }
        #expect(made.count == 1)
        #expect(made.allSatisfy { $0.data.count <= 100_000 })
        #expect(made.allSatisfy { $0.aborted })
    }

    @Test(arguments: RegistryKind.allCases)
    func pushSendsLargestBlobFirstAndCancelsSessionsOnFailure(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let (store, sdir) = try newStore()
        defer { sdir.remove() }
        let layers: [[String: Data]] = [["small": randomBytes(20_000, seed: 21)], ["large": randomBytes(900_000, seed: 22)],
                                        ["medium": randomBytes(300_000, seed: 23)]]
        let image = try TestImages.make(in: store, tag: "\(registry.host)/order/app:v1", layers: layers)
        let bySize = ([image.manifest.config] + image.manifest.layers).sorted { $0.size > $1.size }

        // One lane: uploads go strictly largest first.
        let proxy = try FlakyProxy(upstream: registry.port, fault: .fail500(pathContains: "-never-", count: 0))
        defer { proxy.stop() }
        let client = RegistryClient(registry: proxy.host, credentials: .none)
        let ref = try ImageReference(parsing: "\(proxy.host)/order/app:v1")
        let result = try await client.push(image.descriptor, from: store, to: ref, options: PushOptions(maxConcurrent: 1))
        #expect(result.uploadedBlobs == 4)
        let puts = proxy.log.filter { $0.hasPrefix("PUT") && $0.contains("/blobs/uploads/") }
        let order = puts.compactMap { line in bySize.firstIndex { line.contains($0.digest.encoded) } }
        #expect(order == [0, 1, 2, 3], "\(puts)")

        // A blob the registry keeps refusing fails the push; the sessions opened for it and
        // ahead of it are given back with DELETE.
        let failing = try FlakyProxy(upstream: registry.port, fault: .fail500(pathContains: "digest=sha256:" + bySize[0].digest.encoded, count: 100))
        defer { failing.stop() }
        let bad = RegistryClient(registry: failing.host, credentials: .none, retry: RetryPolicy(maxRetries: 1, baseDelay: 0.01))
        let ref2 = try ImageReference(parsing: "\(failing.host)/order/other:v1")
        await #expect(throws: RegistryError.self) {
            _ = try await bad.push(image.descriptor, from: store, to: ref2, options: PushOptions(maxConcurrent: 1))
        }
        #expect(failing.log.contains { $0.hasPrefix("DELETE /v2/order/other/blobs/uploads/") }, "\(failing.log)")
    }

    @Test(arguments: RegistryKind.allCases)
    func chunkedPushResumesAfterABrokenPatch(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let proxy = try FlakyProxy(upstream: registry.port, fault: .cutFirstPatch(afterBytes: 700_000))
        defer { proxy.stop() }
        let client = RegistryClient(registry: proxy.host, credentials: .none, retry: RetryPolicy(baseDelay: 0.02))
        let blob = randomBytes(3_000_000, seed: 13)
        let digest = Digest.compute(blob)
        let outcome = try await client.pushBlob("fault/patch", digest: digest, size: Int64(blob.count), body: .data(blob), chunkSize: 1 << 20)
        #expect(outcome == .uploaded)
        #expect(try await fetched(RegistryClient(registry: registry.host, credentials: .none), "fault/patch", digest, size: blob.count) == blob)
        let patches = proxy.log.filter { $0.hasPrefix("PATCH") }
        switch kind {
        case .distribution:
            // distribution drops a session whose bytes no longer match its state: a new session,
            // the blob again from byte 0.
            #expect(proxy.log.filter { $0.hasPrefix("POST") }.count == 2, "\(proxy.log)")
            #expect(patches.filter { $0.contains("Content-Range: 0-") }.count == 3, "\(proxy.log)")
        case .dockbuild:
            // dockbuild's server keeps what arrived: the client asks where it stopped and goes on from there.
            #expect(proxy.log.contains { $0.hasPrefix("GET /v2/fault/patch/blobs/uploads/") }, "\(proxy.log)")
            #expect(patches.contains { $0.contains("Content-Range: 700000-") }, "\(proxy.log)")
        }
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
        #expect(try await fetched(RegistryClient(registry: registry.host, credentials: .none), "fault/upload", digest, size: blob.count) == blob)
        #expect(proxy.log.filter { $0.hasPrefix("PATCH") }.count >= 3)
    }
}
