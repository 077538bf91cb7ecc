import Foundation
import Glibc
import Testing
@testable import Archive

/// Real peers read what we write, and we read what they write.
@Suite struct InteropTests {
    func sortedLines(_ s: String) -> [String] {
        s.split(separator: "\n").map { String($0).hasSuffix("/") ? String($0.dropLast()) : String($0) }
            .map { $0.hasPrefix("./") ? String($0.dropFirst(2)) : $0 }.filter { !$0.isEmpty && $0 != "." }.sorted()
    }

    @Test(arguments: ["tar", "bsdtar"])
    func peersListAndExtractOurLayers(tool: String) throws {
        let t = try TempDir("peer-\(tool)")
        defer { t.cleanup() }
        let src = try t.mkdir("src"), out = try t.mkdir("out")
        try makeSampleTree(src)
        _ = try LayerWriter.write(directory: src, to: t.sub("layer.tgz"), compression: .gzip(level: 1))
        let ours = try FileManager.default.subpathsOfDirectory(atPath: src).sorted()
        let listing = try run(tool, ["-tzf", t.sub("layer.tgz")])
        #expect(sortedLines(listing) == ours)
        var args = ["-xzpf", t.sub("layer.tgz"), "-C", out]
        if tool == "tar" { args += ["--xattrs", "--xattrs-include=*", "--numeric-owner"] } else { args += ["--xattrs", "--numeric-owner"] }
        try run(tool, args)
        let d = try treeDiff(describeTree(src, skipDirMtimes: true), describeTree(out, skipDirMtimes: true))
        #expect(d == [], "\(d.joined(separator: "\n"))")
    }

    @Test func zstdLayersAreReadableByTar() throws {
        let t = try TempDir("peer-zstd")
        defer { t.cleanup() }
        let src = try t.mkdir("src")
        try makeSampleTree(src)
        _ = try LayerWriter.write(directory: src, to: t.sub("layer.tar.zst"), compression: .zstd(level: 3))
        let listing = try run("tar", ["--zstd", "-tf", t.sub("layer.tar.zst")])
        #expect(sortedLines(listing) == (try FileManager.default.subpathsOfDirectory(atPath: src).sorted()))
    }

    /// An OCI layout with one image whose layers are given (as blob files), for umoci.
    func makeLayout(_ dir: String, layers: [(path: String, info: LayerInfo)]) throws {
        try FileManager.default.createDirectory(atPath: dir + "/blobs/sha256", withIntermediateDirectories: true)
        func put(_ data: Data) throws -> String {
            let d = OCIDigest.sha256(data)
            try data.write(to: URL(fileURLWithPath: dir + "/blobs/sha256/" + d))
            return "sha256:" + d
        }
        for l in layers { try run("cp", [l.path, dir + "/blobs/sha256/" + l.info.digest.encoded]) }
        let diffIDs = layers.map { "\"\($0.info.diffID)\"" }.joined(separator: ",")
        let config = Data("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\(diffIDs)]}}".utf8)
        let cd = try put(config)
        let ls = layers.map { "{\"mediaType\":\"\($0.info.mediaType)\",\"digest\":\"\($0.info.digest)\",\"size\":\($0.info.size)}" }.joined(separator: ",")
        let manifest = Data("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"\(cd)\",\"size\":\(config.count)},\"layers\":[\(ls)]}".utf8)
        let md = try put(manifest)
        let index = "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"\(md)\",\"size\":\(manifest.count),\"annotations\":{\"org.opencontainers.image.ref.name\":\"t\"}}]}"
        try write(dir + "/index.json", index)
        try write(dir + "/oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}")
    }

    @Test func umociUnpacksOurLayers() throws {
        let t = try TempDir("umoci-read")
        defer { t.cleanup() }
        let src = try t.mkdir("src")
        try makeSampleTree(src)
        let info = try LayerWriter.write(directory: src, to: t.sub("layer"), compression: .gzip(level: 1))
        try makeLayout(t.sub("oci"), layers: [(t.sub("layer"), info)])
        try run("umoci", ["unpack", "--image", t.sub("oci") + ":t", t.sub("bundle")])
        let d = try treeDiff(describeTree(src, skipDirMtimes: true), describeTree(t.sub("bundle/rootfs"), skipDirMtimes: true))
        #expect(d == [], "\(d.joined(separator: "\n"))")
    }

