import CRuntime
import Foundation
import Testing
@testable import Runtime

/// The spec corners of issue #16 run by `dockbuild-runc` and by runc on the same bundle:
/// the same output and exit code from each (the ours-only tests in `SpecDefectTests` and
/// `LifecycleEdgeTests` check the details). Skipped without runc.
@Suite(.serialized) struct RuncSpecParityTests {
    /// Runs `spec` with `run` in each runtime (a cgroup of its own each); (code, stdout) per runtime.
    static func both(_ b: Bundle, _ spec: RuntimeSpec, name: String) throws -> [(code: Int32, out: String)] {
        let runc = try #require(RuncDropInTests.runc, "runc is not installed")
        let bin = try RuncDropInTests.ours
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var results: [(code: Int32, out: String)] = []
        for rt in [bin, runc] {
            var s = spec
            s.linux?.cgroupsPath = "/dockbuild-parity-\(name)-\(rt == bin ? "ours" : "runc")-\(tag)"
            try b.write(s)
            let root = b.dir + "/root-\(rt == bin ? "ours" : "runc")"
            let r = try RuncDropInTests.call([rt, "--root", root, "run", "--bundle", b.dir, name])
            RuncDropInTests.remove(rt, root: root, id: name)
            results.append((r.code, r.out))
        }
        return results
    }

    @Test("deny-all device rules win over linux.devices: /dev/kmsg and a listed node stay closed in both")
    func devicesDenyAll() throws {
        try #require(RuncDropInTests.runc != nil, "runc is not installed")
        let b = try Bundle.make()
        defer { b.cleanup() }
        let r = try Self.both(b, SpecDefectTests.kmsgSpec(b, rules: [.init(allow: false, access: "rwm")]), name: "kmsg")
        #expect(r[0].code == 0 && r[0].code == r[1].code, "ours \(r[0]), runc \(r[1])")
        #expect(r[0].out == r[1].out, "ours \(r[0].out), runc \(r[1].out)")
        #expect(r[0].out.contains("kmsg w ") && !r[0].out.contains("kmsg w ok") && r[0].out.contains("null w ok"), "\(r[0].out)")
    }

    @Test("rro: a bind mount and the mount below it are read-only in both; plain ro leaves the submount writable in both")
    func recursiveReadOnly() throws {
        try #require(RuncDropInTests.runc != nil, "runc is not installed")
        let b = try Bundle.make()
        defer { b.cleanup() }
        let src = try SpecDefectTests.treeWithSubmount(b)
        defer { SpecDefectTests.unmountTree(src) }
        var s = b.spec(["sh", "-c", """
            touch /mnt/top 2>/dev/null && echo top-writable
            touch /mnt/sub/below 2>/dev/null && echo sub-writable
            true
            """])
        let base = s.mounts ?? []
        for (options, expected) in [(["rbind", "rro"], ""), (["rbind", "ro"], "sub-writable\n")] {
            s.mounts = base + [.init(destination: "/mnt", type: "bind", source: src, options: options)]
            let r = try Self.both(b, s, name: "rro")
            #expect(r[0].code == 0 && r[1].code == 0 && r[0].out == r[1].out && r[0].out == expected, "\(options): ours \(r[0]), runc \(r[1])")
            unlink(src + "/sub/below")
            unlink(src + "/top")
        }
    }

    @Test("a read-only /dev: the nodes, /dev/pts and /dev/shm are there and usable, /dev itself refuses a new file, in both")
    func readOnlyDev() throws {
        try #require(RuncDropInTests.runc != nil, "runc is not installed")
        let b = try Bundle.make()
        defer { b.cleanup() }
        var s = b.spec(["sh", "-c", """
            echo x > /dev/null && echo null-ok
            test -c /dev/zero && test -L /dev/fd && test -d /dev/pts && test -d /dev/shm && echo nodes-ok
            touch /dev/new 2>/dev/null && echo dev-writable
            echo x > /dev/shm/f && echo shm-ok
            true
            """])
        s.mounts = (s.mounts ?? []).map { m in
            var m = m
            if m.destination == "/dev" { m.options = (m.options ?? []) + ["ro"] }
            return m
        }
        let r = try Self.both(b, s, name: "rodev")
        #expect(r[0].code == 0 && r[1].code == 0 && r[0].out == r[1].out, "ours \(r[0]), runc \(r[1])")
        #expect(r[0].out == "null-ok\nnodes-ok\nshm-ok\n", "\(r[0].out)")
    }

