import Foundation
import Glibc
import OCI
import Testing
@testable import Archive

/// A tree with every kind of entry the writer supports.
func makeSampleTree(_ root: String) throws {
    let fm = FileManager.default
    try write(root + "/etc/hostname", "box\n")
    try write(root + "/a/b/file.txt", "hello world\n")
    try write(root + "/a/b/exec.sh", "#!/bin/sh\necho hi\n")
    chmod(root + "/a/b/exec.sh", 0o4755)
    link(root + "/a/b/file.txt", root + "/a/hardlink")
    symlink("b/file.txt", root + "/a/symlink")
    symlink("/etc/hostname", root + "/abs-symlink")
    mkfifo(root + "/fifo", 0o600)
    var big = [UInt8](repeating: 0, count: 3_000_123)
    for i in big.indices { big[i] = UInt8(truncatingIfNeeded: i &* 2654435761 >> 13) }
    try Data(big).write(to: URL(fileURLWithPath: root + "/big.bin"))
    try fm.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
    chmod(root + "/empty", 0o700)
    let longDir = root + "/" + String(repeating: "d", count: 120) + "/" + String(repeating: "e", count: 150)
    try write(longDir + "/" + String(repeating: "f", count: 200), "long name\n")
    try write(longDir + "/ünïcødé-名前-" + String(repeating: "g", count: 90), "non-ASCII long name\n")
    try write(root + "/ü-short", "non-ASCII short name\n")
    for (name, mode) in [("mode-0444", 0o444), ("mode-0666", 0o666), ("mode-0000", 0o000), ("mode-2755", 0o2755), ("mode-1777", 0o1777)] {
        try write(root + "/modes/" + name, name)
        chmod(root + "/modes/" + name, mode_t(mode))
    }
    symlink(String(repeating: "t", count: 180), root + "/long-target")
    _ = setXattr(root + "/a/b/file.txt", "user.note", Array("a note".utf8))
    if getuid() == 0 {
        mknod(root + "/null", S_IFCHR | 0o666, dev_t(FS.makedev(1, 3)))
        mknod(root + "/blk", S_IFBLK | 0o600, dev_t(FS.makedev(7, 0)))
        chown(root + "/etc/hostname", 1000, 1001)
        lchown(root + "/a/symlink", 42, 43)
        // security.capability for cap_net_raw+ep (VFS_CAP_REVISION_2)
        let cap: [UInt8] = [0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        _ = setXattr(root + "/a/b/exec.sh", "security.capability", cap)
    }
    // Stable mtimes so trees can be compared after a round trip.
    for p in try fm.subpathsOfDirectory(atPath: root) {
        var times = [timespec(tv_sec: 1_700_000_000, tv_nsec: 0), timespec(tv_sec: 1_700_000_000, tv_nsec: 0)]
        utimensat(AT_FDCWD, root + "/" + p, &times, AT_SYMLINK_NOFOLLOW)
    }
}

@Suite struct RoundTripTests {
    @Test(arguments: [Compression.none, .gzip(level: 0), .gzip(level: 1), .gzip(level: 3), .gzip(level: 6), .zstd(level: 3)])
    func writeThenApplyGivesTheSameTree(compression: Compression) throws {
        let t = try TempDir("rt")
        defer { t.cleanup() }
        let src = try t.mkdir("src"), dst = try t.mkdir("dst")
        try makeSampleTree(src)
        let info = try LayerWriter.write(directory: src, to: t.sub("layer"), compression: compression)
        #expect(info.mediaType == compression.layerMediaType)
        let data = try #require(FileManager.default.contents(atPath: t.sub("layer")))
        #expect(Int64(data.count) == info.size)
        #expect(Digest.compute(data) == info.digest)
        try LayerApplier.apply(layer: t.sub("layer"), to: dst, options: .init(expectedDiffID: info.diffID))
        let d = try treeDiff(describeTree(src), describeTree(dst))
        #expect(d == [], "\(d.joined(separator: "\n"))")
    }

    @Test func diffIDIsTheDigestOfTheUncompressedTar() throws {
        let t = try TempDir("diffid")
        defer { t.cleanup() }
        let src = try t.mkdir("src")
        try makeSampleTree(src)
        let gz = try LayerWriter.write(directory: src, to: t.sub("l.gz"), compression: .gzip(level: 1))
        let zs = try LayerWriter.write(directory: src, to: t.sub("l.zst"), compression: .zstd(level: 3))
        let plain = try LayerWriter.write(directory: src, to: t.sub("l.tar"), compression: .none)
        #expect(plain.digest == plain.diffID)
        #expect(gz.diffID == plain.digest)
        #expect(zs.diffID == plain.digest)
        try run("sh", ["-c", "gzip -dc \(t.sub("l.gz")) > \(t.sub("gunzipped"))"])
        let gunzipped = try #require(FileManager.default.contents(atPath: t.sub("gunzipped")))
        #expect(Digest.compute(gunzipped) == plain.digest)
    }

    @Test func outputIsDeterministicAndIndependentOfThreads() throws {
        let t = try TempDir("det")
        defer { t.cleanup() }
        let src = try t.mkdir("src")
        try makeSampleTree(src)
        // Enough data for several parallel gzip blocks.
        var blob = [UInt8](repeating: 0, count: 5_500_000)
        for i in blob.indices { blob[i] = UInt8(truncatingIfNeeded: (i / 7) &* 31 ^ (i >> 11)) }
        try Data(blob).write(to: URL(fileURLWithPath: src + "/blob"))
        for c in [Compression.gzip(level: 1), .gzip(level: 6), .zstd(level: 3)] {
            let one = try LayerWriter.write(directory: src, to: t.sub("1"), compression: c, options: .init(threads: 1))
            let four = try LayerWriter.write(directory: src, to: t.sub("4"), compression: c, options: .init(threads: 4))
            #expect(one == four, "\(c)")
            let tested = try run("sh", ["-c", c == .zstd(level: 3) ? "zstd -t -q \(t.sub("4")) && echo ok" : "gzip -t \(t.sub("4")) && echo ok"])
            #expect(tested.contains("ok"))
        }
    }

    @Test(arguments: [Compression.none, .gzip(level: 0), .gzip(level: 1), .gzip(level: 9), .zstd(level: 1)])
    func emptyDirectoryGivesAnEmptyArchive(compression: Compression) throws {
        let t = try TempDir("empty")
        defer { t.cleanup() }
        let src = try t.mkdir("src"), dst = try t.mkdir("dst")
        let info = try LayerWriter.write(directory: src, to: t.sub("l"), compression: compression)
        #expect(info.diffID == Digest.compute([UInt8](repeating: 0, count: 1024)))
        try LayerApplier.apply(layer: t.sub("l"), to: dst)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dst).isEmpty)
    }

    @Test func aWrongDiffIDIsReported() throws {
        let t = try TempDir("diffid-bad")
        defer { t.cleanup() }
        let src = try t.mkdir("src")
        try makeSampleTree(src)
        let info = try LayerWriter.write(directory: src, to: t.sub("l"), compression: .gzip(level: 1))
        let wrong = Digest.compute(Array("something else".utf8))
        do {
            try LayerApplier.apply(layer: t.sub("l"), to: t.mkdir("dst"), options: .init(expectedDiffID: wrong))
            Issue.record("a wrong diffID was accepted")
        } catch let e as ArchiveError {
            #expect(e.description.contains(info.diffID.description) && e.description.contains(wrong.description), "\(e)")
        }
        // GNU tar pads to 10 KiB records after the end marker; the digest covers those bytes too.
        try run("tar", ["-cf", t.sub("gnu.tar"), "-C", src, "."])
        let gnu = Digest.compute(try #require(FileManager.default.contents(atPath: t.sub("gnu.tar"))))
        try LayerApplier.apply(layer: t.sub("gnu.tar"), to: t.mkdir("dst2"), options: .init(expectedDiffID: gnu))
    }

    @Test func outputInsideTheTreeIsNotArchived() throws {
        let t = try TempDir("self")
        defer { t.cleanup() }
        let src = try t.mkdir("src")
        try write(src + "/a", "a")
        _ = try LayerWriter.write(directory: src, to: src + "/layer.tar", compression: .none)
        let listing = try run("tar", ["-tf", src + "/layer.tar"])
        #expect(listing == "a\n")
    }

    @Test func sourceDateEpochClampsMtimes() throws {
        let t = try TempDir("sde")
        defer { t.cleanup() }
        let src = try t.mkdir("src"), dst = try t.mkdir("dst")
        try write(src + "/new", "x")
        var times = [timespec(tv_sec: 2_000_000_000, tv_nsec: 5), timespec(tv_sec: 2_000_000_000, tv_nsec: 5)]
        utimensat(AT_FDCWD, src + "/new", &times, 0)
        try write(src + "/old", "y")
        times = [timespec(tv_sec: 1000, tv_nsec: 0), timespec(tv_sec: 1000, tv_nsec: 0)]
        utimensat(AT_FDCWD, src + "/old", &times, 0)
        _ = try LayerWriter.write(directory: src, to: t.sub("l"), compression: .gzip(level: 1), options: .init(sourceDateEpoch: 1_600_000_000))
        try LayerApplier.apply(layer: t.sub("l"), to: dst)
        #expect(lst(dst + "/new")?.st_mtim.tv_sec == 1_600_000_000)
        #expect(lst(dst + "/old")?.st_mtim.tv_sec == 1000)
    }

    @Test func tarballIsReencodedWithTheSameDiffID() throws {
        let t = try TempDir("tarball")
        defer { t.cleanup() }
        let src = try t.mkdir("src"), dst = try t.mkdir("dst")
        try makeSampleTree(src)
        try run("tar", ["-C", src, "-cf", t.sub("plain.tar"), "."])
        let tarDigest = Digest.compute(try #require(FileManager.default.contents(atPath: t.sub("plain.tar"))))
        for (name, cmd) in [("g", "gzip -c"), ("z", "zstd -q -c"), ("x", "xz -c"), ("b", "bzip2 -c"), ("p", "cat")] {
            try run("sh", ["-c", "\(cmd) < \(t.sub("plain.tar")) > \(t.sub(name))"])
            let info = try LayerWriter.layer(fromTarball: t.sub(name), to: t.sub(name + ".out"), compression: .gzip(level: 1))
            #expect(info.diffID == tarDigest, "\(name)")
        }
        try LayerApplier.apply(layer: t.sub("x"), to: dst)
        let d = try treeDiff(describeTree(src, skipDirMtimes: true, xattrs: false), describeTree(dst, skipDirMtimes: true, xattrs: false))
        #expect(d == [], "\(d.joined(separator: "\n"))")
    }
}
