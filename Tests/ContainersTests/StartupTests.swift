import Foundation
import Testing
@testable import Containers

/// How a container starts (issue #19): the monitor runs dockbuild's own runtime in its own
/// process (no `dockbuild runtime run` process between it and the container), with the same
/// state files, exit statuses and start errors as the runtime's process gave.
@Suite(.serialized) struct StartupTests {
    static func parent(of pid: Int32) -> Int32? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? Int32(fields[1]) : nil
    }

    static func commandLine(_ pid: Int32) -> [String] {
        let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func theContainersParentIsItsMonitorAndTheRuntimeStillKnowsIt() throws {
        try #require(Scenario.canRun, "needs root and busybox-static")
        let s = try Scenario(63)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let id = try s.ok(["run", "-d", "--network", "none", "busybox:test", "sleep", "30"])
        let pid = try #require(Int32(try s.ok(["inspect", "-f", "{{.State.Pid}}", id])))
        #expect(pid > 0)
        let ppid = try #require(Self.parent(of: pid))
        let parentArgs = Self.commandLine(ppid)
        #expect(parentArgs.contains("container-monitor"), "the container's parent is \(parentArgs), not its monitor")
        #expect(!parentArgs.contains("runtime"))
        // the runtime's verbs see the container as before: state, pid, status
        let state = try s.ok(["runtime", "--root", "\(s.root)/runtime", "state", id])
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(state.utf8)) as? [String: Any])
        #expect(obj["status"] as? String == "running")
        #expect((obj["pid"] as? NSNumber)?.int32Value == pid)
        #expect(try String(contentsOfFile: "\(s.root)/containers/\(id)/bundle/pid", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines) == String(pid))
        // exec joins it; kill's status is the container's (128 + SIGKILL)
        #expect(try s.ok(["exec", id, "echo", "in"]) == "in")
        try s.ok(["kill", id])
        #expect(try Scenario.eventually { try s.ok(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", id]) == "exited 137" })
        // the monitor deleted the runtime's state at the exit, as it did with a runtime process
        #expect(Scenario.eventually { !FileManager.default.fileExists(atPath: "\(s.root)/runtime/\(id)") })
        // and it starts again
        try s.ok(["start", id])
        #expect(try s.ok(["exec", id, "echo", "again"]) == "again")
        try s.ok(["rm", "-f", id])
    }

    /// A user who installs the binary as `docker` (a copy or a hard link, not only a symlink)
    /// gets the same runtime: the executable itself, run in the monitor's process, never a runc
    /// found on the PATH.
    @Test func aBinaryInstalledUnderAnotherNameIsItsOwnRuntime() throws {
        try #require(Scenario.canRun, "needs root and busybox-static")
        let s = try Scenario(66)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let dir = "/var/tmp/dbstart-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let docker = "\(dir)/docker"
        if link(s.binary, docker) != 0 { try FileManager.default.copyItem(atPath: s.binary, toPath: docker) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: docker)
        p.arguments = ["run", "--root", s.root, "-d", "--network", "none", "busybox:test", "sleep", "30"]
        var env = ProcessInfo.processInfo.environment
        env["DOCKBUILD_OCI_RUNTIME"] = nil
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let id = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let pid = try #require(Int32(try s.ok(["inspect", "-f", "{{.State.Pid}}", id])))
        let monitor = Self.commandLine(try #require(Self.parent(of: pid)))
        #expect(monitor.first == docker && monitor.contains("container-monitor"), "the container's parent is \(monitor)")
        let state = try #require(FileManager.default.contents(atPath: "\(s.root)/containers/\(id)/state.json"))
        let runtime = (try JSONSerialization.jsonObject(with: state) as? [String: Any])?["ociRuntime"] as? [String]
        #expect(runtime == [docker, "runtime"], "the recorded runtime is \(runtime ?? [])")
        try s.ok(["rm", "-f", id])
    }

    /// A name is in use only as another container's name: a record that holds the same text
    /// elsewhere (its command, a label) does not take it (the name check skips records without
    /// the name's bytes unparsed).
    @Test func aNameIsTakenOnlyByAnotherContainersName() throws {
        try #require(Scenario.canRun, "needs root and busybox-static")
        let s = try Scenario(65)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let web = try s.ok(["create", "--network", "none", "--name", "web", "--label", "peer=other_name", "busybox:test", "echo", "other_name"])
        let taken = try s.db(["create", "--network", "none", "--name", "web", "busybox:test", "true"])
        #expect(taken.status == 125)
        #expect(taken.err.contains("\"web\"") && taken.err.contains(String(web.prefix(12))), "\(taken.err)")
        let other = try s.ok(["create", "--network", "none", "--name", "other_name", "busybox:test", "true"])
        #expect(try s.ok(["inspect", "-f", "{{.Name}}", other]) == "/other_name")
        // generated names are unique too
        let generated = try (0..<3).map { _ in try s.ok(["create", "--network", "none", "busybox:test", "true"]) }
        let names = try generated.map { try s.ok(["inspect", "-f", "{{.Name}}", $0]) }
        #expect(Set(names).count == 3 && !names.contains("/web") && !names.contains("/other_name"), "\(names)")
    }

    @Test func bytesSearch() {
        let d = Data("{\"name\":\"calm_turing\",\"x\":\"aab\"}".utf8)
        #expect(ContainerStore.contains(d, "calm_turing"))
        #expect(ContainerStore.contains(d, "{"))
        #expect(ContainerStore.contains(d, "\"}"))
        #expect(ContainerStore.contains(d, "aab"))
        #expect(!ContainerStore.contains(d, "calm_turinG"))
        #expect(!ContainerStore.contains(d, "abb"))
        #expect(!ContainerStore.contains(Data("ab".utf8), "abc"))
        #expect(!ContainerStore.contains(Data(), "a"))
        #expect(!ContainerStore.contains(d, ""))
    }

    @Test func exitStatusOutputAndStartErrorsAreTheRuntimeProcesss() throws {
        try #require(Scenario.canRun, "needs root and busybox-static")
        let s = try Scenario(64)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let r = try s.db(["run", "--rm", "--network", "none", "busybox:test", "sh", "-c", "echo out; echo err >&2; exit 3"])
        #expect(r.status == 3)
        #expect(r.out == "out\n")
        #expect(r.err == "err\n")
        // a program that is not there: docker's 127 and the runtime's message, in the record too
        let missing = try s.db(["run", "--name", "missing", "--network", "none", "busybox:test", "nonexistent-program"])
        #expect(missing.status == 127)
        #expect(missing.err.contains("dockbuild runtime: exec: \"nonexistent-program\": executable file not found"), "\(missing.err)")
        #expect(try s.ok(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "missing"]) == "exited 127")
        #expect(try s.ok(["inspect", "-f", "{{.State.Error}}", "missing"]).contains("executable file not found"))
        let id = try s.ok(["inspect", "-f", "{{.Id}}", "missing"])
        #expect(!FileManager.default.fileExists(atPath: "\(s.root)/runtime/\(id)"))
        // nothing left running or mounted by the failed start; it can be removed
        try s.ok(["rm", "missing"])
        #expect(try s.ok(["ps", "-aq"]) == "")
    }
}
