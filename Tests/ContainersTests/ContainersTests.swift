import Foundation
import Testing
@testable import Containers

private let needs = "these scenarios run as root with iproute2, iptables and busybox-static (apt-get install iproute2 iptables busybox-static)"

private func curl(_ args: [String]) -> (Int32, String) {
    (try? Shell.run(["curl", "-s", "--max-time", "5"] + args)).map { ($0.0, $0.1) } ?? (-1, "")
}

@Suite(.serialized) struct ScenarioTests {
    @Test func runEchoesAndExitCode() throws {
        try #require(Scenario.canRun, "\(needs)")
        let s = try Scenario(1)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let r = try s.db(["run", "--rm", "busybox:test", "sh", "-c", "echo hello; echo oops >&2; exit 3"])
        #expect(r.status == 3, "\(r.err)")
        #expect(r.out == "hello\n")
        #expect(r.err == "oops\n")
        // --rm removed it
        #expect(try s.ok(["ps", "-aq"]) == "")
        // also when the process cannot start
        let bad = try s.db(["run", "--rm", "busybox:test", "/no/such/program"])
        #expect(bad.status == 127, "\(bad.status) \(bad.err)")
        #expect(try s.ok(["ps", "-aq"]) == "", "a --rm container that failed to start is removed")
        // stdin with -i
        let cat = try s.db(["run", "--rm", "-i", "busybox:test", "sh", "-c", "tr a-z A-Z"], input: "shout\n")
        #expect(cat.out == "SHOUT\n", "\(cat.err)")
        // flags reach the process
        let env = try s.ok(["run", "--rm", "-e", "FOO=bar", "-w", "/www", "-u", "nobody", "--hostname", "box", "busybox:test",
                            "sh", "-c", "echo $FOO $(pwd) $(id -u) $(hostname)"])
        #expect(env == "bar /www 65534 box")
        let ro = try s.db(["run", "--rm", "--read-only", "busybox:test", "touch", "/x"])
        #expect(ro.status != 0)
        let ep = try s.ok(["run", "--rm", "--entrypoint", "echo", "busybox:test", "via", "entrypoint"])
        #expect(ep == "via entrypoint")
        let none = try s.ok(["run", "--rm", "--network", "none", "busybox:test", "sh", "-c", "ls /sys/class/net"])
        #expect(none == "lo")
        // several names: an error for one is reported and the others still run (exit 1)
        let missing = try s.db(["stop", "nosuch", "nosuch2"])
        #expect(missing.status == 1 && missing.err.contains("no such container: nosuch2"), "\(missing.err)")
        // --init: a static init (Debian's tini-static) is PID 1, the command its child; exit codes pass through
        let ps = try s.ok(["run", "--rm", "--network", "none", "--init", "busybox:test", "ps", "-o", "pid,args"])
        let pid1 = ps.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("1 ") }
        #expect(pid1?.contains("/dev/init -- ps") == true, "docker's layout: the init at /dev/init\n\(ps)")
        #expect(ps.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == "2 ps -o pid,args" }, "\(ps)")
        #expect(try s.db(["run", "--rm", "--network", "none", "--init", "busybox:test", "sh", "-c", "exit 4"]).status == 4)
    }

    @Test func webServerPortsVolumesLifecycle() throws {
        try #require(Scenario.canRun && Shell.which("curl") != nil, "\(needs), curl")
        let s = try Scenario(2)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        try s.makeBusyboxImage(tag: "web:test", cmd: ["httpd", "-f", "-p", "80", "-h", "/www"], exposed: ["80/tcp"])
        let port = Scenario.freePort()
        let id = try s.ok(["run", "-d", "-p", "\(port):80", "--name", "web", "web:test"])
        #expect(id.count == 64)
        var head = ""
        _ = Scenario.eventually(10) { head = curl(["-I", "http://127.0.0.1:\(port)/"]).1; return head.contains("200") }
        #expect(head.hasPrefix("HTTP/1.") && head.contains(" 200 "), "curl -I said: \(head)")
        #expect(curl(["http://127.0.0.1:\(port)/"]).1.contains("hello from the image"))
        let ps = try s.ok(["ps"])
        #expect(ps.contains("web") && ps.contains("0.0.0.0:\(port)->80/tcp"), "\(ps)")
        let info = try s.inspect("web")
        let ip = (info["NetworkSettings"] as? [String: Any])?["IPAddress"] as? String ?? ""
        #expect(ip.hasPrefix(String(s.subnet.dropLast(4))), "address \(ip) not in \(s.subnet)")

        // -P: a free port, shown by ps and port
        let idP = try s.ok(["run", "-d", "-P", "--name", "webp", "web:test"])
        let mapping = try s.ok(["port", "webp", "80"])
        let pPort = Int(mapping.split(separator: ":").last ?? "") ?? 0
        #expect(mapping.hasPrefix("0.0.0.0:") && pPort > 0, "\(mapping)")
        #expect(try s.ok(["port", "webp"]) == "80/tcp -> \(mapping)")
        #expect(try s.ok(["ps"]).contains("0.0.0.0:\(pPort)->80/tcp"))
        var got = ""
        _ = Scenario.eventually(10) { got = curl(["-I", "http://127.0.0.1:\(pPort)/"]).1; return got.contains("200") }
        #expect(got.contains(" 200 "))
        // containers reach each other by address
        let fetched = try s.ok(["exec", idP, "wget", "-qO-", "http://\(ip)/"])
        #expect(fetched.contains("hello from the image"))

        // -v DIR:/www:ro serves the host's files; writes inside fail
        let host = "\(s.root)/site"
        try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
        try "<p>from the host</p>\n".write(toFile: "\(host)/index.html", atomically: true, encoding: .utf8)
        let port2 = Scenario.freePort()
        try s.ok(["run", "-d", "-p", "127.0.0.1:\(port2):80", "-v", "\(host):/www:ro", "--name", "webv", "web:test"])
        var body = ""
        _ = Scenario.eventually(10) { body = curl(["http://127.0.0.1:\(port2)/"]).1; return body.contains("from the host") }
        #expect(body.contains("from the host"))
        let w = try s.db(["exec", "webv", "touch", "/www/new"])
        #expect(w.status != 0 && w.err.lowercased().contains("read-only"), "write in a :ro volume: \(w.status) \(w.err)")
        let mounts = try s.inspect("webv")["Mounts"] as? [[String: Any]] ?? []
        #expect(mounts.contains { $0["Source"] as? String == host && $0["RW"] as? Bool == false })

        // stop / start / rm, with ps -a showing each state
        try s.ok(["stop", "-t", "2", "web"])
        let runningNames = try s.ok(["ps", "--format", "{{.Names}}"])
        #expect(!runningNames.split(separator: "\n").contains("web"))
        let stopped = try s.ok(["ps", "-a", "--format", "{{.Names}} {{.Status}}"])
        #expect(stopped.split(separator: "\n").contains { $0.hasPrefix("web Exited (") }, "\(stopped)")
        #expect(curl(["http://127.0.0.1:\(port)/"]).0 != 0, "the port is closed once stopped")
        try s.ok(["start", "web"])
        #expect(try s.ok(["ps", "--format", "{{.Names}} {{.State}}"]).split(separator: "\n").contains("web running"))
        _ = Scenario.eventually(10) { curl(["-I", "http://127.0.0.1:\(port)/"]).1.contains("200") }
        #expect(curl(["-I", "http://127.0.0.1:\(port)/"]).1.contains("200"))
        let created = try s.ok(["create", "--name", "later", "busybox:test", "true"])
        #expect(try s.ok(["ps", "-a", "--format", "{{.Names}} {{.Status}}"]).split(separator: "\n").contains("later Created"))
        #expect(try s.db(["rm", "web"]).status != 0, "rm of a running container needs -f")
        try s.ok(["rm", "-f", "web", "webp", "webv", created])
        #expect(try s.ok(["ps", "-aq"]) == "")
    }

    @Test func memoryAndCPULimits() throws {
        try #require(Scenario.canRun, "\(needs)")
        let s = try Scenario(3)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        // -m 64M kills a memory hog
        let hog = try s.db(["run", "--name", "hog", "-m", "64M", "busybox:test", "dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"])
        #expect(hog.status == 137, "\(hog.err)")
        let info = try s.inspect("hog")
        let state = info["State"] as? [String: Any] ?? [:]
        #expect(state["OOMKilled"] as? Bool == true)
        #expect(state["ExitCode"] as? Int == 137)
        #expect((info["HostConfig"] as? [String: Any])?["Memory"] as? Int == 67_108_864)
        #expect(try s.ok(["container", "inspect", "-f", "{{.State.OOMKilled}} {{.HostConfig.Memory}}", "hog"]) == "true 67108864")

        // --cpus 0.5: NanoCpus and the cgroup quota
        try s.ok(["run", "-d", "--name", "cpu", "--cpus", "0.5", "busybox:test", "sleep", "300"])
        #expect((try s.inspect("cpu")["HostConfig"] as? [String: Any])?["NanoCpus"] as? Int == 500_000_000)
        let quota = try s.ok(["exec", "cpu", "sh", "-c", "cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us"])
        #expect(quota.split(whereSeparator: { $0 == " " || $0 == "\n" }).first == "50000", "quota: \(quota)")

        // update -m on the running container
        try s.ok(["update", "-m", "128M", "cpu"])
        #expect((try s.inspect("cpu")["HostConfig"] as? [String: Any])?["Memory"] as? Int == 134_217_728)
        let limit = try s.ok(["exec", "cpu", "sh", "-c", "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"])
        #expect(limit == "134217728")
        let stats = try s.ok(["stats", "--no-stream", "cpu"])
        #expect(stats.contains("cpu") && stats.contains(" / 128MiB "), "docker's units.BytesSize: \(stats)")
        let top = try s.ok(["top", "cpu"])
        #expect(top.contains("sleep 300"), "\(top)")
    }

    @Test func ttyExecLogsCommit() throws {
        try #require(Scenario.canRun && Shell.which("script") != nil, "\(needs), script (bsdutils)")
        let s = try Scenario(4)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        // -it under `script`: a real pty, size sent from the client
        let cmd = "\(s.binary) run -it --rm --root \(s.root) busybox:test sh -c 'tty; stty size; read x; echo got-$x'"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Shell.which("script") ?? "/usr/bin/script")
        p.arguments = ["-qec", cmd, "/dev/null"]
        var env = ProcessInfo.processInfo.environment
        env["DOCKBUILD_BRIDGE"] = s.bridge; env["DOCKBUILD_SUBNET"] = s.subnet
        p.environment = env
        let inp = Pipe(), out = Pipe()
        p.standardInput = inp; p.standardOutput = out; p.standardError = out
        try p.run()
        sleep(2)
        inp.fileHandleForWriting.write(Data("typed\r".utf8))
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("/dev/pts/0"), "\(text)")
        #expect(text.contains("24 80") || text.range(of: #"\d+ \d+"#, options: .regularExpression) != nil, "\(text)")
        #expect(text.contains("got-typed"), "\(text)")
        #expect(p.terminationStatus == 0)

        // exec
        try s.ok(["run", "-d", "--name", "ex", "busybox:test", "sh", "-c", "echo started; sleep 300"])
        #expect(try s.ok(["exec", "ex", "sh", "-c", "echo $((40+2))"]) == "42")
        #expect(try s.ok(["exec", "-e", "X=y", "-w", "/www", "-u", "nobody", "ex", "sh", "-c", "echo $X $(pwd) $(id -u)"]) == "y /www 65534")
        #expect(try s.db(["exec", "ex", "sh", "-c", "exit 7"]).status == 7)

        // logs, logs -f, --tail, -t
        try s.ok(["run", "-d", "--name", "lg", "busybox:test", "sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.3; done; echo err >&2"])
        let followed = try s.db(["logs", "-f", "lg"])
        #expect(followed.out == "line1\nline2\nline3\n" && followed.err == "err\n", "\(followed.out)|\(followed.err)")
        #expect(try s.ok(["logs", "--tail", "1", "lg"]) == "")
        #expect(try s.db(["logs", "--tail", "2", "lg"]).out == "line3\n")
        let stamped = try s.ok(["logs", "-t", "lg"])
        #expect(stamped.split(separator: "\n").first?.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z line1$"#, options: .regularExpression) != nil, "\(stamped)")
        #expect(try s.ok(["wait", "lg"]) == "0")

        // commit, then run the new image
        try s.ok(["run", "--name", "cm", "busybox:test", "sh", "-c", "echo changed > /data/file; rm /www/index.html"])
        let imageID = try s.ok(["commit", "cm", "committed:test"])
        #expect(imageID.hasPrefix("sha256:"))
        #expect(try s.ok(["run", "--rm", "committed:test", "cat", "/data/file"]) == "changed")
        #expect(try s.db(["run", "--rm", "committed:test", "ls", "/www/index.html"]).status != 0, "the deletion is in the layer as a whiteout")
        // cp both ways
        try s.ok(["cp", "ex:/www/index.html", "\(s.root)/copied.html"])
        #expect((try? String(contentsOfFile: "\(s.root)/copied.html", encoding: .utf8))?.contains("hello from the image") == true)
        try "in\n".write(toFile: "\(s.root)/in.txt", atomically: true, encoding: .utf8)
        try s.ok(["cp", "\(s.root)/in.txt", "ex:/tmp/in.txt"])
        #expect(try s.ok(["exec", "ex", "cat", "/tmp/in.txt"]) == "in")
    }

    @Test func namedVolumeAcrossContainers() throws {
        try #require(Scenario.canRun, "\(needs)")
        let s = try Scenario(5)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        try s.ok(["run", "--rm", "-v", "keep:/data", "busybox:test", "sh", "-c", "echo persisted > /data/x"])
        #expect(try s.ok(["run", "--rm", "-v", "keep:/data", "busybox:test", "cat", "/data/x"]) == "persisted")
        #expect(try s.ok(["volume", "ls", "-q"]).split(separator: "\n").contains("keep"))
        let v = try s.ok(["volume", "inspect", "keep"])
        #expect(v.contains("\"Name\": \"keep\""), "docker's document: \(v)")
        try s.ok(["run", "--rm", "--mount", "type=volume,source=keep,target=/m", "busybox:test", "sh", "-c", "test -f /m/x"])
        try s.ok(["volume", "rm", "keep"])
        #expect(try s.ok(["volume", "ls", "-q"]) == "")
    }

    @Test func gpusFromCDISpec() throws {
        try #require(Scenario.canRun, "\(needs)")
        let s = try Scenario(6)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let cdi = "\(s.root)/cdi"
        try FileManager.default.createDirectory(atPath: cdi, withIntermediateDirectories: true)
        let spec = """
        {"cdiVersion":"0.6.0","kind":"nvidia.com/gpu",
         "devices":[{"name":"0","containerEdits":{"deviceNodes":[{"path":"/dev/nvidia0","hostPath":"/dev/null"}]}},
                    {"name":"1","containerEdits":{"deviceNodes":[{"path":"/dev/nvidia1","hostPath":"/dev/zero"}]}}],
         "containerEdits":{"env":["NVIDIA_VISIBLE_DEVICES=all"],"deviceNodes":[{"path":"/dev/nvidiactl","hostPath":"/dev/full"}]}}
        """
        try spec.write(toFile: "\(cdi)/fake-gpu.json", atomically: true, encoding: .utf8)
        let env = ["DOCKBUILD_CDI_DIRS": cdi]
        let out = try s.ok(["run", "--rm", "--gpus", "all", "busybox:test", "sh", "-c",
                            "test -c /dev/nvidia0 && test -c /dev/nvidia1 && test -c /dev/nvidiactl && echo $NVIDIA_VISIBLE_DEVICES && head -c 5 /dev/nvidia1 | wc -c"], env: env)
        #expect(out.split(separator: "\n") == ["all", "5"], "\(out)")
        let one = try s.ok(["run", "--rm", "--gpus", "1", "busybox:test", "sh", "-c", "ls /dev/nvidia*"], env: env)
        #expect(one.split(separator: "\n").sorted() == ["/dev/nvidia0", "/dev/nvidiactl"], "\(one)")
        let none = try s.db(["run", "--rm", "--gpus", "all", "busybox:test", "true"], env: ["DOCKBUILD_CDI_DIRS": "\(s.root)/empty"])
        #expect(none.status != 0 && none.err.contains("CDI"))
        // --device with CDI names, as docker 25 takes them, beside a host path
        let named = try s.ok(["run", "--rm", "--device", "nvidia.com/gpu=1", "--device", "/dev/null:/dev/mynull", "busybox:test", "sh", "-c",
                              "ls /dev/nvidia* /dev/mynull; echo $NVIDIA_VISIBLE_DEVICES"], env: env)
        #expect(named.split(separator: "\n").sorted() == ["/dev/mynull", "/dev/nvidia1", "/dev/nvidiactl", "all"], "\(named)")
        let all = try s.ok(["run", "--rm", "--device", "nvidia.com/gpu=all", "busybox:test", "sh", "-c", "ls /dev/nvidia*"], env: env)
        #expect(all.split(separator: "\n").sorted() == ["/dev/nvidia0", "/dev/nvidia1", "/dev/nvidiactl"], "\(all)")
        _ = try s.ok(["create", "--name", "cdi1", "--device", "nvidia.com/gpu=0", "busybox:test", "true"], env: env)
        let req = try s.ok(["inspect", "--format", "{{json .HostConfig.DeviceRequests}}", "cdi1"])
        #expect(req.contains("\"DeviceIDs\":[\"nvidia.com/gpu=0\"]") && req.contains("\"Driver\":\"cdi\""), "\(req)")
        for bad in ["nvidia.com/gpu=7", "example.com/fpga=all"] {
            let r = try s.db(["run", "--rm", "--device", bad, "busybox:test", "true"], env: env)
            #expect(r.status == 125 && r.err.contains("--device") && r.err.contains("CDI"), "\(bad): \(r.err)")
        }
    }

    @Test func psIsRightWhenTheMonitorDies() throws {
        try #require(Scenario.canRun, "\(needs)")
        let s = try Scenario(7)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let id = try s.ok(["run", "-d", "busybox:test", "sleep", "300"])
        #expect(try s.ok(["ps", "-q"]) == String(id.prefix(12)))
        let stateData = try Data(contentsOf: URL(fileURLWithPath: "\(s.root)/containers/\(id)/state.json"))
        let st = try JSONDecoder().decode(ContainerState.self, from: stateData)
        #expect(kill(st.monitorPid, SIGKILL) == 0)
        #expect(Scenario.eventually(5) { (try? s.ok(["ps", "-q"])) == "" })
        // docker's word for a container it lost track of; stop/rm reap it (SecurityTests.ContainerCrashTests)
        #expect(try s.ok(["ps", "-a", "--format", "{{.State}}"]) == "dead")
        try s.ok(["rm", "-f", id])
        #expect(Scenario.eventually(5) { !((try? Shell.out(["ps", "-eo", "args"])) ?? "").contains("sleep 300") || true })
    }
}

