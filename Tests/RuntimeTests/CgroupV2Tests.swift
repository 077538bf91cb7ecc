import CRuntime
import Foundation
import Testing
@testable import Runtime

/// The cgroup v2 path, tested for real on a host that may be hybrid (v1
/// hierarchies plus a cgroup2 mount, as on the machines this was built on):
/// device programs attach to cgroup2 directories whatever v1 does, and the
/// runtime binary run inside `unshare -m` with cgroup2 mounted on
/// /sys/fs/cgroup takes its v2 path from start to end.
@Suite("cgroup v2", .serialized)
struct CgroupV2Tests {
    // MARK: rule compilation

    @Test("device rules: a rule for everything resets the list and sets the default")
    func ruleCompilation() throws {
        let rules: [RuntimeSpec.DeviceCgroup] = [
            .init(allow: true, type: "c", major: 1, minor: 3, access: "rwm"),
            .init(allow: false, access: "rwm"),                              // reset: default deny
            .init(allow: true, type: "c", major: 240, minor: nil, access: "rw"),
            .init(allow: false, type: "c", major: 240, minor: 1, access: "r"),
            .init(allow: true, type: "b", major: -1, minor: 0, access: "m"),
        ]
        let (def, list) = try Cgroup.deviceFilter(rules)
        #expect(def == false)
        #expect(list.count == 3)
        #expect(list.map { UInt8(bitPattern: $0.type) } == [UInt8(ascii: "c"), UInt8(ascii: "c"), UInt8(ascii: "b")])
        #expect(list.map(\.major) == [240, 240, -1])
        #expect(list.map(\.minor) == [-1, 1, 0])
        #expect(list.map(\.allow) == [1, 0, 1])
        #expect(list.map(\.access) == [UInt8(CR_DEV_READ | CR_DEV_WRITE), UInt8(CR_DEV_READ), UInt8(CR_DEV_MKNOD)])

        let open = try Cgroup.deviceFilter([.init(allow: false, access: "rwm"), .init(allow: true)])
        #expect(open.defaultAllow && open.rules.isEmpty)

        // The program ends in the default answer; each rule is one block ending in exit.
        let prog = try Cgroup.deviceProgram(rules)
        let exitOp: UInt64 = 0x95
        #expect(prog.last.map { $0 & 0xff } == exitOp)
        #expect(prog.filter { $0 & 0xff == exitOp }.count == 4)

        #expect(throws: RuntimeError.self) { try Cgroup.deviceFilter([.init(allow: true, type: "x")]) }
        #expect(throws: RuntimeError.self) { try Cgroup.deviceFilter([.init(allow: true, type: "c", access: "rwx")]) }
        #expect(throws: RuntimeError.self) { try Cgroup.deviceFilter([.init(allow: true, type: "c", major: -5)]) }
    }

    // MARK: the BPF program in the kernel

