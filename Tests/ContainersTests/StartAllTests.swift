import Foundation
import OCI
import Testing
@testable import Containers

/// `start --all` after the machine comes back (issue #17): the containers whose `--restart`
/// policy wants them running start again, as dockerd starts them at boot. A reboot is
/// simulated by SIGKILL of each monitor and its container's process.
@Suite(.serialized) struct StartAllTests {
    @Test(.enabled(if: Scenario.canRun)) func restartPoliciesAfterAReboot() throws {
        let s = try Scenario(108)
        defer { s.cleanup() }
        try #require(FileManager.default.isExecutableFile(atPath: s.binary), "\(s.binary) is missing: run `swift build` first")
        try s.makeBusyboxImage()
        func run(_ name: String, _ policy: String) throws {
            _ = try s.ok(["run", "-d", "--network", "none", "--name", name, "--restart", policy, "busybox:test", "sleep", "300"])
        }
        try run("always1", "always")
        try run("unless1", "unless-stopped")
        try run("unless2", "unless-stopped")
        try run("fail1", "on-failure")
        try run("fail2", "on-failure:3")
        try run("never1", "no")
        _ = try s.ok(["create", "--name", "created1", "--restart", "always", "busybox:test", "sleep", "300"])
        // stopped by the user before the "reboot": unless-stopped stays stopped, on-failure too
        _ = try s.ok(["stop", "-t", "1", "unless2"])
        _ = try s.ok(["stop", "-t", "1", "fail2"])
        // the machine goes down: every monitor and container process dies at once
        for name in ["always1", "unless1", "fail1", "never1"] {
            let id = try s.ok(["inspect", "--format", "{{.Id}}", name])
            let data = try Data(contentsOf: URL(fileURLWithPath: "\(s.root)/containers/\(id)/state.json"))
            let st = try JSONDecoder().decode(ContainerState.self, from: data)
            #expect(kill(st.monitorPid, SIGKILL) == 0)
            #expect(kill(st.pid, SIGKILL) == 0)
        }
        #expect(Scenario.eventually(5) { (try? s.ok(["ps", "-q"])) == "" })
        let started = try s.ok(["start", "--all"]).split(separator: "\n").map(String.init).sorted()
        #expect(started == ["always1", "fail1", "unless1"])
        let running = try s.ok(["ps", "--format", "{{.Names}}"]).split(separator: "\n").map(String.init).sorted()
        #expect(running == ["always1", "fail1", "unless1"])
        #expect(try s.ok(["exec", "always1", "echo", "back"]) == "back")
        // a second run finds nothing more to start; always starts a stopped one again
        #expect(try s.ok(["start", "--all"]).isEmpty)
        _ = try s.ok(["stop", "-t", "1", "always1"])
        #expect(try s.ok(["start", "--all"]) == "always1")
        // usage
        #expect(try s.db(["start", "--all", "never1"]).status == 125)
        #expect(try s.db(["start"]).status == 125)
        _ = try s.ok(["rm", "-f", "always1", "fail1", "unless1"])
    }
}
