import Foundation
import Testing
@testable import Dockerfile

/// One .dockerignore row: patterns, a path, and whether moby/patternmatcher excludes it.
struct I: Sendable, CustomTestStringConvertible {
    let patterns: [String]
    let path: String
    let ignored: Bool
    init(_ patterns: [String], _ path: String, _ ignored: Bool) {
        self.patterns = patterns
        self.path = path
        self.ignored = ignored
    }
    var testDescription: String { "\(patterns) \(path)" }
}

/// Expected values were produced with moby/patternmatcher (MatchesOrParentMatches).
let ignoreTable: [I] = [
        I(["*.md"], "README.md", true),
        I(["*.md"], "docs/README.md", false),
        I(["*.md"], "a.md.txt", false),
        I(["*.md"], "md", false),
        I(["docs"], "docs", true),
        I(["docs"], "docs/a.txt", true),
        I(["docs"], "docs/sub/b", true),
        I(["docs"], "mydocs", false),
        I(["docs"], "src/docs", false),
        I(["/docs/"], "docs/x", false),
        I(["/docs/"], "a/docs/x", false),
        I(["**/*.go"], "main.go", true),
        I(["**/*.go"], "a/b/c.go", true),
        I(["**/*.go"], "a/b/c.go/d", true),
        I(["**/*.go"], "go", false),
        I(["**/node_modules"], "node_modules", true),
        I(["**/node_modules"], "a/node_modules", true),
        I(["**/node_modules"], "a/node_modules/x/y", true),
        I(["**/node_modules"], "node_modules_x", false),
        I(["build/**"], "build", false),
        I(["build/**"], "build/a", true),
        I(["build/**"], "build/a/b", true),
        I(["build/**"], "buildx/a", false),
        I(["a/**/b"], "a/b", true),
        I(["a/**/b"], "a/x/b", true),
        I(["a/**/b"], "a/x/y/b", true),
        I(["a/**/b"], "a/x/y/bc", false),
        I(["a/**/b"], "b", false),
        I(["*", "!keep"], "keep", false),
        I(["*", "!keep"], "drop", true),
        I(["*", "!keep"], "keep/x", false),
        I(["*", "!keep"], "dir/keep", true),
        I(["*.log", "!important.log"], "x.log", true),
        I(["*.log", "!important.log"], "important.log", false),
        I(["*.log", "!important.log"], "sub/x.log", false),
        I(["!*.txt", "*.txt"], "a.txt", true),
        I(["*.txt", "!a.txt", "a.txt"], "a.txt", true),
        I(["*.txt", "!a.txt", "a.txt"], "b.txt", true),
        I(["dir", "!dir/keep"], "dir/keep", false),
        I(["dir", "!dir/keep"], "dir/other", true),
        I(["dir", "!dir/keep"], "dir/keep/deeper", false),
        I(["?.c"], "a.c", true),
        I(["?.c"], "ab.c", false),
        I(["?.c"], "a/b.c", false),
        I(["[a-c].txt"], "a.txt", true),
        I(["[a-c].txt"], "d.txt", false),
        I(["[a-c].txt"], "b.txt", true),
        I(["[^a].txt"], "a.txt", false),
        I(["[^a].txt"], "b.txt", true),
        I(["file\\*"], "file*", true),
        I(["file\\*"], "fileX", false),
        I(["./src/../lib"], "lib", true),
        I(["./src/../lib"], "lib/x", true),
        I(["./src/../lib"], "src/lib", false),
        I(["*/temp*"], "a/temp", true),
        I(["*/temp*"], "a/temporary", true),
        I(["*/temp*"], "a/b/temp", false),
        I(["*/temp*"], "temp", false),
        I(["temp?"], "temp1", true),
        I(["temp?"], "temp", false),
        I(["temp?"], "temp12", false),
        I(["**"], "anything", true),
        I(["**"], "a/b/c", true),
        I(["**/"], "x", true),
        I(["**/"], "x/y", true),
        I(["a/*/c"], "a/b/c", true),
        I(["a/*/c"], "a/b/x/c", false),
        I(["a/*/c"], "a/c", false),
        I(["Dockerfile", ".dockerignore"], "Dockerfile", true),
        I(["Dockerfile", ".dockerignore"], ".dockerignore", true),
        I(["Dockerfile", ".dockerignore"], "sub/Dockerfile", false),
        I([".git"], ".git/HEAD", true),
        I([".git"], "a/.git", false),
        I(["**/.git"], ".git/HEAD", true),
        I(["**/.git"], "a/.git/x", true),
        I(["a.b"], "a.b", true),
        I(["a.b"], "axb", false),
        I(["(x)+"], "(x)+", true),
        I(["(x)+"], "x", false),
        I(["*.{js,ts}"], "a.{js,ts}", true),
        I(["*.{js,ts}"], "a.js", false),
        I(["dir/*.c", "!dir/keep.c"], "dir/a.c", true),
        I(["dir/*.c", "!dir/keep.c"], "dir/keep.c", false),
        I(["dir/*.c", "!dir/keep.c"], "dir/sub/a.c", false),
        I(["**/test/**"], "test/a", true),
        I(["**/test/**"], "src/test/a", true),
        I(["**/test/**"], "src/tests/a", false),
]

