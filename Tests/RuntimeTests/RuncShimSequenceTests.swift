import Foundation
import Testing
@testable import Runtime

/// The calls containerd's runc shim makes, in its order and with its flags (`--log FILE
/// --log-format json` on every call, `--pid-file`, `exec --process FILE --detach`,
/// `update --resources -`, `ps --format json`, `kill ID 0` as podman probes), run against
/// `dockbuild-runc` and runc on the same bundle. The shim reads a failed call's reason as the
/// last `"level":"error"` record of the log file and matches runc's phrases in it
/// ("container not running" after a kill, "does not exist" after delete and state): both
/// runtimes must give the same exit codes and records those phrases would match.
@Suite(.serialized) struct RuncShimSequenceTests {
    /// The last error record's message, as the shim's getLastRuntimeError reads it.
    static func lastError(_ log: String) -> (count: Int, msg: String?) {
        var msg: String?, count = 0
        for line in (readFile(log) ?? "").split(separator: "\n") {
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            if obj["level"] as? String == "error" { msg = obj["msg"] as? String; count += 1 }
        }
        return (count, msg)
    }

    /// One step's result: exit code and the new last error record, if the call added one.
    struct Step: Equatable, CustomStringConvertible {
        var code: Int32
        var phrase: String?
        var description: String { "\(code)" + (phrase.map { " [\($0)]" } ?? "") }
    }