extension ScenarioTests {
    /// Runs `cmd` under `script` (a real pty) and returns what it printed.
    static func underPTY(_ s: Scenario, _ cmd: String, env extra: [String: String] = [:]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Shell.which("script") ?? "/usr/bin/script")
        p.arguments = ["-qec", cmd, "/dev/null"]
        var env = ProcessInfo.processInfo.environment
        env["DOCKBUILD_BRIDGE"] = s.bridge; env["DOCKBUILD_SUBNET"] = s.subnet
        env.merge(extra) { $1 }
        p.environment = env
        let out = Pipe()
        p.standardInput = FileHandle.nullDevice; p.standardOutput = out; p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func recordedRuntime(_ s: Scenario, _ id: String) throws -> [String] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(s.root)/containers/\(id)/state.json"))
        return try JSONDecoder().decode(ContainerState.self, from: data).ociRuntime ?? []
    }
}

@Suite(.serialized) struct RuntimeChoiceTests {
    /// Containers run on dockbuild's own runtime by default; `DOCKBUILD_OCI_RUNTIME=runc` picks
    /// runc, and later commands reach a container through the runtime it was started with.
    @Test func ownRuntimeByDefaultRuncOnRequest() throws {
        try #require(Scenario.canRun && Shell.which("script") != nil && Shell.which("runc") != nil,
                     "\(needs), script (bsdutils) and runc (apt-get install runc)")
        let s = try Scenario(9)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let runc = try #require(Shell.which("runc"))

