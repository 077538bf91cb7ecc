import Foundation
import OCI
import Testing
@testable import ImageStore

/// A store in a fresh temp dir, removed afterwards.
final class TempStore {
    let dir: String
    let store: ImageStore
    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("imagestore-\(UUID().uuidString)").path
        store = try ImageStore(root: dir)
    }
    deinit { try? FileManager.default.removeItem(atPath: dir) }

    /// Files under root, relative, excluding lock files: what "the store as it was" means.
    func snapshotFiles() -> [String] {
        let e = FileManager.default.enumerator(atPath: dir)
        var out: [String] = []
        while let p = e?.nextObject() as? String { out.append(p) }
        return out.sorted()
    }
}

@Suite struct ImageStoreTests {
    @Test func createsAnOCILayout() throws {
        let t = try TempStore()
        let layout = try String(contentsOfFile: t.dir + "/oci-layout", encoding: .utf8)
        #expect(layout == #"{"imageLayoutVersion":"1.0.0"}"#)
        let index = try ImageIndex.decode(Data(contentsOf: URL(fileURLWithPath: t.dir + "/index.json")))
        #expect(index.manifests.isEmpty)
        // Reopening keeps everything.
        let d = try t.store.writeBlob(Data("x".utf8))
        #expect(try ImageStore(root: t.dir).has(d))
    }

    @Test func writeBlobVerifies() throws {
        let t = try TempStore()
        let data = Data("hello".utf8)
        let d = try t.store.writeBlob(data, expected: Digest.compute(data))
        #expect(t.store.has(d))
        #expect(try t.store.readBlob(d) == data)
        #expect(t.store.size(of: d) == 5)
        // Writing the same blob twice stores it once.
        #expect(try t.store.writeBlob(data) == d)
        #expect(try t.store.listBlobs() == [d])
    }

    /// A small blob stored already with the same bytes is left as it is (same inode: no temp
    /// file, no rename); one whose stored bytes were damaged is written again.
    @Test func aStoredBlobIsNotRewrittenButADamagedOneIs() throws {
        let t = try TempStore()
        let data = Data(#"{"architecture":"amd64","os":"linux"}"#.utf8)
        let d = try t.store.writeBlob(data)
        let path = t.store.path(for: d)
        var first = stat(), second = stat()
        #expect(stat(path, &first) == 0)
        #expect(try t.store.writeBlob(data) == d)
        #expect(try t.store.writeBlob(data, expected: d) == d)
        #expect(stat(path, &second) == 0)
        #expect(first.st_ino == second.st_ino)
        #expect(try FileManager.default.contentsOfDirectory(atPath: t.dir + "/tmp").isEmpty)
        // damaged in place: the next write of the same content repairs it
        try Data(#"{"architecture":"arm64","os":"linux"}"#.utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: (any Error).self) { try t.store.readBlob(d) }
        #expect(try t.store.writeBlob(data) == d)
        #expect(try t.store.readBlob(d) == data)
        // a wrong expected digest is still refused
        #expect(throws: (any Error).self) { try t.store.writeBlob(Data("other".utf8), expected: d) }
    }

    @Test func wrongDigestLeavesStoreAsItWas() throws {
        let t = try TempStore()
        _ = try t.store.writeBlob(Data("keep".utf8))
        let before = t.snapshotFiles()
        #expect(throws: ImageStoreError.self) {
            try t.store.writeBlob(Data("evil".utf8), expected: Digest.compute(Data("good".utf8)))
        }
        #expect(t.snapshotFiles() == before)
    }

    @Test func truncatedStreamLeavesStoreAsItWas() throws {
        let t = try TempStore()
        let before = t.snapshotFiles()
        let full = Data(repeating: 7, count: 100_000)
        let ingest = try t.store.ingest()
        try ingest.write(full.prefix(60_000))
        #expect {
            try ingest.commit(expected: Digest.compute(full), expectedSize: Int64(full.count))
        } throws: { e in
            "\(e)".contains("100000") && "\(e)".contains("nothing was stored")
        }
        #expect(t.snapshotFiles() == before)
        // An ingest dropped half way leaves nothing either.
        do {
            let i2 = try t.store.ingest()
            try i2.write(full.prefix(10))
        }
        #expect(t.snapshotFiles() == before)
    }

