import Foundation
import Testing
@testable import Runtime

@Suite("personality, time namespace, domainname", .serialized)
struct LinuxExtrasTests {
    @Test("linux.personality LINUX32: uname -m says i686")
    func personality() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        #if arch(x86_64)
        var s = b.spec(["uname", "-m"])
        s.linux?.personality = .init(domain: "LINUX32")
        let r = try b.run(s)
        #expect(r.code == 0, "stderr: \(r.err)")
        #expect(r.out == "i686\n")
        s.linux?.personality = .init(domain: "LINUX")
        #expect(try b.run(s).out == "x86_64\n")
        #endif
        var bad = b.spec(["true"])
        bad.linux?.personality = .init(domain: "SVR4")
        #expect(throws: RuntimeError.self) { try b.run(bad) }
        bad.linux?.personality = .init(domain: "LINUX32", flags: ["ADDR_NO_RANDOMIZE"])
        #expect(throws: RuntimeError.self) { try b.run(bad) }
    }

    @Test("time namespace: linux.timeOffsets move boottime and monotonic; exec joins the namespace")
    func timeNamespace() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        try #require(FileManager.default.fileExists(atPath: "/proc/self/ns/time"), "this kernel has no time namespaces (CONFIG_TIME_NS)")
        let hostUptime = Double((readFile("/proc/uptime") ?? "").split(separator: " ").first ?? "") ?? 0
        let day: Int64 = 86_400
        var s = b.spec(["sh", "-c", "cat /proc/uptime; readlink /proc/self/ns/time; cat /proc/self/timens_offsets"])
        s.linux?.namespaces?.append(.init(type: "time"))
        s.linux?.timeOffsets = ["boottime": .init(secs: 10 * day, nanosecs: 0), "monotonic": .init(secs: 3 * day)]
        // A createContainer hook runs in the container's namespaces, the time namespace too.
        var hooks = RuntimeSpec.Hooks()
        hooks.createContainer = [.init(path: b.rootfs + "/bin/busybox", args: ["busybox", "sh", "-c", "cat /proc/uptime > \(b.dir)/hook-uptime"])]
        s.hooks = hooks
        let r = try b.run(s)
        #expect(r.code == 0, "stderr: \(r.err)")
        let lines = r.out.split(separator: "\n")
        let uptime = Double(lines.first?.split(separator: " ").first ?? "") ?? 0
        #expect(uptime >= hostUptime + Double(10 * day) && uptime < hostUptime + Double(10 * day) + 60,
                "uptime inside \(uptime), host \(hostUptime)")
        let hostNS = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/time")) ?? ""
        #expect(lines.count == 4 && String(lines[1]) != hostNS, "a time namespace of its own: \(r.out)")
        let offsets = lines.dropFirst(2).map { $0.split(separator: " ").joined(separator: " ") }
        #expect(offsets.sorted() == ["boottime 864000 0", "monotonic 259200 0"], "\(r.out)")
        let inHook = Double((readFile(b.dir + "/hook-uptime") ?? "").split(separator: " ").first ?? "") ?? 0
        #expect(inHook >= hostUptime + Double(10 * day), "uptime in the createContainer hook: \(inHook)")

        // exec enters the same namespace and sees the same clock.
        var l = b.spec(["sleep", "100"])
        l.linux?.namespaces?.append(.init(type: "time"))
        l.linux?.timeOffsets = ["boottime": .init(secs: 10 * day)]
        try b.write(l)
        try b.runtime.create(id: "tns", bundle: b.dir)
        try b.runtime.start(id: "tns")
        let outPath = b.dir + "/exec-out"
        let o = open(outPath, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o644)
        var p = try #require(l.process)
        p.args = ["cat", "/proc/uptime"]
        var eo = ExecOptions()
        eo.stdout = o
        let code = try b.runtime.exec(id: "tns", process: p, options: eo)
        close(o)
        #expect(code == 0)
        let inExec = Double((readFile(outPath) ?? "").split(separator: " ").first ?? "") ?? 0
        #expect(inExec >= hostUptime + Double(10 * day), "uptime in exec: \(inExec)")
        try b.runtime.delete(id: "tns", force: true)

        // Offsets without a time namespace of its own are refused.
        var bad = b.spec(["true"])
        bad.linux?.timeOffsets = ["boottime": .init(secs: 1)]
        #expect(throws: RuntimeError.self) { try b.run(bad) }
        bad.linux?.namespaces?.append(.init(type: "time"))
        bad.linux?.timeOffsets = ["realtime": .init(secs: 1)]
        #expect(throws: RuntimeError.self) { try b.run(bad) }
    }

    @Test("hostname and domainname are set in the uts namespace")
    func domainname() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        var s = b.spec(["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"])
        s.hostname = "box"
        s.domainname = "example.org"
        let r = try b.run(s)
        #expect(r.code == 0, "stderr: \(r.err)")
        #expect(r.out == "box\nexample.org\n")
        #expect(readFile("/proc/sys/kernel/domainname") != "example.org\n", "the host's domainname is untouched")
        var noUTS = s
        noUTS.linux?.namespaces?.removeAll { $0.type == "uts" }
        #expect(throws: RuntimeError.self) { try b.run(noUTS) }
    }
}
