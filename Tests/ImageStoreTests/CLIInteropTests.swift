import Foundation
import OCI
import Testing
@testable import ImageStore

/// The image commands through the real binary, checked against skopeo, umoci and
/// oci-image-tool. Serialized: they are heavy on the 2-core machines.
@Suite(.serialized) struct CLIInteropTests {
    func imported(_ cli: CLI, name: String = "busybox:local") throws -> String {
        let rootfs = try cli.busyboxRootfs()
        let r = try cli.db(["import", "-c", #"CMD ["/bin/sh"]"#, "-c", "ENV GREETING=hello", rootfs, name])
        #expect(r.ok, "import failed: \(r.err)")
        return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func importListInspect() throws {
        let cli = try CLI()
        let id = try imported(cli)
        #expect(id.hasPrefix("sha256:") && id.count == 71)
        let images = try cli.db(["images"])
        #expect(images.out.contains("REPOSITORY"))
        #expect(images.out.contains("busybox") && images.out.contains("local") && images.out.contains(String(id.dropFirst(7).prefix(12))))
        let q = try cli.db(["images", "-q"])
        #expect(q.out.trimmingCharacters(in: .whitespacesAndNewlines) == String(id.dropFirst(7).prefix(12)))
        let json = try cli.db(["images", "--format", "json"])
        let row = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any]
        #expect(row?["Repository"] as? String == "busybox")
        #expect(row?["Tag"] as? String == "local")

        let tmpl = try cli.db(["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
        #expect(tmpl.out == "busybox:local \(id.dropFirst(7).prefix(12))\n")
        let inspect = try cli.db(["inspect", "busybox:local"])
        #expect(inspect.ok, "\(inspect.err)")
        let arr = try JSONSerialization.jsonObject(with: Data(inspect.out.utf8)) as? [[String: Any]]
        let doc = try #require(arr?.first)
        #expect(doc["Id"] as? String == id)
        #expect(doc["RepoTags"] as? [String] == ["busybox:local"])
        let config = doc["Config"] as? [String: Any]
        #expect(config?["Cmd"] as? [String] == ["/bin/sh"])
        #expect(config?["Env"] as? [String] == ["GREETING=hello"])
        #expect((doc["Manifest"] as? [String: Any])?["schemaVersion"] as? Int == 2)
        let f = try cli.db(["inspect", "-f", "{{.Config.Cmd}} {{json .Config.Env}}", id])
        #expect(f.out == "[/bin/sh] [\"GREETING=hello\"]\n")
        let h = try cli.db(["history", "busybox:local"])
        #expect(h.ok && h.out.contains("CREATED BY") && h.out.contains("dockbuild import rootfs"), "\(h.out)\(h.err)")
    }

    @Test func importTarballsCompressedAndFromStdin() throws {
        let cli = try CLI()
        let rootfs = try cli.busyboxRootfs()
        for (flag, file) in [("-cf", "r.tar"), ("-czf", "r.tar.gz"), ("--zstd -cf", "r.tar.zst")] {
            let args = flag.split(separator: " ").map(String.init) + [cli.dir + "/" + file, "-C", rootfs, "."]
            #expect(try cli.exec("tar", args).ok)
        }
        let a = try cli.db(["import", cli.dir + "/r.tar", "t:plain"])
        let b = try cli.db(["import", cli.dir + "/r.tar.gz", "t:gz"])
        let c = try cli.db(["import", cli.dir + "/r.tar.zst", "t:zst"])
        let d = try cli.db(["import", "-", "t:stdin"], stdin: cli.dir + "/r.tar.gz")
        for r in [a, b, c, d] { #expect(r.ok, "\(r.err)") }
        // The same tar gives the same diffID whichever way it came in.
        let store = try ImageStore(root: cli.root)
        let diffs = try ["t:plain", "t:gz", "t:zst", "t:stdin"].map { try store.image($0).config.rootfs.diffIDs }
        #expect(Set(diffs).count == 1)
    }

    @Test func importChangesMatchDocker() throws {
        let cli = try CLI()
        let rootfs = try cli.busyboxRootfs()
        let r = try cli.db(["import", "-c", "ENTRYPOINT /bin/sh", "-c", "EXPOSE 80 53/udp", "-c", #"LABEL a=b "c d"="e f""#,
                            "-c", "WORKDIR /srv", "-c", "USER nobody", "-c", "VOLUME /data", "-c", "STOPSIGNAL SIGINT",
                            "-c", "HEALTHCHECK --interval=5s --retries=2 CMD true", "-m", "hello", rootfs, "x"])
        #expect(r.ok, "\(r.err)")
        let img = try ImageStore(root: cli.root).image("x")
        let c = try #require(img.config.config)
        #expect(c.entrypoint == ["/bin/sh", "-c", "/bin/sh"])
        #expect(Set((c.exposedPorts ?? [:]).keys) == ["80/tcp", "53/udp"])
        #expect(c.labels == ["a": "b", "c d": "e f"])
        #expect(c.workingDir == "/srv" && c.user == "nobody" && c.stopSignal == "SIGINT")
        #expect(c.volumes?.keys.sorted() == ["/data"])
        #expect(c.healthcheck == HealthConfig(test: ["CMD-SHELL", "true"], interval: 5_000_000_000, retries: 2))
        #expect(img.config.history?.first?.comment == "hello")
        let bad = try cli.db(["import", "-c", "RUN echo", rootfs, "y"])
        #expect(!bad.ok && bad.err.contains("RUN is not allowed"))
    }

    @Test func skopeoReadsWhatSaveWrites() throws {
        let cli = try CLI()
        let id = try imported(cli)
        for format in ["docker", "oci"] {
            let tar = cli.dir + "/saved-\(format).tar"
            let s = try cli.db(["save", "--format", format, "-o", tar, "busybox:local"])
            #expect(s.ok, "save \(format): \(s.err)")
            let src = format == "docker" ? "docker-archive:\(tar)" : "oci-archive:\(tar)"
            let dest = cli.dir + "/copy-\(format)"
            let c = try cli.exec("skopeo", ["--insecure-policy", "copy", src, "oci:\(dest):x"])
            #expect(c.ok, "skopeo copy \(src): \(c.err)")
            let i = try cli.exec("skopeo", ["--insecure-policy", "inspect", "--config", src])
            #expect(i.ok, "\(i.err)")
            #expect(i.out.contains("/bin/sh"))
            if format == "oci" {
                // The OCI layout keeps our digests: skopeo sees the same config.
                let raw = try cli.exec("skopeo", ["--insecure-policy", "inspect", "--raw", src])
                #expect(raw.out.contains(id))
            }
        }
    }

    @Test func loadReadsWhatSkopeoWrites() throws {
        let cli = try CLI()
        _ = try imported(cli)
        let tar = cli.dir + "/oci.tar"
        #expect(try cli.db(["save", "--format", "oci", "-o", tar, "busybox:local"]).ok)
        let dockerTar = cli.dir + "/sk-docker.tar", ociTar = cli.dir + "/sk-oci.tar"
        #expect(try cli.exec("skopeo", ["--insecure-policy", "copy", "oci-archive:\(tar)", "docker-archive:\(dockerTar):example.com/team/app:v1"]).ok)
        #expect(try cli.exec("skopeo", ["--insecure-policy", "copy", "oci-archive:\(tar)", "oci-archive:\(ociTar):other/app:v2"]).ok)
        let other = cli.dir + "/store2"
        let l1 = try cli.db(["load", "-i", dockerTar], root: other)
        #expect(l1.ok, "\(l1.err)")
        #expect(l1.out.contains("Loaded image: example.com/team/app:v1"))
        let l2 = try cli.db(["load"], stdin: ociTar, root: other)
        #expect(l2.ok, "\(l2.err)")
        #expect(l2.out.contains("Loaded image: other/app:v2"))
        let store = try ImageStore(root: other)
        #expect(try store.image("example.com/team/app:v1").config.config?.cmd == ["/bin/sh"])
        #expect(try store.image("other/app:v2").config.config?.env == ["GREETING=hello"])
        // And our own archives load back with their names, in both formats.
        let third = cli.dir + "/store3"
        let dtar = cli.dir + "/d.tar"
        #expect(try cli.db(["save", "-o", dtar, "busybox:local"]).ok)
        #expect(try cli.db(["load", "-i", dtar], root: third).out.contains("Loaded image: busybox:local"))
        #expect(try cli.db(["load", "-i", tar], root: third).out.contains("Loaded image: busybox:local"))
    }

    @Test func umociUnpacksAnImportedImage() throws {
        let cli = try CLI()
        _ = try imported(cli)
        let tar = cli.dir + "/oci.tar"
        #expect(try cli.db(["save", "--format", "oci", "-o", tar, "busybox:local"]).ok)
        let layout = cli.dir + "/layout"
        try FileManager.default.createDirectory(atPath: layout, withIntermediateDirectories: true)
        #expect(try cli.exec("tar", ["-xf", tar, "-C", layout]).ok)
        let bundle = cli.dir + "/bundle"
        let u = try cli.exec("umoci", ["unpack", "--image", "\(layout):local", bundle])
        #expect(u.ok, "umoci unpack: \(u.err)")
        #expect(FileManager.default.isExecutableFile(atPath: bundle + "/rootfs/bin/busybox"))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: bundle + "/rootfs/bin/sh")) == "busybox")
        let config = try String(contentsOfFile: bundle + "/config.json", encoding: .utf8)
        #expect(config.contains("GREETING=hello"))
    }

    @Test func ociImageToolValidatesOurLayouts() throws {
        let cli = try CLI()
        _ = try imported(cli)
        try cli.db(["tag", "busybox:local", "localhost:5000/bb:1"])
        let v = try cli.exec("oci-image-tool", ["validate", "--type", "image", cli.root])
        #expect(v.ok && v.out.contains("Validation succeeded") || v.err.contains("Validation succeeded"), "store: \(v.out)\(v.err)")
        let tar = cli.dir + "/oci.tar"
        #expect(try cli.db(["save", "--format", "oci", "-o", tar, "busybox:local", "localhost:5000/bb:1"]).ok)
        let layout = cli.dir + "/layout"
        try FileManager.default.createDirectory(atPath: layout, withIntermediateDirectories: true)
        #expect(try cli.exec("tar", ["-xf", tar, "-C", layout]).ok)
        let v2 = try cli.exec("oci-image-tool", ["validate", "--type", "image", layout])
        #expect(v2.ok, "saved layout: \(v2.out)\(v2.err)")
    }

    @Test func badInputLeavesStoreAsItWas() throws {
        let cli = try CLI()
        _ = try imported(cli)
        let before = cli.storeFiles()
        // Truncated archive.
        let tar = cli.dir + "/d.tar"
        #expect(try cli.db(["save", "-o", tar, "busybox:local"]).ok)
        let data = try Data(contentsOf: URL(fileURLWithPath: tar))
        let cut = cli.dir + "/cut.tar"
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: cut))
        let other = cli.dir + "/store"  // same store as before
        let r1 = try cli.db(["load", "-i", cut], root: other)
        #expect(!r1.ok)
        #expect(r1.err.contains("truncated") || r1.err.contains("damaged"), "\(r1.err)")
        // A manifest that names a missing blob.
        let otar = cli.dir + "/o.tar"
        #expect(try cli.db(["save", "--format", "oci", "-o", otar, "busybox:local"]).ok)
        let lay = cli.dir + "/lay"
        try FileManager.default.createDirectory(atPath: lay, withIntermediateDirectories: true)
        #expect(try cli.exec("tar", ["-xf", otar, "-C", lay]).ok)
        let img = try ImageStore(root: cli.root).image("busybox:local")
        try FileManager.default.removeItem(atPath: lay + "/blobs/sha256/" + img.manifest.layers[0].digest.encoded)
        #expect(try cli.exec("tar", ["-cf", cli.dir + "/missing.tar", "-C", lay, "."]).ok)
        let r2 = try cli.db(["load", "-i", cli.dir + "/missing.tar"])
        #expect(!r2.ok)
        #expect(r2.err.contains("names blob \(img.manifest.layers[0].digest), which is not in"), "\(r2.err)")
        // A corrupt blob.
        try Data("not the layer".utf8).write(to: URL(fileURLWithPath: lay + "/blobs/sha256/" + img.manifest.layers[0].digest.encoded))
        #expect(try cli.exec("tar", ["-cf", cli.dir + "/corrupt.tar", "-C", lay, "."]).ok)
        let r3 = try cli.db(["load", "-i", cli.dir + "/corrupt.tar"])
        #expect(!r3.ok && r3.err.contains("corrupt"), "\(r3.err)")
        // A truncated rootfs tarball for import.
        let rootfs = try cli.busyboxRootfs()
        #expect(try cli.exec("tar", ["-cf", cli.dir + "/root.tar", "-C", rootfs, "."]).ok)
        let rt = try Data(contentsOf: URL(fileURLWithPath: cli.dir + "/root.tar"))
        try rt.prefix(rt.count / 3).write(to: URL(fileURLWithPath: cli.dir + "/root-cut.tar"))
        let r4 = try cli.db(["import", cli.dir + "/root-cut.tar", "cut"])
        #expect(!r4.ok && (r4.err.contains("truncated") || r4.err.contains("damaged")), "\(r4.err)")
        // Malformed references.
        let r5 = try cli.db(["tag", "busybox:local", "Bad/Name"])
        #expect(!r5.ok && r5.err.contains("must be lowercase"), "\(r5.err)")
        let r6 = try cli.db(["import", rootfs, "x:"])
        #expect(!r6.ok && r6.err.contains("tag"), "\(r6.err)")
        #expect(cli.storeFiles() == before)
    }

    @Test func concurrentProcessesShareOneStore() throws {
        let cli = try CLI()
        _ = try imported(cli)
        let rootfs = try cli.busyboxRootfs()
        #expect(try cli.exec("tar", ["-czf", cli.dir + "/r.tgz", "-C", rootfs, "."]).ok)
        // Eight processes at once: four tag, four import.
        var procs: [Process] = []
        for i in 0..<8 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLI.binary)
            p.arguments = i % 2 == 0 ? ["tag", "--root", cli.root, "busybox:local", "name\(i)"]
                                     : ["import", "--root", cli.root, "-c", "ENV N=\(i)", cli.dir + "/r.tgz", "imp\(i)"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            procs.append(p)
        }
        for p in procs { p.waitUntilExit(); #expect(p.terminationStatus == 0) }
        let store = try ImageStore(root: cli.root)
        let names = Set(try store.listImages().compactMap { $0.reference?.familiarString })
        for i in 0..<8 { #expect(names.contains(i % 2 == 0 ? "name\(i):latest" : "imp\(i):latest")) }
        for i in stride(from: 1, to: 8, by: 2) { #expect(try store.image("imp\(i)").config.config?.env == ["N=\(i)"]) }
    }

    @Test func rmiAndPruneFollowDocker() throws {
        let cli = try CLI()
        let id = try imported(cli)
        #expect(try cli.db(["tag", "busybox:local", "second"]).ok)
        let r1 = try cli.db(["rmi", "second"])
        #expect(r1.out == "Untagged: second:latest\n")
        // By ID with several names: refused without -f.
        #expect(try cli.db(["tag", "busybox:local", "third"]).ok)
        let r2 = try cli.db(["rmi", String(id.dropFirst(7).prefix(12))])
        #expect(!r2.ok && r2.err.contains("several names"))
        // Held by a container: refused without -f.
        do {
            // This store is closed at the end of the block, so the CLI's gc is not kept waiting.
            let store = try ImageStore(root: cli.root)
            let desc = try store.resolve("busybox:local")
            try store.hold(desc.digest, by: "container-abc")
            let r3 = try cli.db(["rmi", "third", "busybox:local"])
            #expect(r3.out.contains("Untagged: third:latest"))
            #expect(!r3.ok && r3.err.contains("container-abc"), "\(r3.err)")
            store.release(holder: "container-abc")
        }
        let r4 = try cli.db(["rmi", "busybox:local"])
        #expect(r4.ok, "\(r4.err)")
        #expect(r4.out.contains("Untagged: busybox:local") && r4.out.contains("Deleted: \(id)"))
        #expect(try ImageStore(root: cli.root).listBlobs().isEmpty)
        // prune removes dangling images only (all unused with -a).
        _ = try imported(cli, name: "app:1")
        _ = try cli.db(["import", "-c", "CMD [\"x\"]", try cli.busyboxRootfs(), "app:1"])
        #expect(try cli.db(["images", "--filter", "dangling=true", "-q"]).out.split(separator: "\n").count == 1)
        let p = try cli.db(["image", "prune", "-f"])
        #expect(p.ok && p.out.contains("Total reclaimed space"), "\(p.err)")
        #expect(try cli.db(["images", "-q"]).out.split(separator: "\n").count == 1)
        #expect(try cli.db(["image", "prune", "-a"]).ok)
        #expect(try cli.db(["images", "-q"]).out.isEmpty)
    }

    @Test func loadsDocker25StyleArchives() throws {
        let cli = try CLI()
        _ = try imported(cli)
        let store = try ImageStore(root: cli.root)
        let img = try store.image("busybox:local")
        // docker 25+ writes an OCI layout plus a manifest.json whose paths point into blobs/.
        let lay = cli.dir + "/d25"
        try FileManager.default.createDirectory(atPath: lay, withIntermediateDirectories: true)
        #expect(try cli.db(["save", "--format", "oci", "-o", cli.dir + "/o.tar", "busybox:local"]).ok)
        #expect(try cli.exec("tar", ["-xf", cli.dir + "/o.tar", "-C", lay]).ok)
        let bare = ImageIndex(manifests: [img.descriptor])
        try CanonicalJSON.encode(bare).write(to: URL(fileURLWithPath: lay + "/index.json"))
        let manifest = #"[{"Config":"blobs/sha256/\#(img.id.encoded)","RepoTags":["team/app:25"],"Layers":["blobs/sha256/\#(img.manifest.layers[0].digest.encoded)"]}]"#
        try Data(manifest.utf8).write(to: URL(fileURLWithPath: lay + "/manifest.json"))
        #expect(try cli.exec("tar", ["-czf", cli.dir + "/d25.tar.gz", "-C", lay, "."]).ok)
        let other = cli.dir + "/store25"
        let r = try cli.db(["load", "-i", cli.dir + "/d25.tar.gz"], root: other)
        #expect(r.ok && r.out.contains("Loaded image: team/app:25"), "\(r.out)\(r.err)")
        // The manifest digest survives (so repo digests stay valid).
        #expect(try ImageStore(root: other).resolve("team/app:25").digest == img.descriptor.digest)
    }

    @Test func snapshotUnpacksTheImage() throws {
        let cli = try CLI()
        _ = try imported(cli)
        let store = try ImageStore(root: cli.root)
        let img = try store.image("busybox:local")
        let lowers = try store.snapshotter.lowers(for: img)
        #expect(lowers.count == 1)
        let dir = try #require(lowers.first)
        #expect(FileManager.default.isExecutableFile(atPath: dir + "/bin/busybox"))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/bin/sh")) == "busybox")
        #expect(dir == store.snapshotter.path(chainID: try #require(img.chainID)))
        #expect(try store.snapshotter.lowers(for: img) == lowers)
        #expect(try store.gc().removedSnapshots.isEmpty)
        try store.removeImage(img.descriptor.digest)
        #expect(try store.gc().removedSnapshots == [img.chainID?.encoded ?? ""])
        #expect(!FileManager.default.fileExists(atPath: dir))
    }

    @Test func saveSeveralImagesDeterministically() throws {
        let cli = try CLI()
        _ = try imported(cli, name: "one:1")
        let r = try cli.db(["import", "-c", "CMD [\"/bin/echo\", \"two\"]", try cli.busyboxRootfs(), "two:2"])
        #expect(r.ok, "\(r.err)")
        let a = cli.dir + "/a.tar", b = cli.dir + "/b.tar"
        #expect(try cli.db(["save", "-o", a, "one:1", "two:2"]).ok)
        #expect(try cli.db(["save", "-o", b, "one:1", "two:2"]).ok)
        #expect(try ImageStore.hashFile(a) == ImageStore.hashFile(b), "save is not deterministic")
        // skopeo picks each image out of the multi-image archive by name.
        let c = try cli.exec("skopeo", ["--insecure-policy", "inspect", "--config", "docker-archive:\(a):two:2"])
        #expect(c.ok && c.out.contains("/bin/echo"), "\(c.err)")
        // Loaded elsewhere (zstd-compressed on the way), both names come back.
        #expect(try cli.exec("zstd", ["-q", a, "-o", a + ".zst"]).ok)
        let l = try cli.db(["load", "-i", a + ".zst"], root: cli.dir + "/other")
        #expect(l.ok, "\(l.err)")
        #expect(l.out.contains("Loaded image: one:1") && l.out.contains("Loaded image: two:2"))
        let other = try ImageStore(root: cli.dir + "/other")
        #expect(try other.image("two:2").config.config?.cmd == ["/bin/echo", "two"])
        #expect(try other.image("one:1").id == ImageStore(root: cli.root).image("one:1").id)
    }
}
