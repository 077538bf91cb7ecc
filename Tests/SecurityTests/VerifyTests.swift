import Foundation
import ImageStore
import OCI
import Testing

/// Issue #14, "Verification and parsing": an image whose layer blob is valid (its compressed
/// digest matches the manifest) but whose uncompressed content is not the config's diff_id. The
/// crafted image reuses busybox:test's config, so it claims busybox's diff_id and chain ID: if any
/// path unpacked it unchecked, its files would be planted in the snapshot every busybox:test
/// container runs from. Every path must refuse it, naming the layer and both digests, and leave
/// nothing behind.
@Suite(.serialized) struct VerifyTests {
    /// The crafted image: busybox:test's config over a layer holding `/evil.txt`.
    struct VerifyCrafted {
        var dir: String
        var layer: Data           // gzip of the evil tar
        var layerDigest: Digest
        var actualDiffID: Digest
        var claimedDiffID: Digest
        var config: Data
        var configDigest: Digest
        var manifest: Data
        var manifestDigest: Digest

        /// The error text must name the layer and both digests.
        func expectNamed(_ r: Sec.Result, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(r.status != 0, "\(what) accepted the crafted image", sourceLocation: sourceLocation)
            #expect(r.status < 128 && !r.err.contains("crashed"), "\(what) crashed: \(r.err)", sourceLocation: sourceLocation)
            for d in [layerDigest, actualDiffID, claimedDiffID] {
                #expect(r.err.contains(d.description), "\(what): the error does not name \(d): \(r.err)", sourceLocation: sourceLocation)
            }
        }
    }

    static func verifyCraft(_ s: SecStore) throws -> VerifyCrafted {
        let store = try ImageStore(root: s.root)
        let busybox = try store.image("busybox:test")
        let configData = try store.readBlob(busybox.manifest.config.digest)
        let dir = try s.path("crafted")
        try s.write("evil-rootfs/evil.txt", "planted\n")
        try Sec.run(["/bin/tar", "--sort=name", "--owner=0", "--group=0", "--mtime=@0", "-C", s.dir + "/evil-rootfs", "-cf", dir + "/layer.tar", "."])
        let tar = try Data(contentsOf: URL(fileURLWithPath: dir + "/layer.tar"))
        let layer = try Data(contentsOf: URL(fileURLWithPath: try verifyGzip(dir + "/layer.tar")))
        let layerDigest = Digest.compute(layer)
        let manifest = ImageManifest(config: Descriptor(mediaType: MediaType.imageConfig, digest: busybox.manifest.config.digest, size: Int64(configData.count)),
                                     layers: [Descriptor(mediaType: MediaType.layerGzip, digest: layerDigest, size: Int64(layer.count))])
        let manifestData = try CanonicalJSON.encode(manifest)
        return VerifyCrafted(dir: dir, layer: layer, layerDigest: layerDigest, actualDiffID: Digest.compute(tar),
                             claimedDiffID: busybox.config.rootfs.diffIDs[0], config: configData,
                             configDigest: busybox.manifest.config.digest, manifest: manifestData,
                             manifestDigest: Digest.compute(manifestData))
    }

    /// `gzip -n` of `path` into `path.gz` (deterministic: no name, no time).
    static func verifyGzip(_ path: String) throws -> String {
        let r = try Sec.run(["/bin/sh", "-c", "gzip -n -c '\(path)' > '\(path).gz'"])
        #expect(r.status == 0, "gzip: \(r.err)")
        return path + ".gz"
    }