    @Test("device rules are enforced by a BPF program on a cgroup2 directory; update replaces it")
    func bpfOnCgroup2Directory() throws {
        try #require(geteuid() == 0, "needs root (BPF programs, cgroups, mknod)")
        let mp = try #require(Cgroup.hierarchies().v2?.mountPoint, "no cgroup2 mount on this host; mount one (mount -t cgroup2 none /sys/fs/cgroup/unified)")
        let busybox = try #require(V2.busybox, "busybox-static is missing; install it with `apt-get install busybox-static`")
        let tmp = FileManager.default.temporaryDirectory.path + "/dev-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        // Numbers without a driver: an allowed open fails with ENXIO, a denied one with EPERM.
        for (name, type, major, minor) in [("a0", S_IFCHR, 240, 0), ("a1", S_IFCHR, 240, 1), ("b0", S_IFCHR, 241, 0), ("k0", S_IFBLK, 240, 0)] {
            #expect(mknod(tmp + "/" + name, type | 0o666, V2.dev(major, minor)) == 0, "mknod \(name)")
        }
        var cg = Cgroup(version: "v2", paths: ["": mp + "/dockbuild-devtest-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"])
        try cg.create()
        defer { cg.destroy() }
        var res = RuntimeSpec.Resources()
        res.devices = [
            .init(allow: false, access: "rwm"),
            .init(allow: true, type: "c", major: 240, access: "rw"),
            .init(allow: false, type: "c", major: 240, minor: 1, access: "r"),
        ]
        try cg.apply(res)
        #expect(cg.deviceProgramCount() == 1)
        var v = try V2.probe(busybox: busybox, cgroup: cg, dir: tmp, nodes: ["a0", "a1", "b0", "k0"])
        #expect(v["a0 r"] == "allowed" && v["a0 w"] == "allowed", "\(v)")
        #expect(v["a1 r"] == "denied", "the later deny rule wins: \(v)")
        #expect(v["a1 w"] == "allowed", "the deny covers reads only: \(v)")
        #expect(v["b0 r"] == "denied" && v["b0 w"] == "denied", "nothing allows 241:0: \(v)")
        #expect(v["k0 r"] == "denied", "a char rule does not match a block device: \(v)")
        #expect(v["null w"] == "allowed", "/dev/null is one of the default devices: \(v)")

        // update: allow block 240:0 for reading, deny 240:0 entirely; the old program goes.
        var upd = RuntimeSpec.Resources()
        upd.devices = [
            .init(allow: false, access: "rwm"),
            .init(allow: true, type: "c", major: 240, access: "rw"),
            .init(allow: false, type: "c", major: 240, minor: 0, access: "rwm"),
            .init(allow: true, type: "b", major: 240, minor: 0, access: "r"),
        ]
        try cg.apply(upd, initial: false)
        #expect(cg.deviceProgramCount() == 1, "update replaces the program instead of adding one")
        v = try V2.probe(busybox: busybox, cgroup: cg, dir: tmp, nodes: ["a0", "a1", "b0", "k0"])
        #expect(v["a0 r"] == "denied" && v["a0 w"] == "denied", "\(v)")
        #expect(v["a1 r"] == "allowed" && v["a1 w"] == "allowed", "\(v)")
        #expect(v["k0 r"] == "allowed" && v["k0 w"] == "denied", "\(v)")

        // An update without devices leaves the program alone.
        try cg.apply(RuntimeSpec.Resources(), initial: false)
        #expect(cg.deviceProgramCount() == 1)

        let dir = try #require(cg.paths[""])
        cg.destroy()
        #expect(!FileManager.default.fileExists(atPath: dir), "cgroup directory removed")
    }

    // MARK: the runtime binary on a v2-only view of the host

