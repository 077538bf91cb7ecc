import Containers
import Foundation
import Testing

/// A cgroup v2 subtree delegated to a test user as systemd's `Delegate=yes` delegates one: a cgroup
/// D just below the root of the host's cgroup2 hierarchy, with D, its cgroup.procs,
/// cgroup.subtree_control and cgroup.threads chowned to the user, and the root's hugetlb controller
/// given to it (`+hugetlb` in the root's cgroup.subtree_control; on this hybrid host the other
/// controllers are bound to cgroup v1 hierarchies and cannot be). The user's commands run with
/// `RootlessUser.unifiedStart`: in a mount namespace of their own with the hierarchy on
/// /sys/fs/cgroup, so that dockbuild sees a unified host. `remove` kills what is left in D,
/// removes it and takes `+hugetlb` back when it gave it.
final class DelegatedCgroupV2: @unchecked Sendable {
    /// Where the host has the cgroup2 hierarchy mounted (/sys/fs/cgroup/unified on a hybrid host).
    let mountPoint: String
    /// D as /proc/PID/cgroup names it, "/dbcg-...".
    let path: String
    var dir: String { mountPoint + path }
    private var gaveHugetlb = false

    /// The host's cgroup2 mount point, or why the tests of a real v2 subtree cannot run here: no
    /// cgroup2 hierarchy, or one whose root has no hugetlb controller to delegate.
    static func hierarchy() -> (mountPoint: String?, reason: String) {
        let info = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        for line in info.split(separator: "\n") {
            let f = line.split(separator: " ").map(String.init)
            guard let dash = f.firstIndex(of: "-"), dash >= 5, f.count > dash + 1, f[dash + 1] == "cgroup2", f[3] == "/" else { continue }
            let have = words(f[4] + "/cgroup.controllers")
            guard have.contains("hugetlb") else {
                return (nil, "the cgroup2 hierarchy at \(f[4]) has no hugetlb controller to delegate (cgroup.controllers: \(have.joined(separator: " ")))")
            }
            return (f[4], "")
        }
        return (nil, "no cgroup2 hierarchy is mounted")
    }

    /// The words of a cgroup file (cgroup.controllers, cgroup.subtree_control, cgroup.procs).
    static func words(_ file: String) -> [String] {
        ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
    }

    /// Writes `value` to a cgroup file as one write(2); the errno on failure, 0 on success.
    @discardableResult
    static func write(_ file: String, _ value: String) -> Int32 {
        let fd = open(file, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        return bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } < 0 ? errno : 0
    }

    init(for u: RootlessUser, mountPoint: String) throws {
        self.mountPoint = mountPoint
        path = "/dbcg-\(getpid())-\(UUID().uuidString.prefix(8))"
        let subtree = mountPoint + "/cgroup.subtree_control"
        if !Self.words(subtree).contains("hugetlb") {
            let e = Self.write(subtree, "+hugetlb")
            guard e == 0 else {
                throw NSError(domain: "DelegatedCgroupV2", code: 1,
                              userInfo: [NSLocalizedDescriptionKey: "+hugetlb into \(subtree): \(String(cString: strerror(e)))"])
            }
            gaveHugetlb = true
        }
        guard mkdir(dir, 0o755) == 0 else {
            let e = errno
            remove()
            throw NSError(domain: "DelegatedCgroupV2", code: 2, userInfo: [NSLocalizedDescriptionKey: "mkdir \(dir): \(String(cString: strerror(e)))"])
        }
        for p in [dir, dir + "/cgroup.procs", dir + "/cgroup.subtree_control", dir + "/cgroup.threads"] { chown(p, u.uid, u.gid) }
        // systemd marks the cgroup of a Delegate=yes unit so (trusted.delegate too, for root)
        try Self.setDelegated(dir, true)
    }