    /// The crafted image as an OCI image layout directory (what skopeo or `save --format oci` write).
    static func verifyOCILayout(_ c: VerifyCrafted, tag: String = "evil") throws -> String {
        let layout = c.dir + "/oci"
        try FileManager.default.createDirectory(atPath: layout + "/blobs/sha256", withIntermediateDirectories: true)
        for (d, data) in [(c.layerDigest, c.layer), (c.configDigest, c.config), (c.manifestDigest, c.manifest)] {
            try data.write(to: URL(fileURLWithPath: "\(layout)/blobs/sha256/\(d.encoded)"))
        }
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: URL(fileURLWithPath: layout + "/oci-layout"))
        let index = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(c.manifestDigest)","size":\#(c.manifest.count),"annotations":{"org.opencontainers.image.ref.name":"\#(tag)","io.containerd.image.name":"docker.io/library/evil:1"}}]}"#
        try Data(index.utf8).write(to: URL(fileURLWithPath: layout + "/index.json"))
        return layout
    }

    /// Puts the crafted image straight into the store's OCI layout, as a tool that does not check
    /// diff_ids (or an older dockbuild) would have left it, named evil:1.
    static func verifyInject(_ c: VerifyCrafted, _ s: SecStore) throws {
        let store = try ImageStore(root: s.root)
        _ = try store.writeBlob(c.layer)
        _ = try store.writeBlob(c.manifest)
        try store.tag(try ImageReference(parsing: "evil:1"), descriptor: Descriptor(mediaType: MediaType.imageManifest, digest: c.manifestDigest, size: Int64(c.manifest.count)))
    }

    /// The store's names and IDs (no CREATED column: "2 seconds ago" changes while a test runs).
    static func verifyImages(_ s: SecStore) throws -> String {
        try s.ok(["images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
    }

    @Test func loadOCILayoutRefusesLayerNotMatchingDiffID() throws {
        let s = try SecStore(busybox: false)
        try s.importBusybox()
        let c = try Self.verifyCraft(s)
        let layout = try Self.verifyOCILayout(c)
        try Sec.run(["/bin/tar", "-C", layout, "-cf", c.dir + "/oci.tar", "."])
        let before = try Self.verifyImages(s)
        let r = try s.db(["load", "-i", c.dir + "/oci.tar"])
        c.expectNamed(r, "load (OCI layout)")
        #expect(try Self.verifyImages(s) == before)
        #expect(!FileManager.default.fileExists(atPath: "\(s.root)/blobs/sha256/\(c.layerDigest.encoded)"), "the layer was stored")
        #expect(!FileManager.default.fileExists(atPath: "\(s.root)/blobs/sha256/\(c.manifestDigest.encoded)"), "the manifest was stored")
    }

    @Test func loadDockerArchiveRefusesLayerNotMatchingDiffID() throws {
        let s = try SecStore()
        let c = try Self.verifyCraft(s)
        let arch = try s.path("docker-archive")
        try c.layer.write(to: URL(fileURLWithPath: arch + "/layer.tar.gz"))
        try c.config.write(to: URL(fileURLWithPath: arch + "/config.json"))
        try s.write("manifest.json", #"[{"Config":"config.json","RepoTags":["evil:1"],"Layers":["layer.tar.gz"]}]"#, in: arch)
        try Sec.run(["/bin/tar", "-C", arch, "-cf", c.dir + "/docker.tar", "manifest.json", "config.json", "layer.tar.gz"])
        let before = try Self.verifyImages(s)
        let r = try s.db(["load", "-i", c.dir + "/docker.tar"])
        c.expectNamed(r, "load (docker-archive)")
        #expect(try Self.verifyImages(s) == before)
        #expect(!FileManager.default.fileExists(atPath: "\(s.root)/blobs/sha256/\(c.layerDigest.encoded)"), "the layer was stored")
    }

    @Test func unpackRefusesLayerNotMatchingDiffID() throws {
        let s = try SecStore()
        let c = try Self.verifyCraft(s)
        try Self.verifyInject(c, s)
        let out = s.dir + "/unpacked"
        let r = try s.db(["unpack", "evil:1", out])
        c.expectNamed(r, "unpack")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
        #expect(left.isEmpty, "unpack left \(left) behind")
    }

    @Test(.enabled(if: Sec.canRun)) func runRefusesLayerNotMatchingDiffID() throws {
        let s = try SecStore()
        let c = try Self.verifyCraft(s)
        try Self.verifyInject(c, s)
        let r = try s.db(["run", "--rm", "--network", "none", "evil:1", "cat", "/evil.txt"])
        c.expectNamed(r, "run")
        #expect(!r.out.contains("planted"))
        // No snapshot was made under busybox's chain ID, and busybox:test runs from its own files.
        let snaps = (try? FileManager.default.contentsOfDirectory(atPath: s.root + "/snapshots/layers")) ?? []
        let store = try ImageStore(root: s.root)
        if let chain = try store.image("busybox:test").chainID { #expect(!snaps.contains(chain.encoded), "a snapshot was left under the chain ID") }
        let b = try s.db(["run", "--rm", "--network", "none", "busybox:test", "sh", "-c", "test -e /evil.txt && echo POISONED || echo clean"])
        #expect(b.out.trimmingCharacters(in: .whitespacesAndNewlines) == "clean", "busybox:test: \(b.out) \(b.err)")
    }

    @Test(.enabled(if: Sec.canRun)) func buildFromRefusesLayerNotMatchingDiffID() throws {
        let s = try SecStore()
        let c = try Self.verifyCraft(s)
        try Self.verifyInject(c, s)
        let ctx = try s.path("ctx")
        try s.write("Dockerfile", "FROM evil:1\nRUN cat /evil.txt > /copied\n", in: ctx)
        let r = try s.db(["build", "-t", "evil-child:1", ctx])
        c.expectNamed(r, "build FROM")
        #expect(!(try Self.verifyImages(s)).contains("evil-child"))
    }

    @Test func pullRefusesLayerNotMatchingDiffID() throws {
        let s = try SecStore()
        let c = try Self.verifyCraft(s)
        let layout = try Self.verifyOCILayout(c)
        // Our own registry on a loopback port, fed by skopeo (which copies blobs as they are).
        var server: Process?
        var port = 0
        defer { server?.terminate(); server?.waitUntilExit() }
        for _ in 0..<5 {
            port = Int.random(in: 30000...60000)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Sec.binary)
            p.arguments = ["registry", "serve", "--root", s.dir + "/registry-root", "--addr", "127.0.0.1:\(port)"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            if Sec.eventually(10, { (try? Sec.run(["curl", "-fsS", "http://127.0.0.1:\(port)/v2/"]))?.status == 0 || !p.isRunning }), p.isRunning {
                server = p
                break
            }
            p.terminate(); p.waitUntilExit()
        }
        guard server != nil else { Issue.record("registry serve did not start"); return }
        let push = try Sec.run(["skopeo", "copy", "--dest-tls-verify=false", "oci:\(layout):evil", "docker://127.0.0.1:\(port)/evil:1"])
        try #require(push.status == 0, "skopeo copy: \(push.err)")
        let before = try Self.verifyImages(s)
        let r = try s.db(["pull", "127.0.0.1:\(port)/evil:1"])
        c.expectNamed(r, "pull")
        #expect(try Self.verifyImages(s) == before)
        #expect(!FileManager.default.fileExists(atPath: "\(s.root)/blobs/sha256/\(c.manifestDigest.encoded)"), "the manifest was stored")
        #expect(!FileManager.default.fileExists(atPath: "\(s.root)/blobs/sha256/\(c.layerDigest.encoded)"), "the layer was stored")
        // The same when the store already has the layer blob (so it is not downloaded): the pull
        // still checks it against this image's config.
        _ = try ImageStore(root: s.root).writeBlob(c.layer)
        let again = try s.db(["pull", "127.0.0.1:\(port)/evil:1"])
        c.expectNamed(again, "pull (layer already in the store)")
        #expect(try Self.verifyImages(s) == before)
        #expect(!FileManager.default.fileExists(atPath: "\(s.root)/blobs/sha256/\(c.manifestDigest.encoded)"), "the manifest was stored")
    }
}

/// Issue #14: compressed and tar streams are checked to their last byte — gzip CRC-32 and ISIZE
/// trailers, zstd frame checksums, truncation, a tar that stops without its end-of-archive
/// marker — and inputs that once trapped (`layer apply DIR`, a one-character symlink in `load`)
/// are clear errors.
@Suite(.serialized) struct VerifyStreamTests {
    /// A small valid layer tar (GNU tar, with its end-of-archive blocks).
    static func verifyLayerTar(_ s: SecStore) throws -> Data {
        try s.write("src/etc/motd", String(repeating: "welcome to the layer\n", count: 200))
        try s.write("src/bin/tool", "#!/bin/sh\necho tool\n")
        let out = s.dir + "/layer.tar"
        try Sec.run(["/bin/tar", "--sort=name", "--owner=0", "--group=0", "--mtime=@0", "-C", s.dir + "/src", "-cf", out, "."])
        return try Data(contentsOf: URL(fileURLWithPath: out))
    }

    static func verifyCompress(_ s: SecStore, _ data: Data, _ cmd: String) throws -> Data {
        let p = s.dir + "/in-\(UUID().uuidString.prefix(6))"
        try data.write(to: URL(fileURLWithPath: p))
        let r = try Sec.run(["/bin/sh", "-c", "\(cmd) < '\(p)' > '\(p).z'"])
        #expect(r.status == 0, "\(cmd): \(r.err)")
        return try Data(contentsOf: URL(fileURLWithPath: p + ".z"))
    }

    /// `dockbuild layer apply` of `data`; returns the result and what landed in the target.
    static func verifyApply(_ s: SecStore, _ data: Data, _ name: String) throws -> (Sec.Result, [String]) {
        let file = s.dir + "/" + name
        try data.write(to: URL(fileURLWithPath: file))
        let dir = try s.path("out-" + name)
        let r = try Sec.run([Sec.binary, "layer", "apply", file, dir])
        return (r, (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
    }

    static func verifyRefused(_ r: Sec.Result, _ what: String, mentions: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status != 0, "\(what) was accepted", sourceLocation: sourceLocation)
        #expect(r.status < 128 && !r.err.contains("crashed"), "\(what) crashed (status \(r.status)): \(r.err.prefix(400))", sourceLocation: sourceLocation)
        for m in mentions { #expect(r.err.contains(m), "\(what): the error does not say \"\(m)\": \(r.err)", sourceLocation: sourceLocation) }
    }

    @Test func gzipTrailersAndTruncationAreChecked() throws {
        let s = try SecStore(busybox: false)
        let tar = try Self.verifyLayerTar(s)
        let gz = try Self.verifyCompress(s, tar, "gzip -n -c")
        let (ok, files) = try Self.verifyApply(s, gz, "good.tgz")
        #expect(ok.status == 0 && files.sorted() == ["bin", "etc"], "the valid layer: \(ok.err)")
        var crc = gz; crc[crc.count - 8] ^= 0xff
        Self.verifyRefused(try Self.verifyApply(s, crc, "crc.tgz").0, "gzip with a wrong CRC-32", mentions: ["gzip", "checksum"])
        var isize = gz; isize[isize.count - 4] ^= 0x01
        Self.verifyRefused(try Self.verifyApply(s, isize, "isize.tgz").0, "gzip with a wrong ISIZE", mentions: ["gzip"])
        Self.verifyRefused(try Self.verifyApply(s, gz.prefix(gz.count - 4), "trailer.tgz").0, "gzip cut inside its trailer", mentions: ["truncated"])
        Self.verifyRefused(try Self.verifyApply(s, gz.prefix(gz.count / 2), "half.tgz").0, "gzip cut in half", mentions: ["truncated"])
        var body = gz; body[body.count / 2] ^= 0x10
        Self.verifyRefused(try Self.verifyApply(s, body, "body.tgz").0, "gzip with a flipped data byte", mentions: ["gzip"])
    }

    /// Layers written by dockbuild itself with ISA-L (gzip:1) and zlib (gzip:6), compressed by two
    /// threads: a wrong CRC-32 or ISIZE, or a stream cut short, is refused.
    @Test func gzipChecksOfLayersFromBothCompressors() throws {
        let s = try SecStore(busybox: false)
        for i in 0..<64 { try s.write("tree/d\(i % 4)/f\(i)", String(repeating: "line \(i) of a layer\n", count: 4000)) }
        for level in ["gzip:1", "gzip:6"] {
            let out = s.dir + "/layer-\(level)"
            let made = try Sec.run([Sec.binary, "layer", "create", s.dir + "/tree", "-o", out, "-c", level, "--threads", "2"])
            try #require(made.status == 0, "layer create -c \(level): \(made.err)")
            let gz = try Data(contentsOf: URL(fileURLWithPath: out))
            #expect(try Self.verifyApply(s, gz, "ok-\(level)").0.status == 0, "\(level): the valid layer")
            var crc = gz; crc[crc.count - 8] ^= 0x01
            Self.verifyRefused(try Self.verifyApply(s, crc, "crc-\(level)").0, "\(level) with a wrong CRC-32", mentions: ["checksum"])
            var isize = gz; isize[isize.count - 2] ^= 0x01
            Self.verifyRefused(try Self.verifyApply(s, isize, "isize-\(level)").0, "\(level) with a wrong ISIZE", mentions: ["gzip"])
            Self.verifyRefused(try Self.verifyApply(s, gz.prefix(gz.count * 3 / 4), "cut-\(level)").0, "\(level) cut short",
                               mentions: ["truncated"])
        }
    }

    @Test func zstdChecksumsAndTruncationAreChecked() throws {
        let s = try SecStore(busybox: false)
        let tar = try Self.verifyLayerTar(s)
        let zst = try Self.verifyCompress(s, tar, "zstd -q --check -c")
        #expect(try Self.verifyApply(s, zst, "good.zst").0.status == 0)
        var sum = zst; sum[sum.count - 1] ^= 0xff
        Self.verifyRefused(try Self.verifyApply(s, sum, "sum.zst").0, "zstd with a wrong frame checksum", mentions: ["zstd"])
        Self.verifyRefused(try Self.verifyApply(s, zst.prefix(zst.count - 3), "cut.zst").0, "zstd cut short", mentions: ["zstd"])
    }

    @Test func tarThatEndsEarlyIsRefused() throws {
        let s = try SecStore(busybox: false)
        let tar = try Self.verifyLayerTar(s)
        // Strip the end-of-archive blocks (and the record padding): the stream stops between entries.
        var end = tar.count
        while end > 0 && tar[end - 1] == 0 { end -= 1 }
        end = (end + 511) / 512 * 512
        Self.verifyRefused(try Self.verifyApply(s, tar.prefix(end), "noeof.tar").0, "a tar without end-of-archive", mentions: ["end-of-archive"])
        Self.verifyRefused(try Self.verifyApply(s, tar.prefix(end - 512 + 100), "cut.tar").0, "a tar cut inside an entry", mentions: ["malformed"])
        let gz = try Self.verifyCompress(s, tar.prefix(end), "gzip -n -c")
        Self.verifyRefused(try Self.verifyApply(s, gz, "noeof.tgz").0, "a gzip tar without end-of-archive", mentions: ["end-of-archive"])
    }

    @Test func layerApplyOfADirectoryIsAnError() throws {
        let s = try SecStore(busybox: false)
        let src = try s.path("a-directory")
        let r = try Sec.run([Sec.binary, "layer", "apply", src, try s.path("target")])
        Self.verifyRefused(r, "layer apply DIR", mentions: ["is a directory"])
    }

    @Test func loadWithAOneCharacterSymlinkIsAnError() throws {
        let s = try SecStore(busybox: false)
        let d = try s.path("arch")
        symlink("a", d + "/a")
        symlink("b", d + "/manifest.json")
        try Sec.run(["/bin/tar", "-C", d, "-cf", s.dir + "/links.tar", "a", "manifest.json"])
        let r = try s.db(["load", "-i", s.dir + "/links.tar"])
        Self.verifyRefused(r, "load of an archive of symlinks", mentions: [])
    }

    /// A docker-archive whose gzip layer has the right content (its diff_id matches) but a broken
    /// CRC-32: `load` reads layers through the same checking decompressor as everything else.
    @Test func loadChecksGzipTrailersOfLayers() throws {
        let s = try SecStore()
        let tar = try Self.verifyLayerTar(s)
        var gz = try Self.verifyCompress(s, tar, "gzip -n -c")
        gz[gz.count - 8] ^= 0xff
        let config = #"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["\#(Digest.compute(tar))"]}}"#
        let arch = try s.path("docker-archive")
        try gz.write(to: URL(fileURLWithPath: arch + "/layer.tar.gz"))
        try s.write("config.json", config, in: arch)
        try s.write("manifest.json", #"[{"Config":"config.json","RepoTags":["crc:1"],"Layers":["layer.tar.gz"]}]"#, in: arch)
        try Sec.run(["/bin/tar", "-C", arch, "-cf", s.dir + "/docker.tar", "manifest.json", "config.json", "layer.tar.gz"])
        let r = try s.db(["load", "-i", s.dir + "/docker.tar"])
        Self.verifyRefused(r, "load of a layer with a wrong gzip CRC", mentions: ["checksum", Digest.compute(gz).description])
        #expect(!(try s.ok(["images"])).contains("crc"))
    }
}
