import Testing
@testable import Dockerfile

/// Random Dockerfiles assembled from tricky fragments: every one must either parse
/// or fail with a DockerfileError; none may crash or hang.
@Suite struct RobustnessTests {
    static let fragments = [
        "FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "ONBUILD", "HEALTHCHECK", "LABEL", "CMD", "SHELL", "EXPOSE",
        " ", "  ", "\t", "\n", "\r\n", "\\", "\\\n", "`", "#", "# escape=`\n", "# syntax=x\n", "--", "--mount=",
        "type=cache", ",", "=", "\"", "'", "[", "]", "[\"a\"", "\"b\"]", "{", "}", "$", "${", "${a:-", "<<", "<<-",
        "EOF", "\nEOF\n", "<<'E'", "3<<X", "\u{FEFF}", "\u{0}", "é", "\u{00A0}", "日本", "--platform=$P", "AS", "x",
        "NONE", "--interval=1s", "\\u00", "--chown=1", "--from=0", "-", ":",
    ]

    @Test func randomInputsNeverCrash() {
        var rng = SplitMix(seed: 0xD0C4E7F11E)
        var parsed = 0, rejected = 0
        for _ in 0..<3000 {
            var text = rng.next() % 2 == 0 ? "FROM x\n" : ""
            for _ in 0..<Int(rng.next() % 24) {
                text += Self.fragments[Int(rng.next() % UInt64(Self.fragments.count))]
            }
            do {
                let df = try Dockerfile.parse(text)
                _ = df.syntax.dump()
                _ = try? df.plan()
                parsed += 1
            } catch is DockerfileError {
                rejected += 1
            } catch {
                Issue.record("unexpected error type for \(text.debugDescription): \(error)")
            }
            let lex = ShellLex()
            _ = try? lex.processWords(text, env: ["a": "1"])
            _ = try? DockerIgnore(contents: text).matches("a/b")
        }
        #expect(parsed + rejected == 3000)
        #expect(parsed > 0 && rejected > 0)
    }
}

struct SplitMix {
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
