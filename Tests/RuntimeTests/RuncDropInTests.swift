import Foundation
import Testing
@testable import Runtime

/// `dockbuild-runc` as a drop-in for runc (issue #16): each test drives the real binary and,
/// where runc is installed, runs runc on the same bundle and compares what both print.
@Suite("runc drop-in", .serialized)
struct RuncDropInTests {
    static var ours: String {
        get throws {
            try #require(V2.runtimeBinary, "no .build/debug/dockbuild-runc: run `swift build` before the tests")
        }
    }

    /// runc, when installed (the comparisons are skipped without it).
    static let runc: String? = ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    static func call(_ argv: [String]) throws -> (code: Int32, out: String, err: String) {
        try RuntimeCLITests.call(["/usr/bin/timeout", "-k", "5", "60"] + argv)
    }

    /// The spec of `b` running `args` in cgroup `/name` (so that runc's and ours never share one).
    static func write(_ b: Bundle, _ args: [String], cgroup name: String) throws {
        var s = b.spec(args)
        s.linux?.cgroupsPath = "/" + name
        try b.write(s)
    }

    /// A `sleep` container started detached by `runtime` (stdio in files through `call`).
    static func startSleeper(_ runtime: String, root: String, _ b: Bundle, id: String, cgroup: String) throws {
        try write(b, ["sleep", "1000"], cgroup: cgroup)
        let r = try call([runtime, "--root", root, "run", "-d", "--bundle", b.dir, id])
        try #require(r.code == 0, "\(runtime) run -d: \(r)")
    }

    static func remove(_ runtime: String, root: String, id: String) {
        _ = try? call([runtime, "--root", root, "delete", "--force", id])
    }

