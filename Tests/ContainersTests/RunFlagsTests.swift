import Foundation
import ImageStore
import OCI
import Testing
@testable import Containers

/// docker's `run`/`create` flags of issue #17 that shape what the process sees: /etc/hosts and
/// /etc/resolv.conf, limits, namespaces, stop behaviour, devices. Each test runs the real binary
/// and looks from inside the container; every malformed value is a one-line error naming the
/// flag, exit 125, and no container is left.
@Suite(.serialized) struct RunFlagsTests {
    static func scenario(_ tag: Int) throws -> Scenario {
        let s = try Scenario(tag)
        try #require(FileManager.default.isExecutableFile(atPath: s.binary), "\(s.binary) is missing: run `swift build` first")
        return s
    }

    /// `run` with each bad value: exit 125, one line on stderr that names the flag and the
    /// accepted form, nothing on stdout, and no container created.
    func expectRefused(_ s: Scenario, _ cases: [[String]], words: String = "give", sourceLocation: SourceLocation = #_sourceLocation) throws {
        for args in cases {
            let r = try s.db(["run", "--rm", "--network", "none"] + args + ["busybox:test", "true"])
            let lines = r.err.split(separator: "\n")
            #expect(r.status == 125 && lines.count == 1 && r.err.contains(args[0]) && r.err.contains(words) && r.out.isEmpty,
                    "\(args): \(r)", sourceLocation: sourceLocation)
        }
        #expect(try s.ok(["ps", "-aq"]).isEmpty, "a refused run creates no container", sourceLocation: sourceLocation)
    }

    // MARK: --add-host, --dns, --dns-search, --dns-option

    @Test(.enabled(if: Scenario.canRun)) func hostsAndDNS() throws {
        let s = try Self.scenario(81)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        // extra hosts follow the defaults, in the order given; IPv6 bracketed or not; HOST=IP too
        let hosts = try s.ok(["run", "--rm", "--network", "none", "--add-host", "db.local:10.1.2.3", "--add-host", "v6:[fe80::1]",
                              "--add-host", "cache=192.168.7.7", "busybox:test", "cat", "/etc/hosts"])
        // docker 20.10's file, line for line
        #expect(hosts == "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\n"
                + "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n10.1.2.3\tdb.local\nfe80::1\tv6\n192.168.7.7\tcache", "\(hosts)")
        // on the bridge: host-gateway is the bridge's address; the container's own line comes last
        let bridged = try s.ok(["run", "--rm", "--hostname", "web", "--add-host", "gw:host-gateway", "busybox:test", "cat", "/etc/hosts"])
        let last = bridged.split(separator: "\n").suffix(2).map(String.init)
        #expect(last.count == 2 && last[0] == "10.89.181.1\tgw" && last[1].hasPrefix("10.89.181.") && last[1].hasSuffix("\tweb"), "\(bridged)")
        // resolv.conf: docker's layout, search then name servers then options
        let resolv = try s.db(["run", "--rm", "--network", "none", "--dns", "1.1.1.1", "--dns", "2606:4700::1111",
                               "--dns-search", "example.com", "--dns-search", "corp.example", "--dns-option", "ndots:2",
                               "--dns-opt", "rotate", "busybox:test", "cat", "/etc/resolv.conf"])
        #expect(resolv.status == 0 && resolv.out == "search example.com corp.example\nnameserver 1.1.1.1\nnameserver 2606:4700::1111\noptions ndots:2 rotate\n",
                "\(resolv)")
        // only --dns: the name servers are replaced, nothing else is invented; `.` drops the search list
        let onlyDNS = try s.ok(["run", "--rm", "--network", "none", "--dns", "9.9.9.9", "--dns-search", ".", "busybox:test", "cat", "/etc/resolv.conf"])
        let servers = onlyDNS.split(separator: "\n").filter { $0.hasPrefix("nameserver") }
        #expect(servers == ["nameserver 9.9.9.9"] && !onlyDNS.contains("search"), "\(onlyDNS)")
        // inspect shows them as docker's HostConfig
        _ = try s.ok(["create", "--network", "none", "--name", "cx", "--add-host", "a:1.2.3.4", "--dns", "8.8.8.8",
                      "--dns-search", "x.y", "--dns-option", "ndots:1", "busybox:test"])
        #expect(try s.ok(["inspect", "-f", "{{json .HostConfig.ExtraHosts}} {{json .HostConfig.Dns}} {{json .HostConfig.DnsSearch}} {{json .HostConfig.DnsOptions}}", "cx"])
                == #"["a:1.2.3.4"] ["8.8.8.8"] ["x.y"] ["ndots:1"]"#)
        _ = try s.ok(["create", "--network", "none", "--name", "plain", "busybox:test"])
        #expect(try s.ok(["inspect", "-f", "{{json .HostConfig.ExtraHosts}} {{json .HostConfig.Dns}}", "plain"]) == "null []")
        _ = try s.ok(["rm", "cx", "plain"])
        try expectRefused(s, [["--add-host", "nohost"], ["--add-host", "h:1.2.3"], ["--add-host", ":1.2.3.4"],
                              ["--add-host", "a b:1.2.3.4"], ["--add-host", "h:"], ["--dns", "dns.google"], ["--dns", ""],
                              ["--dns-search", ".bad"], ["--dns-search", "a b"], ["--dns-option", "a b"], ["--dns-option", ""]])
        // host-gateway on a network without one
        let noGateway = try s.db(["run", "--rm", "--network", "none", "--add-host", "gw:host-gateway", "busybox:test", "true"])
        #expect(noGateway.status == 125 && noGateway.err.contains("--add-host"), "\(noGateway)")
    }

    // MARK: --ulimit, --shm-size, --group-add

    /// The soft and hard values of a line of /proc/self/limits ("Max open files  512  4096  files").
    func limit(_ limits: String, _ name: String) -> [String] {
        guard let line = limits.split(separator: "\n").first(where: { $0.hasPrefix(name) }) else { return [] }
        return Array(line.dropFirst(name.count).split(separator: " ").prefix(2).map(String.init))
    }

    @Test(.enabled(if: Scenario.canRun)) func limitsAndGroups() throws {
        let s = try Self.scenario(82)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        // docker's names; the last --ulimit for a name wins; -1 is unlimited; HARD defaults to SOFT
        let limits = try s.ok(["run", "--rm", "--network", "none", "--ulimit", "nofile=1024:2048", "--ulimit", "core=-1",
                               "--ulimit", "nproc=50", "--ulimit", "NOFILE=512:4096", "--ulimit", "stack=8388608:-1",
                               "busybox:test", "cat", "/proc/self/limits"])
        #expect(limit(limits, "Max open files") == ["512", "4096"], "\(limits)")
        #expect(limit(limits, "Max core file size") == ["unlimited", "unlimited"])
        #expect(limit(limits, "Max processes") == ["50", "50"])
        #expect(limit(limits, "Max stack size") == ["8388608", "unlimited"])
        // /dev/shm: docker's 64m by default, --shm-size otherwise
        func shmKiB(_ extra: [String]) throws -> String {
            let df = try s.ok(["run", "--rm", "--network", "none"] + extra + ["busybox:test", "df", "-k", "/dev/shm"])
            return df.split(separator: "\n").last.map { String($0.split(separator: " ")[1]) } ?? df
        }
        #expect(try shmKiB([]) == "65536")
        #expect(try shmKiB(["--shm-size", "128m"]) == "131072")
        #expect(try shmKiB(["--shm-size", "1g"]) == "1048576")
        // additional groups by number and by the image's group name, for root and for another user
        let groups = try s.ok(["run", "--rm", "--network", "none", "--group-add", "1234", "--group-add", "nogroup",
                               "busybox:test", "grep", "^Groups:", "/proc/self/status"])
        func gids(_ line: String) -> [String] { line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().map(String.init) }
        #expect(gids(groups) == ["0", "1234", "65534"], "the primary group first, as docker's: \(groups)")
        // docker's supplementary groups without the flag: the primary one, and the groups that list the user
        let plain = try s.ok(["run", "--rm", "--network", "none", "busybox:test", "grep", "^Groups:", "/proc/self/status"])
        #expect(gids(plain) == ["0"], "\(plain)")
        let member = try s.ok(["run", "--rm", "--network", "none", "-u", "nobody", "busybox:test", "sh", "-c",
                               "grep ^Groups: /proc/self/status"])
        #expect(gids(member) == ["65534"], "\(member)")
        let explicit = try s.ok(["run", "--rm", "--network", "none", "-u", "1000:1000", "--group-add", "5", "busybox:test",
                                 "grep", "^Groups:", "/proc/self/status"])
        #expect(gids(explicit) == ["5", "1000"], "\(explicit)")
        let asNobody = try s.ok(["run", "--rm", "--network", "none", "-u", "nobody", "--group-add", "root", "busybox:test", "id"])
        #expect(asNobody.contains("uid=65534(nobody)") && asNobody.contains("groups=0(root)"), "\(asNobody)")
        // exec gets them too, for the container's user and for `exec -u`
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "gx", "--group-add", "1234", "busybox:test", "sleep", "30"])
        #expect(Scenario.eventually { gids((try? s.ok(["exec", "gx", "grep", "^Groups:", "/proc/self/status"])) ?? "") == ["0", "1234"] })
        #expect(gids(try s.ok(["exec", "-u", "nobody", "gx", "grep", "^Groups:", "/proc/self/status"])) == ["1234", "65534"])
        _ = try s.ok(["rm", "-f", "gx"])
        // inspect: HostConfig.Ulimits, ShmSize, GroupAdd
        _ = try s.ok(["create", "--network", "none", "--name", "cx", "--ulimit", "nofile=10:20", "--shm-size", "2m",
                      "--group-add", "nogroup", "busybox:test"])
        #expect(try s.ok(["inspect", "-f", "{{range .HostConfig.Ulimits}}{{.Name}}={{.Soft}}:{{.Hard}}{{end}} {{.HostConfig.ShmSize}} {{json .HostConfig.GroupAdd}}", "cx"])
                == #"nofile=10:20 2097152 ["nogroup"]"#)
        _ = try s.ok(["create", "--network", "none", "--name", "plain", "busybox:test"])
        #expect(try s.ok(["inspect", "-f", "{{json .HostConfig.Ulimits}} {{.HostConfig.ShmSize}}", "plain"]) == "null 67108864")
        _ = try s.ok(["rm", "cx", "plain"])
        try expectRefused(s, [["--ulimit", "nofile"], ["--ulimit", "bogus=1"], ["--ulimit", "nofile=2:1"], ["--ulimit", "nofile=a"],
                              ["--ulimit", "nofile=1:2:3"], ["--ulimit", "nofile=-2"], ["--ulimit", "nofile=-1:5"],
                              ["--ulimit", "nofile=99999999999999999999"], ["--shm-size", "-1"], ["--shm-size", "abc"],
                              ["--shm-size", "1x"], ["--group-add", "a b"], ["--group-add", ""], ["--group-add", "4294967295"]])
        // a name the image's /etc/group lacks: refused at create
        let missing = try s.db(["run", "--rm", "--network", "none", "--group-add", "wheel", "busybox:test", "true"])
        #expect(missing.status == 125 && missing.err.contains("--group-add wheel"), "\(missing)")
        #expect(try s.ok(["ps", "-aq"]).isEmpty)
    }

    // MARK: --ipc, --pid, --uts

    @Test(.enabled(if: Scenario.canRun)) func namespaces() throws {
        let s = try Self.scenario(83)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        func hostNS(_ t: String) throws -> String { try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/\(t)") }
        let script = "for n in ipc pid uts; do readlink /proc/self/ns/$n; done; hostname"
        let own = try s.ok(["run", "--rm", "--network", "none", "busybox:test", "sh", "-c", script]).split(separator: "\n").map(String.init)
        let hostNames = [try hostNS("ipc"), try hostNS("pid"), try hostNS("uts")]
        #expect(own.count == 4 && own[0] != hostNames[0] && own[1] != hostNames[1] && own[2] != hostNames[2], "\(own)")
        // host: the namespace is the host's (the runtime's), so are the host name and PID 1
        let host = try s.ok(["run", "--rm", "--network", "none", "--ipc", "host", "--pid", "host", "--uts", "host", "busybox:test", "sh", "-c", script])
            .split(separator: "\n").map(String.init)
        #expect(host == hostNames + [ProcessInfo.processInfo.hostName], "\(host)")
        let init1 = try s.ok(["run", "--rm", "--network", "none", "--pid", "host", "busybox:test", "cat", "/proc/1/comm"])
        let hostInit = try String(contentsOfFile: "/proc/1/comm", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(init1 == hostInit)
        // --ipc host shares the host's /dev/shm; none mounts none
        let mark = "dbtest-\(getpid())"
        try "shared\n".write(toFile: "/dev/shm/\(mark)", atomically: false, encoding: .utf8)
        defer { unlink("/dev/shm/\(mark)") }
        #expect(try s.ok(["run", "--rm", "--network", "none", "--ipc", "host", "busybox:test", "cat", "/dev/shm/\(mark)"]) == "shared")
        #expect(try s.db(["run", "--rm", "--network", "none", "busybox:test", "cat", "/dev/shm/\(mark)"]).status != 0)
        let none = try s.db(["run", "--rm", "--network", "none", "--ipc", "none", "busybox:test", "grep", " /dev/shm ", "/proc/mounts"])
        #expect(none.status == 1 && none.out.isEmpty, "\(none)")
        // container:NAME joins a running container's namespaces: its processes and, when it is
        // shareable, its /dev/shm (a host-side tmpfs of --shm-size)
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "owner", "--ipc", "shareable", "--shm-size", "8m", "busybox:test",
                      "sh", "-c", "echo mine > /dev/shm/m; exec sleep 30"])
        #expect(Scenario.eventually { (try? s.db(["exec", "owner", "cat", "/dev/shm/m"]).out) == "mine\n" })
        let twoNS = "readlink /proc/self/ns/ipc; readlink /proc/self/ns/pid"
        let ownerNS = try s.ok(["exec", "owner", "sh", "-c", twoNS])
        let joined = try s.ok(["run", "--rm", "--network", "none", "--ipc", "container:owner", "--pid", "container:owner", "busybox:test",
                               "sh", "-c", twoNS + "; cat /proc/1/comm /dev/shm/m; df -k /dev/shm | tail -1"])
        let joinedLines = joined.split(separator: "\n").map(String.init)
        #expect(joinedLines.prefix(4).joined(separator: "\n") == ownerNS + "\nsleep\nmine", "\(joined) vs \(ownerNS)")
        #expect(joinedLines.last?.split(separator: " ").dropFirst().first == "8192", "\(joined)")
        // docker refuses to join a private one
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "private", "busybox:test", "sleep", "30"])
        let refused = try s.db(["run", "--rm", "--network", "none", "--ipc", "container:private", "busybox:test", "true"])
        #expect(refused.status == 125 && refused.err.contains("not shareable"), "\(refused)")
        #expect(try s.db(["run", "--rm", "--network", "none", "--pid", "container:private", "busybox:test", "true"]).status == 0)
        _ = try s.ok(["rm", "-f", "private"])
        // inspect: docker's HostConfig names
        _ = try s.ok(["create", "--network", "none", "--name", "cx", "--ipc", "host", "--pid", "container:owner", "--uts", "host", "busybox:test"])
        #expect(try s.ok(["inspect", "-f", "{{.HostConfig.IpcMode}} {{.HostConfig.PidMode}} {{.HostConfig.UTSMode}} {{.Config.Hostname}}", "cx"])
                == "host container:owner host \(ProcessInfo.processInfo.hostName)")
        _ = try s.ok(["create", "--network", "none", "--name", "plain", "busybox:test"])
        #expect(try s.ok(["inspect", "-f", "{{.HostConfig.IpcMode}}|{{.HostConfig.PidMode}}|{{.HostConfig.UTSMode}}", "plain"]) == "private||")
        _ = try s.ok(["rm", "-f", "cx", "plain", "owner"])
        try expectRefused(s, [["--ipc", "hots"], ["--ipc", "container:"], ["--pid", "none"], ["--pid", "private:x"], ["--uts", "container:x"],
                              ["--uts", "bogus"]])
        // a container that does not exist; a host name with the host's UTS namespace
        let gone = try s.db(["run", "--rm", "--network", "none", "--pid", "container:nosuch", "busybox:test", "true"])
        #expect(gone.status == 125 && gone.err.contains("--pid container:nosuch"), "\(gone)")
        let conflict = try s.db(["run", "--rm", "--network", "none", "--uts", "host", "--hostname", "x", "busybox:test", "true"])
        #expect(conflict.status == 125 && conflict.err.contains("--uts host"), "\(conflict)")
        #expect(try s.ok(["ps", "-aq"]).isEmpty)
    }

    // MARK: --stop-signal, --stop-timeout

    /// `busybox:test` again as `tag`, with a STOPSIGNAL.
    func tagWithStopSignal(_ s: Scenario, _ signal: String, as tag: String) throws {
        let store = try ImageStore(root: s.root)
        let image = try store.image("busybox:test")
        var cfg = image.config
        var cc = cfg.config ?? ContainerConfig()
        cc.stopSignal = signal
        cfg.config = cc
        try store.putImage(config: cfg, layers: image.manifest.layers, tag: try ImageReference(parsing: tag))
    }

    /// Runs `stop ARGS NAME`; its status, the seconds it took, and the container's exit code.
    func timedStop(_ s: Scenario, _ name: String, _ args: [String] = []) throws -> (Int32, Double, String) {
        let start = Date()
        let r = try s.db(["stop"] + args + [name])
        let took = Date().timeIntervalSince(start)
        return (r.status, took, try s.ok(["inspect", "-f", "{{.State.ExitCode}}", name]))
    }

    @Test(.enabled(if: Scenario.canRun)) func stopSignalAndTimeout() throws {
        let s = try Self.scenario(84)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        // a shell that exits 7 on USR1 and ignores TERM (as PID 1 it is not killed by it)
        let trap = "trap 'exit 7' USR1; while true; do sleep 0.1; done"
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "sig", "--stop-signal", "USR1", "busybox:test", "sh", "-c", trap])
        #expect(try s.ok(["inspect", "-f", "{{.Config.StopSignal}}", "sig"]) == "USR1")
        let (st1, took1, code1) = try timedStop(s, "sig")
        #expect(st1 == 0 && code1 == "7" && took1 < 5, "stopped by USR1: \(st1) \(code1) after \(took1)s")
        // the image's STOPSIGNAL is the default; the flag overrides it
        try tagWithStopSignal(s, "SIGUSR1", as: "busybox:usr1")
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "img", "busybox:usr1", "sh", "-c", trap])
        #expect(try s.ok(["inspect", "-f", "{{.Config.StopSignal}}", "img"]) == "SIGUSR1")
        let (st2, _, code2) = try timedStop(s, "img")
        #expect(st2 == 0 && code2 == "7")
        _ = try s.ok(["create", "--network", "none", "--name", "over", "--stop-signal", "SIGINT", "busybox:usr1"])
        #expect(try s.ok(["inspect", "-f", "{{.Config.StopSignal}}", "over"]) == "SIGINT")
        // --stop-timeout: TERM is ignored, so stop kills after that many seconds (not docker's 10)
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "slow", "--stop-timeout", "1", "busybox:test", "sleep", "60"])
        #expect(try s.ok(["inspect", "-f", "{{.Config.StopTimeout}}", "slow"]) == "1")
        let (st3, took3, code3) = try timedStop(s, "slow")
        #expect(st3 == 0 && code3 == "137" && took3 >= 1 && took3 < 6, "\(st3) \(code3) after \(took3)s")
        // stop -t still wins over it; restart uses it too
        _ = try s.ok(["start", "slow"])
        let (st4, took4, _) = try timedStop(s, "slow", ["-t", "0"])
        #expect(st4 == 0 && took4 < 1, "\(took4)s")
        _ = try s.ok(["start", "slow"])
        let start = Date()
        #expect(try s.db(["restart", "slow"]).status == 0)
        #expect(Date().timeIntervalSince(start) < 6)
        #expect(try s.ok(["inspect", "-f", "{{.State.Status}}", "slow"]) == "running")
        _ = try s.ok(["kill", "slow"])
        // without the flag: no Config.StopTimeout, as docker's inspect
        #expect(try s.db(["inspect", "-f", "{{.Config.StopTimeout}}", "sig"]).status == 1)
        _ = try s.ok(["rm", "-f", "sig", "img", "over", "slow"])
        try expectRefused(s, [["--stop-signal", "SIGFOO"], ["--stop-signal", "0"], ["--stop-signal", "99"], ["--stop-signal", ""],
                              ["--stop-timeout", "soon"], ["--stop-timeout", "-2"], ["--stop-timeout", "1.5"],
                              ["--stop-timeout", "99999999999"]])
    }

    // MARK: --device

    @Test(.enabled(if: Scenario.canRun && FileManager.default.fileExists(atPath: "/dev/loop0"))) func devices() throws {
        let s = try Self.scenario(85)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        // /dev/loop0 (block 7:0) is not in docker's default allow list: absent, then given read-only
        let script = "ls -l /dev/xloop; cat /dev/xloop > /dev/null && echo read; (echo x > /dev/xloop) 2>/dev/null || echo nowrite"
        let without = try s.db(["run", "--rm", "--network", "none", "busybox:test", "sh", "-c", "test -e /dev/xloop || echo absent"])
        #expect(without.out == "absent\n", "\(without)")
        let ro = try s.ok(["run", "--rm", "--network", "none", "--device", "/dev/loop0:/dev/xloop:r", "busybox:test", "sh", "-c", script])
        let lines = ro.split(separator: "\n").map(String.init)
        #expect(lines.count == 3 && lines[0].hasPrefix("brw") && lines[0].contains("7,") && lines[1] == "read" && lines[2] == "nowrite", "\(ro)")
        // the same path by default, rwm: writable (an unbound loop device takes nothing, but opens)
        let rw = try s.ok(["run", "--rm", "--network", "none", "--device", "/dev/loop0", "busybox:test", "sh", "-c",
                           "exec 3>/dev/loop0 && echo opened"])
        #expect(rw == "opened", "\(rw)")
        // HOST:PERMISSIONS
        let perms = try s.ok(["run", "--rm", "--network", "none", "--device", "/dev/loop0:r", "busybox:test", "sh", "-c",
                              "(exec 3>/dev/loop0) 2>/dev/null || echo denied"])
        #expect(perms == "denied", "\(perms)")
        _ = try s.ok(["create", "--network", "none", "--name", "cx", "--device", "/dev/loop0:/dev/xloop:rw", "busybox:test"])
        #expect(try s.ok(["inspect", "-f", "{{json .HostConfig.Devices}}", "cx"])
                == #"[{"CgroupPermissions":"rw","PathInContainer":"/dev/xloop","PathOnHost":"/dev/loop0"}]"#)
        _ = try s.ok(["rm", "cx"])
        try expectRefused(s, [["--device", "loop0"], ["--device", "/dev/loop0:xloop"], ["--device", "/dev/loop0:/dev/x:rwx"],
                              ["--device", "/dev/loop0:/dev/x:rw:m"], ["--device", "/dev/../etc/passwd"], ["--device", ""]])
        // what is not a device node, or not there: refused at create
        for path in ["/dev/no-such-device", "/etc/passwd"] {
            let r = try s.db(["run", "--rm", "--network", "none", "--device", path, "busybox:test", "true"])
            #expect(r.status == 125 && r.err.contains("--device \(path)"), "\(r)")
        }
        #expect(try s.ok(["ps", "-aq"]).isEmpty)
    }

    // MARK: --restart

    @Test(.enabled(if: Scenario.canRun)) func restartPolicies() throws {
        let s = try Self.scenario(86)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        func state(_ name: String) -> String {
            (try? s.ok(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}", name])) ?? ""
        }
        func runs(_ name: String) throws -> Int {
            let upper = try s.ok(["inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", name])
            return ((try? String(contentsOfFile: upper + "/runs", encoding: .utf8)) ?? "").split(separator: "\n").count
        }
        // on-failure:2 — a failing process runs three times, then stays exited with its status
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "fails", "--restart", "on-failure:2", "busybox:test",
                      "sh", "-c", "echo x >> /runs; exit 3"])
        #expect(Scenario.eventually(15) { state("fails") == "exited 3 2" }, "\(state("fails"))")
        usleep(500_000)
        let failRuns = try runs("fails")
        #expect(state("fails") == "exited 3 2" && failRuns == 3)
        #expect(try s.ok(["inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", "fails"]) == "on-failure:2")
        // on-failure does not restart a success
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "fine", "--restart", "on-failure", "busybox:test", "sh", "-c", "echo x >> /runs"])
        #expect(Scenario.eventually { state("fine") == "exited 0 0" })
        usleep(500_000)
        #expect(try runs("fine") == 1)
        // always: restarts whatever the status until `stop`, which ends it for good
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "loop", "--restart", "always", "busybox:test",
                      "sh", "-c", "echo x >> /runs; sleep 0.2"])
        #expect(Scenario.eventually(15) { (try? runs("loop")) ?? 0 >= 3 })
        let status = try s.ok(["inspect", "-f", "{{.State.Running}} {{.HostConfig.RestartPolicy.Name}}", "loop"])
        #expect(status == "true always", "running or restarting: \(status)")
        // between two runs: docker's restarting state, in inspect and ps
        #expect(Scenario.eventually {
            (try? s.ok(["inspect", "-f", "{{.State.Status}} {{.State.Restarting}}", "loop"])) == "restarting true"
                && ((try? s.ok(["ps", "--format", "{{.State}}|{{.Status}}"])) ?? "").hasPrefix("restarting|Restarting (0) ")
        })
        // exec waits for a running process, as docker's ("is restarting")
        #expect(Scenario.eventually {
            let r = try? s.db(["exec", "loop", "true"])
            return r?.status == 1 && r?.err.contains("is restarting, wait until the container is running") == true
        })
        #expect(try s.db(["stop", "-t", "1", "loop"]).status == 0)
        let stopped = try runs("loop")
        usleep(1_500_000)
        let afterStop = try runs("loop")
        #expect(state("loop").hasPrefix("exited ") && afterStop == stopped, "\(state("loop"))")
        // a start runs it again under the policy; kill (SIGKILL) is a manual stop too
        _ = try s.ok(["start", "loop"])
        #expect(Scenario.eventually { (try? runs("loop")) ?? 0 >= stopped + 2 })
        #expect(try s.db(["kill", "loop"]).status == 0)
        #expect(Scenario.eventually { state("loop").hasPrefix("exited ") })
        let killed = try runs("loop")
        usleep(1_500_000)
        #expect(try runs("loop") == killed)
        // attached: run returns the first exit status; the container goes on restarting by itself
        let attached = try s.db(["run", "--network", "none", "--name", "att", "--restart", "on-failure:1", "busybox:test", "sh", "-c",
                                 "echo x >> /runs; exit 5"])
        #expect(attached.status == 5, "\(attached)")
        #expect(Scenario.eventually { state("att") == "exited 5 1" }, "\(state("att"))")
        // update --restart: a running container's monitor applies the new policy at the next exit
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "upd", "busybox:test", "sh", "-c", "echo x >> /runs; sleep 1; exit 2"])
        let updated = try s.db(["update", "--restart", "on-failure:1", "upd"])
        #expect(updated.status == 0 && updated.out == "upd\n", "\(updated)")
        #expect(try s.ok(["inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", "upd"]) == "on-failure:1")
        #expect(Scenario.eventually(15) { state("upd") == "exited 2 1" }, "\(state("upd"))")
        #expect(try runs("upd") == 2)
        #expect(try s.db(["update", "--restart", "bogus", "upd"]).status == 125)
        _ = try s.ok(["update", "--restart", "no", "upd"])
        #expect(try s.ok(["inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "upd"]) == "no")
        _ = try s.ok(["rm", "upd"])
        // no, the default
        _ = try s.ok(["create", "--network", "none", "--name", "plain", "busybox:test"])
        #expect(try s.ok(["inspect", "-f", "{{.HostConfig.RestartPolicy.Name}} {{.State.Restarting}}", "plain"]) == "no false")
        _ = try s.ok(["rm", "-f", "fails", "fine", "loop", "att", "plain"])
        try expectRefused(s, [["--restart", "sometimes"], ["--restart", "on-failure:x"], ["--restart", "on-failure:-1"],
                              ["--restart", "always:3"], ["--restart", "no:1"], ["--restart", "on-failure:"]])
        let conflict = try s.db(["run", "--rm", "--network", "none", "--restart", "always", "busybox:test", "true"])
        #expect(conflict.status == 125 && conflict.err.contains("--restart and --rm"), "\(conflict)")
        #expect(try s.ok(["ps", "-aq"]).isEmpty)
    }

    // MARK: --init with dockbuild's own init

    static var hasCC: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/cc") }

    @Test(.enabled(if: Scenario.canRun && hasCC)) func ownInit() throws {
        let s = try Self.scenario(87)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        // built as `make build` builds it
        let pkg = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let initPath = s.root + "/dockbuild-init"
        let cc = try Shell.run(["/usr/bin/cc", "-static", "-Os", "-Wall", "-Wextra", "-Werror", "-o", initPath, pkg + "/Sources/dockbuild-init/main.c"])
        try #require(cc.0 == 0, "cc: \(cc.2)")
        let env = ["DOCKBUILD_INIT": initPath]
        // PID 1 is the init at /dev/init, the command its child
        let ps = try s.ok(["run", "--rm", "--network", "none", "--init", "busybox:test", "sh", "-c", "grep -c dockbuild-init /dev/init; ps -o pid,args"], env: env)
        let lines = ps.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines.first.map { Int($0) ?? 0 > 0 } == true, "/dev/init is dockbuild-init: \(ps)")
        #expect(lines.contains("1 /dev/init -- sh -c grep -c dockbuild-init /dev/init; ps -o pid,args"), "\(ps)")
        // statuses pass through: exit codes, 128+signal, 127 for a command that is not there
        #expect(try s.db(["run", "--rm", "--network", "none", "--init", "busybox:test", "sh", "-c", "exit 4"], env: env).status == 4)
        #expect(try s.db(["run", "--rm", "--network", "none", "--init", "busybox:test", "sh", "-c", "kill -9 $$"], env: env).status == 137)
        #expect(try s.db(["run", "--rm", "--network", "none", "--init", "busybox:test", "no-such-command"], env: env).status == 127)
        // zombies: an orphan whose parent is gone is reaped by the init; without it PID 1 (a
        // sleep that never waits) leaves it a zombie
        let orphan = "(sleep 0.2 &); exec sleep 30"
        _ = try s.ok(["run", "-d", "--network", "none", "--init", "--name", "reaped", "busybox:test", "sh", "-c", orphan], env: env)
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "zombie", "busybox:test", "sh", "-c", orphan], env: env)
        usleep(1_000_000)
        func states(_ name: String) throws -> String { try s.ok(["exec", name, "ps", "-o", "stat,comm"]) }
        let withInit = try states("reaped"), without = try states("zombie")
        #expect(!withInit.contains("Z"), "\(withInit)")
        #expect(without.contains("Z"), "the contrast: \(without)")
        // signals are forwarded to the command: kill and stop reach it although it is not PID 1
        let trap = "trap 'exit 10' USR1; trap 'exit 9' TERM; while true; do sleep 0.1; done"
        _ = try s.ok(["run", "-d", "--network", "none", "--init", "--name", "sig", "busybox:test", "sh", "-c", trap], env: env)
        usleep(300_000)
        #expect(try s.db(["kill", "-s", "USR1", "sig"]).status == 0)
        #expect(Scenario.eventually { (try? s.ok(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "sig"])) == "exited 10" })
        _ = try s.ok(["start", "sig"], env: env)
        usleep(300_000)
        let start = Date()
        #expect(try s.db(["stop", "sig"]).status == 0)
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(try s.ok(["inspect", "-f", "{{.State.ExitCode}} {{.HostConfig.Init}}", "sig"]) == "9 true")
        // an init that is not there
        let missing = try s.db(["run", "--rm", "--network", "none", "--init", "busybox:test", "true"], env: ["DOCKBUILD_INIT": s.root + "/nope"])
        #expect(missing.status == 125 && missing.err.contains("DOCKBUILD_INIT"), "\(missing)")
    }
}

