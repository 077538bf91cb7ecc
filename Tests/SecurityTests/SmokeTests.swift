import Foundation
import Testing

/// The harness itself: a store with busybox:test runs a command through the real CLI.
@Suite(.serialized) struct HarnessTests {
    @Test(.enabled(if: Sec.canRun)) func busyboxImageRuns() throws {
        let s = try SecStore()
        let out = try s.ok(["run", "--rm", "--network", "none", "busybox:test", "echo", "hello"])
        #expect(out == "hello")
    }
}
