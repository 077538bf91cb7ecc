import Foundation
import Glibc
import ImageStore
import OCI
import Testing
@testable import Archive

/// `dockbuild unpack` end to end: an image put in a store with our layers, unpacked by the CLI,
/// and (as root, with runc installed) run from the bundle.
@Suite struct UnpackCommandTests {
    var dockbuild: String {
        // The test bundle sits next to the executables in .build/<config>/.
        let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return here.path + "/.build/debug/dockbuild"
    }

    func makeImage(_ t: TempDir) throws -> String {
        let store = try ImageStore(root: t.sub("store"))
        let base = try t.mkdir("l1"), top = try t.mkdir("l2")
        try write(base + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
        try write(base + "/etc/group", "root:x:0:\napp:x:1000:\nwheel:x:10:app\n")
        try write(base + "/gone", "deleted by layer 2")
        try run("cp", ["/bin/busybox", base + "/busybox"])
        try write(top + "/.wh.gone", "")
        try write(top + "/app/hello", "hi\n")
        var layers: [Descriptor] = []
        var diffIDs: [Digest] = []
        for dir in [base, top] {
            let out = store.tempDir + "/layer-\(UUID().uuidString)"
            let info = try LayerWriter.write(directory: dir, to: out, compression: .gzip(level: 1))
            try store.adoptFile(at: out, digest: info.digest)
            layers.append(Descriptor(mediaType: info.mediaType, digest: info.digest, size: info.size))
            diffIDs.append(info.diffID)
        }
        let config = ImageConfig(config: ContainerConfig(user: "app", env: ["GREETING=hello"], entrypoint: ["/busybox"],
                                                         cmd: ["cat", "/app/hello"], workingDir: "/app"),
                                 rootfs: RootFS(diffIDs: diffIDs))
        _ = try store.putImage(config: config, layers: layers, tag: try ImageReference(parsing: "unpack-test:1"))
        return t.sub("store")
    }

    @Test func unpackAppliesLayersAndWritesABundle() throws {
        guard FileManager.default.isExecutableFile(atPath: dockbuild) else {
            Issue.record("\(dockbuild) is missing: run `swift build` first"); return
        }
        let t = try TempDir("unpack")
        defer { t.cleanup() }
        let root = try makeImage(t)
        try run(dockbuild, ["unpack", "--root", root, "unpack-test:1", t.sub("plain")])
        #expect(read(t.sub("plain/app/hello")) == "hi\n")
        #expect(!exists(t.sub("plain/gone")))
        #expect(!exists(t.sub("plain/.wh.gone")))

        try run(dockbuild, ["unpack", "--root", root, "unpack-test:1", t.sub("bundle"), "--bundle"])
        #expect(read(t.sub("bundle/rootfs/app/hello")) == "hi\n")
        let spec = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: t.sub("bundle/config.json")))) as? [String: Any]
        let process = try #require(spec?["process"] as? [String: Any])
        #expect(process["args"] as? [String] == ["/busybox", "cat", "/app/hello"])
        #expect(process["cwd"] as? String == "/app")
        #expect((process["env"] as? [String])?.contains("GREETING=hello") == true)
        let user = try #require(process["user"] as? [String: Any])
        #expect(user["uid"] as? Int == 1000 && user["gid"] as? Int == 1000)
        #expect(user["additionalGids"] as? [Int] == [10])
        #expect((spec?["root"] as? [String: Any])?["path"] as? String == "rootfs")

        if getuid() == 0 {
            let out = try run("runc", ["run", "-b", t.sub("bundle"), "dockbuild-unpack-\(getpid())"])
            #expect(out == "hi\n")
        }
    }

    @Test func unknownImageIsAClearError() throws {
        guard FileManager.default.isExecutableFile(atPath: dockbuild) else {
            Issue.record("\(dockbuild) is missing: run `swift build` first"); return
        }
        let t = try TempDir("unpack-missing")
        defer { t.cleanup() }
        do {
            try run(dockbuild, ["unpack", "--root", t.sub("store"), "nope:1", t.sub("x")])
            Issue.record("unpack of a missing image succeeded")
        } catch let e as ToolError {
            #expect(e.description.contains("nope"))
        }
    }
}

/// The applier without root: ownership and device nodes are skipped, the rest is kept.
@Suite struct RootlessApplyTests {
    @Test func applyAsAnUnprivilegedUser() throws {
        guard getuid() == 0 else { Issue.record("needs root to switch to an unprivileged user (CI runs tests as root)"); return }
        let bin = UnpackCommandTests().dockbuild
        guard FileManager.default.isExecutableFile(atPath: bin) else { Issue.record("\(bin) is missing: run `swift build` first"); return }
        let t = try TempDir("rootless")
        defer { t.cleanup() }
        chmod(t.path, 0o755)
        let work = try t.mkdir("work")
        chmod(work, 0o777)
        var b = TarBuilder()
        b.add("ro/", .directory, mode: 0o555)
        b.add("ro/file", content: "inside a read-only dir", mode: 0o444)
        b.add("suid", content: "setuid", mode: 0o4755)
        var dev = TarHeader(name: Array("null".utf8), kind: .charDevice)
        dev.devmajor = 1; dev.devminor = 3; dev.mode = 0o666
        b.bytes += PaxEncoder.encode(dev)
        var owned = TarHeader(name: Array("owned".utf8), kind: .regular)
        owned.uid = 1000; owned.gid = 1000; owned.mode = 0o640
        owned.xattrs = [(Array("trusted.secret".utf8), Array("x".utf8)), (Array("user.note".utf8), Array("n".utf8))]
        b.bytes += PaxEncoder.encode(owned)
        b.end()
        try b.write(to: t.sub("layer.tar"))
        chmod(t.sub("layer.tar"), 0o644)
        let out = try run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", bin, "layer", "apply", t.sub("layer.tar"), work + "/root"])
        _ = out
        #expect(read(work + "/root/ro/file") == "inside a read-only dir")
        #expect((lst(work + "/root/ro")?.st_mode ?? 0) & 0o7777 == 0o555)
        #expect((lst(work + "/root/suid")?.st_mode ?? 0) & 0o7777 == 0o4755)
        #expect(lst(work + "/root/owned")?.st_uid == 65534)
        #expect(!exists(work + "/root/null"))
        chmod(work + "/root/ro", 0o755) // let cleanup remove it
    }
}