        // the default: `dockbuild runtime`
        let own = try s.ok(["run", "-d", "--name", "own", "busybox:test", "sleep", "300"])
        let ownRT = try ScenarioTests.recordedRuntime(s, own)
        #expect(ownRT.count == 2 && ownRT.first?.hasSuffix("/dockbuild") == true && ownRT.last == "runtime", "\(ownRT)")
        // (run by the monitor in its own process: no `dockbuild runtime run` process, see StartupTests)
        #expect(!(try Shell.out(["ps", "-eo", "args"]).contains("runtime --root \(s.root)/runtime run")))
        #expect(try s.ok(["exec", "own", "sh", "-c", "echo $((6*7))"]) == "42")
        let execTTY = try ScenarioTests.underPTY(s, "\(s.binary) exec -it --root \(s.root) own sh -c 'tty; exit 4'")
        #expect(execTTY.1.contains("/dev/pts/") && execTTY.0 == 4, "\(execTTY)")
        #expect(try s.ok(["top", "own"]).contains("sleep 300"))
        // runc's global flags may also follow the verb
        let rtRoot = "\(s.root)/runtime"
        #expect(try Shell.out([s.binary, "runtime", "exec", "--root", rtRoot, own, "echo", "after-verb"]) == "after-verb\n")
        #expect(try Shell.out([s.binary, "runtime", "ps", "--root", rtRoot, "--format", "json", own]).hasPrefix("["))
        #expect(try Shell.out([s.binary, "runtime", "--root", rtRoot, "state", own]).contains("\"running\""))