    @Test("exec -p from a pipe, /dev/stdin and <(...) in both")
    func execProcessFromPipe() throws {
        let runc = try #require(RuncDropInTests.runc, "runc is not installed")
        let b = try Bundle.make()
        defer { b.cleanup() }
        let bin = try RuncDropInTests.ours
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var p = b.spec(["echo", "from-process-json"]).process ?? RuntimeSpec.Process()
        p.args = ["echo", "from-process-json"]
        try JSONEncoder().encode(p).write(to: URL(fileURLWithPath: b.dir + "/process.json"))
        for rt in [bin, runc] {
            let root = b.dir + "/root-\(rt == bin ? "ours" : "runc")"
            try RuncDropInTests.startSleeper(rt, root: root, b, id: "pj", cgroup: "dockbuild-parity-pj-\(rt == bin ? "ours" : "runc")-\(tag)")
            defer { RuncDropInTests.remove(rt, root: root, id: "pj") }
            for form in ["cat '\(b.dir)/process.json' | '\(rt)' --root '\(root)' exec -p /dev/stdin pj",
                         "'\(rt)' --root '\(root)' exec -p <(cat '\(b.dir)/process.json') pj"] {
                let r = try RuncDropInTests.call(["/bin/bash", "-c", form])
                #expect(r.code == 0 && r.out == "from-process-json\n", "\(form): \(r)")
            }
        }
    }

    @Test("terminal: true with process.user 1000: the pty belongs to uid 1000 (group tty), through --console-socket, in both")
    func terminalOwner() throws {
        let runc = try #require(RuncDropInTests.runc, "runc is not installed")
        let b = try Bundle.make()
        defer { b.cleanup() }
        let bin = try RuncDropInTests.ours
        var outputs: [String] = []
        for rt in [bin, runc] {
            let name = rt == bin ? "ours" : "runc"
            var s = b.spec(["sh", "-c", "stat -c 'owner %u %g' $(tty)"])
            s.process?.terminal = true
            s.process?.user = .init(uid: 1000, gid: 1000)
            s.linux?.cgroupsPath = "/dockbuild-parity-tty-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            try b.write(s)
            let path = b.dir + "/\(name).sock", root = b.dir + "/root-\(name)"
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
            defer { RuncDropInTests.remove(rt, root: root, id: "tty") }
            let created = try RuncDropInTests.call([rt, "--root", root, "create", "--console-socket", path, "--bundle", b.dir, "tty"])
            try #require(created.code == 0, "\(rt): \(created)")
            let conn = accept(srv, nil, nil)
            try #require(conn >= 0)
            defer { close(conn) }
            let master = cruntime_recv_fd(conn)
            try #require(master >= 0, "\(rt): no pty master arrived on the console socket")
            defer { close(master) }
            #expect(try RuncDropInTests.call([rt, "--root", root, "start", "tty"]).code == 0)
            #expect(LifecyclePoll.eventually(20) { (try? RuncDropInTests.call([rt, "--root", root, "state", "tty"]).out.contains("stopped")) == true })
            outputs.append(TerminalTests.drain(master))
        }
        #expect(outputs[0].contains("owner 1000 5") && outputs[0] == outputs[1], "ours \(outputs[0]), runc \(outputs[1])")
    }

    @Test("create into a frozen v1 cgroup fails instead of hanging, in both")
    func frozenCgroup() throws {
        let runc = try #require(RuncDropInTests.runc, "runc is not installed")
        let freezer = try #require(Cgroup.hierarchies().v1.first { $0.controllers.contains("freezer") }, "no v1 freezer hierarchy")
        let b = try Bundle.make()
        defer { b.cleanup() }
        let bin = try RuncDropInTests.ours
        for rt in [bin, runc] {
            let name = "dockbuild-parity-frozen-\(rt == bin ? "ours" : "runc")-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            let dir = freezer.mountPoint + "/" + name
            try #require(mkdir(dir, 0o755) == 0, "mkdir \(dir)")
            defer { try? Sys.writeFile(dir + "/freezer.state", "THAWED"); rmdir(dir) }
            try Sys.writeFile(dir + "/freezer.state", "FROZEN")
            var s = b.spec(["echo", "hi"])
            s.linux?.cgroupsPath = "/" + name
            try b.write(s)
            let root = b.dir + "/root-\(rt == bin ? "ours" : "runc")"
            let r = try RuntimeCLITests.call(["/usr/bin/timeout", "-k", "5", "20", rt, "--root", root, "create", "-b", b.dir, "frozen"])
            RuncDropInTests.remove(rt, root: root, id: "frozen")
            #expect(r.code == 1, "\(rt): 124 means create hung on the frozen cgroup: \(r)")
            #expect(r.err.contains("frozen"), "\(rt): \(r.err)")
        }
    }
}
