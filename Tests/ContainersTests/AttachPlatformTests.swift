import Foundation
import OCI
import Testing
@testable import Containers

/// `run -a/--attach`, `--sig-proxy` and `run --platform` as docker 20.10 behaves (issue #17),
/// each checked against docker on this machine: the streams chosen by `-a` (and `-i`), the
/// signals an attached client passes on, and the manifest an index gives for a platform.
@Suite(.serialized) struct AttachPlatformTests {
    static func scenario(_ tag: Int) throws -> Scenario {
        let s = try Scenario(tag)
        try #require(FileManager.default.isExecutableFile(atPath: s.binary), "\(s.binary) is missing: run `swift build` first")
        try s.makeBusyboxImage()
        return s
    }

    // MARK: -a

    @Test(.enabled(if: Scenario.canRun)) func attachChoosesStreams() throws {
        let s = try Self.scenario(105)
        defer { s.cleanup() }
        let both = "echo out; echo err >&2; exit 3"
        var r = try s.db(["run", "--rm", "--network", "none", "busybox:test", "sh", "-c", both])
        #expect(r.status == 3 && r.out == "out\n" && r.err == "err\n", "default: stdout and stderr")
        r = try s.db(["run", "--rm", "--network", "none", "-a", "stderr", "busybox:test", "sh", "-c", both])
        #expect(r.status == 3 && r.out.isEmpty && r.err == "err\n", "-a stderr: \(r)")
        r = try s.db(["run", "--rm", "--network", "none", "-a", "STDOUT", "busybox:test", "sh", "-c", both])
        #expect(r.status == 3 && r.out == "out\n" && r.err.isEmpty, "-a STDOUT (any case): \(r)")
        // -i attaches stdin whatever -a says; -a stdin alone does not open it
        r = try s.db(["run", "--rm", "--network", "none", "-i", "-a", "stdout", "busybox:test", "cat"], input: "hi\n")
        #expect(r.status == 0 && r.out == "hi\n", "\(r)")
        r = try s.db(["run", "--rm", "--network", "none", "-a", "stdin", "-a", "stdout", "busybox:test", "cat"], input: "hi\n")
        #expect(r.status == 0 && r.out.isEmpty, "\(r)")
        r = try s.db(["run", "--rm", "--network", "none", "-i", "-a", "stdin", "busybox:test", "sh", "-c", "cat; exit 4"], input: "hi\n")
        #expect(r.status == 4 && r.out.isEmpty, "only stdin attached, the status still returned: \(r)")
        // docker's refusals
        // Config.Attach* as docker records them: -d none, -a the ones named
        _ = try s.ok(["run", "-d", "--name", "det", "--network", "none", "busybox:test", "true"])
        _ = try s.db(["run", "--name", "errs", "-a", "stderr", "--network", "none", "busybox:test", "true"])
        let attachFormat = "{{.Config.AttachStdin}} {{.Config.AttachStdout}} {{.Config.AttachStderr}}"
        #expect(try s.ok(["inspect", "--format", attachFormat, "det"]) == "false false false")
        #expect(try s.ok(["inspect", "--format", attachFormat, "errs"]) == "false false true")
        _ = try s.ok(["rm", "-f", "det", "errs"])
        r = try s.db(["run", "-d", "-a", "stdout", "busybox:test", "true"])
        #expect(r.status == 1 && r.err.contains("conflicting options: cannot specify both --attach and --detach"), "\(r)")
        r = try s.db(["run", "-a", "foo", "busybox:test", "true"])
        #expect(r.status == 125 && r.err.contains("valid streams are STDIN, STDOUT and STDERR"), "\(r)")
        #expect(try s.ok(["ps", "-a", "-q"]).isEmpty)
    }

    // MARK: --sig-proxy

    /// Starts `dockbuild run ARGS` attached (output to a file), returns the process and the file.
    func attached(_ s: Scenario, _ args: [String]) throws -> (Process, String) {
        let out = "\(s.root)/out-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: s.binary)
        p.arguments = ["run", "--root", s.root] + args
        var env = ProcessInfo.processInfo.environment
        env["DOCKBUILD_BRIDGE"] = s.bridge
        env["DOCKBUILD_SUBNET"] = s.subnet
        p.environment = env
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        p.standardError = FileHandle.nullDevice
        try p.run()
        return (p, out)
    }

    func running(_ s: Scenario, _ name: String) throws -> Bool {
        try s.ok(["ps", "--filter", "name=^\(name)$", "-q"]).isEmpty == false
    }