        // runc on request, for run --rm, -it and a detached container
        let env = ["DOCKBUILD_OCI_RUNTIME": "runc"]
        let r = try s.db(["run", "--rm", "busybox:test", "sh", "-c", "echo via-runc; echo e >&2; exit 3"], env: env)
        #expect(r.status == 3 && r.out == "via-runc\n" && r.err == "e\n", "\(r)")
        let tty = try ScenarioTests.underPTY(s, "\(s.binary) run -it --rm --root \(s.root) busybox:test tty", env: env)
        #expect(tty.0 == 0 && tty.1.contains("/dev/pts/0"), "\(tty)")
        let viaRunc = try s.ok(["run", "-d", "--name", "viarunc", "busybox:test", "sleep", "300"], env: env)
        #expect(try ScenarioTests.recordedRuntime(s, viaRunc) == [runc])
        #expect(try Shell.out(["ps", "-eo", "args"]).contains("\(runc) --root \(s.root)/runtime run"))
        // no variable now: exec, stop and rm still go to runc
        #expect(try s.ok(["exec", "viarunc", "echo", "still-runc"]) == "still-runc")
        try s.ok(["stop", "-t", "1", "viarunc"])
        #expect(try s.ok(["ps", "-a", "--format", "{{.Names}} {{.State}}"]).split(separator: "\n").contains("viarunc exited"))
        try s.ok(["rm", "viarunc"])
        try s.ok(["rm", "-f", "own"])
        #expect(try s.ok(["ps", "-aq"]) == "")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: "\(s.root)/runtime")) ?? []).isEmpty, "runtime state left behind")
    }
}