    @Test func streamingIngestInChunks() throws {
        let t = try TempStore()
        let full = Data((0..<300_000).map { UInt8($0 % 251) })
        let ingest = try t.store.ingest()
        var off = 0
        while off < full.count {
            try ingest.write(full[off..<min(off + 65_536, full.count)])
            off += 65_536
        }
        let (d, n) = try ingest.commit(expected: Digest.compute(full))
        #expect(n == Int64(full.count))
        #expect(try t.store.readBlob(d) == full)
    }

    @Test func corruptBlobIsDetectedOnRead() throws {
        let t = try TempStore()
        let d = try t.store.writeBlob(Data("abc".utf8))
        try Data("abd".utf8).write(to: URL(fileURLWithPath: t.store.path(for: d)))
        #expect { try t.store.readBlob(d) } throws: { "\($0)".contains("corrupt") }
    }

    @Test func adoptFileVerifies() throws {
        let t = try TempStore()
        let p = t.store.tempDir + "/layer"
        try Data("layer bytes".utf8).write(to: URL(fileURLWithPath: p))
        #expect(throws: ImageStoreError.self) { try t.store.adoptFile(at: p, digest: Digest.compute(Data("other".utf8))) }
        #expect(!FileManager.default.fileExists(atPath: p))
        try Data("layer bytes".utf8).write(to: URL(fileURLWithPath: p))
        try t.store.adoptFile(at: p, digest: Digest.compute(Data("layer bytes".utf8)))
        #expect(t.store.has(Digest.compute(Data("layer bytes".utf8))))
    }

    /// A one-layer image; the "layer" is arbitrary bytes (the store does not look inside).
    static func makeImage(_ store: ImageStore, layer: String, tag: String?, cmd: [String] = ["/bin/sh"]) throws -> Image {
        let bytes = Data(layer.utf8)
        let d = try store.writeBlob(bytes)
        let config = ImageConfig(created: "2024-01-01T00:00:00Z", platform: .host,
                                 config: ContainerConfig(cmd: cmd), rootfs: RootFS(diffIDs: [d]))
        return try store.putImage(config: config, layers: [Descriptor(mediaType: MediaType.layer, digest: d, size: Int64(bytes.count))],
                                  tag: try tag.map { try ImageReference(parsing: $0) })
    }

    /// Issue #19: the decoded index is reused while index.json is the same file, and a change
    /// made by another store of the same process, or by another program replacing the file,
    /// is seen at the next read.
    @Test func indexReadAgainWhenReplaced() throws {
        let t = try TempStore()
        let a = try Self.makeImage(t.store, layer: "one", tag: "first:1")
        #expect(try t.store.listImages().compactMap(\.reference?.familiarString) == ["first:1"])
        #expect(try t.store.listImages().compactMap(\.reference?.familiarString) == ["first:1"])  // from the cache
        // another store over the same root, in this process
        _ = try Self.makeImage(try ImageStore(root: t.dir), layer: "two", tag: "second:1")
        #expect(try t.store.listImages().compactMap(\.reference?.familiarString) == ["first:1", "second:1"])
        // another program: the file replaced by a rename, with the same size and time
        let path = t.dir + "/index.json"
        let before = try FileManager.default.attributesOfItem(atPath: path)
        var idx = try ImageIndex.decode(Data(contentsOf: URL(fileURLWithPath: path)))
        idx.manifests = idx.manifests.filter { $0.digest == a.descriptor.digest }
        try CanonicalJSON.encode(idx).write(to: URL(fileURLWithPath: path + ".new"))
        try FileManager.default.setAttributes([.modificationDate: before[.modificationDate] as Any], ofItemAtPath: path + ".new")
        #expect(rename(path + ".new", path) == 0)
        #expect(try t.store.listImages().compactMap(\.reference?.familiarString) == ["first:1"])
    }

