import Foundation
import Glibc
import Testing
@testable import Archive

@Suite struct WhiteoutTests {
    @Test(arguments: [false, true])
    func whiteoutsAndOpaqueDirectoriesHideLowerLayers(forceWalk: Bool) throws {
        let t = try TempDir("wh")
        defer { t.cleanup() }
        let dst = try t.mkdir("dst")
        var base = TarBuilder()
        base.add("keep", content: "k")
        base.add("gone", content: "g")
        base.add("dir/", .directory, mode: 0o755)
        base.add("dir/old", content: "o")
        base.add("dir/sub/", .directory, mode: 0o755)
        base.add("dir/sub/deep", content: "d")
        base.add("tree/", .directory, mode: 0o755)
        base.add("tree/x", content: "x")
        base.end()
        try base.write(to: t.sub("base.tar"))
        var top = TarBuilder()
        top.add(".wh.gone")
        top.add(".wh.tree")
        top.add("dir/", .directory, mode: 0o755)
        top.add("dir/new", content: "n")
        top.add("dir/.wh..wh..opq")
        top.add("added", content: "a")
        top.end()
        try top.write(to: t.sub("top.tar"))
        var opts = LayerApplier.Options()
        opts.forceWalk = forceWalk
        try LayerApplier.apply(layer: t.sub("base.tar"), to: dst, options: opts)
        try LayerApplier.apply(layer: t.sub("top.tar"), to: dst, options: opts)
        let names = try FileManager.default.subpathsOfDirectory(atPath: dst).sorted()
        #expect(names == ["added", "dir", "dir/new", "keep"])
    }

    @Test func overlayModeWritesOverlayWhiteouts() throws {
        guard getuid() == 0 else { Issue.record("needs root (CI runs tests as root)"); return }
        let t = try TempDir("whov")
        defer { t.cleanup() }
        let dst = try t.mkdir("dst")
        var top = TarBuilder()
        top.add(".wh.gone")
        top.add("dir/", .directory, mode: 0o755)
        top.add("dir/.wh..wh..opq")
        top.end()
        try top.write(to: t.sub("top.tar"))
        try LayerApplier.apply(layer: t.sub("top.tar"), to: dst, options: .init(whiteouts: .overlay))
        let st = try #require(lst(dst + "/gone"))
        #expect(st.st_mode & S_IFMT == S_IFCHR && st.st_rdev == 0)
        #expect(listXattrs(dst + "/dir") == ["trusted.overlay.opaque=79"])
    }
}