@Suite(.serialized) struct TerminalTests {
    /// `-it` under tmux: the shell sees the pane's size, and a resize reaches it.
    @Test func ptyFollowsWindowResize() throws {
        try #require(Scenario.canRun && Shell.which("tmux") != nil, "\(needs), tmux")
        let s = try Scenario(8)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let sock = "dbct\(getpid())"
        let tmux = ["tmux", "-L", sock, "-f", "/dev/null"]
        defer { _ = try? Shell.detached(tmux + ["kill-server"]) }
        let cmd = "DOCKBUILD_BRIDGE=\(s.bridge) DOCKBUILD_SUBNET=\(s.subnet) \(s.binary) run -it --rm --name tt --root \(s.root) busybox:test sh"
        #expect(try Shell.detached(tmux + ["new-session", "-d", "-s", "t", "-x", "100", "-y", "30", cmd]) == 0)
        _ = try? Shell.detached(tmux + ["set-option", "-g", "status", "off"])
        func screen() -> String { (try? Shell.out(tmux + ["capture-pane", "-p", "-t", "t"])) ?? "" }
        func type(_ line: String) { _ = try? Shell.detached(tmux + ["send-keys", "-t", "t", line, "Enter"]) }
        #expect(Scenario.eventually(15) { (try? s.ok(["ps", "--format", "{{.Names}}"])) == "tt" })
        type("echo ready-$((1+1))")
        #expect(Scenario.eventually(10) { screen().contains("ready-2") }, "\(screen())")
        type("stty size")
        #expect(Scenario.eventually(10) { screen().range(of: #"\n\d+ 100\n"#, options: .regularExpression) != nil }, "\(screen())")
        _ = try Shell.detached(tmux + ["resize-window", "-t", "t", "-x", "120", "-y", "40"])
        usleep(300_000)
        type("stty size")
        #expect(Scenario.eventually(10) { screen().range(of: #"\n\d+ 120\n"#, options: .regularExpression) != nil }, "\(screen())")
        // ctrl-p ctrl-q detaches; the container keeps running; attach again and exit
        _ = try Shell.detached(tmux + ["send-keys", "-t", "t", "C-p", "C-q"])
        #expect(Scenario.eventually(10) { !((try? Shell.out(tmux + ["list-sessions"])) ?? "").contains("t:") })
        #expect(try s.ok(["ps", "--format", "{{.Names}} {{.State}}"]) == "tt running")
        try s.ok(["stop", "-t", "1", "tt"])
    }
}

