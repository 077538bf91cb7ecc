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

/// `inspect` of a container and `ps`'s COMMAND as docker 20.10 prints them (issue #17),
/// compared with docker on this machine: Go's field order, four-space indent, no HTML escaping,
/// the fields docker always has, and the command quoted as strconv.Quote.
@Suite(.serialized) struct InspectLayoutTests {
    @Test(.enabled(if: Scenario.canRun)) func inspectAndCommandAsDocker() throws {
        let s = try Scenario(109)
        defer { s.cleanup() }
        try #require(FileManager.default.isExecutableFile(atPath: s.binary), "\(s.binary) is missing: run `swift build` first")
        try s.makeBusyboxImage()
        _ = try s.ok(["create", "--name", "lay", "--network", "none", "busybox:test", "sh", "-c", "echo \"x y\" a>b&"])
        let text = try s.db(["inspect", "lay"]).out
        #expect(text.hasPrefix("[\n    {\n        \"Id\": \""), "\(text.prefix(60))")
        #expect(text.contains("\"echo \\\"x y\\\" a>b&\""), "no \\u003e escapes, as docker's API writes")
        // the top-level keys in docker's order
        let keys = text.split(separator: "\n").filter { $0.hasPrefix("        \"") && !$0.hasPrefix("         ") }
            .compactMap { $0.split(separator: "\"").dropFirst().first.map(String.init) }
        #expect(keys == ["Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath", "HostnamePath", "HostsPath", "LogPath",
                         "Name", "RestartCount", "Driver", "Platform", "MountLabel", "ProcessLabel", "AppArmorProfile", "ExecIDs",
                         "HostConfig", "GraphDriver", "Mounts", "Config", "NetworkSettings"], "\(keys)")
        #expect(text.contains("\"State\": {\n            \"Status\": \"created\",\n            \"Running\": false,"))
        // fields docker always shows, with its values for a container that does not use them
        #expect(try s.ok(["inspect", "--format", "{{.HostConfig.CpuShares}} {{.HostConfig.Runtime}} {{json .HostConfig.ReadonlyPaths}}", "lay"])
                == "0 runc [\"/proc/bus\",\"/proc/fs\",\"/proc/irq\",\"/proc/sys\",\"/proc/sysrq-trigger\"]")
        #expect(try s.ok(["inspect", "--format", "{{.Config.AttachStdout}} {{.NetworkSettings.Bridge}}|{{.NetworkSettings.HairpinMode}}", "lay"])
                == "true |false")
        // COMMAND: arguments with a space in single quotes, cut at 20, Go-quoted
        #expect(try s.ok(["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]) == "\"sh -c 'echo \\\"x y\\\" a>b&'\"")
        #expect(try s.ok(["ps", "-a", "--format", "{{.Command}}"]) == "\"sh -c 'echo \\\"x y\\\" a…\"")
        // a container, an image and a volume in one array, as docker's top-level inspect
        _ = try s.ok(["volume", "create", "vol1"])
        let mixed = try s.db(["inspect", "lay", "busybox:test", "vol1", "nosuch"])
        #expect(mixed.status == 1 && mixed.err.contains("No such object: nosuch"), "\(mixed.err)")
        let docs = try #require(try JSONSerialization.jsonObject(with: Data(mixed.out.utf8)) as? [[String: Any]])
        #expect(docs.count == 3 && (docs[0]["Name"] as? String) == "/lay" && (docs[1]["RepoTags"] as? [String]) == ["busybox:test"]
                && (docs[2]["Name"] as? String) == "vol1", "\(mixed.out.prefix(300))")
    }

    @Test(.enabled(if: Scenario.canRun)) func statsAsDocker() throws {
        let s = try Scenario(110)
        defer { s.cleanup() }
        try #require(FileManager.default.isExecutableFile(atPath: s.binary), "\(s.binary) is missing: run `swift build` first")
        try s.makeBusyboxImage()
        _ = try s.ok(["run", "-d", "--name", "st", "--network", "none", "busybox:test", "sleep", "60"])
        let table = try s.ok(["stats", "--no-stream"]).split(separator: "\n").map(String.init)
        // docker's columns (the MEM USAGE column is as wide as its longest value)
        let header = try #require(table.first)
        #expect(header.hasPrefix("CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   "), "\(header)")
        #expect(header.hasSuffix("MEM %     NET I/O   BLOCK I/O   PIDS"), "\(header)")
        let json = try s.ok(["stats", "--no-stream", "--format", "json", "st"])
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String])
        #expect(obj.keys.sorted() == ["BlockIO", "CPUPerc", "Container", "ID", "MemPerc", "MemUsage", "Name", "NetIO", "PIDs"])
        #expect(obj["Container"] == "st" && obj["Name"] == "st" && obj["PIDs"] == "1" && obj["NetIO"] == "0B / 0B", "\(obj)")
        let mem = try #require(obj["MemUsage"])
        #expect(mem.range(of: #"^[0-9.]+(B|KiB|MiB) / [0-9.]+(MiB|GiB|TiB)$"#, options: .regularExpression) != nil, "\(mem)")
        #expect(try s.ok(["stats", "--no-stream", "--format", "table {{.Name}}\t{{.PIDs}}", "st"]) == "NAME      PIDS\nst        1")
        _ = try s.ok(["rm", "-f", "st"])
    }

    /// Image sizes as docker counts them: the files' bytes, uncompressed, not the gzip blobs.
    @Test(.enabled(if: Scenario.canRun)) func imageSizesUncompressed() throws {
        let s = try Scenario(111)
        defer { s.cleanup() }
        try #require(FileManager.default.isExecutableFile(atPath: s.binary), "\(s.binary) is missing: run `swift build` first")
        let dir = "\(s.root)/src"
        try FileManager.default.createDirectory(atPath: "\(dir)/d", withIntermediateDirectories: true)
        // 5000 zero bytes gzip to almost nothing; a hard link and a symlink add no bytes
        try Data(count: 5000).write(to: URL(fileURLWithPath: "\(dir)/d/zeros"))
        try "12345".write(toFile: "\(dir)/five", atomically: true, encoding: .utf8)
        try FileManager.default.linkItem(atPath: "\(dir)/d/zeros", toPath: "\(dir)/hard")
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/soft", withDestinationPath: "five")
        _ = try s.ok(["import", dir, "sized:1"])
        #expect(try s.ok(["inspect", "--format", "{{.Size}} {{.VirtualSize}}", "sized:1"]) == "5005 5005")
        #expect(try s.ok(["images", "--format", "{{.Size}}", "sized"]) == "5kB")
        #expect(try s.ok(["history", "--format", "{{.Size}}", "sized:1"]) == "5kB")
        let blob = try s.ok(["inspect", "--format", "{{(index .Manifest.layers 0).size}}", "sized:1"])
        #expect((Int(blob) ?? 0) < 1000, "the blob is compressed: \(blob)")
    }
}