    @Test func putImageTagResolve() throws {
        let t = try TempStore()
        let img = try Self.makeImage(t.store, layer: "one", tag: "busybox")
        #expect(try t.store.resolve("busybox") == img.descriptor)
        #expect(try t.store.resolve("busybox:latest") == img.descriptor)
        #expect(try t.store.resolve("docker.io/library/busybox:latest") == img.descriptor)
        #expect(try t.store.resolve(img.id.description) == img.descriptor)
        #expect(try t.store.resolve(String(img.id.encoded.prefix(12))) == img.descriptor)
        #expect(try t.store.resolve(img.descriptor.digest.description) == img.descriptor)
        #expect(try t.store.resolve("busybox@\(img.descriptor.digest)") == img.descriptor)
        #expect { try t.store.resolve("nothere") } throws: { "\($0)".contains("no such image: nothere") }
        #expect(throws: OCIError.self) { try t.store.resolve("Bad:Name:") }
        let loaded = try t.store.image("busybox")
        #expect(loaded.config.config?.cmd == ["/bin/sh"])
        #expect(loaded.id == img.id)
        #expect(loaded.chainID == img.config.rootfs.diffIDs.first)
    }

    /// Issue #19: a name is found by its recorded string without parsing every stored name; the
    /// answer (or the error) is the full look-up's for names, digests, ID prefixes, names that
    /// look like IDs or digests, and names not stored.
    @Test func resolveByRecordedNameAgreesWithTheFullLookUp() throws {
        let t = try TempStore()
        let a = try Self.makeImage(t.store, layer: "a", tag: "app:1")
        let b = try Self.makeImage(t.store, layer: "b", tag: "localhost:5000/team/app")
        let idPrefix = String(a.id.encoded.prefix(12))
        // a name that is also another image's ID prefix: the name wins, as before
        _ = try Self.makeImage(t.store, layer: "c", tag: String(b.id.encoded.prefix(12)))
        _ = try Self.makeImage(t.store, layer: "d", tag: nil)
        let names = ["app:1", "app", "docker.io/library/app:1", "index.docker.io/library/app:1", "app:2", "localhost:5000/team/app",
                     "localhost:5000/team/app:latest", "team/app", idPrefix, String(b.id.encoded.prefix(12)),
                     String(b.id.encoded.prefix(8)), a.id.description, b.descriptor.digest.description, "app@\(a.descriptor.digest)",
                     "nothere", "Bad:Name:", "sha256", "a"]
        for name in names {
            let fast = Result { try t.store.resolve(name) }
            let full = Result { try t.store.resolve(name, in: try t.store.listImages()) }
            switch (fast, full) {
            case let (.success(x), .success(y)): #expect(x == y, "\(name)")
            case let (.failure(x), .failure(y)): #expect("\(x)" == "\(y)", "\(name)")
            default: Issue.record("\(name): \(fast) against \(full)")
            }
        }
        #expect(try t.store.resolve("app:1").annotations == nil)
    }

    /// `images` reads a summary: the same ID, time and (docker's, uncompressed) size as the full image, and the same
    /// refusal of a damaged config.
    @Test func summaryAgreesWithTheImage() throws {
        let t = try TempStore()
        let img = try Self.makeImage(t.store, layer: "some layer bytes", tag: "busybox")
        let s = try t.store.summary(for: img.descriptor)
        #expect(s.id == img.id && s.size == t.store.contentSize(of: img.manifest.layers) && s.created == img.config.createdDate)
        #expect(s.created == ImageConfig.parseDate("2024-01-01T00:00:00Z") && s.created != nil)
        #expect(ImageConfig.formatDate(s.created!) == "2024-01-01T00:00:00Z")
        try Data("{}".utf8).write(to: URL(fileURLWithPath: t.store.path(for: img.id)))
        #expect { try t.store.summary(for: img.descriptor) } throws: { "\($0)".contains("corrupt") }
    }