    /// Sets or removes the `user.delegate` mark (python3's os.setxattr: Swift's Glibc has no xattr calls).
    static func setDelegated(_ dir: String, _ on: Bool) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", on ? "import os,sys; os.setxattr(sys.argv[1], 'user.delegate', b'1')"
                                : "import os,sys; os.removexattr(sys.argv[1], 'user.delegate')", dir]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw NSError(domain: "DelegatedCgroupV2", code: 3, userInfo: [NSLocalizedDescriptionKey: "user.delegate on \(dir): python3 failed"])
        }
    }

    /// The cgroups below D, deepest first.
    private func subgroups() -> [String] {
        var out: [String] = []
        for sub in FileManager.default.subpaths(atPath: dir) ?? [] {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir + "/" + sub, isDirectory: &isDir), isDir.boolValue { out.append(dir + "/" + sub) }
        }
        return out.sorted { $0.count > $1.count }
    }

    /// Kills the user's processes still in D (its namespace's holder, a monitor), removes D and its
    /// cgroups, and takes `+hugetlb` back from the root's cgroup.subtree_control if `init` gave it
    /// and no other cgroup is below the root.
    func remove() {
        if FileManager.default.fileExists(atPath: dir) {
            // cgroup.kill (Linux 5.14) kills the subtree; before it, each process found
            if Self.write(dir + "/cgroup.kill", "1") != 0 {
                for g in subgroups() + [dir] { for p in Self.words(g + "/cgroup.procs") { if let pid = Int32(p) { kill(pid, SIGKILL) } } }
            }
            for g in subgroups() + [dir] {
                for _ in 0..<50 where rmdir(g) != 0 && errno == EBUSY { usleep(100_000) }
            }
        }
        // Only while no other cgroup is below the root: one made meanwhile (a root container of
        // another test) would lose its hugetlb files.
        let others = ((try? FileManager.default.contentsOfDirectory(atPath: mountPoint)) ?? [])
            .filter { FileManager.default.fileExists(atPath: mountPoint + "/" + $0 + "/cgroup.procs") }
        if gaveHugetlb, others.isEmpty { Self.write(mountPoint + "/cgroup.subtree_control", "-hugetlb") }
    }
}

extension RootlessTests {
    /// Runs `body` as a new test user whose commands start in a cgroup D delegated to it
    /// (`DelegatedCgroupV2`); cancels the test where this host cannot delegate one, and removes
    /// the user and D afterwards, on failure too.
    func withDelegatedCgroup(user letter: String, subordinateIDs: Bool,
                             _ body: (RootlessUser, DelegatedCgroupV2) throws -> Void) throws {
        let (mountPoint, reason) = DelegatedCgroupV2.hierarchy()
        guard let mountPoint else { try Test.cancel("\(reason)") }
        let u = try RootlessUser(letter, subordinateIDs: subordinateIDs)
        var delegated: DelegatedCgroupV2?
        defer { u.cleanup(); delegated?.remove() }
        let cg = try DelegatedCgroupV2(for: u, mountPoint: mountPoint)
        delegated = cg
        u.unifiedStart = cg.path
        try body(u, cg)
    }

