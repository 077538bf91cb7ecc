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
}
