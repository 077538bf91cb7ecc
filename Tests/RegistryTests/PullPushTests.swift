import Foundation
import ImageStore
import OCI
import Testing
@testable import Registry

func newStore() throws -> (ImageStore, TempDir) {
    let dir = try TempDir("store")
    return (try ImageStore(root: dir.path), dir)
}

@discardableResult
func skopeo(_ args: [String]) throws -> Data {
    try runTool(["skopeo"] + args)
}

@Suite("Pull and push with the image store, interop with skopeo")
struct PullPushTests {
    static let layers: [[String: Data]] = [
        ["etc/hostname": Data("test\n".utf8), "bin/tool": randomBytes(200_000, seed: 1)],
        ["data/blob.bin": randomBytes(1_500_000, seed: 2)],
        ["etc/motd": Data("hello\n".utf8)],
    ]

    @Test(arguments: RegistryKind.allCases)
    func pushIsReadBySkopeoWithSameDigests(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let (store, sdir) = try newStore()
        defer { sdir.remove() }
        let image = try TestImages.make(in: store, tag: "\(registry.host)/app/one:v1", layers: Self.layers)
        let client = RegistryClient(registry: registry.host, credentials: .none)
        let ref = try ImageReference(parsing: "\(registry.host)/app/one:v1")
        let result = try await client.push(image.descriptor, from: store, to: ref, options: PushOptions(chunkSize: 1 << 20))
        #expect(result.descriptor.digest == image.descriptor.digest)
        #expect(result.uploadedBlobs == 4)

        let raw = try skopeo(["inspect", "--tls-verify=false", "--raw", "docker://\(registry.host)/app/one:v1"])
        #expect(Digest.compute(raw) == image.descriptor.digest)
        let inspect = try JSONSerialization.jsonObject(with: try skopeo(["inspect", "--tls-verify=false", "docker://\(registry.host)/app/one:v1"])) as? [String: Any]
        #expect(inspect?["Digest"] as? String == image.descriptor.digest.description)
        #expect(inspect?["Layers"] as? [String] == image.manifest.layers.map(\.digest.description))

        let out = try TempDir("skopeo-out")
        defer { out.remove() }
        try skopeo(["copy", "--src-tls-verify=false", "docker://\(registry.host)/app/one:v1", "oci:\(out.path)/layout:v1"])
        for d in [image.manifest.config.digest] + image.manifest.layers.map(\.digest) {
            #expect(FileManager.default.fileExists(atPath: "\(out.path)/layout/blobs/sha256/\(d.encoded)"))
        }

        // A second push finds everything in place.
        let again = try await client.push(image.descriptor, from: store, to: ref)
        #expect(again.uploadedBlobs == 0)
        #expect(again.skippedBlobs == 4)
    }

