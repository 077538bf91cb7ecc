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
    }
}
