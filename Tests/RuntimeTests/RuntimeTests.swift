import Foundation
import Testing
@testable import Runtime

@Suite("Runtime lifecycle with a busybox bundle", .serialized)
struct RuntimeLifecycleTests {
    @Test("output and exit code of the process")
    func outputAndExitCode() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let r = try b.run(b.spec(["sh", "-c", "echo hello from $(hostname); echo oops >&2; exit 3"]))
        #expect(r.code == 3)
        #expect(r.out == "hello from runc\n")
        #expect(r.err == "oops\n")
    }

    @Test("namespaces: pid 1, own hostname, own mount table, env and cwd")
    func namespacesAndProcess() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        var s = b.spec(["sh", "-c", "echo pid=$$ host=$(hostname) cwd=$(pwd) foo=$FOO; id -u; id -g; id -G; umask; cat /proc/self/status | grep NoNewPrivs"])
        s.hostname = "box1"
        s.process?.env = ["PATH=/bin", "FOO=bar"]
        s.process?.cwd = "/tmp"
        s.process?.user = .init(uid: 1000, gid: 1001, umask: 0o027, additionalGids: [5, 6])
        let r = try b.run(s)
        #expect(r.code == 0, "stderr: \(r.err)")
        let lines = r.out.split(separator: "\n").map(String.init)
        #expect(lines.first == "pid=1 host=box1 cwd=/tmp foo=bar")
        #expect(lines.dropFirst().first == "1000")
        #expect(lines.dropFirst(2).first == "1001")
        #expect(lines.dropFirst(3).first?.split(separator: " ").sorted() == ["1001", "5", "6"])
        #expect(lines.dropFirst(4).first == "0027")
        #expect(lines.dropFirst(5).first?.hasSuffix("1") == true)
    }

    @Test("capabilities, rlimits and oomScoreAdj reach the process")
    func capabilitiesAndLimits() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        var s = b.spec(["sh", "-c", "grep -E '^Cap(Bnd|Prm)' /proc/self/status; ulimit -n; cat /proc/self/oom_score_adj"])
        s.process?.capabilities = .init(bounding: ["CAP_KILL", "CAP_CHOWN"], effective: ["CAP_KILL"], permitted: ["CAP_KILL", "CAP_CHOWN"])
        s.process?.rlimits = [.init(type: "RLIMIT_NOFILE", hard: 321, soft: 123)]
        s.process?.oomScoreAdj = 500
        s.process?.noNewPrivileges = false
        let r = try b.run(s)
        #expect(r.code == 0, "stderr: \(r.err)")
        #expect(r.out.contains("CapBnd:\t0000000000000021"))
        #expect(r.out.contains("CapPrm:\t0000000000000021"))
        #expect(r.out.contains("\n123\n"))
        #expect(r.out.hasSuffix("500\n"))
    }

    @Test("an unknown capability is an error")
    func unknownCapability() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        var s = b.spec(["true"])
        s.process?.capabilities?.bounding?.append("CAP_TEST")
        #expect(throws: RuntimeError.self) { try b.run(s) }
        #expect(b.runtime.list().isEmpty, "a failed create leaves nothing behind")
    }

    @Test("read-only root, masked and read-only paths, mounts and devices")
    func filesystem() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let shared = b.dir + "/shared"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        try "from host\n".write(toFile: shared + "/f", atomically: true, encoding: .utf8)
        var s = b.spec(["sh", "-c", """
            touch /x 2>/dev/null && echo root-writable || echo root-ro
            cat /data/f; touch /data/g 2>/dev/null && echo data-writable || echo data-ro
            cat /proc/kcore 2>/dev/null | head -c1 | wc -c
            echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable || echo sys-ro
            ls -l /dev/null /dev/zero /dev/urandom | cut -c1
            readlink /dev/fd; readlink /dev/ptmx
            grep -c ' /tmp tmpfs' /proc/mounts
            """])
        s.root?.readonly = true
        s.mounts?.append(.init(destination: "/data", type: "bind", source: shared, options: ["rbind", "ro"]))
        s.mounts?.append(.init(destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "size=1m"]))
        let r = try b.run(s)
        #expect(r.code == 0, "stderr: \(r.err)")
        #expect(r.out == "root-ro\nfrom host\ndata-ro\n0\nsys-ro\nc\nc\nc\n/proc/self/fd\npts/ptmx\n1\n")
    }

    @Test("signals: SIGKILL gives 137, kill --all, state walks created -> running -> stopped")
    func signalsAndState() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        try b.write(b.spec(["sleep", "100"]))
        let rt = b.runtime
        let st = try rt.create(id: "sig", bundle: b.dir)
        #expect(st.status == "created")
        #expect(try rt.state(id: "sig").status == "created")
        try rt.start(id: "sig")
        #expect(try rt.state(id: "sig").status == "running")
        #expect(throws: RuntimeError.self) { try rt.start(id: "sig") }
        #expect(throws: RuntimeError.self) { try rt.delete(id: "sig") }
        try rt.kill(id: "sig", signal: SIGKILL)
        #expect(try rt.wait(id: "sig") == 137)
        #expect(try rt.state(id: "sig").status == "stopped")
        #expect(try rt.state(id: "sig").pid == 0)
        #expect(throws: RuntimeError.self) { try rt.kill(id: "sig", signal: SIGTERM) }
        try rt.delete(id: "sig")
        #expect(throws: RuntimeError.self) { try rt.state(id: "sig") }
    }

    @Test("a trapped SIGTERM reaches the process")
    func sigterm() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        try b.write(b.spec(["sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.05; done"]))
        let rt = b.runtime
        try rt.create(id: "term", bundle: b.dir)
        try rt.start(id: "term")
        usleep(200_000)
        try rt.kill(id: "term", signal: SIGTERM)
        #expect(try rt.wait(id: "term") == 7)
        try rt.delete(id: "term")
    }

    @Test("exec joins the container; ps sees both processes")
    func exec() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        var s = b.spec(["sleep", "100"])
        s.hostname = "execbox"
        try b.write(s)
        let rt = b.runtime
        try rt.create(id: "ex", bundle: b.dir)
        try rt.start(id: "ex")
        let outPath = b.dir + "/exec-out"
        let o = open(outPath, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o644)
        var p = s.process!
        p.args = ["sh", "-c", "hostname; ls /proc | grep -c '^[0-9]'; exit 4"]
        var eo = ExecOptions()
        eo.stdout = o
        let code = try rt.exec(id: "ex", process: p, options: eo)
        close(o)
        #expect(code == 4)
        let out = readFile(outPath) ?? ""
        #expect(out.hasPrefix("execbox\n"))
        #expect(Int(out.split(separator: "\n").last ?? "") ?? 0 >= 2)
        #expect(try rt.pids(id: "ex").count == 1)
        try rt.delete(id: "ex", force: true)
    }

    @Test("user namespace with uid/gid mappings")
    func userNamespace() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        var s = b.spec(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u"])
        s.linux?.namespaces?.append(.init(type: "user"))
        s.linux?.uidMappings = [.init(containerID: 0, hostID: 100_000, size: 65536)]
        s.linux?.gidMappings = [.init(containerID: 0, hostID: 100_000, size: 65536)]
        // The host's rootfs files are owned by host root, unmapped inside: make it world-readable.
        chmod(b.rootfs, 0o755)
        let r = try b.run(s)
        #expect(r.code == 0, "stderr: \(r.err)")
        let f = r.out.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(f == ["0 100000 65536", "0 100000 65536", "0"])
    }

    @Test("seccomp: a denied syscall fails with EPERM")
    func seccomp() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        var s = b.spec(["sh", "-c", "mkdir /tmp/a && echo made; mkdir /tmp/b 2>&1 || echo denied"])
        s.linux?.seccomp = .init(defaultAction: "SCMP_ACT_ALLOW", syscalls: [
            .init(names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1,
                  args: [.init(index: 1, value: 0o777, op: "SCMP_CMP_EQ")]),
        ])
        // Busybox mkdir passes 0777 for a plain mkdir; every call is denied.
        let r = try b.run(s)
        #expect(r.out.contains("denied"))
        #expect(!r.out.contains("made"))
        // The docker-like default profile still runs ordinary programs.
        var d = b.spec(["sh", "-c", "echo ok; unshare -n true 2>/dev/null && echo unshared || echo blocked"])
        d.linux?.seccomp = DefaultSeccompProfile.docker
        d.process?.capabilities = .init(bounding: SpecGenerator.defaultCapabilities, effective: SpecGenerator.defaultCapabilities,
                                        permitted: SpecGenerator.defaultCapabilities)
        let r2 = try b.run(d)
        #expect(r2.code == 0, "stderr: \(r2.err)")
        #expect(r2.out == "ok\nblocked\n")
    }
}