    @Test(arguments: RegistryKind.allCases)
    func skopeoPushPullsWithDockbuild(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let (src, sdir) = try newStore()
        defer { sdir.remove() }
        let image = try TestImages.make(in: src, tag: "example.com/src:v1", layers: Self.layers)
        let layout = try TempDir("layout")
        defer { layout.remove() }
        try TestImages.exportLayout(image, from: src, to: layout.path + "/img", refName: "v1")
        // skopeo converts to Docker schema 2 on the way: dockbuild must read those types too.
        try skopeo(["copy", "--dest-tls-verify=false", "--format", "v2s2", "oci:\(layout.path)/img:v1", "docker://\(registry.host)/from/skopeo:v2s2"])
        try skopeo(["copy", "--dest-tls-verify=false", "oci:\(layout.path)/img:v1", "docker://\(registry.host)/from/skopeo:oci"])

        let (store, dir) = try newStore()
        defer { dir.remove() }
        let client = RegistryClient(registry: registry.host, credentials: .none)
        for tag in ["v2s2", "oci"] {
            let raw = try skopeo(["inspect", "--tls-verify=false", "--raw", "docker://\(registry.host)/from/skopeo:\(tag)"])
            let ref = try ImageReference(parsing: "\(registry.host)/from/skopeo:\(tag)")
            let result = try await client.pull(ref, into: store)
            #expect(result.descriptor.digest == Digest.compute(raw))
            let pulled = try store.image("\(registry.host)/from/skopeo:\(tag)")
            #expect(pulled.manifest.layers.map(\.digest) == image.manifest.layers.map(\.digest))
            #expect(pulled.config.rootfs.diffIDs == image.config.rootfs.diffIDs)
            for l in pulled.manifest.layers { #expect(store.has(l.digest)) }
        }
        // Layers are shared between the two tags: the second pull skipped them.
        let again = try await client.pull(try ImageReference(parsing: "\(registry.host)/from/skopeo:oci"), into: store)
        #expect(again.downloadedBlobs == 0)
    }

    @Test(arguments: RegistryKind.allCases)
    func multiPlatformIndex(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let (store, sdir) = try newStore()
        defer { sdir.remove() }
        let amd = try TestImages.make(in: store, tag: "x.io/m:amd64", layers: [["a": Data("amd64".utf8)]], platform: Platform(os: "linux", architecture: "amd64"))
        let arm = try TestImages.make(in: store, tag: "x.io/m:arm64", layers: [["a": Data("arm64".utf8)]], platform: Platform(os: "linux", architecture: "arm64"))
        var da = amd.descriptor; da.platform = Platform(os: "linux", architecture: "amd64")
        var db = arm.descriptor; db.platform = Platform(os: "linux", architecture: "arm64")
        let indexDesc = try store.putJSON(ImageIndex(manifests: [da, db]), mediaType: MediaType.imageIndex)
        let ref = try ImageReference(parsing: "\(registry.host)/multi/app:1")
        let client = RegistryClient(registry: registry.host, credentials: .none)
        let pushed = try await client.push(indexDesc, from: store, to: ref)
        #expect(pushed.descriptor.digest == indexDesc.digest)
        let raw = try skopeo(["inspect", "--tls-verify=false", "--raw", "docker://\(registry.host)/multi/app:1"])
        #expect(Digest.compute(raw) == indexDesc.digest)

        let (one, d1) = try newStore()
        defer { d1.remove() }
        let r1 = try await client.pull(ref, into: one, options: PullOptions(platform: Platform(os: "linux", architecture: "arm64")))
        #expect(r1.descriptor.digest == indexDesc.digest)
        #expect(r1.manifests.map(\.digest) == [arm.descriptor.digest])
        #expect(one.has(arm.manifest.layers[0].digest))
        #expect(!one.has(amd.manifest.layers[0].digest))

        let (all, d2) = try newStore()
        defer { d2.remove() }
        let r2 = try await client.pull(ref, into: all, options: PullOptions(allPlatforms: true))
        #expect(Set(r2.manifests.map(\.digest)) == [amd.descriptor.digest, arm.descriptor.digest])
        #expect(all.has(amd.manifest.layers[0].digest) && all.has(arm.manifest.layers[0].digest))

        do {
            _ = try await client.pull(ref, into: one, options: PullOptions(platform: Platform(os: "linux", architecture: "s390x")))
            Issue.record("expected platformNotFound")
        } catch let e as RegistryError {
            guard case .platformNotFound = e else { Issue.record("unexpected \(e)"); return }
            #expect(e.description.contains("linux/arm64"))
        }
    }

    /// A Docker manifest list (schema 2 list media type) is an index too: the host's or the
    /// asked platform is picked from it, and its own digest is what the pull reports.
    @Test(arguments: RegistryKind.allCases)
    func dockerManifestListPicksThePlatform(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let (store, sdir) = try newStore()
        defer { sdir.remove() }
        let amd = try TestImages.make(in: store, tag: "x.io/l:amd64", layers: [["a": Data("amd64 list".utf8)]], platform: Platform(os: "linux", architecture: "amd64"))
        let arm = try TestImages.make(in: store, tag: "x.io/l:arm64", layers: [["a": Data("arm64 list".utf8)]], platform: Platform(os: "linux", architecture: "arm64"))
        let client = RegistryClient(registry: registry.host, credentials: .none)
        for image in [amd, arm] {
            _ = try await client.push(image.descriptor, from: store, to: try ImageReference(parsing: "\(registry.host)/list/app@\(image.descriptor.digest)"))
        }
        let entries = [(amd, "amd64"), (arm, "arm64")].map { image, arch in
            #"{"mediaType":"\#(image.descriptor.mediaType)","digest":"\#(image.descriptor.digest)","size":\#(image.descriptor.size),"platform":{"architecture":"\#(arch)","os":"linux"}}"#
        }
        let list = Data(#"{"schemaVersion":2,"mediaType":"\#(MediaType.dockerManifestList)","manifests":[\#(entries.joined(separator: ","))]}"#.utf8)
        let listDigest = try await client.putManifest("list/app", reference: "1", data: list, mediaType: MediaType.dockerManifestList)
        #expect(listDigest == Digest.compute(list))

        let (dst, ddir) = try newStore()
        defer { ddir.remove() }
        let ref = try ImageReference(parsing: "\(registry.host)/list/app:1")
        let r = try await client.pull(ref, into: dst, options: PullOptions(platform: Platform(os: "linux", architecture: "arm64")))
        #expect(r.descriptor.digest == listDigest)
        #expect(r.descriptor.mediaType == MediaType.dockerManifestList)
        #expect(r.manifests.map(\.digest) == [arm.descriptor.digest])
        #expect(dst.has(arm.manifest.layers[0].digest))
        #expect(!dst.has(amd.manifest.layers[0].digest))
        // `manifest inspect` of the pulled list prints it as pulled: docker's list media type,
        // byte for byte the registry's document (the store keeps the bytes), from the store.
        registry.stop()
        let inspect = try dockbuild(["manifest", "inspect", "--root", dst.root, "\(registry.host)/list/app:1"], env: [:])
        #expect(inspect.0 == 0, "\(inspect.2)")
        #expect(inspect.1.contains("\"mediaType\": \"\(MediaType.dockerManifestList)\""), "\(inspect.1)")
    }

    @Test(arguments: RegistryKind.allCases)
    func crossRepositoryMountOnPush(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let (store, sdir) = try newStore()
        defer { sdir.remove() }
        let image = try TestImages.make(in: store, tag: "\(registry.host)/team/base:1", layers: Self.layers)
        let client = RegistryClient(registry: registry.host, credentials: .none)
        _ = try await client.push(image.descriptor, from: store, to: try ImageReference(parsing: "\(registry.host)/team/base:1"))
        let target = try ImageReference(parsing: "\(registry.host)/team/derived:1")
        try store.tag(target, descriptor: image.descriptor)
        let r = try await client.push(image.descriptor, from: store, to: target)
        #expect(r.mountedBlobs == 4)
        #expect(r.uploadedBlobs == 0)
    }

    /// An image whose only name is the one it is pushed to still mounts the layers it shares
    /// with another image the store knows in that registry (its base), instead of uploading them.
    @Test(arguments: RegistryKind.allCases)
    func sharedLayersMountFromAnotherRepository(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let (store, sdir) = try newStore()
        defer { sdir.remove() }
        let base = try TestImages.make(in: store, tag: "\(registry.host)/team/base:1", layers: Self.layers)
        let client = RegistryClient(registry: registry.host, credentials: .none)
        _ = try await client.push(base.descriptor, from: store, to: try ImageReference(parsing: "\(registry.host)/team/base:1"))
        let app = try TestImages.make(in: store, tag: "\(registry.host)/team/app:1", layers: Self.layers + [["app.txt": Data("app".utf8)]])
        let shared = Set(base.manifest.layers.map(\.digest)).intersection(app.manifest.layers.map(\.digest))
        try #require(shared.count == Self.layers.count)
        let r = try await client.push(app.descriptor, from: store, to: try ImageReference(parsing: "\(registry.host)/team/app:1"))
        #expect(r.mountedBlobs == shared.count)
        #expect(r.uploadedBlobs == 2)   // the new layer and the config
    }

    @Test(arguments: RegistryKind.allCases)
    func corruptBlobIsRejectedAndNotStored(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let (src, sdir) = try newStore()
        defer { sdir.remove() }
        let image = try TestImages.make(in: src, tag: "\(registry.host)/bad/img:1", layers: Self.layers)
        let client = RegistryClient(registry: registry.host, credentials: .none)
        _ = try await client.push(image.descriptor, from: src, to: try ImageReference(parsing: "\(registry.host)/bad/img:1"))

        let proxy = try FlakyProxy(upstream: registry.port, fault: .corruptBlobs)
        defer { proxy.stop() }
        let (store, dir) = try newStore()
        defer { dir.remove() }
        let viaProxy = RegistryClient(registry: proxy.host, credentials: .none)
        do {
            _ = try await viaProxy.pull(try ImageReference(parsing: "\(proxy.host)/bad/img:1"), into: store)
            Issue.record("corrupt blob accepted")
        } catch let e as RegistryError {
            guard case .digestMismatch = e else { Issue.record("unexpected \(e)"); return }
        }
        for d in [image.manifest.config.digest] + image.manifest.layers.map(\.digest) { #expect(!store.has(d)) }
        #expect(try store.listImages().isEmpty)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: store.tempDir)
        #expect(leftovers.isEmpty)
    }

    @Test(arguments: RegistryKind.allCases)
    func pullResumesAfterCutAndRetriesAfter500(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let (src, sdir) = try newStore()
        defer { sdir.remove() }
        let image = try TestImages.make(in: src, tag: "\(registry.host)/flaky/img:1", layers: Self.layers)
        let client = RegistryClient(registry: registry.host, credentials: .none)
        _ = try await client.push(image.descriptor, from: src, to: try ImageReference(parsing: "\(registry.host)/flaky/img:1"))

        for fault in [FlakyProxy.Fault.cutFirstBlobGet(afterBytes: 1000), .fail500(pathContains: "/blobs/", count: 2)] {
            let proxy = try FlakyProxy(upstream: registry.port, fault: fault)
            defer { proxy.stop() }
            let (store, dir) = try newStore()
            defer { dir.remove() }
            let viaProxy = RegistryClient(registry: proxy.host, credentials: .none, retry: RetryPolicy(baseDelay: 0.05))
            let r = try await viaProxy.pull(try ImageReference(parsing: "\(proxy.host)/flaky/img:1"), into: store)
            #expect(r.descriptor.digest == image.descriptor.digest)
            for l in image.manifest.layers { #expect(store.has(l.digest)) }
        }
    }

    @Test func schema1IsRefusedClearly() async throws {
        let server = try TinyHTTPServer { req in
            if req.target == "/v2/" { return .init(status: 200, body: Data("{}".utf8)) }
            let body = Data(#"{"schemaVersion":1,"name":"old/img","tag":"1","fsLayers":[],"history":[]}"#.utf8)
            return .init(status: 200, headers: [("Content-Type", "application/vnd.docker.distribution.manifest.v1+prettyjws")], body: body)
        }
        defer { server.stop() }
        let (store, dir) = try newStore()
        defer { dir.remove() }
        let client = RegistryClient(registry: "127.0.0.1:\(server.port)", credentials: .none)
        do {
            _ = try await client.pull(try ImageReference(parsing: "127.0.0.1:\(server.port)/old/img:1"), into: store)
            Issue.record("schema 1 accepted")
        } catch let e as RegistryError {
            guard case .schema1 = e else { Issue.record("unexpected \(e)"); return }
            #expect(e.description.contains("schema 1"))
        }
    }
}
