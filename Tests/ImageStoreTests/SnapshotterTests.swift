import Archive
import Foundation
import SystemSupport
import OCI
import Testing
@testable import ImageStore
#if canImport(Glibc)
import Glibc
#endif

/// The snapshotter's contract, in the spirit of containerd's snapshotter test suite: each layer
/// unpacked once per chain and shared, a stack mounted shows exactly what applying its layers
/// flat gives (whiteouts and opaque directories included), lowers are never written, a layer
/// that is not its diff_id leaves nothing behind, deep stacks mount, and snapshots live and die
/// with their blobs and images. Mounting needs root.
@Suite(.serialized, .enabled(if: geteuid() == 0)) struct SnapshotterTests {
    /// A layer made from files (`nil` content makes a directory), stored in `t`.
    static func layer(_ t: TempStore, _ files: [String: String?]) throws -> (Descriptor, Digest) {
        let src = t.dir + "/src-\(UUID().uuidString.prefix(8))"
        defer { FileOps.removeTree(src) }
        try FileOps.mkdirs(src)
        for (path, content) in files.sorted(by: { $0.key < $1.key }) {
            let p = src + "/" + path
            if let content {
                try FileOps.mkdirs((p as NSString).deletingLastPathComponent)
                try Data(content.utf8).write(to: URL(fileURLWithPath: p))
            } else {
                try FileOps.mkdirs(p)
            }
        }
        let out = t.store.tempDir + "/l-\(UUID().uuidString.prefix(8))"
        let info = try LayerWriter.write(directory: src, to: out, compression: .gzip(level: 1))
        try t.store.adoptFile(at: out, digest: info.digest)
        return (Descriptor(mediaType: info.mediaType, digest: info.digest, size: info.size), info.diffID)
    }

    static func image(_ t: TempStore, _ layers: [(Descriptor, Digest)], tag: String?) throws -> Image {
        var cfg = ImageConfig(platform: .host)
        cfg.rootfs = RootFS(diffIDs: layers.map(\.1))
        return try t.store.putImage(config: cfg, layers: layers.map(\.0), tag: try tag.map { try ImageReference(parsing: $0) })
    }

    /// Every path under `dir` with its content ("dir" for directories).
    static func tree(_ dir: String) -> [String: String] {
        var out: [String: String] = [:]
        let e = FileManager.default.enumerator(atPath: dir)
        while let rel = e?.nextObject() as? String {
            var st = stat()
            lstat(dir + "/" + rel, &st)
            out[rel] = st.st_mode & S_IFMT == S_IFDIR ? "dir" : (try? String(contentsOfFile: dir + "/" + rel, encoding: .utf8)) ?? "?"
        }
        return out
    }

    @Test func aMountedStackIsTheLayersAppliedFlat() throws {
        let t = try TempStore()
        let base = try Self.layer(t, ["etc/a": "a1", "etc/b": "b1", "opq/old": "old", "keep/k": "k"])
        let mid = try Self.layer(t, ["etc/a": "a2", "etc/.wh.b": "", "opq/.wh..wh..opq": "", "opq/new": "new"])
        let top = try Self.layer(t, ["etc/c": "c3", ".wh.keep": ""])
        let img = try Self.image(t, [base, mid, top], tag: "stack:1")
        let flat = t.dir + "/flat"
        try FileOps.mkdirs(flat)
        for (d, diff) in [base, mid, top] {
            try LayerApplier.apply(layer: t.store.path(for: d.digest), to: flat, options: .init(expectedDiffID: diff))
        }
        let snaps = t.store.snapshotter
        let lowers = try snaps.lowers(for: img)
        #expect(lowers.count == 3)
        let seen = try snaps.withView(lowers) { Self.tree($0) }
        #expect(seen == Self.tree(flat))
        #expect(seen["etc/a"] == "a2" && seen["etc/b"] == nil && seen["opq/old"] == nil && seen["opq/new"] == "new" && seen["keep"] == nil)
        // The view is read-only and gone afterwards.
        let write = try snaps.withView(lowers) { v in FileManager.default.createFile(atPath: v + "/etc/x", contents: Data()) }
        #expect(!write)
        #expect(FileManager.default.contentsOfDirectory(atPath: t.store.tempDir, or: []).filter { $0.hasPrefix("view-") }.isEmpty)
    }

    @Test func layersAreUnpackedOncePerChainAndShared() throws {
        let t = try TempStore()
        let base = try Self.layer(t, ["bin/tool": "tool"])
        let a = try Self.image(t, [base, try Self.layer(t, ["app/a": "a"])], tag: "a:1")
        let b = try Self.image(t, [base, try Self.layer(t, ["app/b": "b"])], tag: "b:1")
        let snaps = t.store.snapshotter
        let la = try snaps.lowers(for: a), lb = try snaps.lowers(for: b)
        #expect(la.last == lb.last, "the base layer is shared")
        #expect(la.first != lb.first)
        #expect(try FileManager.default.contentsOfDirectory(atPath: snaps.layersDir).count == 3)
        // Asked again (or by two threads at once), nothing is unpacked again.
        let again = Locked<[[String]]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            if let l = try? snaps.lowers(for: a) { again.withLock { $0.append(l) } }
        }
        #expect(again.withLock { $0 } == Array(repeating: la, count: 4))
        #expect(try FileManager.default.contentsOfDirectory(atPath: snaps.layersDir).count == 3)
    }

    @Test func aReadWriteMountNeverWritesTheLowers() throws {
        let t = try TempStore()
        let img = try Self.image(t, [try Self.layer(t, ["etc/conf": "orig"])], tag: "rw:1")
        let snaps = t.store.snapshotter
        let lowers = try snaps.lowers(for: img)
        let upper = t.dir + "/upper", work = t.dir + "/work", m = t.dir + "/m"
        for d in [upper, work, m] { try FileOps.mkdirs(d) }
        try snaps.mount(lowers: lowers, upper: upper, work: work, at: m)
        try Data("changed".utf8).write(to: URL(fileURLWithPath: m + "/etc/conf"))
        try FileManager.default.removeItem(atPath: m + "/etc")
        umount2(m, Int32(MNT_DETACH))
        #expect(Self.tree(lowers[0])["etc/conf"] == "orig")
        var st = stat()
        #expect(lstat(upper + "/etc", &st) == 0 && st.st_mode & S_IFMT == S_IFCHR, "the removal is a whiteout in the upper")
    }

    @Test func aLayerThatIsNotItsDiffIDLeavesNothing() throws {
        let t = try TempStore()
        let good = try Self.layer(t, ["f": "good"])
        let evil = try Self.layer(t, ["f": "evil"])
        let snaps = t.store.snapshotter
        #expect(throws: ImageStoreError.self) { try snaps.lowers([SnapshotLayer(blob: evil.0.digest, diffID: good.1)]) }
        #expect(!snaps.has(chainID: good.1))
        #expect(FileManager.default.contentsOfDirectory(atPath: snaps.layersDir, or: []).isEmpty)
        // The honest blob then unpacks under that chain.
        let l = try snaps.lowers([SnapshotLayer(blob: good.0.digest, diffID: good.1)])
        #expect(Self.tree(l[0])["f"] == "good")
    }

    @Test func aDeepStackMounts() throws {
        // 120 lowers: their paths would not fit in the mount's one page of options.
        let t = try TempStore()
        let layers = try (0..<120).map { try Self.layer(t, ["l/\($0)": "\($0)"]) }
        let img = try Self.image(t, layers, tag: "deep:1")
        let snaps = t.store.snapshotter
        let lowers = try snaps.lowers(for: img)
        #expect(lowers.joined(separator: ":").utf8.count > 4096)
        let seen = try snaps.withView(lowers) { Self.tree($0 + "/l") }
        #expect(seen.count == 120 && seen["0"] == "0" && seen["119"] == "119")
    }

    @Test func committedDirectoriesBecomeSnapshots() throws {
        let t = try TempStore()
        let base = try Self.layer(t, ["base": "b"])
        let next = try Self.layer(t, ["next": "n"])
        let dir = t.dir + "/upper-made"
        try FileOps.mkdirs(dir)
        try Data("n".utf8).write(to: URL(fileURLWithPath: dir + "/next"))
        let snaps = t.store.snapshotter
        try snaps.commit(dir, parents: [base.1], layer: SnapshotLayer(blob: next.0.digest, diffID: next.1))
        #expect(!FileManager.default.fileExists(atPath: dir), "the directory was moved")
        let chain = try #require(ImageConfig.chainID([base.1, next.1]))
        #expect(snaps.has(chainID: chain))
        let lowers = try snaps.lowers([SnapshotLayer(blob: base.0.digest, diffID: base.1), SnapshotLayer(blob: next.0.digest, diffID: next.1)])
        #expect(lowers[0] == snaps.path(chainID: chain))
    }

    @Test func snapshotsLiveAndDieWithTheirBlobsAndImages() throws {
        let t = try TempStore()
        let l = try Self.layer(t, ["f": "x"])
        let img = try Self.image(t, [l], tag: "gc:1")
        let snaps = t.store.snapshotter
        let lower = try #require(try snaps.lowers(for: img).first)
        // An older version's flattened snapshot and a crashed unpack are swept.
        try FileOps.mkdirs(t.dir + "/snapshots/0123abcd")
        try FileOps.mkdirs(snaps.layersDir + "/tmp-crashed/fs")
        let first = try t.store.gc()
        #expect(Set(first.removedSnapshots) == ["0123abcd", "tmp-crashed"])
        #expect(FileManager.default.fileExists(atPath: lower))
        // Untagged but held (as a build cache record holds its layer): kept.
        try t.store.removeImage(img.descriptor.digest)
        try t.store.hold(l.0.digest, by: "buildcache-test")
        #expect(try t.store.gc().removedSnapshots.isEmpty)
        #expect(FileManager.default.fileExists(atPath: lower))
        t.store.release(holder: "buildcache-test")
        #expect(try t.store.gc().removedSnapshots == [l.1.encoded])
        #expect(!FileManager.default.fileExists(atPath: lower))
    }
}

extension FileManager {
    func contentsOfDirectory(atPath path: String, or fallback: [String]) -> [String] {
        (try? contentsOfDirectory(atPath: path)) ?? fallback
    }
}