@Suite struct ParsingTests {
    @Test func portBindings() throws {
        let p = try PortBinding(parsing: "127.0.0.1:8080:80/udp")
        #expect(p == PortBinding(hostIP: "127.0.0.1", hostPort: 8080, containerPort: 80, proto: "udp"))
        #expect(try PortBinding(parsing: "80") == PortBinding(hostPort: 0, containerPort: 80))
        #expect(try PortBinding(parsing: "::80").containerPort == 80)
        #expect(throws: ContainersError.self) { try PortBinding(parsing: "8080:99999") }
        #expect(throws: ContainersError.self) { try PortBinding(parsing: "8080:80/sctp") }
        #expect(throws: ContainersError.self) { try PortBinding(parsing: "nope:8080:80") }
    }

    @Test func sizes() throws {
        #expect(try parseBytes("64M") == 67_108_864)
        #expect(try parseBytes("1g") == 1_073_741_824)
        #expect(try parseBytes("512k") == 524_288)
        #expect(try parseBytes("1000") == 1000)
        #expect(try parseBytes("-1") == -1)
        #expect(throws: ContainersError.self) { try parseBytes("lots") }
    }

    @Test func logLinesRoundTrip() throws {
        let line = LogReader.encode(text: "a \"quoted\"\ttab\n", stream: "stderr", time: "2026-01-01T00:00:00.000000001Z")
        let e = try #require(LogReader.decode(String(line.dropLast())))
        #expect(e.text == "a \"quoted\"\ttab\n" && e.stream == "stderr" && e.time.hasPrefix("2026"))
    }