@Suite struct HostileArchiveTests {
    /// Applies `build`'s archive to t/dst and checks that t/outside is untouched.
    func attempt(_ label: String, _ build: (inout TarBuilder) -> Void, forceWalk: Bool = false) throws -> (Result<Void, ArchiveError>, TempDir) {
        let t = try TempDir("hostile-\(label)")
        let dst = try t.mkdir("dst")
        let outside = try t.mkdir("outside")
        try write(outside + "/victim", "original")
        var b = TarBuilder()
        build(&b)
        b.end()
        try b.write(to: t.sub("layer.tar"))
        var opts = LayerApplier.Options()
        opts.forceWalk = forceWalk
        let result: Result<Void, ArchiveError>
        do {
            try LayerApplier.apply(layer: t.sub("layer.tar"), to: dst, options: opts)
            result = .success(())
        } catch let e as ArchiveError {
            result = .failure(e)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside) == ["victim"], "\(label): wrote outside")
        #expect(read(outside + "/victim") == "original", "\(label): modified outside")
        #expect(!exists("/evil-dockbuild"), "\(label)")
        return (result, t)
    }

    func expectRefused(_ r: Result<Void, ArchiveError>, entry: String, _ label: String) {
        guard case let .failure(e) = r else { Issue.record("\(label): accepted a hostile archive"); return }
        #expect(e.description.contains(entry), "\(label): error does not name the entry: \(e)")
    }

    @Test(arguments: [false, true])
    func traversalAndAbsolutePathsAreRefused(forceWalk: Bool) throws {
        var (r, t) = try attempt("dotdot", { $0.add("../outside/evil", content: "x") }, forceWalk: forceWalk)
        expectRefused(r, entry: "../outside/evil", "dotdot"); t.cleanup()
        (r, t) = try attempt("deep", { $0.add("a/../../outside/evil", content: "x") }, forceWalk: forceWalk)
        expectRefused(r, entry: "a/../../outside/evil", "deep"); t.cleanup()
        (r, t) = try attempt("abs", { $0.add("/evil-dockbuild", content: "x") }, forceWalk: forceWalk)
        expectRefused(r, entry: "/evil-dockbuild", "abs"); t.cleanup()
    }

    @Test(arguments: [false, true])
    func symlinkThenWriteThroughStaysInside(forceWalk: Bool) throws {
        for target in ["../outside", "/", "../../../../..", "/../outside"] {
            let (r, t) = try attempt("symlink", { b in
                b.add("link", .symlink, link: target)
                b.add("link/victim", content: "pwned")
                b.add("link/evil", content: "pwned")
            }, forceWalk: forceWalk)
            if case let .failure(e) = r { Issue.record("\(target): \(e)") }
            // Resolved as if the target were "/": the files land inside dst.
            #expect(read(t.sub("dst/evil")) == "pwned" || read(t.sub("dst/outside/evil")) == "pwned", "\(target)")
            t.cleanup()
        }
    }

    @Test(arguments: [false, true])
    func symlinkLoopsAreRefused(forceWalk: Bool) throws {
        let (r, t) = try attempt("loop", { b in
            b.add("loop", .symlink, link: "loop")
            b.add("loop/x", content: "x")
        }, forceWalk: forceWalk)
        expectRefused(r, entry: "loop/x", "symlink loop")
        t.cleanup()
    }

    @Test func hardlinkToADirectoryIsRefused() throws {
        let (r, t) = try attempt("hldir", { b in
            b.add("d/", .directory)
            b.add("hl", .hardlink, link: "d")
        })
        expectRefused(r, entry: "hl", "hardlink to a directory")
        t.cleanup()
    }

    @Test func hardlinkToOutsideIsRefused() throws {
        var (r, t) = try attempt("hl", { $0.add("hl", .hardlink, link: "../outside/victim") })
        expectRefused(r, entry: "hl", "hardlink ..")
        t.cleanup()
        (r, t) = try attempt("hl-abs", { $0.add("hl", .hardlink, link: "/etc/passwd") })
        expectRefused(r, entry: "hl", "hardlink absolute")
        t.cleanup()
        // Through a symlink: resolved inside the root, where the target does not exist.
        (r, t) = try attempt("hl-sym", { b in
            b.add("etc", .symlink, link: "/etc")
            b.add("pw", .hardlink, link: "etc/passwd")
        })
        expectRefused(r, entry: "pw", "hardlink via symlink")
        if let hostPw = lst("/etc/passwd"), let st = lst(t.sub("dst/pw")) { #expect(st.st_ino != hostPw.st_ino) }
        t.cleanup()
    }

    @Test func duplicateEntriesReplaceWithoutFollowing() throws {
        let (r, t) = try attempt("dup", { b in
            b.add("f", content: "first")
            b.add("f", .symlink, link: "../outside/victim")
            b.add("f", content: "second")
            b.add("d/", .directory)
            b.add("d", content: "now a file")
        })
        defer { t.cleanup() }
        if case let .failure(e) = r { Issue.record("\(e)") }
        #expect(read(t.sub("dst/f")) == "second")
        #expect(read(t.sub("dst/d")) == "now a file")
    }

    @Test func hugeHeadersAreRefused() throws {
        let long = String(repeating: "a/", count: 40_000) + "x"
        var (r, t) = try attempt("hugename", { $0.add(long, content: "x") })
        expectRefused(r, entry: "a/a/a/a", "huge name"); t.cleanup()
        let comp = String(repeating: "c", count: 300)
        (r, t) = try attempt("hugecomp", { $0.add(comp, content: "x") })
        expectRefused(r, entry: comp, "huge component"); t.cleanup()
        // A size field far beyond the data: a truncated archive, reported with the entry.
        (r, t) = try attempt("hugesize", { $0.add("big", content: "x", declaredSize: 1 << 40) })
        guard case let .failure(e) = r else { Issue.record("accepted a truncated huge entry"); t.cleanup(); return }
        #expect(e.description.contains("big"), "\(e)")
        t.cleanup()
    }

    /// A raw ustar header block with any type flag (for extended headers the encoder would never write).
    static func rawHeader(_ name: String, _ type: Character, size: Int) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 512)
        func put(_ off: Int, _ s: String) { for (i, c) in s.utf8.enumerated() { b[off + i] = c } }
        put(0, name); put(100, "0000644"); put(108, "0000000"); put(116, "0000000")
        put(124, String(repeating: "0", count: 11 - String(size, radix: 8).count) + String(size, radix: 8))
        put(136, "00000000000"); b[156] = type.asciiValue ?? 0x30; put(257, "ustar"); put(263, "00")
        for i in 148..<156 { b[i] = 0x20 }
        let sum = b.reduce(0) { $0 + Int($1) }
        put(148, String(repeating: "0", count: 6 - String(sum, radix: 8).count) + String(sum, radix: 8))
        b[154] = 0
        return b
    }

    @Test func oversizedExtendedHeadersAreRefused() throws {
        // 20 MB of PAX records, and a PAX header that claims 1 GiB and ends early.
        var records: [UInt8] = []
        PaxEncoder.appendRecord(&records, "comment", [UInt8](repeating: 0x41, count: 20 << 20))
        var (r, t) = try attempt("bigpax", { b in
            b.bytes += Self.rawHeader("PaxHeaders/x", "x", size: records.count) + records
            PaxEncoder.pad(&b.bytes)
            b.add("x", content: "hello")
        })
        guard case .failure = r else { Issue.record("accepted a 20 MB extended header"); t.cleanup(); return }
        t.cleanup()
        (r, t) = try attempt("bigdecl", { b in
            b.bytes += Self.rawHeader("PaxHeaders/x", "x", size: 1 << 30) + Array("30 path=aaaaaaaaaaaaaaaaaaaaa\n".utf8)
        })
        guard case let .failure(e) = r else { Issue.record("accepted a truncated 1 GiB extended header"); t.cleanup(); return }
        #expect(e.description.contains("first entry"), "\(e)")
        t.cleanup()
    }

    @Test func truncatedStreamsAreReported() throws {
        let t = try TempDir("trunc")
        defer { t.cleanup() }
        let src = try t.mkdir("src")
        try makeSampleTree(src)
        for c in [Compression.none, .gzip(level: 1), .zstd(level: 3)] {
            _ = try LayerWriter.write(directory: src, to: t.sub("full"), compression: c)
            let data = try #require(FileManager.default.contents(atPath: t.sub("full")))
            try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: t.sub("half")))
            let dst = try t.mkdir("dst-\(c)")
            #expect(throws: ArchiveError.self, "\(c)") { try LayerApplier.apply(layer: t.sub("half"), to: dst) }
            do { try LayerApplier.apply(layer: t.sub("half"), to: dst) } catch {
                #expect("\(error)".contains("truncated") || "\(error)".contains("Truncated"), "\(c): \(error)")
            }
        }
        // Zero bytes (plain or gzipped) is an empty layer, not an error.
        try Data().write(to: URL(fileURLWithPath: t.sub("zero")))
        try LayerApplier.apply(layer: t.sub("zero"), to: t.mkdir("zero-dst"))
        try run("sh", ["-c", "gzip -c < /dev/null > \(t.sub("zero.gz"))"])
        try LayerApplier.apply(layer: t.sub("zero.gz"), to: t.mkdir("zero-dst"))
        try Data("not a layer at all".utf8).write(to: URL(fileURLWithPath: t.sub("junk")))
        #expect(throws: ArchiveError.self) { try LayerApplier.apply(layer: t.sub("junk"), to: t.path) }
    }

    @Test func deviceNodesNeedRoot() throws {
        var b = TarBuilder()
        var h = TarHeader(name: Array("null".utf8), kind: .charDevice)
        h.devmajor = 1; h.devminor = 3; h.mode = 0o666
        b.bytes += PaxEncoder.encode(h)
        b.end()
        let t = try TempDir("dev")
        defer { t.cleanup() }
        let dst = try t.mkdir("dst")
        try b.write(to: t.sub("l.tar"))
        try LayerApplier.apply(layer: t.sub("l.tar"), to: dst, options: .init())
        if getuid() == 0 {
            #expect(lst(dst + "/null")?.st_rdev == dev_t(FS.makedev(1, 3)))
        } else {
            #expect(!exists(dst + "/null"))
        }
    }
}
