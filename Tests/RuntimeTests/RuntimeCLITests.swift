import Foundation
import Testing
@testable import Runtime

/// The runc command line of both binaries (`dockbuild-runc` and `dockbuild runtime`): the
/// per-container verbs go through a hand-written parser (for start-up time), everything else
/// through ArgumentParser. Both must read runc's flags the same way.
@Suite(.serialized) struct RuntimeCLITests {
    static let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// The command prefixes to test, from the debug build (`swift build --build-tests` makes both).
    static func commands() throws -> [[String]] {
        let lean = package + "/.build/debug/dockbuild-runc", full = package + "/.build/debug/dockbuild"
        try #require(FileManager.default.isExecutableFile(atPath: lean) && FileManager.default.isExecutableFile(atPath: full),
                     "build both binaries first: swift build --build-tests")
        return [[lean], [full, "runtime"]]
    }

    /// Runs a command with posix_spawn and waitpid, its output in files: `create` passes its
    /// stdio on to a container that outlives it, so pipes would not reach EOF.
    static func call(_ argv: [String]) throws -> (code: Int32, out: String, err: String) {
        let base = FileManager.default.temporaryDirectory.path + "/cli-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(base + ".out"); unlink(base + ".err") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, base + ".out", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, base + ".err", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, &cargs, environ)
        try #require(rc == 0, "spawn \(argv[0]): \(String(cString: strerror(rc)))")
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (code, readFile(base + ".out") ?? "", readFile(base + ".err") ?? "")
    }

    @Test func runcFlagsInEveryPosition() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        for cmd in try Self.commands() {
            let root = b.dir + "/state"
            // --root=VALUE before the verb, --bundle=VALUE, exit code and output passed through
            try b.write(b.spec(["sh", "-c", "echo out; echo err >&2; exit 3"]))
            let r = try Self.call(cmd + ["--root=\(root)", "--log-format", "json", "run", "--bundle=\(b.dir)", "c1"])
            #expect(r.code == 3 && r.out == "out\n" && r.err == "err\n", "\(cmd): \(r)")
            #expect(!FileManager.default.fileExists(atPath: root + "/c1"), "run without --keep deletes the container")

            // create / state / start / kill --all / delete, with the global flag after the verb
            try b.write(b.spec(["sleep", "100"]))
            #expect(try Self.call(cmd + ["create", "--root", root, "-b", b.dir, "--no-new-keyring", "c2"]).code == 0)
            let created = try Self.call(cmd + ["--root", root, "state", "c2"])
            #expect(created.code == 0 && created.out.contains("\"status\": \"created\""), "\(cmd): \(created)")
            #expect(try Self.call(cmd + ["--root", root, "start", "c2"]).code == 0)
            #expect(try Self.call(cmd + ["state", "--root", root, "c2"]).out.contains("\"status\": \"running\""))
            #expect(try Self.call(cmd + ["--root", root, "kill", "--all", "c2", "KILL"]).code == 0)
            var stopped = false
            for _ in 0..<200 where !stopped {
                stopped = try Self.call(cmd + ["--root", root, "state", "c2"]).out.contains("\"status\": \"stopped\"")
                if !stopped { usleep(20_000) }
            }
            #expect(stopped, "\(cmd): kill --all c2 KILL did not stop it")
            #expect(try Self.call(cmd + ["--root", root, "delete", "-f", "c2"]).code == 0)
            let gone = try Self.call(cmd + ["--root", root, "state", "c2"])
            #expect(gone.code == 1 && gone.err.replacingOccurrences(of: "\\\"", with: "\"").contains("container \"c2\" does not exist"), "\(cmd): \(gone)")

            // --keep leaves a stopped container behind
            try b.write(b.spec(["true"]))
            #expect(try Self.call(cmd + ["--root", root, "run", "--keep", "--bundle", b.dir, "c3"]).code == 0)
            #expect(try Self.call(cmd + ["--root", root, "state", "c3"]).out.contains("\"status\": \"stopped\""))
            #expect(try Self.call(cmd + ["--root", root, "delete", "c3"]).code == 0)
            let unknown = try Self.call(cmd + ["--root", root, "kill", "c3", "SIGNOPE"])
            #expect(unknown.code == 1 && unknown.err.contains("unknown signal"), "\(cmd): \(unknown)")
        }
    }

    /// What the hand-written parser is not sure of goes to ArgumentParser: its errors and help.
    @Test func unknownFlagsAndHelpGoToArgumentParser() throws {
        for cmd in try Self.commands() {
            // dockbuild-runc exits 1 on a usage error, as runc does; `dockbuild runtime` keeps 64.
            let usage: Int32 = cmd.count == 1 ? 1 : 64
            let bad = try Self.call(cmd + ["run", "--bundle", "/nonexistent", "--bogus", "x"])
            #expect(bad.code == usage && bad.err.contains("Unknown option '--bogus'"), "\(cmd): \(bad)")
            let missing = try Self.call(cmd + ["start"])
            #expect(missing.code == usage && missing.err.contains("Missing expected argument"), "\(cmd): \(missing)")
            let help = try Self.call(cmd + ["run", "--help"])
            #expect(help.code == 0 && help.out.contains("--console-socket"), "\(cmd): \(help)")
            let noBundle = try Self.call(cmd + ["--root", "/tmp/none-\(getpid())", "run", "-b", "/nonexistent", "x"])
            #expect(noBundle.code == 1 && noBundle.err.contains("/nonexistent/config.json"), "\(cmd): \(noBundle)")
        }
    }

    /// The container's program is exec'd through a sealed in-memory trampoline: a program
    /// whose interpreter line is `#!/proc/self/exe` must not get the host's runtime binary
    /// (CVE-2019-5736); argv[0] and /proc/self/exe of normal programs are unchanged.
    @Test func programsNeverSeeTheRuntimeBinary() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        try Data("#!/proc/self/exe\n".utf8).write(to: URL(fileURLWithPath: b.rootfs + "/evil"))
        chmod(b.rootfs + "/evil", 0o755)
        for cmd in try Self.commands() {
            let root = b.dir + "/state"
            try b.write(b.spec(["/evil"]))
            let evil = try Self.call(cmd + ["--root", root, "run", "--bundle", b.dir, "e1"])
            #if arch(x86_64)
            #expect(evil.code == 127 && !evil.err.contains("dockbuild") && !evil.out.contains("dockbuild"), "\(cmd): \(evil)")
            #endif
            try b.write(b.spec(["sh", "-c", "echo $0; readlink /proc/self/exe; readlink /proc/$$/exe"]))
            let ok = try Self.call(cmd + ["--root", root, "run", "--bundle", b.dir, "e2"])
            #expect(ok.code == 0 && ok.out == "sh\n/bin/busybox\n/bin/busybox\n", "\(cmd): \(ok)")
        }
    }
}
