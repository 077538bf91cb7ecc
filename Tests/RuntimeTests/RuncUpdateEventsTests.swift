import Foundation
import Testing
@testable import Runtime
import SystemSupport

/// `update` and `events` as runc takes them: the value syntaxes (Go durations, sizes with
/// units) and, on live containers of both runtimes, the same flags giving the same cgroup
/// files and the same exit codes.
@Suite(.serialized) struct RuncUpdateEventsTests {
    @Test func goDurationsAndSizes() throws {
        #expect(GoDuration.seconds("5s") == 5)
        #expect(GoDuration.seconds("100ms") == 0.1)
        #expect(GoDuration.seconds("1m30s") == 90)
        #expect(GoDuration.seconds("1.5h") == 5400)
        #expect(GoDuration.seconds("300us") == 0.0003)
        #expect(GoDuration.seconds("0") == 0)
        for bad in ["", "5", "s", "1x", "1..5s", "-", "ms"] { #expect(GoDuration.seconds(bad) == nil, "\(bad)") }
        #expect(try ByteSize.parse("50M") == 50 << 20)
        #expect(try ByteSize.parse("1.5g") == 3 << 29)
        #expect(try ByteSize.parse("-1", unlimited: true) == -1)
        #expect(throws: ByteSize.Failure.negative) { try ByteSize.parse("-5") }
        #expect(throws: ByteSize.Failure.tooLarge) { try ByteSize.parse("99999999999p") }
        #expect(throws: ByteSize.Failure.notASize) { try ByteSize.parse("lots") }
    }

    /// The cgroup files `update` writes, read from the cgroup of `pid` (v1 or v2).
    static func limits(of pid: Int32) -> [String: String] {
        let (v2, v1) = Cgroup.hierarchies()
        let lines = (readFile("/proc/\(pid)/cgroup") ?? "").split(separator: "\n").map { $0.split(separator: ":", maxSplits: 2).map(String.init) }
        func read(_ controller: String, _ file: String) -> String? {
            if Cgroup.isUnified {
                guard let v2, let line = lines.first(where: { $0.first == "0" }), line.count == 3 else { return nil }
                return readFile(v2.mountPoint + line[2] + "/" + file)?.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            guard let h = v1.first(where: { $0.controllers.contains(controller) }),
                  let line = lines.first(where: { $0.count == 3 && $0[1].split(separator: ",").contains { $0 == controller } }) else { return nil }
            return readFile(h.mountPoint + line[2] + "/" + file)?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let files: [(String, String)] = Cgroup.isUnified
            ? [("memory", "memory.max"), ("memory", "memory.swap.max"), ("memory", "memory.low"), ("cpu", "cpu.max"),
               ("cpu", "cpu.weight"), ("pids", "pids.max"), ("cpuset", "cpuset.cpus"), ("cpuset", "cpuset.mems")]
            : [("memory", "memory.limit_in_bytes"), ("memory", "memory.memsw.limit_in_bytes"), ("memory", "memory.soft_limit_in_bytes"),
               ("cpu", "cpu.cfs_quota_us"), ("cpu", "cpu.cfs_period_us"), ("cpu", "cpu.shares"), ("cpu", "cpu.rt_period_us"),
               ("cpu", "cpu.rt_runtime_us"), ("pids", "pids.max"), ("cpuset", "cpuset.cpus"), ("cpuset", "cpuset.mems")]
        var out: [String: String] = [:]
        for (c, f) in files { if let v = read(c, f) { out[f] = v } }
        return out
    }

    @Test("update: runc's flags (units, -1, realtime, pids), -r FILE and --resources - give runc's cgroup files and exit codes")
    func updateFlagsAsRunc() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let bin = try RuncDropInTests.ours, root = b.dir + "/state", rroot = b.dir + "/runc-state"
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let file = b.dir + "/resources.json"
        try Data(#"{"memory":{"limit":31457280},"pids":{"limit":20}}"#.utf8).write(to: URL(fileURLWithPath: file))
        // Each step: the arguments, then how it is run (stdin from the file for `--resources -`).
        let steps: [([String], Bool)] = [
            (["--memory", "50M", "--memory-swap", "100M", "--memory-reservation", "20M", "--cpu-period", "50000",
              "--cpu-quota", "25000", "--cpu-share", "512", "--pids-limit", "50", "--cpuset-cpus", "0", "--cpuset-mems", "0"], false),
            (["--memory", "-1", "--memory-swap", "-1", "--memory-reservation", "-1", "--cpu-quota", "-1", "--pids-limit", "-1"], false),
            (["--cpu-rt-period", "1000000", "--cpu-rt-runtime", "0"], false),
            (["-r", file, "--memory", "1G"], false),           // -r wins: the other flags are ignored
            (["--resources", "-"], true),                       // containerd's way: the JSON on stdin
            (["--memory", "10x"], false),                       // errors: exit 1, nothing changed
            (["--pids-limit", "lots"], false),
            (["--cpu-share"], false),
        ]
        var results: [[(Int32, [String: String])]] = []
        var runtimes = [(bin, root)]
        if let runc = RuncDropInTests.runc { runtimes.append((runc, rroot)) }
        for (rt, r) in runtimes {
            try RuncDropInTests.startSleeper(rt, root: r, b, id: "up", cgroup: "dockbuild-update-\(rt == bin ? "ours" : "runc")-\(tag)")
            defer { RuncDropInTests.remove(rt, root: r, id: "up") }
            let pid = try #require(Int32((try RuncDropInTests.call([rt, "--root", r, "state", "up"]).out.firstMatch(of: #/"pid" *: *(\d+)/#)?.1) ?? ""))
            var mine: [(Int32, [String: String])] = []
            for (args, stdin) in steps {
                let argv = [rt, "--root", r, "update"] + args + ["up"]
                let res = stdin
                    ? try RuncDropInTests.call(["/bin/sh", "-c", argv.map { "'\($0)'" }.joined(separator: " ") + " < '\(file)'"])
                    : try RuncDropInTests.call(argv)
                mine.append((res.code, Self.limits(of: pid)))
            }
            results.append(mine)
            // Ours on its own: every step that runc takes is taken, the values landed.
            if rt == bin {
                #expect(mine.map(\.0) == [0, 0, 0, 0, 0, 1, 1, 1], "\(mine.map(\.0))")
                let first = mine[0].1
                #expect(first["memory.limit_in_bytes"] ?? first["memory.max"] == "52428800", "\(first)")
                #expect(first["pids.max"] == "50", "\(first)")
                #expect(mine[1].1["pids.max"] == "max", "\(mine[1].1)")
                #expect(mine[3].1["pids.max"] == "20" && (mine[3].1["memory.limit_in_bytes"] ?? mine[3].1["memory.max"]) == "31457280", "\(mine[3].1)")
            }
        }
        if results.count == 2 {
            for (i, (ours, runc)) in zip(results[0], results[1]).enumerated() {
                #expect(ours.0 == runc.0, "step \(i) \(steps[i].0): exit \(ours.0), runc \(runc.0)")
                #expect(ours.1 == runc.1, "step \(i) \(steps[i].0): ours \(ours.1), runc \(runc.1)")
            }
        }
    }

    @Test("events on a stopped container fails as runc's does (with --stats too); bad --interval values exit 1")
    func eventsOnStoppedContainer() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let bin = try RuncDropInTests.ours, root = b.dir + "/state", rroot = b.dir + "/runc-state"
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var runtimes = [(bin, root)]
        if let runc = RuncDropInTests.runc { runtimes.append((runc, rroot)) }
        for (rt, r) in runtimes {
            try RuncDropInTests.startSleeper(rt, root: r, b, id: "ev", cgroup: "dockbuild-evstop-\(rt == bin ? "ours" : "runc")-\(tag)")
            defer { RuncDropInTests.remove(rt, root: r, id: "ev") }
            for bad in ["0.5", "1x", "-1s"] {
                let e = try RuncDropInTests.call([rt, "--root", r, "events", "--interval", bad, "ev"])
                // (runc prints its usage on stdout; ours no stats line)
                #expect(e.code == 1 && (rt != bin || e.out.isEmpty), "\(rt) --interval \(bad): \(e)")
            }
            #expect(try RuncDropInTests.call([rt, "--root", r, "kill", "ev", "KILL"]).code == 0)
            #expect(LifecyclePoll.eventually { (try? RuncDropInTests.call([rt, "--root", r, "state", "ev"]).out.contains("stopped")) == true })
            for args in [["events", "--stats", "ev"], ["events", "--interval", "100ms", "ev"]] {
                let e = try RuncDropInTests.call([rt, "--root", r] + args)
                #expect(e.code == 1 && e.out.isEmpty && e.err.contains("is not running"), "\(rt) \(args): \(e)")
            }
        }
    }
}
