import Foundation
import Testing

/// Attacks on container crash safety (issue #14): a `run --rm` that cannot start must leave
/// nothing behind, and a container whose monitor is killed must be reported as it is (dead,
/// with a real time) and still be stoppable and removable, its processes killed, its rootfs
/// unmounted.
@Suite(.serialized) struct ContainerCrashTests {
    /// Lines of the mount table that mention this store (overlay upperdir, binds, rootfs).
    static func ctrcrashMounts(_ s: SecStore, id: String = "") -> [Substring] {
        let m = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return m.split(separator: "\n").filter { $0.contains(s.root) || (!id.isEmpty && $0.contains(id)) }
    }

    static func ctrcrashContainerDirs(_ s: SecStore) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: s.root + "/containers")) ?? []).sorted()
    }

    static func ctrcrashState(_ s: SecStore, _ id: String) throws -> [String: Any] {
        let out = try s.ok(["inspect", id])
        let json = try JSONSerialization.jsonObject(with: Data(out.utf8))
        let obj = (json as? [[String: Any]])?.first ?? (json as? [String: Any]) ?? [:]
        return obj["State"] as? [String: Any] ?? [:]
    }

    static func ctrcrashAlive(_ pid: Int32) -> Bool {
        guard pid > 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
    }

    @Test(.enabled(if: Sec.canRun)) func runRmThatCannotStartLeavesNothing() throws {
        let s = try SecStore()
        let file = s.dir + "/ctrcrash-file"
        try s.write("ctrcrash-file", "x")
        let attempts: [(String, [String], [String])] = [
            ("missing program", [], ["/ctrcrash-no-such-program"]),
            ("bad mount (a file over a directory)", ["-v", "\(file):/bin"], ["true"]),
            ("bad workdir (a file)", ["-w", "/etc/passwd"], ["true"]),
            ("bad workdir (under a file)", ["-w", "/etc/passwd/sub"], ["true"]),
        ]
        for (what, flags, cmd) in attempts {
            let r = try s.db(["run", "--rm", "--network", "none"] + flags + ["busybox:test"] + cmd)
            #expect(r.status != 0, "\(what): run succeeded: \(r.out)")
            #expect(!r.err.contains("Fatal error"), "\(what): \(r.err)")
            let left = try s.db(["ps", "-a"]).out
            #expect(try s.db(["ps", "-a", "-q"]).out.isEmpty, "\(what): a container is left: \(left)")
            #expect(Self.ctrcrashContainerDirs(s).isEmpty, "\(what): left \(Self.ctrcrashContainerDirs(s))")
            #expect(Self.ctrcrashMounts(s).isEmpty, "\(what): left mounted: \(Self.ctrcrashMounts(s))")
        }
    }

    /// Starts `sleep 1000` detached, SIGKILLs its monitor, and returns (id, container pid).
    static func ctrcrashKillMonitor(_ s: SecStore) throws -> (String, Int32) {
        let id = try s.ok(["run", "-d", "--network", "none", "busybox:test", "sleep", "1000"])
        let st = try ctrcrashState(s, id)
        let pid = Int32(st["Pid"] as? Int ?? 0)
        #expect(pid > 0 && ctrcrashAlive(pid))
        let stateFile = "\(s.root)/containers/\(id)/state.json"
        let raw = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: stateFile))) as? [String: Any]
        let monitor = Int32(raw?["monitorPid"] as? Int ?? 0)
        #expect(monitor > 0 && monitor != pid)
        if monitor > 0 { kill(monitor, SIGKILL) }
        #expect(Sec.eventually(10) { !ctrcrashAlive(monitor) })
        return (id, pid)
    }

    @Test(.enabled(if: Sec.canRun)) func killedMonitorIsReportedDeadAndStopKillsTheContainer() throws {
        let s = try SecStore()
        let (id, pid) = try Self.ctrcrashKillMonitor(s)
        // the truth: the monitor is gone, the container's process is not
        #expect(Self.ctrcrashAlive(pid))
        let status = try s.ok(["ps", "-a", "--format", "{{.Status}}"])
        #expect(status == "Dead", "ps -a says \(status)")
        #expect(try s.ok(["ps", "-q"]).isEmpty, "a dead container is listed as running")
        let st = try Self.ctrcrashState(s, id)
        #expect(st["Status"] as? String == "dead")
        #expect(st["Dead"] as? Bool == true && st["Running"] as? Bool == false)
        let finished = (st["FinishedAt"] as? String).flatMap { ISO8601DateFormatter().date(from: String($0.prefix(19)) + "Z") }
        #expect(finished.map { abs($0.timeIntervalSinceNow) < 120 } == true, "FinishedAt \(st["FinishedAt"] ?? "-")")
        #expect((st["Error"] as? String)?.contains("monitor") == true)
        // stop kills what is left and unmounts the rootfs
        try s.ok(["stop", "-t", "1", id])
        #expect(Sec.eventually(10) { !Self.ctrcrashAlive(pid) }, "the container's process \(pid) survived stop")
        #expect(Self.ctrcrashMounts(s, id: id).isEmpty, "left mounted: \(Self.ctrcrashMounts(s, id: id))")
        let after = try Self.ctrcrashState(s, id)
        #expect(after["Status"] as? String == "exited" && after["ExitCode"] as? Int == 137, "\(after)")
        let ps = try s.ok(["ps", "-a", "--format", "{{.Status}}"])
        #expect(ps.hasPrefix("Exited (137)") && !ps.contains("days"), "ps -a says \(ps)")
        // and it can run again
        try s.ok(["start", id])
        #expect(try s.ok(["ps", "-q"]) == String(id.prefix(12)))
        try s.ok(["rm", "-f", id])
        #expect(Self.ctrcrashContainerDirs(s).isEmpty && Self.ctrcrashMounts(s, id: id).isEmpty)
    }

    /// A torn or tampered config.json: the error says `rm -f`, and `rm -f` must then work,
    /// killing the still-running container and unmounting its rootfs.
    @Test(.enabled(if: Sec.canRun)) func damagedRecordOfARunningContainerIsRemovedByRmForce() throws {
        let s = try SecStore()
        let id = try s.ok(["run", "-d", "--network", "none", "busybox:test", "sleep", "1000"])
        let pid = Int32(try Self.ctrcrashState(s, id)["Pid"] as? Int ?? 0)
        #expect(pid > 0 && Self.ctrcrashAlive(pid))
        let config = "\(s.root)/containers/\(id)/config.json"
        let whole = try Data(contentsOf: URL(fileURLWithPath: config))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: config))
        let inspect = try s.db(["logs", id])
        #expect(inspect.status != 0 && inspect.err.contains("rm -f"), "\(inspect.err)")
        // still listed, so it can be found and removed
        #expect(try s.ok(["ps", "-a", "-q"]) == String(id.prefix(12)))
        #expect(try s.db(["ps", "-a"]).err.contains("rm -f \(id.prefix(12))"))
        let rm = try s.db(["rm", "-f", String(id.prefix(12))])
        #expect(rm.status == 0, "rm -f of a damaged record: \(rm.err)")
        #expect(Sec.eventually(10) { !Self.ctrcrashAlive(pid) }, "the container's process \(pid) survived rm -f")
        #expect(Self.ctrcrashContainerDirs(s).isEmpty, "left \(Self.ctrcrashContainerDirs(s))")
        #expect(Self.ctrcrashMounts(s, id: id).isEmpty, "left mounted: \(Self.ctrcrashMounts(s, id: id))")
    }

    @Test(.enabled(if: Sec.canRun)) func killedMonitorThenStartReplacesTheOrphan() throws {
        let s = try SecStore()
        let (id, pid) = try Self.ctrcrashKillMonitor(s)
        try s.ok(["start", id])
        #expect(Sec.eventually(10) { !Self.ctrcrashAlive(pid) }, "the orphaned process \(pid) survived start")
        let st = try Self.ctrcrashState(s, id)
        let newPid = Int32(st["Pid"] as? Int ?? 0)
        #expect(st["Status"] as? String == "running" && newPid > 0 && newPid != pid && Self.ctrcrashAlive(newPid), "\(st)")
        try s.ok(["rm", "-f", id])
        #expect(Sec.eventually(10) { !Self.ctrcrashAlive(newPid) })
        #expect(Self.ctrcrashContainerDirs(s).isEmpty && Self.ctrcrashMounts(s, id: id).isEmpty)
    }

    /// A foreground `run --rm` whose monitor is killed: the CLI notices the lost attach socket
    /// and reaps the container, so nothing is left running or listed.
    @Test(.enabled(if: Sec.canRun)) func killedMonitorOfForegroundRunRmLeavesNothing() throws {
        let s = try SecStore()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Sec.binary)
        p.arguments = ["run", "--root", s.root, "--rm", "--network", "none", "busybox:test", "sleep", "1000"]
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { p.terminate() } }
        var id = ""
        #expect(Sec.eventually(20) {
            id = (try? s.db(["ps", "-q", "--no-trunc"]).out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? ""
            return !id.isEmpty
        })
        try #require(!id.isEmpty)
        let pid = Int32(try Self.ctrcrashState(s, id)["Pid"] as? Int ?? 0)
        let raw = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(s.root)/containers/\(id)/state.json"))) as? [String: Any]
        let monitor = Int32(raw?["monitorPid"] as? Int ?? 0)
        try #require(monitor > 0 && pid > 0)
        kill(monitor, SIGKILL)
        #expect(Sec.eventually(20) { !p.isRunning }, "the foreground run did not return after its monitor died")
        #expect(Sec.eventually(10) { !Self.ctrcrashAlive(pid) }, "the container's process \(pid) survived")
        #expect(try s.db(["ps", "-a", "-q"]).out.isEmpty)
        #expect(Self.ctrcrashContainerDirs(s).isEmpty, "left \(Self.ctrcrashContainerDirs(s))")
        #expect(Self.ctrcrashMounts(s, id: id).isEmpty, "left mounted: \(Self.ctrcrashMounts(s, id: id))")
    }

    @Test(.enabled(if: Sec.canRun)) func killedMonitorThenRmForceKillsAndRemoves() throws {
        let s = try SecStore()
        let (id, pid) = try Self.ctrcrashKillMonitor(s)
        try s.ok(["rm", "-f", id])
        #expect(Sec.eventually(10) { !Self.ctrcrashAlive(pid) }, "the container's process \(pid) survived rm -f")
        #expect(try s.ok(["ps", "-a", "-q"]).isEmpty)
        #expect(Self.ctrcrashContainerDirs(s).isEmpty, "left \(Self.ctrcrashContainerDirs(s))")
        #expect(Self.ctrcrashMounts(s, id: id).isEmpty, "left mounted: \(Self.ctrcrashMounts(s, id: id))")
        #expect(!FileManager.default.fileExists(atPath: "/run/dockbuild/rootfs/\(id)"))
    }
}
