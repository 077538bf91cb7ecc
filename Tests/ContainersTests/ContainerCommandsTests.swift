import Foundation
import Testing

/// docker's container commands that change or read one container (issue #17): `rename`,
/// `pause`/`unpause`, `diff`, `export`. Each test runs the real binary; expectations are what
/// docker 20.10 prints and exits with (see docs/cli.md for the intended differences).
@Suite(.serialized) struct ContainerCommandsTests {
    static func scenario(_ tag: Int) throws -> Scenario {
        let s = try Scenario(tag)
        try #require(FileManager.default.isExecutableFile(atPath: s.binary), "\(s.binary) is missing: run `swift build` first")
        return s
    }

    func names(_ s: Scenario) throws -> [String] {
        try s.ok(["ps", "-a", "--format", "{{.Names}}"]).split(separator: "\n").map(String.init).sorted()
    }

    // MARK: rename

    @Test(.enabled(if: Scenario.canRun)) func rename() throws {
        let s = try Self.scenario(61)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let id = try s.ok(["create", "--network", "none", "--name", "first", "busybox:test", "true"])
        _ = try s.ok(["create", "--network", "none", "--name", "other", "busybox:test", "true"])
        // success prints nothing; ps and inspect show the new name; a leading / is dropped
        let r = try s.db(["rename", "first", "/second"])
        #expect(r.status == 0 && r.out.isEmpty && r.err.isEmpty, "\(r)")
        #expect(try names(s) == ["other", "second"])
        #expect(try s.ok(["inspect", "-f", "{{.Name}}", String(id.prefix(12))]) == "/second")
        // the id (or a prefix of it) still finds it; the management command does the same
        #expect(try s.db(["container", "rename", String(id.prefix(8)), " third "]).status == 0)
        #expect(try names(s) == ["other", "third"])
        // refusals are the daemon's in docker: exit 1, and nothing changes
        for (args, words) in [(["third", "other"], "already used by container"),
                              (["third", "bad name"], "invalid container name"),
                              (["third", "q"], "two or more"),
                              (["third", "-x"], ""),
                              (["third", "third"], "current name"),
                              (["no-such", "fourth"], "no such container"),
                              (["third", "  "], "may be empty")] {
            let bad = try s.db(["rename"] + args)
            if words.isEmpty {
                #expect(bad.status == 125, "\(args): a flag-like name is a usage error: \(bad)")
            } else {
                #expect(bad.status == 1 && bad.err.contains(words), "\(args): \(bad)")
            }
        }
        #expect(try names(s) == ["other", "third"])
        // usage errors: 125
        #expect(try s.db(["rename", "third"]).status == 125)
        #expect(try s.db(["rename", "third", "a", "b"]).status == 125)
        // a running container keeps running under its new name
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "live", "busybox:test", "sleep", "30"])
        #expect(try s.db(["rename", "live", "alive"]).status == 0)
        #expect(try s.ok(["ps", "--format", "{{.Names}} {{.State}}"]) == "alive running")
        #expect(try s.db(["kill", "alive"]).status == 0)
    }

    // MARK: pause / unpause

    @Test(.enabled(if: Scenario.canRun)) func pauseAndUnpause() throws {
        let s = try Self.scenario(62)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        // a counter the container bumps ten times a second, read from its upper dir
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "pz", "busybox:test", "sh", "-c",
                      "while true; do echo x >> /tmp/count; sleep 0.1; done"])
        let upper = try s.ok(["inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", "pz"])
        func count() -> Int { ((try? String(contentsOfFile: upper + "/tmp/count", encoding: .utf8)) ?? "").count }
        #expect(Scenario.eventually { count() > 0 })
        let paused = try s.db(["pause", "pz"])
        #expect(paused.status == 0 && paused.out == "pz\n", "\(paused)")
        let frozenAt = count()
        usleep(500_000)
        #expect(count() == frozenAt, "a paused container runs nothing")
        #expect(try s.ok(["ps", "--format", "{{.State}}|{{.Status}}"]).range(of: #"^paused\|Up .+ \(Paused\)$"#, options: .regularExpression) != nil)
        #expect(try s.ok(["inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.State.Paused}}", "pz"]) == "paused true true")
        #expect(try s.ok(["info", "-f", "{{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}}"]) == "0 1 0")
        // what docker refuses on a paused container: exit 1
        for (args, words) in [(["pause", "pz"], "already paused"), (["exec", "pz", "true"], "is paused, unpause the container before exec"),
                              (["start", "pz"], "cannot start a paused container"), (["attach", "pz"], "cannot attach to a paused container"),
                              (["rm", "pz"], "paused")] {
            let r = try s.db(args)
            #expect(r.status == 1 && r.err.contains(words), "\(args): \(r)")
        }
        // unpause: it runs again; a second unpause is refused
        let thawed = try s.db(["container", "unpause", "pz"])
        #expect(thawed.status == 0 && thawed.out == "pz\n", "\(thawed)")
        #expect(Scenario.eventually { count() > frozenAt })
        #expect(try s.ok(["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "pz"]) == "running false")
        let again = try s.db(["unpause", "pz"])
        #expect(again.status == 1 && again.err.contains("is not paused"), "\(again)")
        // several at once: an error for one, the others still done, exit 1
        _ = try s.ok(["create", "--network", "none", "--name", "idle", "busybox:test", "true"])
        let mixed = try s.db(["container", "pause", "idle", "pz", "no-such"])
        #expect(mixed.status == 1 && mixed.out == "pz\n" && mixed.err.contains("idle is not running") && mixed.err.contains("no-such"), "\(mixed)")
        #expect(try s.db(["pause"]).status == 125)
        // stop thaws after the stop signal, then kills: sh as pid 1 ignores SIGTERM, so 137
        let stop = try s.db(["stop", "-t", "1", "pz"])
        #expect(stop.status == 0, "\(stop)")
        #expect(try s.ok(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.Paused}}", "pz"]) == "exited 137 false")
        // kill: any signal thaws a container without a stop signal of its own (docker 20.10)
        _ = try s.ok(["start", "pz"])
        _ = try s.ok(["pause", "pz"])
        #expect(try s.db(["kill", "-s", "USR1", "pz"]).status == 0)
        #expect(try s.ok(["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "pz"]) == "running false")
        _ = try s.ok(["pause", "pz"])
        #expect(try s.db(["kill", "pz"]).status == 0)
        #expect(Scenario.eventually { (try? s.ok(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "pz"])) == "exited 137" })
        // rm -f removes a paused container
        _ = try s.ok(["start", "pz"])
        _ = try s.ok(["pause", "pz"])
        #expect(try s.db(["rm", "-f", "pz"]).status == 0)
        #expect(try names(s) == ["idle"])
    }

    // MARK: diff

    /// The same script in docker 20.10 (an image imported from the same tree) lists the same
    /// lines, in an order that varies from run to run; this is the fixed one dockbuild prints.
    @Test(.enabled(if: Scenario.canRun)) func diff() throws {
        let s = try Self.scenario(63)
        defer { s.cleanup() }
        try s.makeBusyboxImage { dir in
            try "p\n".write(toFile: dir + "/root/.profile", atomically: true, encoding: .utf8)
        }
        let created = try s.ok(["create", "--network", "none", "--name", "fresh", "busybox:test", "true"])
        let none = try s.db(["diff", created])
        #expect(none.status == 0 && none.out.isEmpty, "a container that never ran changed nothing: \(none)")
        let script = "echo x >> /etc/passwd; rm /etc/group; mkdir -p /tmp/a/b; echo 1 > /tmp/a/b/f; echo > /tmp/a-b; "
            + "rm -rf /root; mkdir /root; touch /root/new; mkdir /new; touch /new/z /new/A /new/_; mkfifo /tmp/fifo; "
            + "ln -s x /tmp/ln; rm -rf /www; chmod 700 /data; chmod 600 /bin/busybox"
        _ = try s.ok(["run", "--network", "none", "--name", "changed", "busybox:test", "/bin/busybox", "sh", "-c", script])
        let want = ["C /bin", "C /bin/busybox", "C /data", "C /etc", "C /etc/passwd", "D /etc/group", "A /new", "A /new/A",
                    "A /new/_", "A /new/z", "C /root", "A /root/new", "D /root/.profile", "C /tmp", "A /tmp/a", "A /tmp/a/b",
                    "A /tmp/a/b/f", "A /tmp/a-b", "A /tmp/fifo", "A /tmp/ln", "D /www"]
        let r = try s.db(["diff", "changed"])
        #expect(r.status == 0 && r.out == want.joined(separator: "\n") + "\n", "\(r)")
        // the runtime's mount points (/proc, /sys, /dev, /etc/hosts, ...) are no change, as in docker
        #expect(!r.out.contains("/proc") && !r.out.contains("/etc/hosts"))
        // a running container: what it has changed so far
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "live", "busybox:test", "sh", "-c", "touch /www/new; sleep 30"])
        #expect(Scenario.eventually { (try? s.db(["container", "diff", "live"]).out) == "C /www\nA /www/new\n" })
        #expect(try s.db(["kill", "live"]).status == 0)
        let missing = try s.db(["diff", "no-such"])
        #expect(missing.status == 1 && missing.err.contains("no such container"), "\(missing)")
        #expect(try s.db(["diff"]).status == 125)
        #expect(try s.db(["diff", "changed", "fresh"]).status == 125)
    }

    // MARK: export

    /// Runs `dockbuild export ARGS` with its stdout on `stdout` (a file or a terminal).
    func export(_ s: Scenario, _ args: [String], stdout: FileHandle) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: s.binary)
        p.arguments = ["export", "--root", s.root] + args
        p.standardOutput = stdout
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// `tar -tv` of a file (GNU tar), one "mode owner path" a line.
    func listing(_ tar: String) throws -> [String] {
        let (status, out, err) = try Shell.run(["tar", "-tvf", tar])
        #expect(status == 0, "GNU tar reads \(tar): \(err)")
        return out.split(separator: "\n").map { line in
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            return "\(f[0]) \(f[1]) \(f[5...].joined(separator: " "))"
        }
    }

    @Test(.enabled(if: Scenario.canRun)) func export() throws {
        let s = try Self.scenario(64)
        defer { s.cleanup() }
        try s.makeBusyboxImage { dir in
            try "p\n".write(toFile: dir + "/root/.profile", atomically: true, encoding: .utf8)
        }
        // a container that never ran: the image's files
        _ = try s.ok(["create", "--network", "none", "--name", "fresh", "busybox:test", "true"])
        let fresh = s.root + "/fresh.tar"
        #expect(try s.db(["export", "-o", fresh, "fresh"]).status == 0)
        var st = stat()
        #expect(stat(fresh, &st) == 0 && st.st_mode & 0o777 == 0o600, "docker's export -o writes mode 0600")
        let before = try listing(fresh)
        for entry in ["drwxr-xr-x root/root bin/", "-rw-r--r-- root/root etc/group", "-rw-r--r-- root/root root/.profile",
                      "-rw-r--r-- root/root www/index.html", "lrwxrwxrwx root/root bin/sh -> busybox"] {
            #expect(before.contains(entry), "\(entry) in \(before.filter { !$0.contains("bin/") })")
        }
        #expect(!before.contains { $0.hasSuffix(" ./") || $0.contains(" ./") }, "no ./ entries, as docker's")
        // its changes: gone, new, changed, an opaque directory
        let script = "rm /etc/group; echo new > /new; rm -rf /root; mkdir /root; touch /root/x; chmod 700 /data"
        _ = try s.ok(["run", "--network", "none", "--name", "changed", "busybox:test", "sh", "-c", script])
        let viaFile = s.root + "/changed.tar", viaStdout = s.root + "/stdout.tar"
        #expect(try s.db(["container", "export", "--output", viaFile, "changed"]).status == 0)
        _ = FileManager.default.createFile(atPath: viaStdout, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: viaStdout))
        #expect(try export(s, ["changed"], stdout: out) == 0)
        try out.close()
        let after = try listing(viaFile)
        #expect(after.contains("-rw-r--r-- root/root new") && after.contains("-rw-r--r-- root/root root/x")
                && after.contains("drwx------ root/root data/"), "\(after.filter { !$0.contains("bin/") })")
        #expect(!after.contains { $0.hasSuffix("etc/group") || $0.hasSuffix("root/.profile") }, "deleted files are not in it")
        #expect(try Shell.run(["tar", "-xOf", viaFile, "new"]).1 == "new\n")
        // stdout and -o give the same bytes (the tar is deterministic)
        #expect(FileManager.default.contents(atPath: viaFile) == FileManager.default.contents(atPath: viaStdout))
        // a running container: what it has written so far
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "live", "busybox:test", "sh", "-c", "echo hi > /live; sleep 30"])
        let live = s.root + "/live.tar"
        #expect(Scenario.eventually {
            (try? s.db(["export", "-o", live, "live"]).status) == 0 && (try? Shell.run(["tar", "-xOf", live, "live"]).1) == "hi\n"
        })
        #expect(try s.db(["kill", "live"]).status == 0)
        // refusals: a terminal as stdout, no such container, a directory that does not exist
        let master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        var unlock: Int32 = 0, n: UInt32 = 0
        try #require(master >= 0 && ioctl(master, 0x4004_5431 /* TIOCSPTLCK */, &unlock) == 0
                     && ioctl(master, 0x8004_5430 /* TIOCGPTN */, &n) == 0)
        defer { close(master) }
        let tty = try #require(FileHandle(forWritingAtPath: "/dev/pts/\(n)"))
        #expect(try export(s, ["changed"], stdout: tty) == 1, "docker refuses to write a tar to a terminal")
        try tty.close()
        let tty2 = try s.db(["export", "no-such"])
        #expect(tty2.status == 1 && tty2.err.contains("no such container"), "\(tty2)")
        let badDir = try s.db(["export", "-o", s.root + "/no-dir/x.tar", "changed"])
        #expect(badDir.status == 1 && badDir.err.contains("no-dir"), "\(badDir)")
        #expect(!((try? FileManager.default.contentsOfDirectory(atPath: s.root)) ?? []).contains { $0.hasPrefix(".dockbuild-export") })
        #expect(try s.db(["export"]).status == 125)
        #expect(try s.db(["export", "-o"]).status == 125)
    }
}