/// The parsers and file builders behind those flags, without a container (no root needed).
struct RunFlagValueTests {
    @Test func parsersAcceptDockersForms() throws {
        #expect(try FlagValue.extraHost("a:1.2.3.4") == "a:1.2.3.4")
        #expect(try FlagValue.extraHost("a=::1") == "a:::1")
        #expect(try FlagValue.extraHost("a:[fe80::1]") == "a:fe80::1")
        #expect(try FlagValue.extraHost("gw:host-gateway") == "gw:host-gateway")
        #expect(try FlagValue.ulimit("nofile=1024") == Ulimit(name: "nofile", soft: 1024, hard: 1024))
        #expect(try FlagValue.ulimit("core=0:-1") == Ulimit(name: "core", soft: 0, hard: -1))
        #expect(try FlagValue.restartPolicy("no") == nil)
        #expect(try FlagValue.restartPolicy("on-failure:3") == RestartPolicy(name: "on-failure", maximumRetryCount: 3))
        #expect(try FlagValue.restartPolicy("unless-stopped") == RestartPolicy(name: "unless-stopped"))
        #expect(try FlagValue.device("/dev/sdc:rw") == DeviceMapping(pathOnHost: "/dev/sdc", pathInContainer: "/dev/sdc", cgroupPermissions: "rw"))
        #expect(try FlagValue.device("/dev/sdc:/dev/xvdc") == DeviceMapping(pathOnHost: "/dev/sdc", pathInContainer: "/dev/xvdc", cgroupPermissions: "rwm"))
        #expect(try FlagValue.namespaceMode("private", flag: "--ipc", modes: ["host"], container: true) == nil)
        #expect(try FlagValue.namespaceMode("container:db", flag: "--pid", modes: ["host"], container: true) == "container:db")
        #expect(try FlagValue.stopSignal("RTMIN+3") == "RTMIN+3")
        #expect(try FlagValue.stopTimeout("-1") == -1)
        #expect(try FlagValue.groupAdd("audio") == "audio")
    }

