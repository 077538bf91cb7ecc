import Archive
import Foundation
import ImageStore
import OCI
import Testing
@testable import Registry

/// A content store that is not an `ImageStore`: blobs as flat files named by their digest and
/// names in a dictionary, verified the way the protocol asks. What a library user could write to
/// pull into something of their own.
final class FlatContentStore: ContentStore, @unchecked Sendable {
    let dir: String
    private let lock = NSLock()
    private var names: [String: (ImageReference, Descriptor)] = [:]
    private(set) var unnamed: [Descriptor] = []

    init(dir: String) { self.dir = dir }

    var location: String { dir }
    func path(for digest: Digest) -> String { "\(dir)/\(digest.algorithm.rawValue)-\(digest.encoded)" }
    func has(_ digest: Digest) -> Bool { FileManager.default.fileExists(atPath: path(for: digest)) }

    func readBlob(_ digest: Digest) throws -> Data {
        let data = try Data(contentsOf: URL(fileURLWithPath: path(for: digest)))
        guard Digest.compute(data, algorithm: digest.algorithm) == digest else { throw FlatError.corrupt(digest) }
        return data
    }

    func beginIngest(algorithm: Digest.Algorithm) throws -> any ContentIngest { try Ingest(store: self, algorithm: algorithm) }

    func verifyLayer(_ layer: Descriptor, diffID: Digest, what: String) throws {
        guard try LayerDigest.diffID(ofLayer: path(for: layer.digest)).diffID == diffID else { throw FlatError.notItsDiffID(layer.digest) }
    }

    func record(_ descriptor: Descriptor, as reference: ImageReference?) throws {
        lock.lock(); defer { lock.unlock() }
        if let reference { names[reference.description] = (reference, descriptor) } else { unnamed.append(descriptor) }
    }

    func imageNames() -> [(reference: ImageReference, descriptor: Descriptor)] {
        lock.lock(); defer { lock.unlock() }
        return names.values.map { (reference: $0.0, descriptor: $0.1) }
    }

    enum FlatError: Error { case corrupt(Digest), notItsDiffID(Digest), mismatch(String) }

    final class Ingest: ContentIngest, @unchecked Sendable {
        let store: FlatContentStore
        let algorithm: Digest.Algorithm
        let temp: String
        var data = Data()

        init(store: FlatContentStore, algorithm: Digest.Algorithm) throws {
            self.store = store
            self.algorithm = algorithm
            temp = "\(store.dir)/ingest-\(UUID().uuidString)"
        }

        func write(_ bytes: UnsafeRawBufferPointer) throws { data.append(contentsOf: bytes) }

        func commit(expected: Digest?, expectedSize: Int64?, diffID: Digest?) throws -> (digest: Digest, size: Int64) {
            let digest = Digest.compute(data, algorithm: algorithm)
            if let expected, expected != digest { throw FlatError.mismatch("digest \(digest), expected \(expected)") }
            if let expectedSize, expectedSize != Int64(data.count) { throw FlatError.mismatch("size \(data.count), expected \(expectedSize)") }
            try data.write(to: URL(fileURLWithPath: temp))
            if let diffID {
                guard try LayerDigest.diffID(ofLayer: temp).diffID == diffID else {
                    unlink(temp)
                    throw FlatError.notItsDiffID(digest)
                }
            }
            rename(temp, store.path(for: digest))
            return (digest, Int64(data.count))
        }

        func abort() { unlink(temp) }
    }
}

/// Issue #18: the registry client pulls into and pushes from any `ContentStore`, not only the
/// image store, against both registries.
@Suite("The registry client over the content-store protocol")
struct ContentStoreTests {
    @Test(arguments: RegistryKind.allCases)
    func pullIntoAndPushFromAStoreOfOurOwn(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let (store, sdir) = try newStore()
        defer { sdir.remove() }
        let image = try TestImages.make(in: store, tag: "example.com/cs:v1", layers: PullPushTests.layers)
        let client = RegistryClient(registry: registry.host, credentials: .none)
        let src = try ImageReference(parsing: "\(registry.host)/cs/source:v1")
        _ = try await client.push(image.descriptor, from: store, to: src)

        let flatDir = try TempDir("flat-store")
        defer { flatDir.remove() }
        let flat = FlatContentStore(dir: flatDir.path)
        let pulled = try await client.pull(src, into: flat)
        #expect(pulled.descriptor.digest == image.descriptor.digest)
        for d in [image.descriptor.digest, image.manifest.config.digest] + image.manifest.layers.map(\.digest) {
            #expect(flat.has(d), "\(d) is not in the flat store")
        }
        #expect(flat.names(pointingAt: image.descriptor.digest).map(\.description) == [src.description])
        #expect(try await client.pull(src, into: flat).downloadedBlobs == 0, "a second pull downloads nothing")

        // By digest: recorded without a name.
        let byDigest = try ImageReference(parsing: "\(registry.host)/cs/source@\(image.descriptor.digest)")
        _ = try await client.pull(byDigest, into: flat)
        #expect(flat.unnamed.map(\.digest).contains(image.descriptor.digest))

        // Pushed from the flat store to another repository: the same manifest, blobs mounted from
        // the repository the store's name points at.
        let dst = try ImageReference(parsing: "\(registry.host)/cs/copy:v1")
        let pushed = try await client.push(pulled.descriptor, from: flat, to: dst)
        #expect(pushed.descriptor.digest == image.descriptor.digest)
        #expect(pushed.uploadedBlobs == 0, "blobs were uploaded again instead of mounted: \(pushed)")
        let raw = try skopeo(["inspect", "--tls-verify=false", "--raw", "docker://\(registry.host)/cs/copy:v1"])
        #expect(Digest.compute(raw) == image.descriptor.digest)
    }
}
