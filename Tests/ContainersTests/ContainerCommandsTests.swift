import Foundation
import Testing

/// docker's container commands that change or read one container (issue #17): `rename`,
/// `pause`/`unpause`, `diff`, `export`. Each test runs the real binary; expectations are what
/// docker 20.10 prints and exits with (see docs/cli.md for the intended differences).
@Suite(.serialized) struct ContainerCommandsTests {
    static func scenario(_ tag: Int) throws -> Scenario {
        let s = try Scenario(tag)
        try #require(FileManager.default.isExecutableFile(atPath: s.binary), "\(s.binary) is missing: run `swift build` first")
        return s
    }

    func names(_ s: Scenario) throws -> [String] {
        try s.ok(["ps", "-a", "--format", "{{.Names}}"]).split(separator: "\n").map(String.init).sorted()
    }

    // MARK: rename

    @Test(.enabled(if: Scenario.canRun)) func rename() throws {
        let s = try Self.scenario(61)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let id = try s.ok(["create", "--network", "none", "--name", "first", "busybox:test", "true"])
        _ = try s.ok(["create", "--network", "none", "--name", "other", "busybox:test", "true"])
        // success prints nothing; ps and inspect show the new name; a leading / is dropped
        let r = try s.db(["rename", "first", "/second"])
        #expect(r.status == 0 && r.out.isEmpty && r.err.isEmpty, "\(r)")
        #expect(try names(s) == ["other", "second"])
        #expect(try s.ok(["inspect", "-f", "{{.Name}}", String(id.prefix(12))]) == "/second")
        // the id (or a prefix of it) still finds it; the management command does the same
        #expect(try s.db(["container", "rename", String(id.prefix(8)), " third "]).status == 0)
        #expect(try names(s) == ["other", "third"])
        // refusals are the daemon's in docker: exit 1, and nothing changes
        for (args, words) in [(["third", "other"], "already used by container"),
                              (["third", "bad name"], "invalid container name"),
                              (["third", "-x"], ""),
                              (["third", "third"], "current name"),
                              (["no-such", "fourth"], "no such container"),
                              (["third", "  "], "may be empty")] {
            let bad = try s.db(["rename"] + args)
            if words.isEmpty {
                #expect(bad.status == 125, "\(args): a flag-like name is a usage error: \(bad)")
            } else {
                #expect(bad.status == 1 && bad.err.contains(words), "\(args): \(bad)")
            }
        }
        #expect(try names(s) == ["other", "third"])
        // usage errors: 125
        #expect(try s.db(["rename", "third"]).status == 125)
        #expect(try s.db(["rename", "third", "a", "b"]).status == 125)
        // a running container keeps running under its new name
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "live", "busybox:test", "sleep", "30"])
        #expect(try s.db(["rename", "live", "alive"]).status == 0)
        #expect(try s.ok(["ps", "--format", "{{.Names}} {{.State}}"]) == "alive running")
        #expect(try s.db(["kill", "alive"]).status == 0)
    }
}
