import Foundation
import Testing
@testable import Runtime

/// A process whose program cannot run fails where runc fails it: at `create` (or `exec`),
/// with runc's words, not with a `create` and `start` that exit 0 and a container that never
/// ran. The engine maps the words to docker's exit codes: 127 not found, 126 not executable.
@Suite("exec failures", .serialized)
struct ExecFailureTests {
    /// A rootfs with a plain file without execute bits and a directory.
    static func bundle() throws -> Bundle {
        let b = try Bundle.make()
        _ = FileManager.default.createFile(atPath: b.rootfs + "/plain", contents: Data("#!/bin/sh\necho ran\n".utf8),
                                       attributes: [.posixPermissions: 0o644])
        try FileManager.default.createDirectory(atPath: b.rootfs + "/adir", withIntermediateDirectories: true)
        return b
    }

    /// (args[0], runc's message, docker's exit code)
    static let cases: [(String, String, Int32)] = [
        ("nosuch", #"exec: "nosuch": executable file not found in $PATH"#, 127),
        ("/nosuch", #"exec: "/nosuch": stat /nosuch: no such file or directory"#, 127),
        ("/plain", #"exec: "/plain": permission denied"#, 126),
        ("/adir", #"exec: "/adir": permission denied"#, 126),
        ("./plain", #"exec: "./plain": permission denied"#, 126),
    ]

    @Test("create fails for a missing, non-executable or directory program, with runc's message; nothing is left")
    func createFails() throws {
        let b = try Self.bundle()
        defer { b.cleanup() }
        for (prog, message, code) in Self.cases {
            try b.write(b.spec([prog]))
            let id = "x\(UInt32.random(in: 0...UInt32.max))"
            #expect {
                try b.runtime.create(id: id, bundle: b.dir)
            } throws: { e in
                let err = e as? RuntimeError
                return err?.kind == .exec && err?.message == message && err?.execExitCode == code
            }
            #expect(b.runtime.list().isEmpty, "\(prog): no container left behind")
            #expect(throws: RuntimeError.self) { try b.runtime.start(id: id) }
        }
        // A program that is there still runs, relative ones from process.cwd.
        var s = b.spec(["./busybox", "echo", "ran"])
        s.process?.cwd = "/bin"
        #expect(try b.run(s).out == "ran\n")
    }

    @Test("exec fails the same way; the CLI exits 255 like runc and --log holds the message")
    func execFailsAndLogs() throws {
        let b = try Self.bundle()
        defer { b.cleanup() }
        try b.write(b.spec(["sleep", "100"]))
        var opts = CreateOptions()
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devnull) }
        opts.stdout = devnull
        opts.stderr = devnull
        try b.runtime.create(id: "target", bundle: b.dir, options: opts)
        try b.runtime.start(id: "target")
        for (prog, message, code) in Self.cases {
            var p = b.spec([prog]).process ?? RuntimeSpec.Process()
            p.args = [prog]
            #expect {
                _ = try b.runtime.exec(id: "target", process: p)
            } throws: { e in
                (e as? RuntimeError)?.message == message && (e as? RuntimeError)?.execExitCode == code
            }
        }
        for cmd in try RuntimeCLITests.commands() {
            let log = b.dir + "/runtime.log"
            unlink(log)
            var r = try RuntimeCLITests.call(cmd + ["--root", b.runtime.root, "--log", log, "exec", "target", "nosuch"])
            #expect(r.code == 255 && r.err.contains(#"exec: "nosuch": executable file not found in $PATH"#), "\(cmd): \(r)")
            let text = readFile(log) ?? ""
            #expect(text.contains(#"level=error msg="exec: \"nosuch\": executable file not found in $PATH""#), "\(cmd): \(text)")
            #expect(RuntimeError.execExitCode(forMessage: text) == 127)

            unlink(log)
            r = try RuntimeCLITests.call(cmd + ["--root", b.runtime.root, "exec", "--log", log, "--log-format", "json", "target", "/adir"])
            #expect(r.code == 255, "\(cmd): \(r)")
            let line = try #require(readFile(log)?.split(separator: "\n").first, "\(cmd): no json log")
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
            #expect(obj?["level"] == "error" && obj?["msg"] == #"exec: "/adir": permission denied"#, "\(line)")
            #expect(RuntimeError.execExitCode(forMessage: String(line)) == 126)

            // create through the CLI (the fast path): exit 1, runc's words, logged too.
            unlink(log)
            try b.write(b.spec(["nosuch"]))
            r = try RuntimeCLITests.call(cmd + ["--root", b.runtime.root, "--log", log, "create", "-b", b.dir, "cli-create"])
            // runc's stderr from dockbuild-runc (with --log: the bare message; the logrus line is in the file)
            let message = "exec: \"nosuch\": executable file not found in $PATH"
            #expect(r.code == 1 && r.err == (cmd.count == 1 ? message : "dockbuild runtime: " + message) + "\n", "\(cmd): \(r)")
            #expect((readFile(log) ?? "").contains("executable file not found"), "\(cmd)")
            #expect(try RuntimeCLITests.call(cmd + ["--root", b.runtime.root, "state", "cli-create"]).code != 0)
            try b.write(b.spec(["sleep", "100"]))
        }
    }

    @Test("docker's exit codes from the error text of dockbuild, runc and crun")
    func exitCodesFromMessages() {
        let m: [(String, Int32?)] = [
            (#"exec: "nosuch": executable file not found in $PATH"#, 127),
            (#"time="x" level=error msg="runc create failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH""#, 127),
            (#"exec failed: unable to start container process: exec: "/x": stat /x: no such file or directory"#, 127),
            (#"{"level":"error","msg":"exec failed: unable to start container process: exec: \"/adir\": permission denied"}"#, 126),
            ("crun: executable file `nosuch` not found in $PATH: No such file or directory", 127),
            (#"exec: "/bin": permission denied"#, 126),
            ("container init: bind mount source /x: No such file or directory", nil),
            ("cgroup memory: permission denied", nil),
            ("", nil),
        ]
        for (text, code) in m { #expect(RuntimeError.execExitCode(forMessage: text) == code, "\(text)") }
    }

    @Test("dockbuild run and exec: 127 not found, 126 not executable, the message names the program; inspect's State.Error holds it")
    func engineExitCodes() throws {
        let b = try Self.bundle()
        defer { b.cleanup() }
        let cli = RuntimeCLITests.package + "/.build/debug/dockbuild"
        try #require(FileManager.default.isExecutableFile(atPath: cli), "build first: swift build --build-tests")
        let store = "/var/tmp/rtexec-\(getpid())-\(UUID().uuidString.prefix(8))"
        defer {
            _ = try? RuntimeCLITests.call([cli, "rm", "--root", store, "-f", "execfail-target"])
            try? FileManager.default.removeItem(atPath: store)
        }
        func db(_ args: [String]) throws -> (code: Int32, out: String, err: String) {
            try RuntimeCLITests.call([cli, args[0], "--root", store] + args.dropFirst())
        }
        let imp = try db(["import", "-c", "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin", b.rootfs, "execfail:test"])
        try #require(imp.code == 0, "import: \(imp.err)")
        for (prog, message, code) in Self.cases where !prog.hasPrefix("./") {
            let name = "execfail-\(code)-\(UInt32.random(in: 0...UInt32.max))"
            let r = try db(["run", "--name", name, "--network", "none", "execfail:test", prog])
            #expect(r.code == code, "run \(prog): \(r)")
            #expect(r.err.contains(message), "run \(prog): the message names the program and the reason: \(r.err)")
            let st = try db(["inspect", "-f", "{{.State.ExitCode}}|{{.State.Error}}", name])
            #expect(st.out.hasPrefix("\(code)|") && st.out.contains(message), "inspect \(prog): \(st)")
            _ = try db(["rm", "-f", name])
            let d = try db(["run", "-d", "--rm", "--network", "none", "execfail:test", prog])
            #expect(d.code == code, "run -d \(prog): \(d)")
        }
        let t = try db(["run", "-d", "--name", "execfail-target", "--network", "none", "execfail:test", "sleep", "100"])
        try #require(t.code == 0, "\(t)")
        for (prog, message, code) in Self.cases where !prog.hasPrefix("./") {
            let r = try db(["exec", "execfail-target", prog])
            #expect(r.code == code && r.err.contains(message), "exec \(prog): \(r)")
        }
        // The process's own exit status still passes through unchanged.
        #expect(try db(["exec", "execfail-target", "sh", "-c", "exit 127"]).code == 127)
        #expect(try db(["exec", "execfail-target", "sh", "-c", "exit 3"]).code == 3)
    }
}