    @Test("containerd's create/start/exec/update/ps/pause/kill/delete sequence with --log json: runc's exit codes and phrases")
    func containerdSequence() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let bin = try RuncDropInTests.ours
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let process = b.dir + "/process.json"
        try Data(#"{"args":["sleep","30"],"cwd":"/","env":["PATH=/bin"],"user":{"uid":0,"gid":0}}"#.utf8)
            .write(to: URL(fileURLWithPath: process))
        let resources = b.dir + "/resources.json"
        try Data(#"{"memory":{"limit":41943040},"pids":{"limit":100}}"#.utf8).write(to: URL(fileURLWithPath: resources))
        // The phrases containerd (and podman) look for in the record.
        let phrases = ["container not running", "does not exist", "executable file not found"]
        var runs: [[Step]] = []
        var runtimes = [bin]
        if let runc = RuncDropInTests.runc { runtimes.append(runc) }
        for rt in runtimes {
            let name = rt == bin ? "ours" : "runc"
            let root = b.dir + "/root-\(name)", log = b.dir + "/log-\(name).json"
            let pidFile = b.dir + "/init-\(name).pid", execPid = b.dir + "/exec-\(name).pid"
            RuncDropInTests.remove(rt, root: root, id: "shim")
            defer { RuncDropInTests.remove(rt, root: root, id: "shim") }
            var steps: [Step] = []
            func step(_ args: [String], stdin: String? = nil) throws -> (code: Int32, out: String, err: String) {
                let before = Self.lastError(log)
                let argv = [rt, "--root", root, "--log", log, "--log-format", "json"] + args
                let r = stdin == nil ? try RuncDropInTests.call(argv)
                    : try RuncDropInTests.call(["/bin/sh", "-c", argv.map { "'\($0)'" }.joined(separator: " ") + " < '\(stdin!)'"])
                let after = Self.lastError(log)
                let phrase = after.count == before.count ? nil : after.msg.map { m in phrases.first { m.contains($0) } ?? "other" }
                steps.append(Step(code: r.code, phrase: phrase))
                return r
            }
            try RuncDropInTests.write(b, ["sleep", "1000"], cgroup: "dockbuild-shim-\(name)-\(tag)")
            _ = try step(["create", "--bundle", b.dir, "--pid-file", pidFile, "shim"])
            let pid = Int32((readFile(pidFile) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            #expect(pid > 0, "\(name): pid file")
            _ = try step(["start", "shim"])
            let state = try step(["state", "shim"])
            #expect(state.out.contains("\"pid\": \(pid),") && state.out.contains("\"status\": \"running\""), "\(name): \(state)")
            _ = try step(["kill", "shim", "0"])
            _ = try step(["exec", "--process", process, "--detach", "--pid-file", execPid, "shim"])
            let second = Int32((readFile(execPid) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            let ps = try step(["ps", "--format", "json", "shim"])
            let pids = (try? JSONSerialization.jsonObject(with: Data(ps.out.utf8)) as? [Int]) ?? []
            #expect(Set(pids) == Set([Int(pid), Int(second)]), "\(name): ps \(ps.out), pids \(pid) \(second)")
            _ = try step(["update", "--resources", "-", "shim"], stdin: resources)
            _ = try step(["pause", "shim"])
            _ = try step(["resume", "shim"])
            _ = try step(["kill", "--all", "shim", "9"])
            #expect(LifecyclePoll.eventually(20) { (try? RuncDropInTests.call([rt, "--root", root, "state", "shim"]).out.contains("stopped")) == true },
                    "\(name): stopped after kill --all")
            _ = try step(["kill", "shim", "9"])                 // containerd: "process already finished"
            _ = try step(["kill", "--all", "shim", "9"])        // allowed on a stopped container
            _ = try step(["delete", "shim"])
            _ = try step(["delete", "shim"])                    // containerd: ignored when "does not exist"
            _ = try step(["state", "shim"])                     // containerd: "stopped" when "does not exist"
            _ = try step(["kill", "shim", "9"])
            _ = try step(["delete", "--force", "shim"])
            // A program that is not there: create fails and says so in the record.
            try RuncDropInTests.write(b, ["nosuch"], cgroup: "dockbuild-shim-\(name)-\(tag)")
            _ = try step(["create", "--bundle", b.dir, "--pid-file", pidFile, "shim"])
            _ = try step(["state", "shim"])
            runs.append(steps)
        }
        let expected: [Step] = [
            .init(code: 0), .init(code: 0), .init(code: 0), .init(code: 0), .init(code: 0), .init(code: 0), .init(code: 0),
            .init(code: 0), .init(code: 0), .init(code: 0),
            .init(code: 1, phrase: "container not running"), .init(code: 0), .init(code: 0),
            .init(code: 1, phrase: "does not exist"), .init(code: 1, phrase: "does not exist"), .init(code: 1, phrase: "does not exist"),
            .init(code: 0),
            .init(code: 1, phrase: "executable file not found"), .init(code: 1, phrase: "does not exist"),
        ]
        #expect(runs.first == expected, "ours \(runs.first ?? [])")
        if runs.count == 2 { #expect(runs[0] == runs[1], "ours \(runs[0])\nrunc \(runs[1])") }
    }

    @Test("kill KILL of a paused container stops it (runc thaws it); TERM waits for resume; both runtimes alike")
    func killPausedContainer() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let bin = try RuncDropInTests.ours
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var runtimes = [bin]
        if let runc = RuncDropInTests.runc { runtimes.append(runc) }
        for rt in runtimes {
            let name = rt == bin ? "ours" : "runc", root = b.dir + "/root-\(name)"
            func status() -> String {
                (try? RuncDropInTests.call([rt, "--root", root, "state", "kp"]).out.firstMatch(of: #/"status": "(\w+)"/#).map { String($0.1) }) ?? "gone"
            }
            // sh as the init: unlike a bare sleep it dies of TERM (a trap exits).
            try RuncDropInTests.write(b, ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"], cgroup: "dockbuild-killpaused-\(name)-\(tag)")
            #expect(try RuncDropInTests.call([rt, "--root", root, "run", "-d", "--bundle", b.dir, "kp"]).code == 0)
            defer { RuncDropInTests.remove(rt, root: root, id: "kp") }
            #expect(try RuncDropInTests.call([rt, "--root", root, "pause", "kp"]).code == 0)
            #expect(try RuncDropInTests.call([rt, "--root", root, "kill", "kp", "TERM"]).code == 0)
            usleep(300_000)
            #expect(status() == "paused", "\(name): TERM waits while frozen")
            #expect(try RuncDropInTests.call([rt, "--root", root, "kill", "kp", "KILL"]).code == 0)
            #expect(LifecyclePoll.eventually(10) { status() == "stopped" }, "\(name): KILL of a paused container stops it: \(status())")
        }
    }

    @Test("pause and resume of a created container, then start; pause of a stopped one fails with runc's phrase; both runtimes alike")
    func pauseCreatedContainer() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let bin = try RuncDropInTests.ours
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var runs: [[String]] = []
        var runtimes = [bin]
        if let runc = RuncDropInTests.runc { runtimes.append(runc) }
        for rt in runtimes {
            let name = rt == bin ? "ours" : "runc", root = b.dir + "/root-\(name)"
            var seen: [String] = []
            func status() -> String {
                (try? RuncDropInTests.call([rt, "--root", root, "state", "pc"]).out.firstMatch(of: #/"status": "(\w+)"/#).map { String($0.1) }) ?? "gone"
            }
            func step(_ args: [String]) throws {
                let r = try RuncDropInTests.call([rt, "--root", root] + args + ["pc"])
                seen.append("\(args[0]) \(r.code)" + (r.code == 0 ? "" : r.err.contains("container not running") ? " not-running" : " other"))
            }
            try RuncDropInTests.write(b, ["sleep", "1000"], cgroup: "dockbuild-pausecreated-\(name)-\(tag)")
            defer { RuncDropInTests.remove(rt, root: root, id: "pc") }
            try step(["create", "--bundle", b.dir])
            try step(["pause"])
            seen.append(status())
            try step(["resume"])
            seen.append(status())
            try step(["start"])
            seen.append(status())
            try step(["kill"])          // TERM: sleep as pid 1 ignores it
            try step(["kill", "--all"]) // TERM to every process: the same
            _ = try RuncDropInTests.call([rt, "--root", root, "kill", "pc", "KILL"])
            _ = LifecyclePoll.eventually(10) { status() == "stopped" }
            try step(["pause"])
            runs.append(seen)
        }
        #expect(runs[0] == ["create 0", "pause 0", "paused", "resume 0", "created", "start 0", "running", "kill 0", "kill 0", "pause 1 not-running"],
                "\(runs[0])")
        if runs.count == 2 { #expect(runs[0] == runs[1], "ours \(runs[0]), runc \(runs[1])") }
    }
}