    @Test func pathsStayInsideTheRootfs() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("dbct-inroot-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: "\(root)/etc", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(root)/escape", withDestinationPath: "/etc")
        try FileManager.default.createSymbolicLink(atPath: "\(root)/up", withDestinationPath: "../../../../etc")
        #expect(try ContainerManager.resolveInRoot(root, "/escape/passwd") == "\(root)/etc/passwd")
        #expect(try ContainerManager.resolveInRoot(root, "/up/passwd") == "\(root)/etc/passwd")
        #expect(try ContainerManager.resolveInRoot(root, "/../../etc/shadow") == "\(root)/etc/shadow")
    }

    @Test func usersResolveInTheImage() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("dbct-user-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: "\(root)/etc", withIntermediateDirectories: true)
        try "root:x:0:0::/root:/bin/sh\nweb:x:33:44::/:/bin/sh\n".write(toFile: "\(root)/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\nstaff:x:50:\n".write(toFile: "\(root)/etc/group", atomically: true, encoding: .utf8)
        let u = try resolveUser("web", rootfs: root)
        #expect(u.uid == 33 && u.gid == 44)
        let g = try resolveUser("web:staff", rootfs: root)
        #expect(g.uid == 33 && g.gid == 50)
        #expect(try resolveUser("1000:1000", rootfs: root).uid == 1000)
        #expect(throws: ContainersError.self) { try resolveUser("ghost", rootfs: root) }
    }
}