    @Test(.enabled(if: Scenario.canRun)) func sigProxyForwardsSignals() throws {
        let s = try Self.scenario(106)
        defer { s.cleanup() }
        let script = "trap 'echo got-usr1; exit 7' USR1; trap 'echo got-term; exit 8' TERM; echo ready; sleep 60 & wait"
        // default: a signal to the client reaches the container's process
        var (p, out) = try attached(s, ["--network", "none", "--name", "prox", "busybox:test", "sh", "-c", script])
        #expect(Scenario.eventually(10) { (try? String(contentsOfFile: out, encoding: .utf8))?.contains("ready") == true })
        kill(p.processIdentifier, SIGUSR1)
        p.waitUntilExit()
        #expect(p.terminationStatus == 7)
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "ready\ngot-usr1\n")
        (p, out) = try attached(s, ["--network", "none", "--name", "prox2", "busybox:test", "sh", "-c", script])
        #expect(Scenario.eventually(10) { (try? String(contentsOfFile: out, encoding: .utf8))?.contains("ready") == true })
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationStatus == 8, "SIGTERM forwarded, the client returns the container's status")
        // --sig-proxy=false: the client dies of the signal, the container runs on
        (p, out) = try attached(s, ["--network", "none", "--name", "noprox", "--sig-proxy=false", "busybox:test", "sh", "-c", script])
        #expect(Scenario.eventually(10) { (try? String(contentsOfFile: out, encoding: .utf8))?.contains("ready") == true })
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGTERM)
        #expect(try running(s, "noprox"))
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "ready\n")
        _ = try s.ok(["rm", "-f", "noprox"])
        #expect(try s.db(["run", "--sig-proxy=maybe", "busybox:test", "true"]).status == 125)
    }

    // MARK: --platform

    /// A two-platform index `multi:1` whose images say which platform they were built for
    /// (both hold this machine's busybox, so either runs without emulation).
    func makeMulti(_ s: Scenario) throws {
        let ctx = "\(s.root)/ctx-multi"
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(ctx)/bin", withIntermediateDirectories: true)
        try fm.copyItem(atPath: "/bin/busybox", toPath: "\(ctx)/bin/busybox")
        for a in ["cat", "sh", "true"] { try fm.createSymbolicLink(atPath: "\(ctx)/bin/\(a)", withDestinationPath: "busybox") }
        try "amd64\n".write(toFile: "\(ctx)/arch-amd64", atomically: true, encoding: .utf8)
        try "arm64\n".write(toFile: "\(ctx)/arch-arm64", atomically: true, encoding: .utf8)
        try "FROM scratch\nARG TARGETARCH\nCOPY bin/ /bin/\nCOPY arch-${TARGETARCH} /arch\nCMD [\"cat\", \"/arch\"]\n"
            .write(toFile: "\(ctx)/Dockerfile", atomically: true, encoding: .utf8)
        _ = try s.ok(["build", "-q", "--platform", "linux/amd64,linux/arm64", "-t", "multi:1", ctx])
        _ = try s.ok(["build", "-q", "--platform", "linux/arm64", "-t", "armonly:1", ctx])
    }

    @Test(.enabled(if: Scenario.canRun && Platform.host.architecture == "amd64")) func platformChoosesManifest() throws {
        let s = try Self.scenario(107)
        defer { s.cleanup() }
        try makeMulti(s)
        let run = ["run", "--rm", "--pull", "never", "--network", "none"]
        #expect(try s.ok(run + ["multi:1"]) == "amd64", "the host's platform by default")
        #expect(try s.ok(run + ["--platform", "linux/arm64", "multi:1"]) == "arm64")
        #expect(try s.ok(run + ["--platform", "arm64", "multi:1"]) == "arm64", "a lone architecture")
        _ = try s.ok(["create", "--pull", "never", "--name", "pa", "--platform", "linux/arm64", "multi:1"])
        #expect(try s.ok(["inspect", "--format", "{{.Platform}}", "pa"]) == "linux")
        #expect(try s.ok(["start", "-a", "pa"]) == "arm64")
        // docker's refusals and its warning
        var r = try s.db(run + ["--platform", "linux/s390x", "multi:1"])
        #expect(r.status == 125 && r.err.contains("not in the store for linux/s390x"), "\(r)")
        r = try s.db(run + ["--platform", "linux/arm64", "busybox:test", "true"])
        #expect(r.status == 125 && r.err.contains("does not match the specified platform: wanted linux/arm64, actual: linux/amd64"), "\(r)")
        r = try s.db(run + ["--platform", "linux/", "busybox:test", "true"])
        #expect(r.status == 125 && r.err.contains("--platform linux/"), "\(r)")
        r = try s.db(run + ["armonly:1"])
        #expect(r.status == 0 && r.out == "arm64\n")
        #expect(r.err.contains("WARNING: The requested image's platform (linux/arm64) does not match the detected host platform (linux/amd64) and no specific platform was requested"), "\(r.err)")
        r = try s.db(run + ["--platform", "linux/arm64", "armonly:1"])
        #expect(r.status == 0 && !r.err.contains("does not match the detected host platform"), "asked for: no warning")
    }
}