    /// Starts `argv` without waiting (stdout and stderr into `out`); returns its pid.
    static func spawn(_ argv: [String], out: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, &cargs, environ)
        try #require(rc == 0, "spawn \(argv[0]): \(String(cString: strerror(rc)))")
        return pid
    }

    /// Waits for `pid` (at most `seconds`, then kills it); its exit code, nil when it had to be killed.
    static func reap(_ pid: pid_t, seconds: Double) -> Int32? {
        var status: Int32 = 0
        for _ in 0..<Int(seconds * 100) {
            if waitpid(pid, &status, WNOHANG) == pid { return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f) }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, nil, 0)
        return nil
    }

    /// The memory cgroup directory (v1) or the cgroup (v2) of process `pid`, from /proc.
    static func cgroupDir(of pid: Int32) throws -> String {
        let (v2, v1) = Cgroup.hierarchies()
        let lines = (readFile("/proc/\(pid)/cgroup") ?? "").split(separator: "\n")
        if Cgroup.isUnified, let v2 {
            let line = try #require(lines.first { $0.hasPrefix("0::") })
            return v2.mountPoint + line.dropFirst(3)
        }
        let mem = try #require(v1.first { $0.controllers.contains("memory") }, "no memory hierarchy")
        let line = try #require(lines.first { $0.split(separator: ":").dropFirst().first?.split(separator: ",").contains("memory") == true })
        return mem.mountPoint + line.split(separator: ":", maxSplits: 2)[2]
    }

    /// Go's RFC3339Nano in UTC: no trailing zeros in the fraction.
    static func isRFC3339Nano(_ s: String) -> Bool {
        s.wholeMatch(of: #/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z/#) != nil
    }

    @Test("list: runc's table (tabwriter columns), -q, --format json (null when empty), and its error for another format")
    func list() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let bin = try Self.ours, root = b.dir + "/state", rroot = b.dir + "/runc-state"
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

        // No containers.
        let empty = try Self.call([bin, "--root", root, "list"])
        #expect(empty.code == 0 && empty.out == "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n", "\(empty)")
        #expect(try Self.call([bin, "--root", root, "list", "--format", "json"]).out == "null\n")
        #expect(try Self.call([bin, "--root", root, "list", "-q"]).out == "")
        let bad = try Self.call([bin, "--root", root, "list", "--format", "yaml"])
        #expect(bad.code == 1 && bad.err.contains("invalid format option"), "\(bad)")
        if let runc = Self.runc {
            for args in [["list"], ["list", "-f", "json"], ["list", "-q"], ["list", "--format", "yaml"]] {
                let o = try Self.call([bin, "--root", root] + args), r = try Self.call([runc, "--root", rroot] + args)
                #expect(o.code == r.code && o.out == r.out, "\(args): ours \(o), runc \(r)")
            }
        }

        // One running container.
        try Self.startSleeper(bin, root: root, b, id: "l1", cgroup: "dockbuild-list-\(tag)")
        defer { Self.remove(bin, root: root, id: "l1") }
        let state = try b.runtime.state(id: "l1")
        let table = try Self.call([bin, "--root", root, "list"])
        let lines = table.out.split(separator: "\n").map(String.init)
        try #require(lines.count == 2, "\(table)")
        let created = Runtime.rfc3339Nano(state.created)
        #expect(Self.isRFC3339Nano(created) && created == state.created, "\(created): state prints it as runc does too")
        let pidCell = "\(state.pid)".padding(toLength: 12, withPad: " ", startingAt: 0)
        let bundleCell = b.dir.padding(toLength: b.dir.count + 3, withPad: " ", startingAt: 0)
        #expect(lines[1] == "l1          " + pidCell + "running     " + bundleCell + created + "   root", "\(lines)")
        #expect(lines[0] == "ID          PID         STATUS      " + "BUNDLE".padding(toLength: b.dir.count + 3, withPad: " ", startingAt: 0)
                + "CREATED".padding(toLength: created.count + 3, withPad: " ", startingAt: 0) + "OWNER", "\(lines)")
        #expect(try Self.call([bin, "--root", root, "list", "-q"]).out == "l1\n")
        let json = try Self.call([bin, "--root", root, "list", "--format", "json"]).out
        #expect(json == "[{\"ociVersion\":\"\(state.ociVersion)\",\"id\":\"l1\",\"pid\":\(state.pid),\"status\":\"running\",\"bundle\":\"\(b.dir)\",\"rootfs\":\"\(b.rootfs)\",\"created\":\"\(created)\",\"owner\":\"root\"}]\n", "\(json)")

        if let runc = Self.runc {
            try Self.startSleeper(runc, root: rroot, b, id: "l1", cgroup: "dockbuild-list-runc-\(tag)")
            defer { Self.remove(runc, root: rroot, id: "l1") }
            let r = try Self.call([runc, "--root", rroot, "list"]).out.split(separator: "\n").map(String.init)
            try #require(r.count == 2, "\(r)")
            // Same columns up to CREATED (pids differ, and so may the length of the time).
            let upTo = lines[0].range(of: "CREATED")!.lowerBound.utf16Offset(in: lines[0])
            #expect(r[0].hasPrefix(String(lines[0].prefix(upTo))), "runc \(r[0]) ours \(lines[0])")
            let mine = lines[1].split(separator: " "), theirs = r[1].split(separator: " ")
            #expect(theirs.count == 6 && mine.count == 6 && [0, 2, 3, 5].allSatisfy { mine[$0] == theirs[$0] }, "runc \(r) ours \(lines)")
            #expect(Self.isRFC3339Nano(String(theirs[4])))
            // JSON: the same keys in the same order.
            let rj = try Self.call([runc, "--root", rroot, "list", "-f", "json"]).out
            let keys = #/"([a-zA-Z]+)":/#
            #expect(rj.matches(of: keys).map(\.1) == json.matches(of: keys).map(\.1), "runc \(rj) ours \(json)")
            #expect(try Self.call([runc, "--root", rroot, "list", "-q"]).out == "l1\n")
        }
    }

    @Test("exec refuses a paused container without --ignore-paused (runc's message, exit 255); with it the process runs once thawed")
    func execIgnorePaused() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let bin = try Self.ours, root = b.dir + "/state", rroot = b.dir + "/runc-state"
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var runtimes = [(bin, root)]
        if let runc = Self.runc { runtimes.append((runc, rroot)) }
        for (rt, r) in runtimes {
            try Self.startSleeper(rt, root: r, b, id: "p1", cgroup: "dockbuild-paused-\(rt == bin ? "ours" : "runc")-\(tag)")
            defer { Self.remove(rt, root: r, id: "p1") }
            #expect(try Self.call([rt, "--root", r, "pause", "p1"]).code == 0)
            let refused = try Self.call([rt, "--root", r, "exec", "p1", "true"])
            #expect(refused.code == 255 && refused.err.contains("cannot exec in a paused container (use --ignore-paused to override)"), "\(rt): \(refused)")
            let out = b.dir + "/ignore-paused.out"
            let pid = try Self.spawn([rt, "--root", r, "exec", "--ignore-paused", "p1", "sh", "-c", "echo thawed"], out: out)
            usleep(300_000)
            #expect(waitpid(pid, nil, WNOHANG) == 0, "\(rt): the exec'd process must wait while the container is frozen")
            #expect(try Self.call([rt, "--root", r, "resume", "p1"]).code == 0)
            #expect(Self.reap(pid, seconds: 20) == 0, "\(rt)")
            #expect(readFile(out) == "thawed\n", "\(rt): \(readFile(out) ?? "")")
        }
    }

    @Test("exec --cgroup joins an existing sub-cgroup: PATH for every hierarchy, CONTROLLER:PATH for one; bad paths exit 255")
    func execSubCgroup() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let bin = try Self.ours, root = b.dir + "/state", rroot = b.dir + "/runc-state"
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var runtimes = [(bin, root)]
        if let runc = Self.runc { runtimes.append((runc, rroot)) }
        for (rt, r) in runtimes {
            try Self.startSleeper(rt, root: r, b, id: "g1", cgroup: "dockbuild-subcg-\(rt == bin ? "ours" : "runc")-\(tag)")
            defer { Self.remove(rt, root: r, id: "g1") }
            let initPid = try #require(Int32((try Self.call([rt, "--root", r, "state", "g1"]).out.firstMatch(of: #/"pid" *: *(\d+)/#)?.1) ?? ""))
            let dir = try Self.cgroupDir(of: initPid)
            try #require(mkdir(dir + "/sub", 0o755) == 0, "mkdir \(dir)/sub")
            defer { rmdir(dir + "/sub") }
            let flag = Cgroup.isUnified ? "/sub" : "memory:/sub"
            let joined = try Self.call([rt, "--root", r, "exec", "--cgroup", flag, "g1", "cat", "/proc/self/cgroup"])
            let line = joined.out.split(separator: "\n").first {
                Cgroup.isUnified ? $0.hasPrefix("0::") : $0.split(separator: ":").dropFirst().first == "memory"
            }
            #expect(joined.code == 0 && line?.hasSuffix("/sub") == true, "\(rt): \(joined)")
            for bad in ["../x", "nosuch"] + (Cgroup.isUnified ? [] : ["bogus:x"]) {
                let e = try Self.call([rt, "--root", r, "exec", "--cgroup", bad, "g1", "true"])
                #expect(e.code == 255, "\(rt) --cgroup \(bad): \(e)")
            }
        }
        // Ours, the parse: plain, several controllers, conflicts.
        #expect(try Cgroup.parseSubCgroups(["a", "cpu,cpuacct:b"]) == ["": "a", "cpu": "b", "cpuacct": "b"])
        #expect(throws: RuntimeError.self) { try Cgroup.parseSubCgroups(["memory:a", "memory:b"]) }
        #expect(throws: RuntimeError.self) { try Cgroup.parseSubCgroups([":a"]) }
        // Ours, the directories, on made-up trees of both versions (whichever this host runs).
        let t = b.dir + "/cgtree"
        for d in ["v2/sub/deeper", "cpu/a", "memory/a", "memory/b"] {
            try FileManager.default.createDirectory(atPath: t + "/" + d, withIntermediateDirectories: true)
        }
        let v2 = Cgroup(version: "v2", paths: ["": t + "/v2"])
        #expect(try v2.joining(sub: ["": "/sub/deeper"]).paths == ["": t + "/v2/sub/deeper"])
        #expect(throws: RuntimeError.self) { try v2.joining(sub: ["memory": "sub"]) }
        #expect(throws: RuntimeError.self) { try v2.joining(sub: ["": "missing"]) }
        let v1 = Cgroup(version: "v1", paths: ["cpu,cpuacct": t + "/cpu", "memory": t + "/memory"])
        #expect(try v1.joining(sub: ["cpuacct": "a", "memory": "b"]).paths == ["cpu,cpuacct": t + "/cpu/a", "memory": t + "/memory/b"])
        #expect(try v1.joining(sub: ["": "a", "memory": "b"]).paths == ["cpu,cpuacct": t + "/cpu/a", "memory": t + "/memory/b"])
        #expect(try v1.joining(sub: ["memory": "a"]).paths == ["cpu,cpuacct": t + "/cpu", "memory": t + "/memory/a"])
        #expect(throws: RuntimeError.self) { try v1.joining(sub: ["cpu": "a", "cpuacct": "b"]) }
        #expect(throws: RuntimeError.self) { try v1.joining(sub: ["": "b"]) }   // cpu/b does not exist
        #expect(throws: RuntimeError.self) { try v1.joining(sub: ["": "a/../../x"]) }
    }

    @Test("exec --user 0 (and run) enter a working directory only CAP_DAC_OVERRIDE opens, which the process then lacks, as runc does")
    func cwdNeedingDacOverride() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let bin = try Self.ours, root = b.dir + "/state", rroot = b.dir + "/runc-state"
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try #require(mkdir(b.rootfs + "/secret", 0o700) == 0 && chown(b.rootfs + "/secret", 1000, 1000) == 0)
        chmod(b.rootfs + "/secret", 0o700)
        var s = b.spec(["sleep", "1000"])
        let effective = s.process?.capabilities?.effective ?? []
        #expect(!effective.contains("CAP_DAC_OVERRIDE"), "runc's default spec has no CAP_DAC_OVERRIDE")
        var runtimes = [(bin, root)]
        if let runc = Self.runc { runtimes.append((runc, rroot)) }
        for (rt, r) in runtimes {
            try Self.startSleeper(rt, root: r, b, id: "w1", cgroup: "dockbuild-cwd-\(rt == bin ? "ours" : "runc")-\(tag)")
            defer { Self.remove(rt, root: r, id: "w1") }
            for user in ["0", "0:0", "1000"] {
                let e = try Self.call([rt, "--root", r, "exec", "--user", user, "--cwd", "/secret", "w1", "pwd"])
                #expect(e.code == 0 && e.out == "/secret\n", "\(rt) --user \(user): \(e)")
            }
            // A directory that does not exist is still an error.
            #expect(try Self.call([rt, "--root", r, "exec", "--cwd", "/nosuch", "w1", "true"]).code == 255, "\(rt)")
        }
        // The container's own process too (create/start through run).
        s = b.spec(["pwd"])
        s.process?.cwd = "/secret"
        s.linux?.cgroupsPath = "/dockbuild-cwd-run-\(tag)"
        try b.write(s)
        let run = try Self.call([bin, "--root", root, "run", "--bundle", b.dir, "w2"])
        #expect(run.code == 0 && run.out == "/secret\n", "\(run)")
    }

    @Test("cgroup v1 CFS: update to a shorter or a longer period under a parent with a quota writes quota and period in a valid order")
    func cfsOrderUnderLimitedParent() throws {
        try #require(!Cgroup.isUnified, "cgroup v1 only: on v2 cpu.max takes quota and period in one write")
        let b = try Bundle.make()
        defer { b.cleanup() }
        let bin = try Self.ours, root = b.dir + "/state"
        let cpu = try #require(Cgroup.hierarchies().v1.first { $0.controllers.contains("cpu") }, "no v1 cpu hierarchy")
        let name = "dockbuild-cfs-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let parent = cpu.mountPoint + "/" + name
        try #require(mkdir(parent, 0o755) == 0, "mkdir \(parent)")
        defer { rmdir(parent) }
        try Sys.writeFile(parent + "/cpu.cfs_period_us", "100000")
        try Sys.writeFile(parent + "/cpu.cfs_quota_us", "50000")   // half a CPU for everything below
        var s = b.spec(["sleep", "1000"])
        s.linux?.cgroupsPath = "/\(name)/c"
        var res = s.linux?.resources ?? RuntimeSpec.Resources()
        res.cpu = .init(quota: 50000, period: 100000)
        s.linux?.resources = res
        try b.write(s)
        let started = try Self.call([bin, "--root", root, "run", "-d", "--bundle", b.dir, "q1"])
        try #require(started.code == 0, "\(started)")
        defer { Self.remove(bin, root: root, id: "q1") }
        func cfs() -> String {
            ["cpu.cfs_quota_us", "cpu.cfs_period_us"].map { (readFile(parent + "/c/" + $0) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines) }
                .joined(separator: "/")
        }
        #expect(cfs() == "50000/100000")
        // Period first would make 50000/10000 (5 CPUs) for a moment: the quota must go first.
        let shorter = try Self.call([bin, "--root", root, "update", "--cpu-period", "10000", "--cpu-quota", "5000", "q1"])
        #expect(shorter.code == 0 && cfs() == "5000/10000", "\(shorter) \(cfs())")
        // Quota first would make 50000/10000: the period must go first.
        let longer = try Self.call([bin, "--root", root, "update", "--cpu-period", "100000", "--cpu-quota", "50000", "q1"])
        #expect(longer.code == 0 && cfs() == "50000/100000", "\(longer) \(cfs())")
        // More than the parent allows still fails, with the kernel's word and the file.
        let over = try Self.call([bin, "--root", root, "update", "--cpu-period", "100000", "--cpu-quota", "80000", "q1"])
        #expect(over.code == 1 && over.err.contains("cpu.cfs_quota_us"), "\(over)")
    }

    @Test("device rules: access must be a non-empty subset of rwm and type a, b or c, else a clear error (create and update -r)")
    func deviceAccessValidation() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let bin = try Self.ours, root = b.dir + "/state"
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        func rules(_ access: String?, type: String = "c") -> [RuntimeSpec.DeviceCgroup] {
            [.init(allow: false, access: "rwm"), .init(allow: true, type: type, major: 1, minor: 3, access: access)]
        }
        func write(_ devices: [RuntimeSpec.DeviceCgroup], _ args: [String] = ["true"]) throws {
            var s = b.spec(args)
            s.linux?.cgroupsPath = "/dockbuild-devacc-\(tag)"
            var res = s.linux?.resources ?? RuntimeSpec.Resources()
            res.devices = devices
            s.linux?.resources = res
            try b.write(s)
        }
        for (access, type, message) in [("rwx", "c", "linux.resources.devices[1]: access \"rwx\" has \"x\"; it must be a subset of \"rwm\""),
                                        ("", "c", "linux.resources.devices[1]: access is empty"),
                                        ("rw", "u", "linux.resources.devices[1]: type \"u\" is not a")] {
            try write(rules(access, type: type))
            let r = try Self.call([bin, "--root", root, "run", "--bundle", b.dir, "d1"])
            #expect(r.code == 1 && r.err.replacingOccurrences(of: "\\\"", with: "\"").contains(message), "\(access) \(type): \(r)")
            #expect(!FileManager.default.fileExists(atPath: root + "/d1"), "nothing is left of the refused container")
        }
        if let runc = Self.runc {
            try write(rules(""))
            #expect(try Self.call([runc, "--root", b.dir + "/runc-state", "run", "--bundle", b.dir, "d1"]).code != 0, "runc refuses an empty access too")
        }
        for access in ["rw", "wr", "m", "rr"] {
            try write(rules(access), ["sh", "-c", "echo ok > /dev/null"])
            let r = try Self.call([bin, "--root", root, "run", "--bundle", b.dir, "d2"])
            #expect(r.code == 0, "\(access): \(r)")
        }
        // update -r checks them before writing anything.
        try write(rules("rwm"), ["sleep", "1000"])
        #expect(try Self.call([bin, "--root", root, "run", "-d", "--bundle", b.dir, "d3"]).code == 0)
        defer { Self.remove(bin, root: root, id: "d3") }
        let file = b.dir + "/res.json"
        try Data(#"{"devices":[{"allow":true,"type":"c","major":1,"minor":5,"access":"rwq"}]}"#.utf8).write(to: URL(fileURLWithPath: file))
        let u = try Self.call([bin, "--root", root, "update", "-r", file, "d3"])
        #expect(u.code == 1 && u.err.replacingOccurrences(of: "\\\"", with: "\"").contains("linux.resources.devices[0]: access \"rwq\" has \"q\""), "\(u)")
    }

    /// The keys of a JSON object in the order the text gives them (one level).
    static func keys(_ json: String, at path: [String]) throws -> [String] {
        var obj = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        for p in path { obj = try #require(obj[p] as? [String: Any], "\(path) in \(json.prefix(300))") }
        return Array(obj.keys)
    }

    static func object(_ json: String, _ path: [String]) throws -> [String: Any] {
        var obj = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "\(json.prefix(300))")
        for p in path { obj = try #require(obj[p] as? [String: Any], "\(path) in \(json.prefix(300))") }
        return obj
    }

    @Test("a live container: run -d, update --memory 50M reaches the cgroup, events --stats in runc's shape, kill and delete")
    func updateAndEventsOnLiveContainer() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let bin = try Self.ours, root = b.dir + "/state", rroot = b.dir + "/runc-state"
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var runtimes = [(bin, root)]
        if let runc = Self.runc { runtimes.append((runc, rroot)) }
        var lines: [String] = []
        for (rt, r) in runtimes {
            try Self.startSleeper(rt, root: r, b, id: "u1", cgroup: "dockbuild-live-\(rt == bin ? "ours" : "runc")-\(tag)")
            defer { Self.remove(rt, root: r, id: "u1") }
            let initPid = try #require(Int32((try Self.call([rt, "--root", r, "state", "u1"]).out.firstMatch(of: #/"pid" *: *(\d+)/#)?.1) ?? ""))
            let up = try Self.call([rt, "--root", r, "update", "--memory", "50M", "u1"])
            #expect(up.code == 0, "\(rt): \(up)")
            let dir = try Self.cgroupDir(of: initPid)
            let file = Cgroup.isUnified ? "/memory.max" : "/memory.limit_in_bytes"
            #expect(readFile(dir + file) == "52428800\n", "\(rt): \(dir + file)")
            let ev = try Self.call([rt, "--root", r, "events", "--stats", "u1"])
            #expect(ev.code == 0 && ev.out.hasPrefix("{\"type\":\"stats\",\"id\":\"u1\",\"data\":{\"cpu\":{\"usage\":{"), "\(rt): \(ev)")
            let usage = try Self.object(ev.out, ["data", "memory", "usage"])
            #expect((usage["limit"] as? NSNumber)?.uint64Value == 52_428_800, "\(rt): \(usage)")
            // Ours has only the sleep in it; runc's may still hold a moment of its own `runc init`.
            let pids = ((try Self.object(ev.out, ["data", "pids"]))["current"] as? NSNumber)?.intValue ?? 0
            #expect(rt == bin ? pids == 1 : pids >= 1, "\(rt): \(pids) pids")
            lines.append(ev.out)
            // kill, wait for stopped, delete
            #expect(try Self.call([rt, "--root", r, "kill", "u1", "KILL"]).code == 0)
            var stopped = false
            for _ in 0..<200 where !stopped {
                stopped = try Self.call([rt, "--root", r, "state", "u1"]).out.contains("stopped")
                if !stopped { usleep(20_000) }
            }
            #expect(stopped, "\(rt)")
            #expect(try Self.call([rt, "--root", r, "delete", "u1"]).code == 0, "\(rt)")
            #expect(try Self.call([rt, "--root", r, "state", "u1"]).code != 0, "\(rt): deleted")
        }
        if lines.count == 2 {
            // The same keys in the same order as runc's (cache only appears when it is not zero).
            for path in [["data"], ["data", "cpu"], ["data", "cpu", "usage"], ["data", "memory", "usage"], ["data", "pids"]] {
                let ours = try Self.keys(lines[0], at: path), runc = try Self.keys(lines[1], at: path)
                #expect(Set(ours) == Set(runc), "\(path): ours \(ours), runc \(runc)")
            }
            let ours = lines[0].matches(of: #/"([a-zA-Z_]+)":/#).map { String($0.1) }.filter { $0 != "cache" }
            let runc = lines[1].matches(of: #/"([a-zA-Z_]+)":/#).map { String($0.1) }.filter { $0 != "cache" }
            let cut = { (k: [String]) in Array(k.prefix { $0 != "raw" }) }   // memory.stat's own keys vary with what was used
            #expect(cut(ours) == cut(runc), "ours \(cut(ours)), runc \(cut(runc))")
        }
    }

    @Test("events prints {\"type\":\"oom\",\"id\":..} when the OOM killer kills in the container, and stats lines every interval")
    func eventsReportsOOM() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let bin = try Self.ours, root = b.dir + "/state", rroot = b.dir + "/runc-state"
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var runtimes = [(bin, root)]
        if let runc = Self.runc { runtimes.append((runc, rroot)) }
        for (rt, r) in runtimes {
            var s = b.spec(["sleep", "1000"])
            s.linux?.cgroupsPath = "/dockbuild-oom-\(rt == bin ? "ours" : "runc")-\(tag)"
            var res = s.linux?.resources ?? RuntimeSpec.Resources()
            var m = RuntimeSpec.Memory()
            m.limit = 20 << 20
            m.swap = 20 << 20
            res.memory = m
            s.linux?.resources = res
            try b.write(s)
            let started = try Self.call([rt, "--root", r, "run", "-d", "--bundle", b.dir, "o1"])
            try #require(started.code == 0, "\(rt): \(started)")
            defer { Self.remove(rt, root: r, id: "o1") }
            let out = b.dir + "/events.out"
            let events = try Self.spawn(["/usr/bin/timeout", "30", rt, "--root", r, "events", "--interval", "200ms", "o1"], out: out)
            defer { kill(events, SIGKILL); waitpid(events, nil, 0) }
            usleep(300_000)
            // tail keeps a line that never ends: it grows until the OOM killer takes it.
            let hog = try Self.call([rt, "--root", r, "exec", "o1", "tail", "/dev/zero"])
            #expect(hog.code == 137, "\(rt): \(hog)")
            var text = ""
            for _ in 0..<50 {
                text = readFile(out) ?? ""
                if text.contains("{\"type\":\"oom\",\"id\":\"o1\"}\n") && text.contains("{\"type\":\"stats\",\"id\":\"o1\",\"data\":{") { break }
                usleep(100_000)
            }
            #expect(text.split(separator: "\n").filter { $0 == "{\"type\":\"oom\",\"id\":\"o1\"}" }.count == 1, "\(rt): \(text.prefix(400))")
            #expect(text.contains("{\"type\":\"stats\",\"id\":\"o1\",\"data\":{\"cpu\""), "\(rt): \(text.prefix(400))")
            #expect(try Self.call([rt, "--root", r, "state", "o1"]).out.contains("running"), "\(rt): the init (sleep) survives")
        }
        // The count it watches, straight from the cgroup.
        #expect(try Cgroup.resolve(cgroupsPath: "/dockbuild-oom-none-\(tag)", id: "x").oomKillCount() == nil, "no cgroup, no count")
    }

    @Test("stats and the OOM-kill count read from made-up cgroup v2 and v1 files, in runc's shape")
    func statsFromFiles() throws {
        let t = FileManager.default.temporaryDirectory.path + "/cgstats-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: t) }
        func put(_ path: String, _ text: String) throws {
            try FileManager.default.createDirectory(atPath: (t + "/" + path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: t + "/" + path))
        }
        try put("v2/memory.events", "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n")
        try put("v2/memory.current", "1048576\n")
        try put("v2/memory.max", "max\n")
        try put("v2/memory.stat", "anon 4096\nfile 8192\n")
        try put("v2/cpu.stat", "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n")
        try put("v2/pids.current", "3\n")
        try put("v2/pids.max", "max\n")
        try put("v2/io.stat", "8:0 rbytes=512 wbytes=1024 rios=1 wios=2 dbytes=0 dios=0\n")
        let v2 = Cgroup(version: "v2", paths: ["": t + "/v2"])
        #expect(v2.oomKillCount() == 2)
        let max = UInt64.max
        #expect(v2.runcStats().rendered == """
            {"cpu":{"usage":{"total":10000,"kernel":4000,"user":6000},"throttling":{}},\
            "memory":{"cache":8192,"usage":{"limit":\(max),"usage":1048576,"failcnt":4},"swap":{"limit":\(max),"usage":1048576,"failcnt":0},\
            "raw":{"anon":4096,"file":8192}},"pids":{"current":3},\
            "blkio":{"io_service_bytes_recursive":[{"major":8,"minor":0,"op":"Read","value":512},{"major":8,"minor":0,"op":"Write","value":1024}],\
            "io_serviced_recursive":[{"major":8,"minor":0,"op":"Read","value":1},{"major":8,"minor":0,"op":"Write","value":2}]},\
            "hugetlb":{},"intel_rdt":{},"network_interfaces":null}
            """)
        try put("mem/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n")
        #expect(Cgroup(version: "v1", paths: ["memory": t + "/mem"]).oomKillCount() == 5)
        try put("old/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n")
        #expect(Cgroup(version: "v1", paths: ["memory": t + "/old"]).oomKillCount() == nil, "a kernel before 4.13 keeps no count")
        #expect(Cgroup.cpuList("0-2,5\n") == [0, 1, 2, 5])
    }
}
