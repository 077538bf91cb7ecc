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

    /// A --rm container's overlay is mounted `volatile` (its unmount does not sync the disk); a
    /// kept container's is not.
    @Test func onlyARunRmContainersOverlayIsVolatile() throws {
        try #require(Scenario.canRun, "needs root and busybox-static")
        let s = try Scenario(62)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let rm = try s.ok(["run", "-d", "--rm", "--network", "none", "busybox:test", "sleep", "30"])
        let kept = try s.ok(["run", "-d", "--network", "none", "busybox:test", "sleep", "30"])
        // the container's own view: its root is the overlay, with the options it was mounted with
        func options(_ id: String) throws -> String? {
            let info = try s.ok(["exec", id, "cat", "/proc/self/mountinfo"])
            return info.split(separator: "\n").first { $0.split(separator: " ").dropFirst(4).first == "/" && $0.contains(" - overlay ") }
                .map(String.init)
        }
        let rmLine = try #require(try options(rm), "no overlay root in the --rm container")
        let keptLine = try #require(try options(kept), "no overlay root in the kept container")
        #expect(rmLine.contains("volatile"), "\(rmLine)")
        #expect(!keptLine.contains("volatile"), "\(keptLine)")
        try s.ok(["stop", "-t", "0", rm, kept])
        // the --rm container is gone, its mount with it; the kept one can start again
        #expect(try s.ok(["ps", "-aq", "--no-trunc"]) == kept)
        try s.ok(["start", kept])
        try s.ok(["rm", "-f", kept])
    }
}
