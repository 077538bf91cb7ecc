import Foundation
import Testing
@testable import Containers

@Suite(.serialized) struct ScenarioTests {
    @Test func runEchoesAndExitCode() throws {
        try #require(Scenario.canRun, "these scenarios need root, runc, iproute2 and busybox-static (apt-get install runc iproute2 busybox-static)")
        let s = try Scenario(1)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let r = try s.db(["run", "--rm", "busybox:test", "sh", "-c", "echo hello; echo oops >&2; exit 3"])
        #expect(r.status == 3, "\(r.err)")
        #expect(r.out == "hello\n")
        #expect(r.err == "oops\n")
    }
}
