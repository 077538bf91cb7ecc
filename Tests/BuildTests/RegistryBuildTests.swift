import Foundation
import Testing
import OCI
import ImageStore
import RegistryServer
@testable import Build

/// FROM an image only a registry has (pulled), and --push of the result, against dockbuild's registry server.
@Suite(.serialized) struct RegistryBuildTests {
    @Test func pullsBaseAndPushesResult() throws {
        let ws = try Workspace()
        var cfg = RegistryServerConfiguration(root: ws.dir + "/registry")
        cfg.address = "127.0.0.1:0"
        cfg.logFormat = .none
        let server = try RegistryServer(configuration: cfg)
        try server.start()
        defer { server.stop() }
        let host = "127.0.0.1:\(server.port)"
        let base = try ws.store.image("busybox:test")
        _ = try Builder.push(base, store: ws.store, to: try ImageReference(parsing: "\(host)/base/busybox:1"))

        // A fresh store that does not have the base: FROM pulls it.
        let fresh = ws.dir + "/fresh"
        let store = try ImageStore(root: fresh)
        var o = BuildOptions(contextDir: nil, dockerfileText: "FROM \(host)/base/busybox:1\nRUN echo pulled > /p.txt\n")
        o.tags = [try ImageReference(parsing: "\(host)/app:1")]
        let r = try Builder(store: store, options: o).build()
        #expect(r.image.manifest.layers.count == 2)
        let pushed = try Builder.push(r.image, store: store, to: try ImageReference(parsing: "\(host)/app:1"))
        #expect(pushed == r.image.descriptor.digest)
        let (st, out) = try sh(["skopeo", "inspect", "--config", "--tls-verify=false", "docker://\(host)/app:1"])
        #expect(st == 0, "skopeo: \(out)")
        #expect(out.contains(r.image.config.rootfs.diffIDs[1].description))
    }

    @Test func registryCacheGivesHitsInAFreshStore() throws {
        let ws = try Workspace()
        var cfg = RegistryServerConfiguration(root: ws.dir + "/registry")
        cfg.address = "127.0.0.1:0"
        cfg.logFormat = .none
        let server = try RegistryServer(configuration: cfg)
        try server.start()
        defer { server.stop() }
        let cacheRef = try ImageReference(parsing: "127.0.0.1:\(server.port)/cache/app:buildcache")
        let first = try ws.build("cache") { $0.cacheToRegistry = [cacheRef] }
        let fresh = try Workspace()
        let r = try fresh.build("cache") { $0.cacheFromRegistry = [cacheRef] }
        #expect(r.executed.isEmpty)
        #expect(r.image.manifest.layers == first.image.manifest.layers)

        // Lazy import: a build that reuses only the first cached step fetches only that layer.
        let partial = try Workspace()
        let text = try String(contentsOfFile: partial.fixture("cache") + "/Dockerfile", encoding: .utf8)
        let firstLayerStep = text.split(separator: "\n").prefix { !$0.hasPrefix("COPY") && !$0.hasPrefix("RUN") }
            + [text.split(separator: "\n").first { $0.hasPrefix("COPY") || $0.hasPrefix("RUN") } ?? ""]
        var o = BuildOptions(contextDir: partial.fixture("cache"), dockerfileText: firstLayerStep.joined(separator: "\n") + "\n")
        o.cacheFromRegistry = [cacheRef]
        let p = try Builder(store: partial.store, options: o).build()
        #expect(p.executed.isEmpty)
        let cachedLayers = Set(first.image.manifest.layers.map(\.digest)).subtracting(Set(p.image.manifest.layers.map(\.digest)))
        #expect(!cachedLayers.isEmpty)
        for d in cachedLayers { #expect(!partial.store.has(d), "layer \(d) was not needed, so not fetched") }
    }

    /// A multi-platform build exports every platform's records into one cache image (each
    /// platform used to push its own, the last replacing the others), and a fresh store hits
    /// the cache for every platform.
    @Test func registryCacheCoversEveryPlatform() throws {
        let ws = try Workspace()
        var cfg = RegistryServerConfiguration(root: ws.dir + "/registry")
        cfg.address = "127.0.0.1:0"
        cfg.logFormat = .none
        let server = try RegistryServer(configuration: cfg)
        try server.start()
        defer { server.stop() }
        let cacheRef = try ImageReference(parsing: "127.0.0.1:\(server.port)/cache/multi:buildcache")
        func build(_ w: Workspace, _ edit: (inout BuildOptions) -> Void) throws -> MultiPlatformResult {
            let ctx = w.dir + "/ctx"
            try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
            try Data("hello\n".utf8).write(to: URL(fileURLWithPath: ctx + "/f"))
            try Data("more\n".utf8).write(to: URL(fileURLWithPath: ctx + "/g"))
            var o = BuildOptions(contextDir: ctx, dockerfileText: "FROM scratch\nARG TARGETARCH\nCOPY f /f-$TARGETARCH\nCOPY g /g\n")
            o.tags = [try ImageReference(parsing: "multi:1")]
            o.cacheModeMax = true
            edit(&o)
            return try Builder.buildPlatforms(store: w.store, options: o, platforms: [try Platform(parsing: "linux/amd64"), try Platform(parsing: "linux/arm64")])
        }
        let first = try build(ws) { $0.cacheToRegistry = [cacheRef] }
        let fresh = try Workspace()
        let again = try build(fresh) { $0.cacheFromRegistry = [cacheRef] }
        for r in again.results { #expect(r.executed.isEmpty, "\(r.image.config.architecture): \(r.executed)") }
        #expect(again.results.map(\.image.manifest.layers) == first.results.map(\.image.manifest.layers))
    }

    /// `--cache-to type=inline`: the records ride in the pushed image's config, and a fresh store
    /// given `--cache-from IMAGE` reuses every step; mode=min leaves out steps of other stages.
    @Test func inlineCacheTravelsWithTheImage() throws {
        let ws = try Workspace()
        var cfg = RegistryServerConfiguration(root: ws.dir + "/registry")
        cfg.address = "127.0.0.1:0"
        cfg.logFormat = .none
        let server = try RegistryServer(configuration: cfg)
        try server.start()
        defer { server.stop() }
        let ref = try ImageReference(parsing: "127.0.0.1:\(server.port)/app/inline:1")
        let first = try ws.build("cache") { $0.cacheInline = true }
        #expect(first.image.config.extra?[BuildCache.recordsKey] != nil)
        _ = try Builder.push(first.image, store: ws.store, to: ref)
        let fresh = try Workspace()
        let r = try fresh.build("cache") { $0.cacheFromRegistry = [ref] }
        #expect(r.executed.isEmpty)
        #expect(r.image.manifest.layers == first.image.manifest.layers)
    }
}
