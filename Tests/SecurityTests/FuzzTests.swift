import Archive
import Dockerfile
import Foundation
import ImageStore
import OCI
import Testing

/// Issue #14, "Verification and parsing": fuzz-style sets over the parsers that read untrusted
/// input — the layer tar reader (random bytes and mutated valid tars: flipped header bytes, bad
/// checksums, bad octal, PAX records with bad lengths and values, truncations, inside gzip too),
/// `load`'s archive reader, the Dockerfile parser (mutated fixtures) and image references. Every
/// input must end in success or a thrown error with a message; a trap kills the test process.
/// Deterministic: a fixed seed, and bounded in count and time.
@Suite(.serialized) struct FuzzTests {
    /// SplitMix64: a small deterministic generator, so a failure is replayed by its case number.
    struct FuzzRandom: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// `DOCKBUILD_FUZZ_SCALE=N` multiplies every set's case count and time budget (default 1)
    /// for a deeper local run; CI keeps the default.
    static let fuzzScale: Int = max(1, Int(ProcessInfo.processInfo.environment["DOCKBUILD_FUZZ_SCALE"] ?? "") ?? 1)
    /// Stops a set after this many seconds even if cases remain (the count is the normal bound).
    static let fuzzBudget: TimeInterval = 25 * TimeInterval(fuzzScale)

    // MARK: tar building