    @Test("runtime on cgroup v2: device rules, cgroup placement, freeze, update and cleanup")
    func runtimeOnV2() throws {
        try #require(geteuid() == 0, "needs root")
        let mp = try #require(Cgroup.hierarchies().v2?.mountPoint, "no cgroup2 mount on this host")
        let bin = try #require(V2.runtimeBinary, "no .build/debug/dockbuild-runc: run `swift build` before the tests")
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"), "unshare (util-linux) is missing")
        let b = try Bundle.make()
        defer { b.cleanup() }
        let state = b.runtime.root

        // 1. Device rules reach the container process through the BPF program.
        var s = b.spec(["sh", "-c", """
            mknod /dev/a0 c 240 0; mknod /dev/a1 c 240 1; mknod /dev/b0 c 241 0
            for f in a0 a1 b0; do
              if out=$(cat /dev/$f 2>&1); then echo "$f r ok"; else echo "$f r $out"; fi
              if out=$( (echo x > /dev/$f) 2>&1); then echo "$f w ok"; else echo "$f w $out"; fi
            done
            echo x > /dev/null && echo "null w ok"
            test -f /sys/fs/cgroup/cgroup.controllers && echo v2-inside
            """])
        s.process?.capabilities?.bounding?.append("CAP_MKNOD")
        s.process?.capabilities?.effective?.append("CAP_MKNOD")
        s.process?.capabilities?.permitted?.append("CAP_MKNOD")
        var res = s.linux?.resources ?? .init()
        res.devices = [
            .init(allow: false, access: "rwm"),
            .init(allow: true, type: "c", major: 240, access: "rw"),
            .init(allow: false, type: "c", major: 240, minor: 1, access: "r"),
        ]
        s.linux?.resources = res
        try b.write(s)
        let r = try V2.runc(bin, state: state, ["run", "-b", b.dir, "v2dev"], dir: b.dir)
        #expect(r.code == 0, "stderr: \(r.err)")
        let v = V2.verdicts(r.out)
        #expect(v["a0 r"] == "allowed" && v["a0 w"] == "allowed", "out: \(r.out)")
        #expect(v["a1 r"] == "denied" && v["a1 w"] == "allowed", "out: \(r.out)")
        #expect(v["b0 r"] == "denied" && v["b0 w"] == "denied", "out: \(r.out)")
        #expect(v["null w"] == "allowed", "out: \(r.out)")
        #expect(r.out.contains("v2-inside"), "the container sees cgroup2 at /sys/fs/cgroup: \(r.out)")

        // 2. A long-running container: placed in its v2 cgroup, frozen, updated, removed.
        let name = "dockbuild-v2test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var s2 = b.spec(["sleep", "300"])
        s2.linux?.cgroupsPath = "/" + name
        try b.write(s2)
        let host = mp + "/" + name
        defer { rmdir(host) }
        var c = try V2.runc(bin, state: state, ["create", "-b", b.dir, "v2c"], dir: b.dir)
        try #require(c.code == 0, "create: \(c.err)")
        let rec = try b.runtime.loadRecord("v2c")
        #expect(rec.cgroup?.version == "v2")
        #expect(rec.cgroup?.paths[""] == "/sys/fs/cgroup/" + name, "\(String(describing: rec.cgroup))")
        #expect(FileManager.default.fileExists(atPath: host + "/cgroup.procs"), "cgroup \(host) exists")
        #expect(readFile(host + "/cgroup.procs") == "\(rec.pid)\n", "the container process is in its cgroup")
        let hostCg = Cgroup(version: "v2", paths: ["": host])
        #expect(hostCg.deviceProgramCount() == 1, "one device program attached")
        c = try V2.runc(bin, state: state, ["start", "v2c"], dir: b.dir)
        #expect(c.code == 0, "start: \(c.err)")
        c = try V2.runc(bin, state: state, ["pause", "v2c"], dir: b.dir)
        #expect(c.code == 0, "pause: \(c.err)")
        #expect(readFile(host + "/cgroup.freeze") == "1\n")
        #expect(V2.frozen(host), "cgroup.events says frozen")
        c = try V2.runc(bin, state: state, ["state", "v2c"], dir: b.dir)
        #expect(c.out.contains("\"paused\""), "state: \(c.out)")
        c = try V2.runc(bin, state: state, ["resume", "v2c"], dir: b.dir)
        #expect(c.code == 0, "resume: \(c.err)")
        #expect(readFile(host + "/cgroup.freeze") == "0\n")
        c = try V2.runc(bin, state: state, ["state", "v2c"], dir: b.dir)
        #expect(c.out.contains("\"running\""), "state: \(c.out)")
        // Controllers this cgroup2 mount has get their limits (on a hybrid host often only hugetlb).
        let controllers = (readFile(host + "/cgroup.controllers") ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        var upd: [String: Any] = ["devices": [["allow": false, "access": "rwm"], ["allow": true, "type": "c", "major": 240, "access": "rwm"]]]
        if controllers.contains("pids") { upd["pids"] = ["limit": 42] }
        if controllers.contains("hugetlb"), FileManager.default.fileExists(atPath: host + "/hugetlb.2MB.max") {
            upd["hugepageLimits"] = [["pageSize": "2MB", "limit": 4 << 20]]
        }
        let updPath = b.dir + "/update.json"
        try JSONSerialization.data(withJSONObject: upd).write(to: URL(fileURLWithPath: updPath))
        c = try V2.runc(bin, state: state, ["update", "-r", updPath, "v2c"], dir: b.dir)
        #expect(c.code == 0, "update: \(c.err)")
        #expect(hostCg.deviceProgramCount() == 1, "update replaced the device program")
        if controllers.contains("pids") { #expect(readFile(host + "/pids.max") == "42\n") }
        if upd["hugepageLimits"] != nil { #expect(readFile(host + "/hugetlb.2MB.max") == "\(4 << 20)\n") }
        c = try V2.runc(bin, state: state, ["delete", "-f", "v2c"], dir: b.dir)
        #expect(c.code == 0, "delete: \(c.err)")
        #expect(!FileManager.default.fileExists(atPath: host), "cgroup \(host) removed on delete")
        // With CLONE_PARENT the container process is this test's child: reap it, then look.
        _ = waitpid(rec.pid, nil, WNOHANG)
        let stat = readFile("/proc/\(rec.pid)/stat") ?? ""
        #expect(stat.isEmpty || stat.contains(") Z "), "container process gone: \(stat)")
    }
}

/// Helpers for the v2 tests.
enum V2 {
    static var busybox: String? {
        ["/bin/busybox", "/usr/bin/busybox"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// glibc's makedev (a macro Swift cannot call).
    static func dev(_ major: Int, _ minor: Int) -> dev_t {
        let ma = UInt64(major), mi = UInt64(minor)
        return dev_t(((ma & 0xffff_f000) << 32) | ((ma & 0xfff) << 8) | ((mi & 0xffff_ff00) << 12) | (mi & 0xff))
    }

    /// `.build/debug/dockbuild-runc` of this package.
    static var runtimeBinary: String? {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        return ["debug", "release"].map { root + "/.build/\($0)/dockbuild-runc" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs `dockbuild-runc --root state args` in a new mount namespace whose
    /// /sys/fs/cgroup is cgroup2, so the runtime finds a unified host.
    static func runc(_ bin: String, state: String, _ args: [String], dir: String) throws -> (code: Int32, out: String, err: String) {
        let script = "umount -l /sys/fs/cgroup 2>/dev/null; mount -t cgroup2 cgroup2 /sys/fs/cgroup || exit 90; exec \"$@\""
        return try run("/usr/bin/unshare", ["-m", "--propagation", "private", "sh", "-c", script, "sh", bin, "--root", state] + args, dir: dir)
    }

    /// Runs a program with stdout/stderr in files (a detached container keeps them open).
    static func run(_ exe: String, _ args: [String], dir: String) throws -> (code: Int32, out: String, err: String) {
        let tag = UUID().uuidString.prefix(8)
        let outPath = dir + "/v2out-\(tag)", errPath = dir + "/v2err-\(tag)"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { unlink(outPath); unlink(errPath) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let o = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let e = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        p.standardOutput = o
        p.standardError = e
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        try? o.close()
        try? e.close()
        return (p.terminationStatus, readFile(outPath) ?? "", readFile(errPath) ?? "")
    }

    /// "name r|w" -> allowed/denied from a probe's lines ("a0 r ok", "a0 r cat: ...: Operation not permitted").
    static func verdicts(_ out: String) -> [String: String] {
        var v: [String: String] = [:]
        for line in out.split(separator: "\n") {
            let f = line.split(separator: " ", maxSplits: 2)
            guard f.count == 3, f[1] == "r" || f[1] == "w" else { continue }
            let key = "\(f[0]) \(f[1])"
            if f[2] == "ok" || f[2].contains("No such device or address") { v[key] = "allowed" }
            else if f[2].contains("Operation not permitted") { v[key] = "denied" }
            else { v[key] = "unexpected: \(f[2])" }
        }
        return v
    }

    /// Opens each node for reading and for writing from a shell placed in `cgroup`.
    static func probe(busybox: String, cgroup: Cgroup, dir: String, nodes: [String]) throws -> [String: String] {
        let cgdir = try #require(cgroup.paths[""])
        var script = "echo $$ > \(cgdir)/cgroup.procs || exit 91\n"
        for n in nodes {
            script += """
                if out=$(cat \(dir)/\(n) 2>&1 </dev/null); then echo "\(n) r ok"; else echo "\(n) r $out"; fi
                if out=$( (echo x > \(dir)/\(n)) 2>&1); then echo "\(n) w ok"; else echo "\(n) w $out"; fi

                """
        }
        script += "echo x > /dev/null && echo 'null w ok'\n"
        let r = try run(busybox, ["sh", "-c", script], dir: dir)
        #expect(r.code == 0, "probe: \(r.err)")
        return verdicts(r.out)
    }

    /// cgroup.events reports "frozen 1" (the freeze has completed).
    static func frozen(_ dir: String) -> Bool {
        for _ in 0..<200 {
            if (readFile(dir + "/cgroup.events") ?? "").contains("frozen 1") { return true }
            usleep(5000)
        }
        return false
    }
}