    @Test func weApplyUmociLayersWithWhiteouts() throws {
        let t = try TempDir("umoci-write")
        defer { t.cleanup() }
        let base = try t.mkdir("base")
        try makeSampleTree(base)
        let info = try LayerWriter.write(directory: base, to: t.sub("layer"), compression: .gzip(level: 1))
        try makeLayout(t.sub("oci"), layers: [(t.sub("layer"), info)])
        // umoci makes the second layer: deletions (whiteouts), a replaced directory, new files.
        try run("umoci", ["unpack", "--image", t.sub("oci") + ":t", t.sub("bundle")])
        let rootfs = t.sub("bundle/rootfs")
        unlink(rootfs + "/big.bin")
        try FileManager.default.removeItem(atPath: rootfs + "/a/b")
        try write(rootfs + "/a/b/new", "new file in a re-created dir")
        try write(rootfs + "/etc/added", "added")
        try run("umoci", ["repack", "--image", t.sub("oci") + ":t2", t.sub("bundle")])
        // Their unpack of the two-layer image is the reference tree.
        try run("umoci", ["unpack", "--image", t.sub("oci") + ":t2", t.sub("ref")])
        // Ours: apply each layer of t2 in order.
        let layers = try umociLayers(t.sub("oci"), tag: "t2")
        #expect(layers.count == 2)
        let mine = try t.mkdir("mine")
        for l in layers { try LayerApplier.apply(layer: t.sub("oci/blobs/sha256/") + l, to: mine) }
        let d = try treeDiff(describeTree(t.sub("ref/rootfs"), skipDirMtimes: true), describeTree(mine, skipDirMtimes: true))
        #expect(d == [], "\(d.joined(separator: "\n"))")
        #expect(!exists(mine + "/big.bin") && !exists(mine + "/a/b/file.txt") && read(mine + "/a/b/new") != nil)
    }

    func umociLayers(_ layout: String, tag: String) throws -> [String] {
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout + "/index.json"))) as? [String: Any]
        let manifests = index?["manifests"] as? [[String: Any]] ?? []
        guard let m = manifests.first(where: { (($0["annotations"] as? [String: String])?["org.opencontainers.image.ref.name"]) == tag }),
              let digest = m["digest"] as? String else { throw ToolError(description: "tag \(tag) not in \(layout)") }
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout + "/blobs/sha256/" + digest.dropFirst(7)))) as? [String: Any]
        return (manifest?["layers"] as? [[String: Any]] ?? []).compactMap { ($0["digest"] as? String).map { String($0.dropFirst(7)) } }
    }
}

enum OCIDigest {
    static func sha256(_ data: Data) -> String { Archive_sha256(data) }
}

/// Tar dialects real images contain, written by GNU tar and bsdtar, read by our applier.
@Suite struct DialectTests {
    func tree(_ root: String, longNames: Bool) throws {
        try write(root + "/dir/file", "content\n")
        symlink("dir/file", root + "/link")
        link(root + "/dir/file", root + "/hard")
        if longNames {
            try write(root + "/" + String(repeating: "n", count: 150) + "/" + String(repeating: "m", count: 120), "long\n")
        }
        // A sparse file: 5 MB with 4 KiB of data in the middle.
        let fd = open(root + "/sparse", O_WRONLY | O_CREAT, 0o644)
        ftruncate(fd, 5_000_000)
        _ = pwrite(fd, "DATA", 4, 2_500_000)
        close(fd)
    }

    @Test(arguments: ["gnu", "oldgnu", "posix", "ustar", "bsdtar-pax", "bsdtar-gnutar"])
    func weApplyTheirDialects(format: String) throws {
        let t = try TempDir("dialect")
        defer { t.cleanup() }
        let src = try t.mkdir("src"), dst = try t.mkdir("dst")
        try tree(src, longNames: format != "ustar")
        if format.hasPrefix("bsdtar-") {
            try run("bsdtar", ["--format", String(format.dropFirst(7)), "-cf", t.sub("l.tar"), "-C", src, "."])
        } else {
            try run("tar", ["--format=\(format)"] + (format == "ustar" ? [] : ["--sparse"]) + ["-cf", t.sub("l.tar"), "-C", src, "."])
        }
        try run("gzip", [t.sub("l.tar")])
        try LayerApplier.apply(layer: t.sub("l.tar.gz"), to: dst)
        let d = try treeDiff(describeTree(src, skipDirMtimes: true), describeTree(dst, skipDirMtimes: true))
        #expect(d == [], "\(format): \(d.joined(separator: "\n"))")
    }
}