    @Test func badValuesNameTheFlag() {
        let cases: [(String, () throws -> Void)] = [
            ("--add-host", { _ = try FlagValue.extraHost("a:b") }), ("--dns", { _ = try FlagValue.dnsServer("x") }),
            ("--dns-search", { _ = try FlagValue.dnsSearch("a..b") }), ("--dns-option", { _ = try FlagValue.dnsOption("a\nb") }),
            ("--ulimit", { _ = try FlagValue.ulimit("nofile=3:2") }), ("--shm-size", { _ = try FlagValue.shmSize("-1") }),
            ("--group-add", { _ = try FlagValue.groupAdd("a:b") }), ("--stop-signal", { _ = try FlagValue.stopSignal("SIGNOPE") }),
            ("--stop-timeout", { _ = try FlagValue.stopTimeout("x") }), ("--restart", { _ = try FlagValue.restartPolicy("always:1") }),
            ("--device", { _ = try FlagValue.device("/dev/a:/dev/b:q") }),
            ("--uts", { _ = try FlagValue.namespaceMode("container:x", flag: "--uts", modes: ["host"], container: false) }),
        ]
        for (flag, parse) in cases {
            do { try parse(); Issue.record("\(flag): accepted") } catch {
                let text = "\(error)"
                #expect(text.contains(flag) && !text.contains("\n"), "\(flag): \(text)")
            }
        }
    }

    @Test func resolvConfKeepsWhatTheFlagsDoNotReplace() {
        let host = "# generated\nsearch corp.example\nnameserver 127.0.0.53\nnameserver 10.0.0.2\noptions edns0\n"
        #expect(EtcFiles.resolvConf(host: host, dns: [], search: [], options: [], dropLoopback: true)
                == "# generated\nsearch corp.example\nnameserver 10.0.0.2\noptions edns0\n")
        #expect(EtcFiles.resolvConf(host: host, dns: ["1.1.1.1"], search: [], options: [], dropLoopback: true)
                == "search corp.example\nnameserver 1.1.1.1\noptions edns0\n")
        #expect(EtcFiles.resolvConf(host: host, dns: [], search: ["."], options: ["ndots:2"], dropLoopback: false)
                == "nameserver 127.0.0.53\nnameserver 10.0.0.2\noptions ndots:2\n")
        #expect(EtcFiles.hosts(base: "127.0.0.1\tlocalhost\n", extraHosts: ["gw:host-gateway", "a:1.2.3.4"], gateway: "",
                               ownIP: "10.0.0.5", hostname: "web") == "127.0.0.1\tlocalhost\n1.2.3.4\ta\n10.0.0.5\tweb\n")
    }
}
