import Foundation
import Glibc
import Testing
@testable import Archive

@Suite struct DiffTests {
    /// Changes made to a copy of a tree: modify, delete, add, type changes, metadata only.
    func mutate(_ root: String) throws {
        try write(root + "/etc/hostname", "changed\n")
        unlink(root + "/big.bin")
        try FileManager.default.removeItem(atPath: root + "/a/b")
        try write(root + "/a/b", "b is a file now")
        try write(root + "/new/dir/file", "new")
        chmod(root + "/fifo", 0o644)
        unlink(root + "/abs-symlink")
        try FileManager.default.createDirectory(atPath: root + "/abs-symlink", withIntermediateDirectories: false)
        try write(root + "/abs-symlink/inside", "dir replaced a symlink")
    }

    @Test func betweenTwoDirectories() throws {
        let t = try TempDir("between")
        defer { t.cleanup() }
        let lower = try t.mkdir("lower"), upper = t.sub("upper"), target = t.sub("target")
        try makeSampleTree(lower)
        try run("cp", ["-a", lower, upper])
        try run("cp", ["-a", lower, target])
        try mutate(upper)
        let info = try LayerDiff.between(lower: lower, upper: upper, to: t.sub("diff.tgz"), compression: .gzip(level: 1))
        let listing = try run("tar", ["-tzf", t.sub("diff.tgz")])
        #expect(listing.contains(".wh.big.bin"))
        #expect(!listing.contains("empty/"), "unchanged entries must not be in the diff:\n\(listing)")
        #expect(info.size > 0)
        try LayerApplier.apply(layer: t.sub("diff.tgz"), to: target)
        let d = try treeDiff(describeTree(upper, skipDirMtimes: true), describeTree(target, skipDirMtimes: true))
        #expect(d == [], "\(d.joined(separator: "\n"))")
    }

    @Test func sameSizeAndSecondButNewBytesIsAChange() throws {
        let t = try TempDir("between-bytes")
        defer { t.cleanup() }
        let lower = try t.mkdir("lower"), upper = try t.mkdir("upper")
        for (dir, text) in [(lower, "aaaa"), (upper, "bbbb")] {
            try write(dir + "/f", text)
            var times = [timespec(tv_sec: 1_700_000_000, tv_nsec: 0), timespec(tv_sec: 1_700_000_000, tv_nsec: 0)]
            utimensat(AT_FDCWD, dir + "/f", &times, 0)
            try write(dir + "/same", "same")
            utimensat(AT_FDCWD, dir + "/same", &times, 0)
        }
        _ = try LayerDiff.between(lower: lower, upper: upper, to: t.sub("d.tar"), compression: .none)
        #expect(try run("tar", ["-tf", t.sub("d.tar")]) == "f\n")
    }

    @Test func overlayRedirectsAreRefused() throws {
        guard getuid() == 0 else { Issue.record("trusted.* xattrs need root (CI runs tests as root)"); return }
        let t = try TempDir("ovl-redirect")
        defer { t.cleanup() }
        let upper = try t.mkdir("upper")
        try FileManager.default.createDirectory(atPath: upper + "/renamed", withIntermediateDirectories: true)
        _ = setXattr(upper + "/renamed", "trusted.overlay.redirect", Array("/old".utf8))
        #expect(throws: ArchiveError.self) { try LayerDiff.fromOverlayUpper(upper, to: t.sub("d.tar"), compression: .none) }
    }

    @Test func fromOverlayUpper() throws {
        guard getuid() == 0 else { Issue.record("overlay mounts need root (CI runs tests as root)"); return }
        let t = try TempDir("ovl")
        defer { t.cleanup() }
        let lower = try t.mkdir("lower"), upper = try t.mkdir("upper"), work = try t.mkdir("work"), merged = try t.mkdir("merged")
        let target = t.sub("target")
        try makeSampleTree(lower)
        try run("cp", ["-a", lower, target])
        try run("mount", ["-t", "overlay", "overlay", "-o", "lowerdir=\(lower),upperdir=\(upper),workdir=\(work)", merged])
        var mounted = true
        defer { if mounted { _ = try? run("umount", [merged]) } }
        try mutate(merged)
        // An opaque directory: removed and re-created in the merged view.
        try FileManager.default.removeItem(atPath: merged + "/etc")
        try write(merged + "/etc/only", "fresh")
        // overlayfs reports the lower inode's link count, which the flattened result cannot have.
        let expected = try describeTree(merged, skipDirMtimes: true, links: false)
        try run("umount", [merged])
        mounted = false
        let info = try LayerDiff.fromOverlayUpper(upper, to: t.sub("diff.tar"), compression: .none)
        let listing = try run("tar", ["-tf", t.sub("diff.tar")])
        #expect(listing.contains("etc/.wh..wh..opq"), "\(listing)")
        #expect(listing.contains(".wh.big.bin"), "\(listing)")
        #expect(info.digest == info.diffID)
        try LayerApplier.apply(layer: t.sub("diff.tar"), to: target)
        let d = try treeDiff(expected, describeTree(target, skipDirMtimes: true, links: false))
        #expect(d == [], "\(d.joined(separator: "\n"))")
    }
}
