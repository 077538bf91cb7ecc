import Foundation
import Testing
import ImageStore
import SystemSupport
@testable import Build

/// Where a build creates its trees: on ext4 each build's session dir and each unpacked or
/// committed layer snapshot starts in block groups of its own (docs/benchmarks.md, "On this VM's
/// disk"), not next to the trees earlier builds or a removed store freed.
@Suite struct PlacementTests {
    @Test func sessionsAndSnapshotsAreSpreadOnExt4() throws {
        let ws = try Workspace()
        // only ext2/3/4 have the flag
        guard (try? sh(["stat", "-f", "-c", "%t", ws.dir]))?.1.hasPrefix("ef53") == true else { return }
        try ws.build("copy")
        let root = ws.store.root
        #expect(FileSystem.spreadsSubdirectories(root + "/build/tmp"))
        #expect(FileSystem.spreadsSubdirectories(root + "/snapshots/layers"))
        // only those two: the store's other directories keep the allocator's default
        #expect(!FileSystem.spreadsSubdirectories(root + "/build"))
        #expect(!FileSystem.spreadsSubdirectories(root + "/blobs/sha256"))
    }
}

/// What a build makes durable: layer blobs and the image's documents (fsync, rename, fsync of the
/// directory), never the session's temp files, the cache's holds (a lost one costs a miss) or a
/// snapshot (derived from its blob; its marker lost in a crash only makes gc remove it). Each fsync on ext4 without a journal wrote out the
/// metadata of the trees created since the last one and flushed the disk's cache.
@Suite struct BuildDurabilityTests {
    static var canTrace: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: FidelityCLITests.bin)
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/strace")
    }

    @Test(.enabled(if: canTrace)) func onlyBlobsAndTheImageAreFsynced() throws {
        let ws = try Workspace()
        let ctx = ws.dir + "/ctx"
        try FileManager.default.createDirectory(atPath: ctx + "/src", withIntermediateDirectories: true)
        for i in 0..<20 { try Data("file \(i)\n".utf8).write(to: URL(fileURLWithPath: ctx + "/src/f\(i)")) }
        try Data("FROM busybox:test\nCOPY src/ /src/\nRUN echo hi > /hi && ls /src | wc -l > /n\n".utf8)
            .write(to: URL(fileURLWithPath: ctx + "/Dockerfile"))
        let trace = ws.dir + "/fsyncs.txt"
        let (st, out) = try sh(["/usr/bin/strace", "-f", "-y", "-qq", "-e", "trace=fsync,fdatasync", "-o", trace,
                                FidelityCLITests.bin, "build", "--root", ws.store.root, "--network", "none", "-t", "durable", ctx])
        #expect(st == 0, "\(out)")
        // lines like: 123 fsync(9</path>) = 0
        let paths = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").compactMap { line -> String? in
            guard let open = line.firstIndex(of: "<"), let close = line[open...].firstIndex(of: ">") else { return nil }
            return String(line[line.index(after: open)..<close])
        }
        let root = ws.store.root
        // blobs are durable before they are named (temp file in the store's tmp/, then blobs/)
        #expect(paths.contains { $0.hasPrefix(root + "/tmp/") }, "\(paths)")
        #expect(paths.contains(root + "/blobs/sha256"), "\(paths)")
        // the cache's records and holds, the session, the snapshots: rebuilt when lost
        let temporary = paths.filter { $0.hasPrefix(root + "/build/") || $0.hasPrefix(root + "/snapshots/") || $0.hasPrefix(root + "/holds") }
        #expect(temporary.isEmpty, "fsynced although rebuilt when lost: \(temporary)")
        #expect(ws.store.holds().keys.contains { $0.hasPrefix("buildcache-") })

        // A fully cached rebuild stores nothing new: the same config and manifest bytes are in
        // the store and the tag names the same image, so nothing is written or fsynced again.
        let index = try Data(contentsOf: URL(fileURLWithPath: root + "/index.json"))
        var before = stat()
        #expect(stat(root + "/index.json", &before) == 0)
        let again = ws.dir + "/fsyncs-again.txt"
        let (st2, out2) = try sh(["/usr/bin/strace", "-f", "-y", "-qq", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2", "-o", again,
                                  FidelityCLITests.bin, "build", "--root", root, "--network", "none", "-t", "durable", ctx])
        #expect(st2 == 0, "\(out2)")
        let calls = try String(contentsOfFile: again, encoding: .utf8).split(separator: "\n").filter { $0.contains("(") }
        let stored = calls.filter { $0.contains(root + "/blobs") || $0.contains(root + "/tmp/") || $0.contains("index.json") }
        #expect(stored.isEmpty, "a cached rebuild wrote to the store: \(stored)")
        var after = stat()
        #expect(stat(root + "/index.json", &after) == 0)
        #expect(after.st_ino == before.st_ino)
        #expect(try Data(contentsOf: URL(fileURLWithPath: root + "/index.json")) == index)
    }
}
