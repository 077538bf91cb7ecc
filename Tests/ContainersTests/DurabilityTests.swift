import Foundation
import Testing
@testable import Containers

/// What `run --rm` writes durably: nothing (its records are removed at exit, and each fsync
/// was milliseconds of every run), while a kept container's record, state and image hold
/// are fsynced. Counted with strace over the CLI, the monitor and the runtime.
@Suite(.serialized) struct DurabilityTests {
    static func fsyncs(_ s: Scenario, _ args: [String]) throws -> (status: Int32, count: Int, trace: String) {
        let trace = "\(s.root)/strace-\(UUID().uuidString).txt"
        let r = try Shell.run(["strace", "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync", "-o", trace, s.binary, args[0], "--root", s.root]
            + args.dropFirst())
        let text = (try? String(contentsOfFile: trace, encoding: .utf8)) ?? ""
        return (r.0, text.split(separator: "\n").filter { $0.contains("fsync(") }.count, text)
    }

    @Test func runRmWritesNothingDurablyAndAKeptContainerIsSynced() throws {
        try #require(Scenario.canRun && Shell.which("strace") != nil, "needs root, busybox-static and strace (apt-get install strace)")
        let s = try Scenario(61)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        // the first run unpacks the image's layer into the shared snapshots, durably (kept content)
        try s.ok(["run", "--rm", "--network", "none", "busybox:test", "true"])
        let rm = try Self.fsyncs(s, ["run", "--rm", "--network", "none", "busybox:test", "true"])
        #expect(rm.status == 0)
        #expect(rm.count == 0, "run --rm fsynced:\n\(rm.trace)")
        #expect(try s.ok(["ps", "-aq"]) == "")
        let kept = try Self.fsyncs(s, ["run", "--network", "none", "--name", "kept", "busybox:test", "true"])
        #expect(kept.status == 0)
        // the record, the state (at create and at each change) and the image hold
        #expect(kept.count >= 4, "a kept container's files were not synced:\n\(kept.trace)")
        #expect(try s.ok(["ps", "-a", "--format", "{{.Names}} {{.Status}}"]).hasPrefix("kept Exited (0)"))
    }
}