    /// (Tests of a real delegated cgroup v2 subtree, docs/rootless.md "Resource limits".)
    /// `dockbuild runtime run` as the user, in D, with a bundle whose config.json sets a hugetlb
    /// limit: the runtime moves itself to D's leaf `init`, gives hugetlb below D, and the
    /// container's cgroup D/<id> holds the limit (read from inside, through the host's /sys, with the
    /// container's own pid 1 in its cgroup.procs). Run again from the leaf (D now has controllers
    /// and no processes): nothing moves again and the cgroup is beside the leaf again.
    @Test(.enabled(if: RootlessUser.canRun)) func runtimeAppliesAHugetlbLimitInADelegatedCgroupV2Subtree() throws {
        try withDelegatedCgroup(user: "v", subordinateIDs: false) { u, cg in
            let bundle = u.home + "/bundle"
            try FileManager.default.createDirectory(atPath: bundle + "/rootfs", withIntermediateDirectories: true)
            #expect(try Shell.status(["tar", "-C", bundle + "/rootfs", "-xf", u.busyboxTar]) == 0)
            // the container's cgroup, as the rootless spec's bind of the host's /sys shows it
            let inside = "/sys/fs/cgroup\(cg.path)/rl-hp"
            try "cat \(inside)/hugetlb.2MB.max; cat \(inside)/cgroup.procs\n".write(toFile: bundle + "/rootfs/t.sh", atomically: true, encoding: .utf8)
            #expect(try Shell.status(["chown", "-R", "\(u.uid):\(u.gid)", bundle]) == 0)
            try u.ok(["runtime", "spec", "--rootless", "-b", bundle, "--arg", "sh", "--arg", "/t.sh"])
            let configPath = bundle + "/config.json"
            var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as? [String: Any])
            var linux = config["linux"] as? [String: Any] ?? [:]
            linux["resources"] = ["hugepageLimits": [["pageSize": "2MB", "limit": 4_194_304]]]
            config["linux"] = linux
            try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
            chown(configPath, u.uid, u.gid)

            func runBundle() throws -> [String] {
                let r = try u.db(["runtime", "--root", u.runDir + "/rt", "run", "-b", bundle, "rl-hp"])
                #expect(r.status == 0, "runtime run as \(u.name) in \(u.unifiedStart ?? ""): \(r.err)")
                return r.out.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            }
            // Not marked as delegated (only writable, as every unit's cgroup below user@UID.service
            // is): nothing moves, no controller is given below, the limit is not applied.
            try DelegatedCgroupV2.setDelegated(cg.dir, false)
            let unmarked = try runBundle()
            #expect(!unmarked.contains("4194304"), "\(unmarked)")
            #expect(!FileManager.default.fileExists(atPath: cg.dir + "/init"))
            #expect(!DelegatedCgroupV2.words(cg.dir + "/cgroup.subtree_control").contains("hugetlb"))
            try DelegatedCgroupV2.setDelegated(cg.dir, true)

            let first = try runBundle()
            #expect(first.first == "4194304", "\(first)")
            #expect(first.dropFirst().contains("1"), "the container's pid 1 is not in \(inside): \(first)")
            // the runtime moved itself to the leaf, D gave hugetlb below it, the container's cgroup is gone
            #expect(DelegatedCgroupV2.words(cg.dir + "/cgroup.subtree_control").contains("hugetlb"))
            #expect(DelegatedCgroupV2.words(cg.dir + "/cgroup.procs").isEmpty)
            #expect(FileManager.default.fileExists(atPath: cg.dir + "/init/cgroup.procs"))
            #expect(!FileManager.default.fileExists(atPath: cg.dir + "/rl-hp"))

            // from the leaf, D with its controllers and no processes: no second move, the same cgroup
            u.unifiedStart = cg.path + "/init"
            let second = try runBundle()
            #expect(second.first == "4194304", "\(second)")
            #expect(second.dropFirst().contains("1"), "\(second)")
            #expect(!FileManager.default.fileExists(atPath: cg.dir + "/init/init"))
            #expect(!FileManager.default.fileExists(atPath: cg.dir + "/init/rl-hp"))
            #expect(!FileManager.default.fileExists(atPath: cg.dir + "/rl-hp"))
        }
    }

    /// `run --memory --cpus --pids-limit` as the user, in D, whose delegation has only hugetlb (the
    /// real v2 files): one warning names exactly those three flags and the missing controllers;
    /// the command and the user namespace's holder move to D's leaf `init`; the container runs in
    /// a cgroup of its own below D (dockbuild/<id>, not D, not the leaf), given D's controllers,
    /// and that cgroup is gone once the container is removed. Later commands start in the leaf
    /// (D now has controllers and no processes) and move nothing again.
    @Test(.enabled(if: RootlessUser.canRun)) func runNamesTheLimitsADelegatedCgroupV2SubtreeCannotApply() throws {
        try withDelegatedCgroup(user: "w", subordinateIDs: true) { u, cg in
            func read(_ path: String) -> String? { (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) }
            /// The process's cgroup v2 line of /proc/PID/cgroup (a hybrid host lists the v1 ones too).
            func v2(_ pid: Any) -> String? { read("/proc/\(pid)/cgroup")?.split(separator: "\n").first { $0.hasPrefix("0::") }.map(String.init) }
            func subgroups(_ dir: String) -> [String] {
                ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { FileManager.default.fileExists(atPath: dir + "/" + $0 + "/cgroup.procs") }
            }
            let expected = "WARNING: --memory, --cpus, --pids-limit not applied: the delegated cgroup v2 subtree has no memory, cpu, pids controller ("
            let flags = ["--memory", "64m", "--cpus", "0.5", "--pids-limit", "20"]

            try u.ok(["import", u.busyboxTar, "bb:1"])
            let holder = try #require(u.holder)
            #expect(v2(holder) == "0::\(cg.path)", "the holder starts in D")
            let r = try u.db(["run", "--rm", "--network", "none"] + flags + ["bb:1", "cat", "/proc/self/cgroup"])
            #expect(r.status == 0, "\(r.err)")
            // a cgroup namespace of its own, rooted at the container's cgroup (below D: see the -d run)
            #expect(r.out.split(separator: "\n").filter { $0.hasPrefix("0::") } == ["0::/"], "\(r.out)")
            let warnings = r.err.split(separator: "\n").filter { $0.contains("WARNING") }
            #expect(warnings.count == 1 && warnings.first?.hasPrefix(expected) == true, "\(r.err)")
            // D's own file, as the command sees it (cgroup2 on /sys/fs/cgroup)
            #expect(r.err.contains("(/sys/fs/cgroup\(cg.path)/cgroup.controllers: hugetlb)"), "\(r.err)")
            // the holder (and the command, gone now) moved to the leaf; D gave hugetlb below it
            #expect(v2(holder) == "0::\(cg.path)/init")
            #expect(DelegatedCgroupV2.words(cg.dir + "/cgroup.procs").isEmpty)
            #expect(DelegatedCgroupV2.words(cg.dir + "/cgroup.subtree_control").contains("hugetlb"))
            // --rm removed the container's cgroup
            #expect(subgroups(cg.dir + "/dockbuild").isEmpty, "\(subgroups(cg.dir + "/dockbuild"))")

            // from the leaf: D has controllers and no processes
            u.unifiedStart = cg.path + "/init"
            let d = try u.db(["run", "-d", "--network", "none", "--name", "lim"] + flags + ["bb:1", "sleep", "300"])
            #expect(d.status == 0, "\(d.err)")
            let again = d.err.split(separator: "\n").filter { $0.contains("WARNING") }
            #expect(again.count == 1 && again.first?.hasPrefix(expected) == true, "\(d.err)")
            let id = d.out.trimmingCharacters(in: .whitespacesAndNewlines)
            let pid = try u.ok(["container", "inspect", "-f", "{{.State.Pid}}", "lim"])
            #expect(v2(pid) == "0::\(cg.path)/dockbuild/\(id)")
            #expect(DelegatedCgroupV2.words(cg.dir + "/dockbuild/\(id)/cgroup.controllers") == ["hugetlb"])
            #expect(FileManager.default.fileExists(atPath: cg.dir + "/dockbuild/\(id)/hugetlb.2MB.max"))
            #expect(subgroups(cg.dir + "/init").isEmpty, "nothing is made in the leaf: \(subgroups(cg.dir + "/init"))")
            #expect(v2(holder) == "0::\(cg.path)/init")
            try u.ok(["rm", "-f", "lim"])
            #expect(!FileManager.default.fileExists(atPath: cg.dir + "/dockbuild/\(id)"))

            // a build's RUN step from the leaf: it runs, and leaves no cgroup in D or the leaf
            let ctx = u.dir + "/ctx"
            try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
            chmod(ctx, 0o755)
            try "FROM bb:1\nRUN echo built > /built\n".write(toFile: ctx + "/Dockerfile", atomically: true, encoding: .utf8)
            chmod(ctx + "/Dockerfile", 0o644)
            try u.ok(["build", "-q", "--network", "none", "-t", "v2:b", ctx])
            #expect(try u.ok(["run", "--rm", "--network", "none", "v2:b", "cat", "/built"]) == "built")
            #expect(subgroups(cg.dir) == ["init"], "\(subgroups(cg.dir))")
            #expect(subgroups(cg.dir + "/init").isEmpty)
        }
    }
}
