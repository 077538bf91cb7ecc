import CRuntime
import Foundation
import Testing
@testable import Runtime

/// Lifecycle corners where dockbuild's runtime must act like runc (issue #16).
@Suite("lifecycle edges", .serialized)
struct LifecycleEdgeTests {
    @Test("a failing poststart or poststop hook is a warning: the remaining hooks run and start/delete succeed")
    func failingPostHooksDoNotStopTheRest() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let sh = b.rootfs + "/bin/sh", log = b.dir + "/post.log"
        func hook(_ script: String, timeout: Int? = 5) -> RuntimeSpec.Hook {
            .init(path: sh, args: ["sh", "-c", script], env: ["PATH=\(b.rootfs)/bin"], timeout: timeout)
        }
        var s = b.spec(["sleep", "100"])
        var h = RuntimeSpec.Hooks()
        h.poststart = [hook("echo poststart-1 >> \(log); exit 3"),
                       .init(path: b.dir + "/no-such-hook"),
                       hook("sleep 30", timeout: 1),
                       hook("echo poststart-4 >> \(log)")]
        h.poststop = [hook("echo poststop-1 >> \(log); exit 7"),
                      .init(path: b.dir + "/no-such-hook"),
                      hook("echo poststop-3 >> \(log)")]
        s.hooks = h
        try b.write(s)
        try b.runtime.create(id: "post", bundle: b.dir)
        try b.runtime.start(id: "post")
        #expect(try b.runtime.state(id: "post").status == "running", "the container goes on after a failing poststart hook")
        try b.runtime.kill(id: "post", signal: SIGKILL)
        _ = try? b.runtime.wait(id: "post")
        try b.runtime.delete(id: "post")
        #expect(b.runtime.list().isEmpty)
        let lines = (readFile(log) ?? "").split(separator: "\n").map(String.init)
        #expect(lines == ["poststart-1", "poststart-4", "poststop-1", "poststop-3"], "\(lines)")
    }

    @Test("create into a frozen cgroup fails at once with a clear error instead of hanging (v1 freezer)")
    func frozenCgroupV1() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let freezer = try #require(Cgroup.hierarchies().v1.first { $0.controllers.contains("freezer") }, "no v1 freezer hierarchy")
        let name = "dockbuild-frozen-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let dir = freezer.mountPoint + "/" + name
        try #require(mkdir(dir, 0o755) == 0, "mkdir \(dir)")
        defer { try? Sys.writeFile(dir + "/freezer.state", "THAWED"); rmdir(dir) }
        try Sys.writeFile(dir + "/freezer.state", "FROZEN")
        var s = b.spec(["echo", "hi"])
        s.linux?.cgroupsPath = "/" + name
        // With a new cgroup namespace (runc's default spec) the init joins before it reads its plan: this used to hang.
        if !(s.linux?.namespaces?.contains { $0.type == "cgroup" } ?? false) { s.linux?.namespaces?.append(.init(type: "cgroup")) }
        try b.write(s)
        // Through the binary under timeout(1): without the check this hangs, and the test must fail instead.
        let bin = try #require(V2.runtimeBinary, "no .build/debug/dockbuild-runc: run `swift build` before the tests")
        let r = try RuntimeCLITests.call(["/usr/bin/timeout", "-k", "5", "20", bin, "--root", b.runtime.root, "create", "-b", b.dir, "frozen"])
        #expect(r.code == 1, "exit 124 means create hung on the frozen cgroup: \(r)")
        #expect(r.err.contains("frozen cgroup") && r.err.contains(dir + "/freezer.state is FROZEN") && r.err.contains("THAWED"), "\(r.err)")
        #expect(b.runtime.list().isEmpty)
        #expect(FileManager.default.fileExists(atPath: dir), "a cgroup it did not make is left alone")
        #expect((readFile(dir + "/tasks") ?? "x").isEmpty, "no process was left in it")
        // Thawed, the same bundle runs.
        try Sys.writeFile(dir + "/freezer.state", "THAWED")
        #expect(try b.run(s).out == "hi\n")
    }

    @Test("create into a frozen cgroup fails at once on cgroup v2 too (cgroup.freeze, or a frozen parent)")
    func frozenCgroupV2() throws {
        try #require(geteuid() == 0, "needs root")
        let mp = try #require(Cgroup.hierarchies().v2?.mountPoint, "no cgroup2 mount on this host")
        let bin = try #require(V2.runtimeBinary, "no .build/debug/dockbuild-runc: run `swift build` before the tests")
        let b = try Bundle.make()
        defer { b.cleanup() }
        let name = "dockbuild-frozen2-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let dir = mp + "/" + name
        try #require(mkdir(dir, 0o755) == 0, "mkdir \(dir)")
        defer { try? Sys.writeFile(dir + "/cgroup.freeze", "0"); rmdir(dir + "/child"); rmdir(dir) }
        try Sys.writeFile(dir + "/cgroup.freeze", "1")
        var s = b.spec(["echo", "hi"])
        s.linux?.cgroupsPath = "/" + name
        if !(s.linux?.namespaces?.contains { $0.type == "cgroup" } ?? false) { s.linux?.namespaces?.append(.init(type: "cgroup")) }
        try b.write(s)
        // V2.runc under timeout(1): without the check `run` hangs; the test must fail instead.
        func run(_ id: String) throws -> (code: Int32, out: String, err: String) {
            let script = "umount -l /sys/fs/cgroup 2>/dev/null; mount -t cgroup2 cgroup2 /sys/fs/cgroup || exit 90; exec \"$@\""
            return try RuntimeCLITests.call(["/usr/bin/timeout", "-k", "5", "20", "/usr/bin/unshare", "-m", "--propagation", "private",
                                             "sh", "-c", script, "sh", bin, "--root", b.runtime.root, "run", "-b", b.dir, id])
        }
        var r = try run("frozen2")
        #expect(r.code == 1 && r.err.contains("frozen cgroup") && r.err.contains("cgroup.freeze is 1"), "\(r)")
        // A child of a frozen cgroup is frozen as well.
        s.linux?.cgroupsPath = "/" + name + "/child"
        try b.write(s)
        r = try run("frozen3")
        #expect(r.code == 1 && r.err.contains("frozen cgroup") && r.err.contains("parent"), "\(r)")
        #expect(b.runtime.list().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir + "/child"), "the cgroup it made is removed again")
    }

    /// Creates `id` with a console socket, starts it, and returns what its terminal printed.
    static func lifecycleConsoleRun(_ b: Bundle, _ spec: RuntimeSpec, id: String) throws -> String {
        let path = b.dir + "/\(id).sock"
        let srv = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        try #require(srv >= 0)
        defer { close(srv) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, c) in path.utf8.enumerated() { raw[i] = c } }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(srv, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(rc == 0 && listen(srv, 1) == 0)
        try b.write(spec)
        var o = CreateOptions()
        o.consoleSocket = path
        try b.runtime.create(id: id, bundle: b.dir, options: o)
        let conn = accept(srv, nil, nil)
        try #require(conn >= 0)
        defer { close(conn) }
        let master = cruntime_recv_fd(conn)
        try #require(master >= 0, "no pty master arrived on the console socket")
        defer { close(master) }
        try b.runtime.start(id: id)
        _ = try b.runtime.wait(id: id)
        let text = TerminalTests.drain(master)
        try b.runtime.delete(id: id)
        return text
    }

    @Test("the terminal belongs to process.user when it is not root (uid changes, devpts' group stays), as runc")
    func terminalOwnedByProcessUser() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        var s = b.spec(["sh", "-c", "stat -c 'owner %u %g' $(tty)"])
        s.process?.terminal = true
        s.process?.user = .init(uid: 1000, gid: 1000)
        let text = try Self.lifecycleConsoleRun(b, s, id: "ttyuser")
        #expect(text.contains("owner 1000 5"), "the pty is the user's, group tty (gid=5 of the devpts mount): \(text)")
        // root keeps a root-owned terminal
        s.process?.user = .init(uid: 0, gid: 0)
        #expect(try Self.lifecycleConsoleRun(b, s, id: "ttyroot").contains("owner 0 5"))
    }

    @Test("exec -p reads process.json from a pipe or /dev/stdin; kill --all works on a stopped container; delete --force of a missing one succeeds quietly")
    func cliCorners() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        var s = b.spec(["sleep", "100"])
        try b.write(s)
        var p = s.process ?? RuntimeSpec.Process()
        p.args = ["echo", "from-process-json"]
        let enc = JSONEncoder()
        try enc.encode(p).write(to: URL(fileURLWithPath: b.dir + "/process.json"))
        let root = b.runtime.root
        for cmd in try RuntimeCLITests.commands() {
            let bin = cmd.map { "'\($0)'" }.joined(separator: " ")
            #expect(try RuntimeCLITests.call(cmd + ["--root", root, "run", "-d", "-b", b.dir, "pj"]).code == 0)
            var r = try RuntimeCLITests.call(["/bin/sh", "-c", "cat '\(b.dir)/process.json' | \(bin) --root '\(root)' exec -p /dev/stdin pj"])
            #expect(r.code == 0 && r.out == "from-process-json\n", "\(cmd) -p /dev/stdin: \(r)")
            r = try RuntimeCLITests.call(["/bin/sh", "-c", "cat '\(b.dir)/process.json' | \(bin) --root '\(root)' exec --process - pj"])
            #expect(r.code == 0 && r.out == "from-process-json\n", "\(cmd) --process -: \(r)")
            r = try RuntimeCLITests.call(["/bin/bash", "-c", "\(bin) --root '\(root)' exec -p <(cat '\(b.dir)/process.json') pj"])
            #expect(r.code == 0 && r.out == "from-process-json\n", "\(cmd) -p <(pipe): \(r)")
            #expect(try RuntimeCLITests.call(cmd + ["--root", root, "delete", "-f", "pj"]).code == 0)

            // kill --all on a stopped container: success (signals whatever is left), plain kill: an error (runc).
            s.process?.args = ["true"]
            try b.write(s)
            #expect(try RuntimeCLITests.call(cmd + ["--root", root, "create", "-b", b.dir, "stopped"]).code == 0)
            #expect(try RuntimeCLITests.call(cmd + ["--root", root, "start", "stopped"]).code == 0)
            #expect(LifecyclePoll.eventually { (try? b.runtime.state(id: "stopped").status) == "stopped" })
            r = try RuntimeCLITests.call(cmd + ["--root", root, "kill", "--all", "stopped", "KILL"])
            #expect(r.code == 0 && r.err.isEmpty, "\(cmd) kill --all on a stopped container: \(r)")
            r = try RuntimeCLITests.call(cmd + ["--root", root, "kill", "stopped", "KILL"])
            #expect(r.code == 1 && r.err.contains("stopped"), "\(cmd): \(r)")
            #expect(try RuntimeCLITests.call(cmd + ["--root", root, "delete", "stopped"]).code == 0)
            s.process?.args = ["sleep", "100"]
            try b.write(s)

            // delete --force of a container that does not exist: exit 0, nothing said; without --force an error.
            r = try RuntimeCLITests.call(cmd + ["--root", root, "delete", "--force", "never-was"])
            #expect(r.code == 0 && r.out.isEmpty && r.err.isEmpty, "\(cmd): \(r)")
            r = try RuntimeCLITests.call(cmd + ["--root", root, "delete", "never-was"])
            #expect(r.code == 1 && r.err.contains("does not exist"), "\(cmd): \(r)")
        }
        #expect(throws: Never.self) { try b.runtime.delete(id: "never-was", force: true) }
    }
}

/// Polling for these tests.
enum LifecyclePoll {
    static func eventually(_ seconds: Double = 10, _ cond: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end { if cond() { return true }; usleep(20_000) }
        return cond()
    }
}
