import Foundation
import Testing
@testable import Runtime

@Suite("cgroups", .serialized)
struct CgroupTests {
    @Test("a memory limit OOM-kills the process: exit 137")
    func oomKill() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        // dd itself is the container process and the one the OOM killer picks.
        var s = b.spec(["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"])
        var res = s.linux?.resources ?? .init()
        res.memory = .init(limit: 32 << 20, swap: 32 << 20)
        res.memory?.swappiness = 0  // no escape into swap where memsw accounting is off
        s.linux?.resources = res
        let r = try b.run(s)
        #expect(r.code == 137, "out: \(r.out) err: \(r.err)")
    }

    @Test("a pids limit stops forks")
    func pidsLimit() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        var s = b.spec(["sh", "-c", "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; i=0; while [ $i -lt 12 ]; do sleep 1 & i=$((i+1)); done; echo all-started"])
        var res = s.linux?.resources ?? .init()
        res.pids = .init(limit: 6)
        s.linux?.resources = res
        let r = try b.run(s)
        #expect(r.out.hasPrefix("6\n"))
        #expect(!r.out.contains("all-started"))
        #expect(r.err.contains("fork"), "stderr: \(r.err)")
    }

    @Test("cpu quota and period are visible in the container's cgroup; update changes them")
    func cpuQuotaAndUpdate() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        var s = b.spec(["sleep", "100"])
        var res = s.linux?.resources ?? .init()
        res.cpu = .init(shares: 512, quota: 50_000, period: 100_000)
        s.linux?.resources = res
        try b.write(s)
        let rt = b.runtime
        try rt.create(id: "cpu", bundle: b.dir)
        try rt.start(id: "cpu")
        let rec = try rt.loadRecord("cpu")
        let cg = try #require(rec.cgroup)
        if cg.version == "v1" {
            let dir = try #require(cg.path(for: "cpu"))
            #expect(readFile(dir + "/cpu.cfs_quota_us") == "50000\n")
            #expect(readFile(dir + "/cpu.cfs_period_us") == "100000\n")
            #expect(readFile(dir + "/cpu.shares") == "512\n")
            try rt.update(id: "cpu", resources: { var r = RuntimeSpec.Resources(); r.cpu = .init(quota: 20_000); return r }())
            #expect(readFile(dir + "/cpu.cfs_quota_us") == "20000\n")
            #expect(try readFile(#require(cg.path(for: "pids")) + "/cgroup.procs") == "\(rec.pid)\n")
        } else {
            let dir = try #require(cg.paths[""])
            #expect(readFile(dir + "/cpu.max") == "50000 100000\n")
        }
        // pause / resume through the freezer
        try rt.pause(id: "cpu")
        #expect(try rt.state(id: "cpu").status == "paused")
        try rt.resume(id: "cpu")
        #expect(try rt.state(id: "cpu").status == "running")
        let stats = try rt.stats(id: "cpu")
        #expect(stats["pids"]?["current"] == 1)
        try rt.delete(id: "cpu", force: true)
        for dir in cg.paths.values { #expect(!FileManager.default.fileExists(atPath: dir), "\(dir) removed on delete") }
        #expect(!FileManager.default.fileExists(atPath: b.runtime.root + "/cpu"))
    }

    @Test("cgroupsPath: absolute from the hierarchy root, relative from our own cgroup")
    func cgroupsPath() throws {
        let abs = try Cgroup.resolve(cgroupsPath: "/dockbuild-test/x", id: "x")
        for (_, dir) in abs.paths { #expect(dir.hasSuffix("/dockbuild-test/x")) }
        let rel = try Cgroup.resolve(cgroupsPath: nil, id: "myid")
        for (_, dir) in rel.paths { #expect(dir.hasSuffix("/myid")) }
    }
}