    @Test func digestOnlyNamesMakeNoTag() throws {
        let t = try TempStore()
        let img = try Self.makeImage(t.store, layer: "d", tag: nil)
        let ref = try ImageReference(parsing: "busybox@\(img.descriptor.digest)")
        try t.store.tag(ref, descriptor: img.descriptor)
        let named = try t.store.listImages().filter { $0.reference != nil }
        #expect(named.map(\.reference) == [ref])
        #expect(named.first?.reference?.tag == nil)
        #expect(throws: ImageStoreError.self) { try t.store.resolve("busybox:latest") }
        #expect(try t.store.resolve("busybox@\(img.descriptor.digest)") == img.descriptor)
        #expect(try t.store.untag(ref) == img.descriptor)
    }

    @Test func taggedTwiceStoredOnce() throws {
        let t = try TempStore()
        let img = try Self.makeImage(t.store, layer: "one", tag: "a")
        let blobs = try t.store.listBlobs()
        try t.store.tag(try ImageReference(parsing: "localhost:5000/b:v1"), descriptor: img.descriptor)
        #expect(try t.store.listBlobs() == blobs)
        let names = try t.store.names(for: img.descriptor.digest).map(\.description).sorted()
        #expect(names == ["docker.io/library/a:latest", "localhost:5000/b:v1"])
        #expect(try t.store.listImages().count == 2)
    }

    @Test func retagLeavesDanglingAndGCRespectsNames() throws {
        let t = try TempStore()
        let old = try Self.makeImage(t.store, layer: "old", tag: "app")
        let new = try Self.makeImage(t.store, layer: "new", tag: "app", cmd: ["new"])
        let entries = try t.store.listImages()
        #expect(entries.count == 2)
        #expect(entries.first { $0.reference != nil }?.descriptor == new.descriptor)
        #expect(entries.first { $0.reference == nil }?.descriptor.digest == old.descriptor.digest)
        // gc keeps dangling images (prune removes them first).
        var r = try t.store.gc()
        #expect(r.removedBlobs.isEmpty)
        try t.store.removeImage(old.descriptor.digest)
        r = try t.store.gc()
        #expect(Set(r.removedBlobs) == [old.descriptor.digest, old.id, old.manifest.layers[0].digest])
        #expect(try t.store.image("app").id == new.id)
    }

    @Test func untagThenGCRemovesEverything() throws {
        let t = try TempStore()
        let img = try Self.makeImage(t.store, layer: "x", tag: "x")
        #expect(try t.store.untag(try ImageReference(parsing: "x")) == img.descriptor)
        let r = try t.store.gc()
        #expect(r.removedBlobs.count == 3)
        #expect(try t.store.listBlobs().isEmpty)
    }

    @Test func holdsKeepImagesThroughGC() throws {
        let t = try TempStore()
        let img = try Self.makeImage(t.store, layer: "held", tag: "held")
        try t.store.hold(img.descriptor.digest, by: "container-1")
        try t.store.removeImage(img.descriptor.digest)
        #expect(try t.store.gc().removedBlobs.isEmpty)
        t.store.release(holder: "container-1")
        #expect(try t.store.gc().removedBlobs.count == 3)
    }

