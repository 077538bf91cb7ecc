import Foundation
import Testing

/// Containers: one spec path with docker's defaults (issue #14). Each test is an attack from
/// inside (or beside) a container through the real `run`/`create`/`exec`/`build`, and asserts
/// the defence: docker's seccomp filter, capabilities, masked and read-only paths on every
/// container, the `--security-opt`/`--privileged`/`--cap-*` flags as docker means them, a
/// store other local users cannot enter, and HOME/PATH/-w as docker sets them.
@Suite(.serialized) struct ContainerSpecTests {
    /// docker's default capability set as /proc/self/status prints it.
    static let dockerCapEff = "00000000a80425fb"

    /// `Key:\tvalue` lines of a /proc/self/status dump.
    static func ctrspecStatus(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let kv = line.split(separator: ":", maxSplits: 1)
            if kv.count == 2 { out[String(kv[0])] = kv[1].trimmingCharacters(in: .whitespaces) }
        }
        return out
    }

    /// Masked paths of docker's list that this kernel has (so the check reads something real).
    static var ctrspecMaskedFiles: [String] {
        ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats"]
            .filter { FileManager.default.fileExists(atPath: $0) }
    }

    /// The attacks every ordinary container must resist; `prefix` runs them through a verb.
    static let ctrspecProbe = """
        grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status
        if unshare -U true 2>/dev/null; then echo userns=escaped; else echo userns=refused; fi
        if mount -t tmpfs none /tmp 2>/dev/null; then echo mount=escaped; else echo mount=refused; fi
        for f in \(ctrspecMaskedFiles.joined(separator: " ")); do echo "masked $f $(cat $f 2>/dev/null | wc -c)"; done
        if echo x > /proc/sys/kernel/domainname 2>/dev/null; then echo procsys=written; else echo procsys=refused; fi
        if echo h > /proc/sysrq-trigger 2>/dev/null; then echo sysrq=written; else echo sysrq=refused; fi
        """

    static func ctrspecExpectConfined(_ out: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let st = ctrspecStatus(out)
        #expect(st["CapEff"] == dockerCapEff, "\(what): \(out)", sourceLocation: sourceLocation)
        #expect(st["Seccomp"] == "2", "\(what): \(out)", sourceLocation: sourceLocation)
        #expect(st["NoNewPrivs"] == "0", "\(what): \(out)", sourceLocation: sourceLocation)
        for expected in ["userns=refused", "mount=refused", "procsys=refused", "sysrq=refused"] {
            #expect(out.contains(expected), "\(what): \(expected) in \(out)", sourceLocation: sourceLocation)
        }
        for f in ctrspecMaskedFiles {
            #expect(out.contains("masked \(f) 0"), "\(what): \(f) is readable: \(out)", sourceLocation: sourceLocation)
        }
    }

    @Test(.enabled(if: Sec.canRun)) func runCreateAndExecGetDockersDefaults() throws {
        let s = try SecStore()
        let run = try s.ok(["run", "--rm", "--network", "none", "busybox:test", "sh", "-c", Self.ctrspecProbe])
        Self.ctrspecExpectConfined(run, "run")

        let id = try s.ok(["create", "--network", "none", "busybox:test", "sh", "-c", Self.ctrspecProbe])
        try s.ok(["start", "-a", id])
        Self.ctrspecExpectConfined(try s.ok(["logs", id]), "create+start")
        try s.ok(["rm", "-f", id])

        let long = try s.ok(["run", "-d", "--network", "none", "busybox:test", "sleep", "300"])
        defer { _ = try? s.db(["rm", "-f", long]) }
        Self.ctrspecExpectConfined(try s.ok(["exec", long, "sh", "-c", Self.ctrspecProbe]), "exec")
        Self.ctrspecExpectConfined(try s.ok(["exec", "-u", "0", long, "sh", "-c", Self.ctrspecProbe]), "exec -u 0")
    }

    @Test(.enabled(if: Sec.canRun)) func securityOptsDoWhatDockerDoes() throws {
        let s = try SecStore()
        let unconfined = try s.ok(["run", "--rm", "--network", "none", "--security-opt", "seccomp=unconfined",
                                   "busybox:test", "grep", "^Seccomp:", "/proc/self/status"])
        #expect(Self.ctrspecStatus(unconfined)["Seccomp"] == "0", "\(unconfined)")

        for opt in ["no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"] {
            let nnp = try s.ok(["run", "--rm", "--network", "none", "--security-opt", opt, "busybox:test",
                                "grep", "^NoNewPrivs:", "/proc/self/status"])
            #expect(Self.ctrspecStatus(nnp)["NoNewPrivs"] == "1", "\(opt): \(nnp)")
        }

        let lifted = try s.db(["run", "--rm", "--network", "none", "--security-opt", "apparmor=unconfined",
                               "--security-opt", "label=disable", "busybox:test", "grep", "^Seccomp:", "/proc/self/status"])
        #expect(lifted.status == 0, "\(lifted.err)")
        // neither option lifts the seccomp filter
        #expect(Self.ctrspecStatus(lifted.out)["Seccomp"] == "2", "\(lifted.out)")
        if (try? String(contentsOfFile: "/sys/module/apparmor/parameters/enabled", encoding: .utf8))?.hasPrefix("Y") != true {
            #expect(lifted.err.contains("notice") && lifted.err.contains("AppArmor"), "\(lifted.err)")
        }

        for bad in ["seccomp", "label=type:foo_t", "apparmor=docker-default", "no-new-privileges=maybe", "nosuch=1"] {
            let r = try s.db(["run", "--rm", "--network", "none", "--security-opt", bad, "busybox:test", "true"])
            #expect(r.status != 0 && r.err.contains("--security-opt"), "\(bad): \(r.status) \(r.err)")
        }
        let missing = try s.db(["run", "--rm", "--network", "none", "--security-opt", "seccomp=\(s.dir)/nope.json", "busybox:test", "true"])
        #expect(missing.status != 0 && missing.err.contains("nope.json"), "\(missing.err)")
    }

    @Test(.enabled(if: Sec.canRun)) func seccompProfileFilesAreApplied() throws {
        let s = try SecStore()
        // a profile of our own: everything allowed but mkdir/mkdirat, refused with EACCES
        try s.write("deny-mkdir.json", """
            {"defaultAction": "SCMP_ACT_ALLOW",
             "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                         {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
             "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                          {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
            """)
        let r = try s.db(["run", "--rm", "--network", "none", "--security-opt", "seccomp=\(s.dir)/deny-mkdir.json",
                          "busybox:test", "sh", "-c", "grep ^Seccomp: /proc/self/status; mkdir /tmp/x && echo made"])
        #expect(Self.ctrspecStatus(r.out)["Seccomp"] == "2" && !r.out.contains("made"), "\(r.out) \(r.err)")
        #expect(r.err.contains("Permission denied"), "\(r.err)")

        // podman's default profile, with and without CAP_AUDIT_WRITE: the variant without it has
        // a repeated socket rule and socket rules libseccomp cannot split on x86 (socketcall)
        let podman = "/usr/share/containers/seccomp.json"
        guard FileManager.default.fileExists(atPath: podman) else { return }
        for extra in [[], ["--cap-drop", "AUDIT_WRITE"], ["--cap-drop", "ALL"]] {
            let p = try s.db(["run", "--rm", "--network", "none", "--security-opt", "seccomp=\(podman)"] + extra +
                             ["busybox:test", "sh", "-c", "grep ^Seccomp: /proc/self/status; echo alive"])
            #expect(p.status == 0 && p.out.contains("alive"), "podman profile \(extra): \(p.status) \(p.err)")
            #expect(Self.ctrspecStatus(p.out)["Seccomp"] == "2", "podman profile \(extra): \(p.out)")
        }
    }

    @Test(.enabled(if: Sec.canRun)) func capabilitiesAndPrivileged() throws {
        let s = try SecStore()
        func capEff(_ flags: [String]) throws -> String? {
            let out = try s.ok(["run", "--rm", "--network", "none"] + flags + ["busybox:test", "grep", "^CapEff:", "/proc/self/status"])
            return Self.ctrspecStatus(out)["CapEff"]
        }
        let bounding = Self.ctrspecStatus(try String(contentsOfFile: "/proc/self/status", encoding: .utf8))["CapBnd"]
        #expect(try capEff(["--cap-drop", "ALL"]) == "0000000000000000")
        #expect(try capEff(["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"]) == "0000000000001000")
        #expect(try capEff(["--cap-drop", "chown", "--cap-drop", "CAP_KILL"]) == "00000000a80425da")
        #expect(try capEff(["--cap-add", "ALL"]) == bounding)
        #expect(try capEff(["--cap-add", "sys_admin"]) == "00000000a82425fb")
        let bogus = try s.db(["run", "--rm", "--network", "none", "--cap-add", "SUPERPOWER", "busybox:test", "true"])
        #expect(bogus.status != 0 && bogus.err.contains("SUPERPOWER"), "\(bogus.err)")

        // SYS_ADMIN opens the syscalls docker's profile keeps for it (mount), as with docker
        let admin = try s.ok(["run", "--rm", "--network", "none", "--cap-add", "SYS_ADMIN", "busybox:test", "sh", "-c",
                              "mount -t tmpfs none /tmp && echo mounted"])
        #expect(admin == "mounted")

        // a host device that no ordinary container gets
        let hostDevice = ["/dev/kmsg", "/dev/loop0", "/dev/mem", "/dev/tty0"].first { FileManager.default.fileExists(atPath: $0) } ?? "/dev/kmsg"
        let probe = """
            grep -E '^(CapEff|Seccomp):' /proc/self/status
            for f in \(Self.ctrspecMaskedFiles.joined(separator: " ")); do echo "masked $f $(cat $f 2>/dev/null | wc -c)"; done
            grep ' /sys ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1
            test -e \(hostDevice) && echo device=present || echo device=absent
            """
        let priv = try s.ok(["run", "--rm", "--network", "none", "--privileged", "busybox:test", "sh", "-c", probe])
        let st = Self.ctrspecStatus(priv)
        #expect(st["CapEff"] == bounding && st["Seccomp"] == "0", "\(priv)")
        #expect(priv.split(separator: "\n").contains("rw"), "/sys is not writable: \(priv)")
        #expect(priv.contains("device=present"), "\(priv)")
        // not masked: /proc/keys has the host's keys, /proc/timer_list the timers
        for f in Self.ctrspecMaskedFiles where f != "/proc/kcore" {
            #expect(!priv.contains("masked \(f) 0\n") && !priv.hasSuffix("masked \(f) 0"), "\(f) still masked: \(priv)")
        }
        let plain = try s.ok(["run", "--rm", "--network", "none", "busybox:test", "sh", "-c", probe])
        #expect(plain.contains("device=absent") && plain.split(separator: "\n").contains("ro"), "\(plain)")
    }

    @Test(.enabled(if: Sec.canRun && Sec.which("setpriv") != nil)) func storeAndRootfsAreClosedToOtherUsers() throws {
        let s = try SecStore()
        let id = try s.ok(["run", "-d", "--network", "none", "busybox:test", "sleep", "300"])
        defer { _ = try? s.db(["rm", "-f", id]) }
        // a setuid-root copy of busybox inside the container (its upper layer, and the mounted rootfs)
        try s.ok(["exec", id, "sh", "-c", "mkdir /x && cp /bin/busybox /x/id && chmod 4755 /x/id"])
        let rootfs = "/run/dockbuild/rootfs/\(id)"
        var st = stat()
        #expect(stat("\(rootfs)/x/id", &st) == 0 && st.st_mode & 0o4000 != 0, "the setuid file is not where the test expects it")
        let snapshots = try FileManager.default.contentsOfDirectory(atPath: "\(s.root)/snapshots/layers").map { "\(s.root)/snapshots/layers/\($0)/fs/bin/busybox" }
        #expect(!snapshots.isEmpty, "the image's layer snapshot is not where the test expects it")
        let targets = ["\(rootfs)/x/id", "\(s.root)/containers/\(id)/upper/x/id"] + snapshots
        for t in targets {
            let look = try Sec.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "stat", t])
            #expect(look.status != 0, "nobody can stat \(t): \(look.out)")
            // through a shell: setpriv's own execve still holds root's capabilities
            let exec = try Sec.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c", "exec \"$0\" -u", t])
            #expect(exec.status != 0 && exec.out.trimmingCharacters(in: .whitespacesAndNewlines) != "0", "nobody ran \(t): \(exec.out)")
        }
        let listing = try Sec.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "ls", s.root])
        #expect(listing.status != 0, "nobody can list the store: \(listing.out)")
        #expect(stat(s.root, &st) == 0 && st.st_mode & 0o007 == 0, "store root mode \(String(st.st_mode & 0o777, radix: 8))")

        // a store made loose by an older version is tightened on the next command
        chmod(s.root, 0o755)
        chmod("\(s.root)/snapshots", 0o755)
        try s.ok(["images"])
        #expect(stat(s.root, &st) == 0 && st.st_mode & 0o777 == 0o710)
        #expect(stat("\(s.root)/snapshots", &st) == 0 && st.st_mode & 0o777 == 0o700)
    }

    @Test(.enabled(if: Sec.canRun)) func homePathAndWorkdirAsDockerSetsThem() throws {
        let s = try SecStore()
        func env(_ flags: [String], _ cmd: String) throws -> String {
            try s.ok(["run", "--rm", "--network", "none"] + flags + ["busybox:test", "sh", "-c", cmd])
        }
        #expect(try env([], "echo $HOME") == "/root")
        #expect(try env(["-u", "user"], "echo $HOME") == "/home/user")
        #expect(try env(["-u", "1000:1000"], "echo $HOME") == "/home/user")
        #expect(try env(["-u", "4242"], "echo $HOME") == "/")
        #expect(try env(["-u", "user", "-e", "HOME=/elsewhere"], "echo $HOME") == "/elsewhere")

        let long = try s.ok(["run", "-d", "--network", "none", "busybox:test", "sleep", "300"])
        defer { _ = try? s.db(["rm", "-f", long]) }
        #expect(try s.ok(["exec", long, "sh", "-c", "echo $HOME"]) == "/root")
        #expect(try s.ok(["exec", "-u", "user", long, "sh", "-c", "echo $HOME"]) == "/home/user")
        #expect(try s.ok(["exec", "-u", "4242", long, "sh", "-c", "echo $HOME"]) == "/")

        // an image whose environment has no PATH still finds its programs
        try s.ok(["import", "-c", "ENV FOO=bar", "-c", "CMD [\"sh\"]", s.dir + "/busybox-rootfs", "nopath:test"])
        let path = try s.ok(["run", "--rm", "--network", "none", "nopath:test", "sh", "-c", "echo $PATH"])
        #expect(path == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")

        // no /etc/passwd at all: "/" for root too, as docker 20.10 gives
        let nopw = try s.ok(["run", "--name", "nopw", "--network", "none", "busybox:test", "rm", "/etc/passwd"])
        #expect(nopw.isEmpty)
        try s.ok(["commit", "nopw", "nopasswd:test"])
        #expect(try s.ok(["run", "--rm", "--network", "none", "nopasswd:test", "sh", "-c", "echo $HOME"]) == "/")

        // -w creates a missing directory, inside the root filesystem even through an image's link to /
        #expect(try env(["-w", "/made/here"], "pwd") == "/made/here")
        let linker = try s.ok(["run", "-d", "--network", "none", "busybox:test", "sh", "-c", "ln -s / /evil && ln -s /../.. /up && sleep 300"])
        #expect(Sec.eventually(10) { (try? s.ok(["exec", linker, "test", "-L", "/up"])) != nil })
        try s.ok(["commit", linker, "links:test"])
        _ = try? s.db(["rm", "-f", linker])
        let marker = "ctrspec-\(getpid())-\(UUID().uuidString.prefix(8))"
        for w in ["/evil/var/tmp/\(marker)", "/up/var/tmp/\(marker)"] {
            #expect(try s.ok(["run", "--rm", "--network", "none", "-w", w, "links:test", "pwd", "-P"]) == "/var/tmp/\(marker)")
        }
        #expect(!FileManager.default.fileExists(atPath: "/var/tmp/\(marker)"), "-w created a directory on the host")
        let notDir = try s.db(["run", "--rm", "--network", "none", "-w", "/bin/busybox", "busybox:test", "pwd"])
        #expect(notDir.status != 0, "\(notDir.out)")

        // build RUN steps: the same generator, so the same HOME, PATH and seccomp filter
        let ctx = try s.path("ctx")
        try s.write("Dockerfile", """
            FROM nopath:test
            RUN echo "root home=$HOME path=$PATH" && grep ^Seccomp: /proc/self/status
            USER user
            RUN echo "user home=$HOME"
            """, in: ctx)
        let b = try s.db(["build", "--no-cache", "-t", "homes:test", ctx])
        #expect(b.status == 0, "\(b.err)")
        let log = b.out + b.err
        #expect(log.contains("root home=/root path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"), "\(log)")
        #expect(log.contains("user home=/home/user"), "\(log)")
        #expect(log.contains("Seccomp:\t2"), "\(log)")
    }
}