    /// One ustar header block (checksum filled in unless `badChecksum`).
    static func fuzzHeader(_ name: String, type: UInt8 = UInt8(ascii: "0"), size: Int, mode: String = "0000644",
                           uid: String = "0000000", link: String = "", badChecksum: Bool = false) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, _ off: Int, _ width: Int) { for (i, b) in Array(s.utf8).prefix(width).enumerated() { h[off + i] = b } }
        put(name, 0, 100)
        put(mode, 100, 8)
        put(uid, 108, 8)
        put("0000000", 116, 8)
        put(String(format: "%011o", size), 124, 12)
        put("00000000000", 136, 12)
        h[156] = type
        put(link, 157, 100)
        put("ustar", 257, 6)
        put("00", 263, 2)
        for i in 148..<156 { h[i] = 0x20 }
        let sum = h.reduce(0) { $0 + Int($1) }
        put(badChecksum ? "0000001" : String(format: "%06o", sum), 148, 6)
        h[154] = 0; h[155] = 0x20
        return h
    }

    static func fuzzPad(_ b: inout [UInt8]) { if b.count % 512 != 0 { b += [UInt8](repeating: 0, count: 512 - b.count % 512) } }

    /// A file entry with its data.
    static func fuzzFile(_ name: String, _ data: [UInt8], uid: String = "0000000") -> [UInt8] {
        var b = fuzzHeader(name, size: data.count, uid: uid) + data
        fuzzPad(&b)
        return b
    }

    /// A PAX extended header (`x`) carrying `records` verbatim (lengths not fixed up), then `then`.
    static func fuzzPax(_ records: String, then: [UInt8]) -> [UInt8] {
        var b = fuzzHeader("PaxHeaders/x", type: UInt8(ascii: "x"), size: records.utf8.count) + Array(records.utf8)
        fuzzPad(&b)
        return b + then
    }

    /// A well-formed PAX record (`"%d %s=%s\n"`, the length counting itself).
    static func fuzzRecord(_ key: String, _ value: String) -> String {
        let body = key.utf8.count + value.utf8.count + 3
        var n = body + String(body).count
        if String(n).count != String(body).count { n = body + String(n).count }
        return "\(n) \(key)=\(value)\n"
    }

    static let fuzzEnd = [UInt8](repeating: 0, count: 1024)

    /// Valid layers the mutations start from.
    static func fuzzSeeds() -> [[UInt8]] {
        let data = Array("hello, layer\n".utf8)
        return [
            fuzzHeader("dir/", type: UInt8(ascii: "5"), size: 0, mode: "0000755") + fuzzFile("dir/a.txt", data)
                + fuzzHeader("dir/link", type: UInt8(ascii: "2"), size: 0, link: "a.txt")
                + fuzzHeader("dir/hard", type: UInt8(ascii: "1"), size: 0, link: "dir/a.txt") + fuzzEnd,
            fuzzPax(fuzzRecord("path", "long/" + String(repeating: "n", count: 150)) + fuzzRecord("uid", "1000")
                    + fuzzRecord("SCHILY.xattr.user.k", "v"), then: fuzzFile("short", data)) + fuzzEnd,
            fuzzFile(".wh.gone", []) + fuzzFile("x/.wh..wh..opq", []) + fuzzFile("x/y", data) + fuzzEnd,
        ]
    }

    /// Applies `bytes` as a layer in a fresh directory; returns nil on success or the error's text.
    static func fuzzApply(_ bytes: [UInt8], _ base: String, _ n: Int, whiteouts: LayerApplier.Whiteouts = .apply) -> String? {
        let file = "\(base)/layer-\(n)", dir = "\(base)/out-\(n)"
        defer { try? FileManager.default.removeItem(atPath: file); try? FileManager.default.removeItem(atPath: dir) }
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try LayerApplier.apply(layer: file, to: dir, options: .init(whiteouts: whiteouts, xattrs: false))
            return nil
        } catch {
            let text = "\(error)"
            #expect(!text.isEmpty, "case \(n): an error without a message")
            return text
        }
    }

    static func fuzzDir() throws -> String {
        let d = "/var/tmp/dbfuzz-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    static func fuzzGzip(_ bytes: [UInt8], _ base: String) throws -> [UInt8] {
        let p = "\(base)/gz-in"
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        let r = try Sec.run(["/bin/sh", "-c", "gzip -n -c '\(p)' > '\(p).gz'"])
        #expect(r.status == 0)
        return Array(try Data(contentsOf: URL(fileURLWithPath: p + ".gz")))
    }

    // MARK: tar reader

    /// Hand-made hostile headers: each must be refused with a clear error (not a trap).
    @Test func tarReaderRefusesHostileNumbers() throws {
        let base = try Self.fuzzDir()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let data = Array("x\n".utf8)
        let cases: [(String, [UInt8], String)] = [
            ("PAX uid negative", Self.fuzzPax(Self.fuzzRecord("uid", "-1"), then: Self.fuzzFile("f", data)) + Self.fuzzEnd, "uid"),
            ("PAX uid > UInt32.max", Self.fuzzPax(Self.fuzzRecord("uid", "4294967296"), then: Self.fuzzFile("f", data)) + Self.fuzzEnd, "uid"),
            ("PAX gid huge", Self.fuzzPax(Self.fuzzRecord("gid", "99999999999999999999999"), then: Self.fuzzFile("f", data)) + Self.fuzzEnd, "gid"),
            ("PAX uid (uid_t)-1", Self.fuzzPax(Self.fuzzRecord("uid", "4294967295"), then: Self.fuzzFile("f", data)) + Self.fuzzEnd, "uid"),
            ("base-256 negative uid", { var h = Self.fuzzFile("f", data); for i in 108..<116 { h[i] = 0xff }
                                          for i in 148..<156 { h[i] = 0x20 }
                                          let s = h.prefix(512).reduce(0) { $0 + Int($1) }
                                          for (i, b) in Array(String(format: "%06o", s).utf8).enumerated() { h[148 + i] = b }
                                          h[154] = 0; return h + Self.fuzzEnd }(), "uid"),
            ("PAX uid not a number", Self.fuzzPax(Self.fuzzRecord("uid", "abc"), then: Self.fuzzFile("f", data)) + Self.fuzzEnd, "uid=abc"),
            ("PAX gid half a number", Self.fuzzPax(Self.fuzzRecord("gid", "12abc"), then: Self.fuzzFile("f", data)) + Self.fuzzEnd, "gid=12abc"),
            ("PAX mtime not a time", Self.fuzzPax(Self.fuzzRecord("mtime", "yesterday"), then: Self.fuzzFile("f", data)) + Self.fuzzEnd, "mtime"),
            ("PAX size negative", Self.fuzzPax(Self.fuzzRecord("size", "-5"), then: Self.fuzzFile("f", data)) + Self.fuzzEnd, "size=-5"),
            // A size libarchive reads as 0 would make the file's data parse as the next header.
            ("PAX size not a number", Self.fuzzPax(Self.fuzzRecord("size", "zero"), then: Self.fuzzFile("f", data)) + Self.fuzzEnd, "size=zero"),
            ("PAX size huge", Self.fuzzPax(Self.fuzzRecord("size", "9223372036854775807"), then: Self.fuzzFile("f", data)) + Self.fuzzEnd, ""),
            ("PAX record length past the header", Self.fuzzPax("999 path=x\n", then: Self.fuzzFile("f", data)) + Self.fuzzEnd, "length 999"),
            ("PAX record length zero", Self.fuzzPax("0 path=x\n", then: Self.fuzzFile("f", data)) + Self.fuzzEnd, "length 0"),
            ("PAX record without a length", Self.fuzzPax("path=x\n", then: Self.fuzzFile("f", data)) + Self.fuzzEnd, "length"),
            ("PAX record not KEY=VALUE", Self.fuzzPax("11 novalue\n", then: Self.fuzzFile("f", data)) + Self.fuzzEnd, "KEY=VALUE"),
            ("device major out of range", Self.fuzzPax(Self.fuzzRecord("SCHILY.devmajor", "99999999999"),
                                                       then: Self.fuzzHeader("dev", type: UInt8(ascii: "3"), size: 0)) + Self.fuzzEnd, ""),
            ("truncated entry", Array(Self.fuzzFile("f", Array(repeating: 0x41, count: 2000)).prefix(1024)), ""),
            ("no end-of-archive marker", Self.fuzzFile("f", data), "end-of-archive"),
        ]
        for (i, (what, bytes, mention)) in cases.enumerated() {
            let err = Self.fuzzApply(bytes, base, i)
            if what == "PAX size huge" || what == "device major out of range" {
                // libarchive may reject these itself; either way no trap, and no success with a wrong size.
                continue
            }
            #expect(err != nil, "\(what): accepted")
            if !mention.isEmpty, let err { #expect(err.contains(mention), "\(what): \(err)") }
        }
    }

    /// Random bytes, and mutations of valid layers (plain and gzip): never a trap.
    @Test func tarReaderSurvivesMutations() throws {
        let base = try Self.fuzzDir()
        defer { try? FileManager.default.removeItem(atPath: base) }
        var rng = FuzzRandom(seed: 0x14_0001 &+ UInt64(Self.fuzzScale - 1))
        let seeds = Self.fuzzSeeds()
        for s in seeds { #expect(Self.fuzzApply(s, base, -1) == nil, "a seed layer is refused") }
        let start = Date()
        var refused = 0, total = 0
        for n in 0..<(600 * Self.fuzzScale) where Date().timeIntervalSince(start) < Self.fuzzBudget {
            var b = seeds[n % seeds.count]
            switch n % 8 {
            case 0: // random bytes
                b = (0..<Int.random(in: 0...2048, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 1: // flipped header bytes
                for _ in 0..<Int.random(in: 1...6, using: &rng) {
                    let block = Int.random(in: 0..<max(1, b.count / 512), using: &rng) * 512
                    b[block + Int.random(in: 0..<512, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                }
            case 2: // bad checksum
                let block = Int.random(in: 0..<max(1, b.count / 512), using: &rng) * 512
                for i in 148..<156 { b[block + i] = UInt8.random(in: 0...255, using: &rng) }
            case 3: // bad octal in a numeric field (mode, uid, gid, size, mtime)
                let fields = [(100, 8), (108, 8), (116, 8), (124, 12), (136, 12)]
                let (off, width) = fields[Int.random(in: 0..<fields.count, using: &rng)]
                let junk: [UInt8] = [0x38, 0x39, 0x2d, 0x41, 0xff, 0x80, 0x20, 0x00]
                for i in 0..<width { b[off + i] = junk[Int.random(in: 0..<junk.count, using: &rng)] }
            case 4: // PAX records with bad lengths and values
                let keys = ["path", "linkpath", "uid", "gid", "size", "mtime", "uname", "SCHILY.xattr.user.a", "GNU.sparse.size", "GNU.sparse.map"]
                let values = ["-1", "4294967296", "abc", "", "18446744073709551616", "1e9", "0x10", String(repeating: "9", count: 40), "../../etc/x", "1,2,3"]
                let lens = ["", "0 ", "-3 ", "99999999999999999999 ", "12 ", "a "]
                var rec = ""
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    let k = keys[Int.random(in: 0..<keys.count, using: &rng)], v = values[Int.random(in: 0..<values.count, using: &rng)]
                    let l = lens[Int.random(in: 0..<lens.count, using: &rng)]
                    rec += l.isEmpty ? Self.fuzzRecord(k, v) : "\(l)\(k)=\(v)\n"
                }
                b = Self.fuzzPax(rec, then: Self.fuzzFile("f", Array("data".utf8))) + Self.fuzzEnd
            case 5: // truncation
                b = Array(b.prefix(Int.random(in: 0..<b.count, using: &rng)))
            case 6: // gzip, then a flipped or dropped byte
                var g = try Self.fuzzGzip(b, base)
                if Bool.random(using: &rng) { g[Int.random(in: 10..<g.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng) }
                else { g = Array(g.prefix(Int.random(in: 0..<g.count, using: &rng))) }
                b = g
            default: // a mutated header inside gzip (the ISA-L path)
                b[Int.random(in: 0..<min(512, b.count), using: &rng)] ^= 0x5a
                b = try Self.fuzzGzip(b, base)
            }
            total += 1
            if Self.fuzzApply(b, base, n, whiteouts: n % 3 == 0 ? .literal : .apply) != nil { refused += 1 }
        }
        #expect(total >= 100, "only \(total) cases ran in \(Self.fuzzBudget) s")
        #expect(refused > 0)
    }

    /// `load` over mutated docker-archive and OCI-layout tars (and hostile links): never a trap.
    @Test func loadSurvivesMutatedArchives() throws {
        let base = try Self.fuzzDir()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let store = try ImageStore(root: base + "/store")
        var rng = FuzzRandom(seed: 0x14_0002 &+ UInt64(Self.fuzzScale - 1))
        let manifest = Array(#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["l.tar"]}]"#.utf8)
        let config = Array(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#.utf8)
        let layer = Self.fuzzFile("a", Array("a".utf8)) + Self.fuzzEnd
        let seed = Self.fuzzFile("manifest.json", manifest) + Self.fuzzFile("c.json", config) + Self.fuzzFile("l.tar", layer) + Self.fuzzEnd
        let links: [[UInt8]] = [
            Self.fuzzHeader("a", type: UInt8(ascii: "2"), size: 0, link: "a") + Self.fuzzEnd,
            Self.fuzzHeader("manifest.json", type: UInt8(ascii: "2"), size: 0, link: "manifest.json") + Self.fuzzEnd,
            Self.fuzzHeader("index.json", type: UInt8(ascii: "2"), size: 0, link: "/etc/passwd") + Self.fuzzEnd,
            Self.fuzzHeader("b", type: UInt8(ascii: "1"), size: 0, link: "../../x") + Self.fuzzEnd,
        ]
        let start = Date()
        for n in 0..<(links.count + 150 * Self.fuzzScale) where Date().timeIntervalSince(start) < Self.fuzzBudget {
            var b = n < links.count ? links[n] : seed
            if n >= links.count {
                for _ in 0..<Int.random(in: 1...8, using: &rng) { b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            }
            let file = "\(base)/in-\(n).tar"
            try Data(b).write(to: URL(fileURLWithPath: file))
            do { _ = try store.load(from: file) } catch { #expect(!"\(error)".isEmpty) }
        }
    }

    // MARK: Dockerfile parser

    @Test func dockerfileParserSurvivesMutations() throws {
        let fixtures = URL(fileURLWithPath: Sec.package + "/Tests/DockerfileTests/Fixtures")
        var texts: [[UInt8]] = []
        for name in (try FileManager.default.contentsOfDirectory(atPath: fixtures.path)).sorted() {
            if let d = try? Data(contentsOf: fixtures.appendingPathComponent(name + "/Dockerfile")) { texts.append(Array(d)) }
        }
        try #require(texts.count > 10)
        var rng = FuzzRandom(seed: 0x14_0003 &+ UInt64(Self.fuzzScale - 1))
        let tokens = ["\\", "\\\n", "\n", "\r\n", "$", "${", "}", "${a:-", "${a:+x}", "$(", "\"", "'", "[", "]", "[\"", "#", "# escape=`\n",
                      "# syntax=x\n", "`", "--mount=type=", "--from=", "<<EOF\n", "<<-EOF\n", "EOF\n", "\u{0}", "\u{FEFF}", "=", " ", "\t", "AS ", "FROM ",
                      "ONBUILD ", "HEALTHCHECK ", "--interval=", "ARG ", "ENV ", "{", "\u{FFFD}", "\u{1F600}"]
        let start = Date()
        var parsed = 0, refused = 0
        for n in 0..<(4000 * Self.fuzzScale) where Date().timeIntervalSince(start) < Self.fuzzBudget {
            var b = texts[n % texts.count]
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = Int.random(in: 0...b.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: b.insert(contentsOf: Array(tokens[Int.random(in: 0..<tokens.count, using: &rng)].utf8), at: at)
                case 1: if at < b.count { b.remove(at: at) }
                case 2: if at < b.count { b[at] = UInt8.random(in: 0...255, using: &rng) }
                default: b = Array(b.prefix(at))
                }
            }
            do {
                let df = try Dockerfile.parse(String(decoding: b, as: UTF8.self), fileName: "fuzz-\(n)")
                parsed += 1
                // Expansion of every instruction (ARG/ENV words), as the builder does it.
                let lex = df.shellLex
                let env = ["a": "x y", "HOME": "/root", "EMPTY": "", "P": "/bin:/usr/bin"]
                for inst in df.instructions {
                    do { _ = try inst.expanded { word throws(ExpansionError) in try lex.processWord(word, env: env) } } catch {
                        #expect(!"\(error)".isEmpty, "case \(n): an expansion error without a message")
                    }
                }
            } catch {
                refused += 1
                #expect(!"\(error)".isEmpty, "case \(n): an error without a message")
            }
        }
        #expect(parsed > 0 && refused > 0, "parsed \(parsed), refused \(refused)")
        // .dockerignore patterns from the same mutated bytes.
        for n in 0..<(500 * Self.fuzzScale) where Date().timeIntervalSince(start) < 2 * Self.fuzzBudget {
            var b = Array("node_modules\n!keep/**\n*.log\n[a-z]?/\\*\n**/tmp\n".utf8)
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                b.insert(Array(tokens[Int.random(in: 0..<tokens.count, using: &rng)].utf8)[0], at: Int.random(in: 0...b.count, using: &rng))
            }
            do { _ = try DockerIgnore(contents: String(decoding: b, as: UTF8.self)) } catch {
                #expect(!"\(error)".isEmpty, "dockerignore case \(n): an error without a message")
            }
        }
    }

    // MARK: image references

    @Test func imageReferenceParserSurvivesMutations() throws {
        let seeds = ["busybox", "docker.io/library/busybox:1.36", "localhost:5000/a/b/c:tag", "ghcr.io/o/r@sha256:" + String(repeating: "a", count: 64),
                     "[::1]:5000/x:y", "registry.example.com:443/ns/img:v1.2.3-rc_1", "a:b@sha256:" + String(repeating: "0", count: 64)]
        let alphabet = Array("abcXYZ019:/@._-[]%+ \u{0}\u{7f}é\u{FFFD}sha256:".unicodeScalars)
        var rng = FuzzRandom(seed: 0x14_0004 &+ UInt64(Self.fuzzScale - 1))
        let start = Date()
        for n in 0..<(20000 * Self.fuzzScale) where Date().timeIntervalSince(start) < Self.fuzzBudget {
            var s = Array(seeds[n % seeds.count].unicodeScalars)
            for _ in 0..<Int.random(in: 1...5, using: &rng) {
                let at = Int.random(in: 0...s.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: s.insert(alphabet[Int.random(in: 0..<alphabet.count, using: &rng)], at: at)
                case 1: if at < s.count { s.remove(at: at) }
                case 2: s.insert(contentsOf: Array(String(repeating: "a", count: Int.random(in: 100...300, using: &rng)).unicodeScalars), at: at)
                default: s = Array(s.prefix(at))
                }
            }
            var text = ""
            text.unicodeScalars.append(contentsOf: s)
            do {
                let r = try ImageReference(parsing: text)
                _ = r.description
                _ = r.familiarString
                // What it prints must parse back to itself.
                #expect(try ImageReference(parsing: r.description) == r, "case \(n): \(text) -> \(r.description)")
            } catch {
                #expect(!"\(error)".isEmpty)
            }
        }
    }
}