    @Test func putImageRefusesMissingLayer() throws {
        let t = try TempStore()
        let ghost = Descriptor.of(Data("ghost".utf8), mediaType: MediaType.layer)
        let cfg = ImageConfig(rootfs: RootFS(diffIDs: [ghost.digest]))
        #expect(throws: ImageStoreError.blobNotFound(ghost.digest)) {
            try t.store.putImage(config: cfg, layers: [ghost], tag: nil)
        }
    }

    @Test func manifestNamingMissingBlobFailsClearly() throws {
        let t = try TempStore()
        let ghost = Descriptor.of(Data("ghost".utf8), mediaType: MediaType.imageConfig)
        let m = try t.store.putJSON(ImageManifest(config: ghost, layers: []), mediaType: MediaType.imageManifest)
        #expect { try t.store.image(for: m) } throws: { "\($0)".contains("is not in the store") }
    }

    @Test func indexChoosesHostPlatform() throws {
        let t = try TempStore()
        let img = try Self.makeImage(t.store, layer: "p", tag: nil)
        var entry = img.descriptor
        entry.platform = Platform.host
        var other = try Self.makeImage(t.store, layer: "q", tag: nil).descriptor
        other.platform = Platform(os: "linux", architecture: "s390x")
        let idx = try t.store.putJSON(ImageIndex(manifests: [other, entry]), mediaType: MediaType.imageIndex)
        try t.store.tag(try ImageReference(parsing: "multi"), descriptor: idx)
        let chosen = try t.store.image("multi")
        #expect(chosen.descriptor.digest == img.descriptor.digest)
        #expect(chosen.index == idx)
        #expect(try t.store.image("multi", platform: Platform(os: "linux", architecture: "s390x")).descriptor.digest == other.digest)
        #expect(throws: ImageStoreError.self) { try t.store.image("multi", platform: Platform(os: "linux", architecture: "riscv64")) }
    }

    @Test func concurrentWritersDoNotLoseNames() async throws {
        let t = try TempStore()
        let img = try Self.makeImage(t.store, layer: "shared", tag: "base")
        let root = t.dir
        let desc = img.descriptor
        // Separate store instances (separate lock descriptors), as separate processes would have.
        try await withThrowingTaskGroup(of: Void.self) { g in
            for i in 0..<16 {
                g.addTask {
                    let s = try ImageStore(root: root)
                    try s.tag(try ImageReference(parsing: "name\(i)"), descriptor: desc)
                    _ = try s.writeBlob(Data("blob \(i)".utf8))
                }
            }
            try await g.waitForAll()
        }
        #expect(try t.store.listImages().count == 17)
    }

    @Test func concurrentThreadsOnOneStoreDoNotLoseNames() async throws {
        let t = try TempStore()
        let img = try Self.makeImage(t.store, layer: "shared", tag: "base")
        let store = t.store
        let desc = img.descriptor
        try await withThrowingTaskGroup(of: Void.self) { g in
            for i in 0..<32 {
                g.addTask { try store.tag(try ImageReference(parsing: "same\(i)"), descriptor: desc) }
            }
            try await g.waitForAll()
        }
        #expect(try t.store.listImages().count == 33)
    }

    @Test func gcWaitsForStoresThatWrote() throws {
        let t = try TempStore()
        let reader = try ImageStore(root: t.dir)
        _ = try reader.listImages()
        #expect(try t.store.gc(wait: 0.2).removedBlobs.isEmpty)  // a store that only reads does not block
        let writer = try ImageStore(root: t.dir)
        let d = try writer.writeBlob(Data("unnamed yet".utf8))
        #expect { try t.store.gc(wait: 0.2) } throws: { "\($0)".contains("another dockbuild process is writing") }
        #expect(writer.has(d))
        _ = reader
    }

    @Test func defaultRootFollowsEnvironment() {
        #expect(ImageStore.defaultRoot(environment: ["DOCKBUILD_ROOT": "/x"]) == "/x")
        let d = ImageStore.defaultRoot(environment: ["HOME": "/home/u"])
        #expect(d == (getuid() == 0 ? "/var/lib/dockbuild" : "/home/u/.local/share/dockbuild"))
    }
}