@Suite struct DockerIgnoreTests {
    @Test(arguments: ignoreTable)
    func matches(_ row: I) throws {
        let ignore = try DockerIgnore(patterns: row.patterns)
        #expect(ignore.matches(row.path) == row.ignored)
    }

    @Test func readsFileSyntax() throws {
        let text = "\u{FEFF}# comment\n\n  *.tmp  \n/abs/path/\n! keep.tmp\r\n./a/../b\n #not a comment\n"
        #expect(DockerIgnore.readPatterns(text) == ["*.tmp", "abs/path", "!keep.tmp", "b", "#not a comment"])
        let ignore = try DockerIgnore(contents: text)
        #expect(ignore.matches("x.tmp") && !ignore.matches("keep.tmp") && ignore.matches("abs/path/f"))
        #expect(ignore.hasExceptions)
    }

    @Test func rejectsBadPatterns() {
        #expect(throws: DockerfileError.self) { try DockerIgnore(patterns: ["!"]) }
        #expect(throws: DockerfileError.self) { try DockerIgnore(patterns: ["[a-"]) }
        #expect(throws: DockerfileError.self) { try DockerIgnore(patterns: ["abc\\"]) }
    }

    @Test func loadsNamedIgnoreFileBesideDockerfile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dockerignore-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("*.root\n".utf8).write(to: dir.appendingPathComponent(".dockerignore"))
        try Data("*.named\n".utf8).write(to: dir.appendingPathComponent("app.Dockerfile.dockerignore"))
        let named = try #require(try DockerIgnore.load(contextDirectory: dir.path,
                                                       dockerfilePath: dir.appendingPathComponent("app.Dockerfile").path))
        #expect(named.matches("a.named") && !named.matches("a.root"))
        let plain = try #require(try DockerIgnore.load(contextDirectory: dir.path,
                                                       dockerfilePath: dir.appendingPathComponent("Dockerfile").path))
        #expect(plain.matches("a.root"))
        #expect(try DockerIgnore.load(contextDirectory: dir.appendingPathComponent("none").path) == nil)
    }

    /// COPY/ADD source wildcards: Go's filepath.Match on one name (expected values from Go).
    @Test func globMatchIsFilepathMatch() throws {
        let rows: [(String, String, Bool)] = [
            ("*.txt", "a.txt", true), ("*.txt", "a/b.txt", false), ("a?c", "abc", true), ("a?c", "a/c", false),
            ("[a-c]x", "bx", true), ("[^a-c]x", "bx", false), ("[^a-c]x", "dx", true), ("\\*", "*", true),
            ("\\*", "a", false), ("**", "abc", true), ("**", "a/b", false), ("a*b", "a/b", false),
            ("abc", "abc", true), ("abc", "abd", false), ("*", "", true),
        ]
        for (pattern, name, expected) in rows {
            #expect(try DockerIgnore.globMatch(pattern, name) == expected, "\(pattern) \(name)")
        }
        #expect(throws: DockerfileError.self) { try DockerIgnore.globMatch("[a-", "a") }
        #expect(DockerIgnore.containsWildcards("src/*.txt"))
        #expect(!DockerIgnore.containsWildcards("src/a.txt"))
    }
}

/// The clean-path fast path (a path a walk built is returned as it is) agrees with the full
/// cleaning on every path made of these components, and `matches` without patterns is false.
@Suite struct CleanPathFastPathTests {
    @Test func fastPathAgreesWithTheFullClean() throws {
        let parts = ["a", ".", "..", "", "...", ".h", "b.c", "x..", ".."]
        var checked = 0
        func slow(_ path: String) -> String {
            if path.isEmpty { return "." }
            let rooted = path.hasPrefix("/")
            var out: [Substring] = []
            for comp in path.split(separator: "/", omittingEmptySubsequences: true) {
                if comp == "." { continue }
                if comp == ".." {
                    if let last = out.last, last != ".." { out.removeLast() } else if !rooted { out.append(comp) }
                    continue
                }
                out.append(comp)
            }
            let joined = out.joined(separator: "/")
            return rooted ? "/" + joined : (joined.isEmpty ? "." : joined)
        }
        for lead in ["", "/"] {
            for a in parts { for b in parts { for c in parts {
                for trail in ["", "/"] {
                    let p = lead + [a, b, c].joined(separator: "/") + trail
                    #expect(DockerIgnore.cleanPath(p) == slow(p), "\(p)")
                    checked += 1
                }
            } } }
        }
        #expect(checked == 2 * 9 * 9 * 9 * 2)
        #expect(try DockerIgnore(patterns: []).matches("anything/at/all") == false)
    }
}
