import Containers
import Foundation
import ImageStore
import OCI
import Testing

/// An ordinary user made for one test (useradd), with its own HOME and XDG_RUNTIME_DIR and a copy
/// of the dockbuild binary it can reach; `cleanup` removes its containers, its user-namespace
/// holder, the user and every file.
final class RootlessUser: @unchecked Sendable {
    let name: String
    let uid: UInt32
    let gid: UInt32
    let dir: String
    var home: String { dir + "/home" }
    var runDir: String { dir + "/run" }
    var binary: String { dir + "/bin/dockbuild" }
    /// busybox-static with a few applets and /etc/passwd, as a tar for `import`.
    var busyboxTar: String { dir + "/busybox.tar" }

    /// As `make deps` does: pasta opens /dev/net/tun as the user (fuse-overlayfs /dev/fuse),
    /// 0666 on a standard Debian and 0600 in some containers.
    static func tunUsable() { devicesUsable(["/dev/net/tun"]) }

    /// As `make deps` does for the devices rootless dockbuild opens as the user.
    static func devicesUsable(_ devices: [String]) {
        for d in devices {
            var st = stat()
            if stat(d, &st) == 0, st.st_mode & 0o777 != 0o666 { chmod(d, 0o666) }
        }
    }

    static var canRun: Bool {
        Scenario.canRun && ["setpriv", "useradd", "userdel", "usermod", "newuidmap", "newgidmap"].allSatisfy { Shell.which($0) != nil }
    }

    /// A system user (no subordinate ids of its own), given `subordinateIDs` explicitly when asked.
    init(_ tag: String, subordinateIDs: Bool) throws {
        name = "dbrl\(getpid() % 100_000)\(tag)"
        dir = "/var/tmp/dbrl-\(getpid())-\(UUID().uuidString.prefix(8))"
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        chmod(dir, 0o755); chmod(dir + "/bin", 0o755)
        let pkg = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        try fm.copyItem(atPath: "\(pkg)/.build/debug/dockbuild", toPath: dir + "/bin/dockbuild")
        chmod(dir + "/bin/dockbuild", 0o755)
        _ = try? Shell.run(["userdel", name])
        let add = try Shell.run(["useradd", "-r", "-M", "-d", dir + "/home", "-s", "/bin/sh", name])
        guard add.0 == 0, let pw = getpwnam(name) else {
            throw NSError(domain: "RootlessUser", code: 1, userInfo: [NSLocalizedDescriptionKey: "useradd \(name): \(add.2)"])
        }
        uid = pw.pointee.pw_uid
        gid = pw.pointee.pw_gid
        if subordinateIDs {
            // a range of this test's own, far above the ones useradd hands out
            let start = 1_000_000 + UInt32(getpid() % 20_000) * 65_536 + (tag == "a" ? 0 : 65_536 * 20_000)
            let range = "\(start)-\(start + 65_535)"
            let mod = try Shell.run(["usermod", "--add-subuids", range, "--add-subgids", range, name])
            #expect(mod.0 == 0, "usermod: \(mod.2)")
        }
        for d in [home, runDir] {
            try fm.createDirectory(atPath: d, withIntermediateDirectories: true)
            chown(d, uid, gid)
            chmod(d, 0o700)
        }
        // the image: busybox-static and a few applets
        let rf = dir + "/rootfs"
        for d in ["bin", "etc", "tmp"] { try fm.createDirectory(atPath: "\(rf)/\(d)", withIntermediateDirectories: true) }
        try fm.copyItem(atPath: "/bin/busybox", toPath: "\(rf)/bin/busybox")
        for a in ["sh", "echo", "id", "cat", "chown", "chmod", "ln", "touch", "stat", "sleep", "true", "mkdir", "httpd", "wget", "ls", "grep", "rm"] {
            try fm.createSymbolicLink(atPath: "\(rf)/bin/\(a)", withDestinationPath: "busybox")
        }
        try "root:x:0:0:root:/root:/bin/sh\n".write(toFile: "\(rf)/etc/passwd", atomically: true, encoding: .utf8)
        #expect(try Shell.status(["tar", "-C", rf, "-cf", busyboxTar, "."]) == 0)
        chmod(busyboxTar, 0o644)
    }

    /// The command line that runs `argv` as the user (setpriv), in `cwd`, with only PATH, HOME
    /// and XDG_RUNTIME_DIR of its own (and `env`) in its environment.
    func command(_ argv: [String], env: [String: String] = [:], cwd: String = "/") -> [String] {
        var vars = ["PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": home, "XDG_RUNTIME_DIR": runDir]
        vars.merge(env) { $1 }
        return [Shell.which("setpriv") ?? "/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(gid)", "--init-groups",
                "/usr/bin/env", "-i", "-C", cwd] + vars.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } + argv
    }

    /// Runs `dockbuild args...` as the user, with HOME and XDG_RUNTIME_DIR of its own.
    @discardableResult
    func db(_ args: [String], env: [String: String] = [:], cwd: String = "/") throws -> Scenario.Result {
        let p = Process()
        let argv = command([binary] + args, env: env, cwd: cwd)
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        if let start = unifiedStart {
            // as root: a mount namespace of its own with the cgroup2 hierarchy on /sys/fs/cgroup (a
            // unified host, as dockbuild sees it), into the delegated cgroup, then the user's command
            p.arguments = ["-m", "--propagation", "private", "/bin/sh", "-c",
                           "mount -t cgroup2 none /sys/fs/cgroup || exit 125; echo $$ > /sys/fs/cgroup\(start)/cgroup.procs || exit 125; exec \"$@\"",
                           "sh", p.executableURL?.path ?? "setpriv"] + (p.arguments ?? [])
            p.executableURL = URL(fileURLWithPath: Shell.which("unshare") ?? "/usr/bin/unshare")
        } else if !cgroupDirs.isEmpty {
            // as root, into the delegated cgroups first, then the user's command
            p.arguments = ["-c", "for d in \(cgroupDirs.joined(separator: " ")); do echo $$ > $d/cgroup.procs || exit 125; done; exec \"$@\"",
                           "sh", p.executableURL?.path ?? "setpriv"] + (p.arguments ?? [])
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
        }
        let o = Pipe(), e = Pipe()
        p.standardOutput = o; p.standardError = e; p.standardInput = FileHandle.nullDevice
        try p.run()
        let errBox = Box()
        let t = Thread { errBox.data = e.fileHandleForReading.readDataToEndOfFile(); errBox.done = true }
        t.start()
        let out = o.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !errBox.done { usleep(1000) }
        return Scenario.Result(status: p.terminationStatus, out: String(decoding: out, as: UTF8.self),
                               err: String(decoding: errBox.data, as: UTF8.self))
    }

    /// `db` that expects success; trimmed stdout.
    @discardableResult
    func ok(_ args: [String], env: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let r = try db(args, env: env)
        #expect(r.status == 0, "dockbuild \(args.joined(separator: " ")) as \(name) exited \(r.status): \(r.err)", sourceLocation: sourceLocation)
        return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Starts `dockbuild args...` as the user in the background, its output in `log` (not a pipe:
    /// a server must not block on it); the caller terminates it.
    func spawn(_ args: [String], log: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Shell.which("setpriv") ?? "/usr/bin/setpriv")
        let vars = ["PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": home, "XDG_RUNTIME_DIR": runDir]
        p.arguments = ["--reuid=\(uid)", "--regid=\(gid)", "--init-groups", "/usr/bin/env", "-i"]
            + vars.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } + [binary] + args
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = out; p.standardError = out; p.standardInput = FileHandle.nullDevice
        try p.run()
        try out.close()
        return p
    }

    /// Mounts the test made for the user (unmounted by `cleanup`, before its files go).
    var mounts: [String] = []

    /// The cgroup (a path below the cgroup2 hierarchy's root) every command of the user starts in,
    /// in a mount namespace of its own with that hierarchy on /sys/fs/cgroup (`DelegatedCgroupV2`).
    var unifiedStart: String?

    /// Cgroup directories every command of the user starts in (`delegateCgroups`).
    var cgroupDirs: [String] = []

    /// Emulates a delegated cgroup subtree, as systemd gives a user slice: a directory of the
    /// user's own in every cgroup v1 hierarchy, below this process's cgroup, chowned to the user;
    /// each later command starts in it. False where the host has no v1 hierarchies (the unified
    /// hierarchy: there a delegated subtree needs controllers enabled down from a cgroup with no
    /// processes, which a test cannot arrange without moving its own process).
    func delegateCgroups() throws -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return false }
        var dirs: [String] = []
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard f.count == 3, f[0] != "0", !f[1].isEmpty else { continue }
            let mp = "/sys/fs/cgroup/" + (f[1].hasPrefix("name=") ? String(f[1].dropFirst(5)) : f[1])
            guard FileManager.default.fileExists(atPath: mp + "/cgroup.procs") else { continue }
            let parent = mp + (f[2] == "/" ? "" : f[2])
            let sub = parent + "/" + URL(fileURLWithPath: dir).lastPathComponent
            guard mkdir(sub, 0o755) == 0 || errno == EEXIST else { continue }
            if f[1].split(separator: ",").contains("cpuset") {
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    let v = try String(contentsOfFile: parent + "/" + file, encoding: .utf8)
                    try v.write(toFile: sub + "/" + file, atomically: false, encoding: .utf8)
                }
            }
            for p in [sub, sub + "/cgroup.procs", sub + "/tasks"] { chown(p, uid, gid) }
            dirs.append(sub)
        }
        cgroupDirs = dirs
        return !dirs.isEmpty
    }

    /// The user's cgroup directory in the hierarchy whose mount point ends in `controller`.
    func cgroupDir(_ controller: String) -> String? {
        cgroupDirs.first { $0.hasPrefix("/sys/fs/cgroup/\(controller)/") }
    }

    /// "MODE UID/GID" (as `tar -tv --numeric-owner` prints them) of each path in the image of a
    /// docker-archive, its layers applied in order (a later layer's entry wins; whiteouts are
    /// left out: the test's images have none).
    static func ownership(ofArchive archive: String, in dir: String) throws -> [String: String] {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        #expect(try Shell.status(["tar", "-C", dir, "-xf", archive]) == 0)
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/manifest.json")))
        guard let entries = manifest as? [[String: Any]], let layers = entries.first?["Layers"] as? [String] else {
            Issue.record("\(archive): no Layers in manifest.json")
            return [:]
        }
        var owners: [String: String] = [:]
        for layer in layers {
            let listing = try Shell.out(["tar", "--numeric-owner", "-tvf", dir + "/" + layer])
            for line in listing.split(separator: "\n") {
                // MODE UID/GID SIZE DATE TIME NAME[ -> TARGET]
                let f = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
                guard f.count == 6 else { continue }
                var name = String(f[5])
                if let arrow = name.range(of: " -> ") { name = String(name[..<arrow.lowerBound]) }
                while name.hasPrefix("./") { name.removeFirst(2) }
                while name.hasSuffix("/") { name.removeLast() }
                owners[name] = "\(f[0]) \(f[1])"
            }
        }
        return owners
    }

    /// The pid of the user's namespace holder.
    var holder: Int32? {
        guard let t = try? String(contentsOfFile: runDir + "/dockbuild/userns.pid", encoding: .utf8) else { return nil }
        return t.split(separator: " ").first.flatMap { Int32($0) }
    }

    func cleanup() {
        if let r = try? db(["ps", "-aq", "--no-trunc"]) {
            for id in r.out.split(separator: "\n") { _ = try? db(["rm", "-f", String(id)]) }
        }
        if let pid = holder, pid > 0 { kill(pid, SIGKILL) }
        usleep(100_000)
        for m in mounts.reversed() { umount2(m, Int32(MNT_DETACH)) }
        for d in cgroupDirs {
            // the runtime's dockbuild/<id> directories first, deepest first
            let subs = FileManager.default.subpaths(atPath: d) ?? []
            for sub in subs.sorted(by: { $0.count > $1.count }) { rmdir(d + "/" + sub) }
            for _ in 0..<50 where rmdir(d) != 0 && errno == EBUSY { usleep(100_000) }
        }
        _ = try? Shell.run(["userdel", name])
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// Rootless dockbuild (docs/rootless.md): the real CLI run by an ordinary user.
@Suite(.serialized) struct RootlessTests {
    @Test(.enabled(if: RootlessUser.canRun)) func containersRunForAnOrdinaryUser() throws {
        let u = try RootlessUser("a", subordinateIDs: true)
        defer { u.cleanup() }
        try u.ok(["import", u.busyboxTar, "bb:1"])
        #expect(try u.ok(["images", "--format", "{{.Repository}}:{{.Tag}}"]) == "bb:1")
        // the store and the state are the user's, under XDG's directories
        #expect(FileManager.default.fileExists(atPath: u.home + "/.local/share/dockbuild/index.json"))
        let info = try u.ok(["info"])
        #expect(info.contains("Rootless: true"))
        #expect(info.contains("Rootless UID Map: 0:\(u.uid):1,1:"))

        // root in the container is the user; ids 1.. are its subordinate ids
        let out = try u.ok(["run", "--rm", "--network", "none", "bb:1", "sh", "-c", "id -u; cat /proc/self/uid_map; echo hi > /tmp/f; chown 1000 /tmp/f && stat -c %u /tmp/f"])
        let lines = out.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(lines.first == "0")
        #expect(lines.contains("0 \(u.uid) 1"))
        #expect(lines.last == "1000")
        #expect(try u.ok(["run", "--rm", "--network", "host", "bb:1", "echo", "host"]) == "host")

        // limits without a delegated cgroup are named, not applied
        let limited = try u.db(["run", "--rm", "--network", "none", "-m", "64m", "--pids-limit", "20", "bb:1", "true"])
        #expect(limited.status == 0, "\(limited.err)")
        #expect(limited.err.contains("WARNING: --memory, --pids-limit not applied"))

        // the lifecycle: detached, logs, exec, stop, rm
        let id = try u.ok(["run", "-d", "--network", "none", "--name", "rl1", "bb:1", "sh", "-c", "echo started; exec sleep 300"])
        #expect(id.count == 64)
        #expect(Scenario.eventually { (try? u.ok(["logs", "rl1"])) == "started" })
        #expect(try u.ok(["exec", "rl1", "sh", "-c", "echo in-exec; id -u"]) == "in-exec\n0")
        #expect(try u.ok(["ps", "--format", "{{.Names}}"]) == "rl1")
        // cp out: the copy is the user's on the host, not a subordinate id's
        try u.ok(["exec", "rl1", "sh", "-c", "echo made > /made && chown 1000:1000 /made"])
        try u.ok(["cp", "rl1:/made", u.home + "/made"])
        var st = stat()
        #expect(lstat(u.home + "/made", &st) == 0 && st.st_uid == u.uid)
        try u.ok(["stop", "-t", "1", "rl1"])
        #expect(try u.ok(["container", "inspect", "-f", "{{.State.Status}}", "rl1"]) == "exited")
        try u.ok(["rm", "rl1"])
        #expect(try u.ok(["ps", "-aq"]) == "")
    }

    @Test(.enabled(if: RootlessUser.canRun)) func rootlessBuildKeepsOwnershipAndDigestsOfARootBuild() throws {
        let u = try RootlessUser("b", subordinateIDs: true)
        defer { u.cleanup() }
        let ctx = u.dir + "/ctx"
        try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
        chmod(ctx, 0o755)
        try """
            FROM bb:1
            RUN mkdir /data && echo owned > /data/user && chown 1000:1000 /data/user && echo root > /data/root
            RUN echo second > /data/second && chown 1234:5678 /data/second

            """.write(toFile: ctx + "/Dockerfile", atomically: true, encoding: .utf8)
        chmod(ctx + "/Dockerfile", 0o644)
        let epoch = ["SOURCE_DATE_EPOCH": "1700000000"]
        try u.ok(["import", u.busyboxTar, "bb:1"])
        // the default network of a rootless RUN is the host's
        try u.ok(["build", "-q", "-t", "rl:b", ctx], env: epoch)
        let rootless = try u.ok(["image", "inspect", "-f", "{{json .RootFS.Layers}}", "rl:b"])

        let s = try Scenario(71)
        defer { s.cleanup() }
        try s.ok(["import", u.busyboxTar, "bb:1"])
        try s.ok(["build", "-q", "--network", "none", "-t", "rl:b", ctx], env: epoch)
        let root = try Shell.out([s.binary, "--root", s.root, "image", "inspect", "-f", "{{json .RootFS.Layers}}", "rl:b"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(rootless == root, "the rootless build's layers differ from the root build's")
        #expect(rootless.split(separator: ",").count == 3)

        // and the layer holds uid 1000 (read from the root store's blob)
        let store = try ImageStore(root: s.root)
        let image = try store.image("rl:b")
        guard let layer = image.manifest.layers.dropFirst().first else { Issue.record("no RUN layer"); return }
        let listing = try Shell.out(["tar", "--numeric-owner", "-tvzf", store.path(for: layer.digest)])
        #expect(listing.contains("1000/1000") && listing.contains("data/user"), "\(listing)")
        let out = try u.ok(["run", "--rm", "--network", "none", "rl:b", "stat", "-c", "%u:%g %n", "/data/user", "/data/root", "/data/second"])
        #expect(out == "1000:1000 /data/user\n0:0 /data/root\n1234:5678 /data/second")
    }

    @Test(.enabled(if: RootlessUser.canRun)) func withoutSubordinateIDsOneIDIsMappedAndSaidOnce() throws {
        let u = try RootlessUser("c", subordinateIDs: false)
        defer { u.cleanup() }
        let first = try u.db(["import", u.busyboxTar, "bb:1"])
        #expect(first.status == 0, "\(first.err)")
        #expect(first.err.contains("WARNING: no subordinate ids for \(u.name)"))
        let second = try u.db(["images", "-q"])
        #expect(second.status == 0 && !second.err.contains("WARNING"))
        let out = try u.ok(["run", "--rm", "--network", "none", "bb:1", "sh", "-c", "id -u; cat /proc/self/uid_map"])
        let lines = out.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(lines == ["0", "0 \(u.uid) 1"])
        // a terminal works too (devpts without the unmapped tty group)
        #expect(try u.ok(["run", "--rm", "-t", "--network", "none", "bb:1", "sh", "-c", "test -t 1 && echo tty"]).hasPrefix("tty"))
        // an image's files of ids that are not mapped become the user's (root inside)
        let owned = u.dir + "/owned.tar"
        #expect(try Shell.status(["tar", "-C", u.dir + "/rootfs", "--owner=1000", "--group=1000", "-cf", owned, "."]) == 0)
        chmod(owned, 0o644)
        try u.ok(["import", owned, "owned:1"])
        #expect(try u.ok(["run", "--rm", "--network", "none", "owned:1", "stat", "-c", "%u:%g", "/etc/passwd"]) == "0:0")
        // other owners cannot be made: a chown fails inside
        let chown = try u.db(["run", "--rm", "--network", "none", "bb:1", "chown", "1000", "/tmp"])
        #expect(chown.status != 0)
    }

    @Test(.enabled(if: RootlessUser.canRun)) func rootlessNetworkIsPastaWithPublishedPorts() throws {
        RootlessUser.tunUsable()
        let u = try RootlessUser("e", subordinateIDs: true)
        defer { u.cleanup() }
        try u.ok(["import", u.busyboxTar, "bb:1"])
        #expect(try u.ok(["info"]).contains("Rootless Network: pasta (/usr/bin/pasta)"))
        // run's default network is a namespace of its own, connected by pasta: lo and one interface
        let nets = try u.ok(["run", "--rm", "bb:1", "cat", "/proc/net/dev"])
        #expect(nets.split(separator: "\n").count == 4, "\(nets)")  // two header lines, lo, the tap
        #expect(try u.ok(["run", "--rm", "--network", "none", "bb:1", "cat", "/proc/net/dev"]).split(separator: "\n").count == 3)

        // -p HOST:CONTAINER: the page of busybox httpd in the container, fetched on the host
        let port = 21_000 + Int(getpid() % 4_000)
        let id = try u.ok(["run", "-d", "--name", "web", "-p", "\(port):80", "bb:1", "sh", "-c",
                           "mkdir -p /www && echo rootless-page > /www/index.html && exec httpd -f -p 80 -h /www"])
        #expect(id.count == 64)
        func fetch() -> String? {
            guard let r = try? Shell.run(["curl", "-s", "-m", "2", "http://127.0.0.1:\(port)/"]), r.0 == 0 else { return nil }
            return r.1.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(Scenario.eventually(20) { fetch() == "rootless-page" }, "\(String(describing: fetch()))")
        #expect(try u.ok(["port", "web"]).contains("80/tcp -> 0.0.0.0:\(port)"))
        // inspect shows what rootless podman shows for such a container: no address of its own
        // (pasta copies the host's), no bridge, the namespace's file, the published ports
        #expect(try u.ok(["inspect", "-f", "{{.NetworkSettings.IPAddress}}|{{.NetworkSettings.Networks.bridge.IPAddress}}|"
                          + "{{.NetworkSettings.Networks.bridge.NetworkID}}|{{.NetworkSettings.SandboxKey}}|{{json .NetworkSettings.Ports}}", "web"])
                == "|||\(u.runDir)/dockbuild/netns/\(id)|{\"80/tcp\":[{\"HostIp\":\"0.0.0.0\",\"HostPort\":\"\(port)\"}]}")
        // -p 127.0.0.1::80: on that address only, a free host port chosen, shown by `port`
        try u.ok(["run", "-d", "--name", "web2", "-p", "127.0.0.1::80", "bb:1", "sh", "-c",
                  "mkdir /www && echo second > /www/index.html && exec httpd -f -p 80 -h /www"])
        let other = try u.ok(["port", "web2", "80"])
        #expect(other.hasPrefix("127.0.0.1:") && !other.hasSuffix(":0"), "\(other)")
        if let p = other.split(separator: ":").last {
            #expect(Scenario.eventually(20) { (try? Shell.out(["curl", "-s", "-m", "2", "http://127.0.0.1:\(p)/"]))?.hasPrefix("second") == true })
        }
        // pasta is the user's, and goes with the container
        let pidFile = u.runDir + "/dockbuild/netns/\(id).pid"
        let pasta = (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
        #expect(pasta > 0 && kill(pasta, 0) == 0)
        var st = stat()
        #expect(stat("/proc/\(pasta)", &st) == 0 && st.st_uid == u.uid)
        try u.ok(["stop", "-t", "1", "web"])
        #expect(Scenario.eventually { kill(pasta, 0) != 0 }, "pasta \(pasta) outlived its container")
        #expect(fetch() == nil)
        #expect(!FileManager.default.fileExists(atPath: pidFile))
        #expect(try u.ok(["inspect", "-f", "{{.NetworkSettings.SandboxKey}}", "web"]) == "")
        // started again: a new pasta serves the same port
        try u.ok(["start", "web"])
        #expect(Scenario.eventually(20) { fetch() == "rootless-page" })
        try u.ok(["rm", "-f", "web", "web2"])
        #expect(Scenario.eventually { fetch() == nil })
        let left = (try? FileManager.default.contentsOfDirectory(atPath: u.runDir + "/dockbuild/netns")) ?? []
        #expect(left.isEmpty, "\(left)")

        // a RUN step's default network is pasta's too, and gone after the step
        let ctx = u.dir + "/ctx"
        try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
        chmod(ctx, 0o755)
        try "FROM bb:1\nRUN cat /proc/net/dev > /nets\n".write(toFile: ctx + "/Dockerfile", atomically: true, encoding: .utf8)
        chmod(ctx + "/Dockerfile", 0o644)
        try u.ok(["build", "-q", "-t", "nets:1", ctx])
        #expect(try u.ok(["run", "--rm", "--network", "none", "nets:1", "cat", "/nets"]).split(separator: "\n").count == 4)
        let after = (try? FileManager.default.contentsOfDirectory(atPath: u.runDir + "/dockbuild/netns")) ?? []
        #expect(after.isEmpty, "\(after)")
        // --network host is still the host's
        let hostNet = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")) ?? "?"
        #expect(try u.ok(["run", "--rm", "--network", "host", "bb:1", "ls", "-l", "/proc/self/ns/net"]).hasSuffix(hostNet))
    }

    @Test(.enabled(if: RootlessUser.canRun)) func registryLoginExecCommitAndBindMountsForAnOrdinaryUser() throws {
        RootlessUser.tunUsable()
        let u = try RootlessUser("f", subordinateIDs: true)
        defer { u.cleanup() }
        try u.ok(["import", u.busyboxTar, "bb:1"])
        // `registry serve` as the user on an unprivileged port, with a password
        let port = 25_000 + Int(getpid() % 4_000)
        let host = "127.0.0.1:\(port)"
        #expect(try Shell.status(["htpasswd", "-bcB", u.dir + "/htpasswd", "rl", "s3cret"]) == 0)
        chmod(u.dir + "/htpasswd", 0o644)
        let registry = try u.spawn(["registry", "serve", "--addr", host, "--htpasswd", u.dir + "/htpasswd"], log: u.dir + "/registry.log")
        defer { registry.terminate(); registry.waitUntilExit() }
        func code() -> String? { try? Shell.out(["curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}", "http://\(host)/v2/"]) }
        #expect(Scenario.eventually(20) { code() == "401" },
                "registry: \((try? String(contentsOfFile: u.dir + "/registry.log", encoding: .utf8)) ?? "")")
        // its storage is the user's, under the user's store
        var st = stat()
        #expect(stat(u.home + "/.local/share/dockbuild/registry", &st) == 0 && st.st_uid == u.uid)

        // push needs the login; login stores the credentials in the user's config.json
        try u.ok(["tag", "bb:1", "\(host)/rl/bb:1"])
        #expect(try u.db(["push", "\(host)/rl/bb:1"]).status != 0)
        try u.ok(["login", "-u", "rl", "-p", "s3cret", host])
        #expect(stat(u.home + "/.docker/config.json", &st) == 0 && st.st_uid == u.uid && st.st_mode & 0o077 == 0)
        try u.ok(["push", "\(host)/rl/bb:1"])
        // pull it back into an empty store
        try u.ok(["rmi", "\(host)/rl/bb:1", "bb:1"])
        #expect(try u.ok(["images", "-q"]) == "")
        try u.ok(["pull", "\(host)/rl/bb:1"])
        #expect(try u.ok(["run", "--rm", "--network", "none", "\(host)/rl/bb:1", "echo", "pulled"]) == "pulled")

        // -v: the user's own directory, read and written by root in the container, the user's on the host
        let vol = u.home + "/vol"
        try FileManager.default.createDirectory(atPath: vol, withIntermediateDirectories: true)
        try "from-host\n".write(toFile: vol + "/in", atomically: true, encoding: .utf8)
        chown(vol, u.uid, u.gid); chown(vol + "/in", u.uid, u.gid)
        try u.ok(["run", "-d", "--network", "none", "--name", "c1", "-v", "\(vol):/data", "\(host)/rl/bb:1", "sleep", "300"])
        #expect(try u.ok(["exec", "c1", "sh", "-c", "cat /data/in; echo from-container > /data/out; id -u"]) == "from-host\n0")
        #expect(stat(vol + "/out", &st) == 0 && st.st_uid == u.uid)
        #expect((try? String(contentsOfFile: vol + "/out", encoding: .utf8)) == "from-container\n")
        let ro = try u.db(["run", "--rm", "--network", "none", "-v", "\(vol):/data:ro", "bb:1", "touch", "/data/x"])
        #expect(ro.status != 0 && !FileManager.default.fileExists(atPath: vol + "/x"))
        // a directory the user cannot read on the host stays unreadable in the container
        let secret = u.dir + "/secret"
        try FileManager.default.createDirectory(atPath: secret, withIntermediateDirectories: true)
        chmod(secret, 0o700)
        try "root-only\n".write(toFile: secret + "/f", atomically: true, encoding: .utf8)
        let denied = try u.db(["run", "--rm", "--network", "none", "-v", "\(secret):/s", "bb:1", "cat", "/s/f"])
        #expect(denied.status != 0 && !denied.out.contains("root-only"))

        // exec and commit: a file made by exec, owned by uid 1000, is in the committed image
        try u.ok(["exec", "c1", "sh", "-c", "echo committed > /committed && chown 1000:1000 /committed"])
        try u.ok(["commit", "c1", "rl:committed"])
        try u.ok(["rm", "-f", "c1"])
        #expect(try u.ok(["run", "--rm", "--network", "none", "rl:committed", "stat", "-c", "%u %n", "/committed"]) == "1000 /committed")
        #expect(try u.ok(["run", "--rm", "--network", "none", "rl:committed", "cat", "/committed"]) == "committed")
    }

    @Test(.enabled(if: RootlessUser.canRun)) func runtimeRunsABundleThatMapsIDsForAnOrdinaryUser() throws {
        let u = try RootlessUser("g", subordinateIDs: false)
        defer { u.cleanup() }
        // the bundle: the user's own root filesystem and `runtime spec --rootless`'s config, whose
        // user namespace maps the user to root (one id: no newuidmap needed)
        let bundle = u.home + "/bundle"
        try FileManager.default.createDirectory(atPath: bundle + "/rootfs", withIntermediateDirectories: true)
        #expect(try Shell.status(["tar", "-C", bundle + "/rootfs", "-xf", u.busyboxTar]) == 0)
        try "id -u; cat /proc/self/uid_map; stat -c %u /bin/busybox\n".write(toFile: bundle + "/rootfs/t.sh", atomically: true, encoding: .utf8)
        #expect(try Shell.status(["chown", "-R", "\(u.uid):\(u.gid)", bundle]) == 0)
        try u.ok(["runtime", "spec", "--rootless", "-b", bundle, "--arg", "sh", "--arg", "/t.sh"])
        let config = try String(contentsOfFile: bundle + "/config.json", encoding: .utf8)
        #expect(config.contains("\"uidMappings\"") && config.contains("\"hostID\" : \(u.uid)") || config.contains("\"hostID\":\(u.uid)"), "\(config)")
        let out = try u.ok(["runtime", "--root", u.runDir + "/rt", "run", "-b", bundle, "rl-bundle"])
        let lines = out.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(lines == ["0", "0 \(u.uid) 1", "0"], "\(out)")
        #expect(try u.ok(["runtime", "--root", u.runDir + "/rt", "list", "-q"]) == "")
    }

    @Test(.enabled(if: RootlessUser.canRun)) func limitsApplyInADelegatedCgroupSubtree() throws {
        let u = try RootlessUser("h", subordinateIDs: true)
        defer { u.cleanup() }
        try u.ok(["import", u.busyboxTar, "bb:1"])
        guard try u.delegateCgroups(), let memory = u.cgroupDir("memory"), let pids = u.cgroupDir("pids"), let cpu = u.cgroupDir("cpu") else {
            // a unified-only host: see delegateCgroups
            return
        }
        let r = try u.db(["run", "-d", "--network", "none", "--name", "lim", "-m", "64m", "--cpus", "0.5", "--pids-limit", "20", "bb:1", "sleep", "300"])
        #expect(r.status == 0, "\(r.err)")
        #expect(!r.err.contains("not applied"), "\(r.err)")
        let id = r.out.trimmingCharacters(in: .whitespacesAndNewlines)
        func read(_ path: String) -> String? { (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(read("\(memory)/dockbuild/\(id)/memory.limit_in_bytes") == "67108864")
        #expect(read("\(pids)/dockbuild/\(id)/pids.max") == "20")
        #expect(read("\(cpu)/dockbuild/\(id)/cpu.cfs_quota_us") == "50000")
        // the container's process is in it
        let pid = try u.ok(["container", "inspect", "-f", "{{.State.Pid}}", "lim"])
        #expect(read("\(pids)/dockbuild/\(id)/cgroup.procs")?.split(separator: "\n").contains(Substring(pid)) == true)
        // and the limit holds: more than 20 processes cannot start
        let fork = try u.db(["exec", "lim", "sh", "-c", "i=0; while [ $i -lt 40 ]; do sleep 2 & i=$((i+1)); done; wait"])
        #expect(fork.status != 0 || fork.err.contains("fork") || fork.err.contains("Resource"), "\(fork.err)")
        try u.ok(["rm", "-f", "lim"])
    }

    @Test(.enabled(if: RootlessUser.canRun)) func fuseOverlayfsIsTheFallbackAndInfoSaysWhich() throws {
        RootlessUser.devicesUsable(["/dev/fuse"])
        let u = try RootlessUser("i", subordinateIDs: true)
        defer { u.cleanup() }
        // this kernel takes overlayfs in a user namespace: the knob forces the fallback
        let fuse = ["DOCKBUILD_OVERLAY": "fuse-overlayfs"]
        try u.ok(["import", u.busyboxTar, "bb:1"], env: fuse)
        #expect(try u.ok(["info"]).contains("Rootless Overlay: kernel overlayfs in the user namespace"))
        #expect(try u.ok(["info"], env: fuse).contains("Rootless Overlay: fuse-overlayfs (forced by DOCKBUILD_OVERLAY)"))

        let id = try u.ok(["run", "-d", "--network", "none", "--name", "f1", "bb:1", "sleep", "300"], env: fuse)
        // the container's root is a fuse-overlayfs mount in the user's mount namespace
        // (cat: Foundation may read a procfs file short)
        let mounts = u.holder.flatMap { try? Shell.out(["cat", "/proc/\($0)/mountinfo"]) } ?? ""
        #expect(mounts.split(separator: "\n").contains { $0.contains(id) && $0.contains("fuse-overlayfs") },
                "\(mounts.split(separator: "\n").filter { $0.contains(id) })")
        // writes, ownership and deletions go through it, and commit sees them
        #expect(try u.ok(["exec", "f1", "sh", "-c", "echo x > /new && chown 1000 /new && rm /bin/true && stat -c %u /new"], env: fuse) == "1000")
        try u.ok(["commit", "f1", "fuse:1"], env: fuse)
        try u.ok(["rm", "-f", "f1"], env: fuse)
        // the fuse-overlayfs server goes with the mount
        #expect(Scenario.eventually {
            ((try? Shell.out(["pgrep", "-u", "\(u.uid)", "-f", "fuse-overlayfs.*\(id)"])) ?? "").isEmpty
        })
        #expect(try u.ok(["run", "--rm", "--network", "none", "fuse:1", "sh", "-c", "stat -c %u /new; cat /new; test -e /bin/true && echo kept || echo deleted"], env: fuse)
                == "1000\nx\ndeleted")
        // and a build's RUN steps
        let ctx = u.dir + "/ctx"
        try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
        chmod(ctx, 0o755)
        try "FROM bb:1\nRUN echo built > /b && chown 1000:1000 /b\n".write(toFile: ctx + "/Dockerfile", atomically: true, encoding: .utf8)
        chmod(ctx + "/Dockerfile", 0o644)
        try u.ok(["build", "-q", "--network", "none", "-t", "fb:1", ctx], env: fuse)
        #expect(try u.ok(["run", "--rm", "--network", "none", "fb:1", "stat", "-c", "%u:%g", "/b"], env: fuse) == "1000:1000")

        // an opaque directory (a RUN that replaces /d) hides the layers below it with either
        // overlay: marked user.overlay.opaque in a rootless store, read by overlayfs (userxattr)
        // and fuse-overlayfs
        try "FROM bb:1\nRUN mkdir /d && echo old > /d/old\nRUN rm -rf /d && mkdir /d && echo new > /d/only\n".write(toFile: ctx + "/Dockerfile", atomically: true, encoding: .utf8)
        try u.ok(["build", "-q", "--network", "none", "-t", "opq:1", ctx])
        #expect(try u.ok(["run", "--rm", "--network", "none", "opq:1", "ls", "/d"]) == "only")
        #expect(try u.ok(["run", "--rm", "--network", "none", "opq:1", "ls", "/d"], env: fuse) == "only")
    }

    @Test(.enabled(if: RootlessUser.canRun && Shell.which("strace") != nil)) func aCommandJoinsARunningNamespaceWithNoReExec() throws {
        let u = try RootlessUser("k", subordinateIDs: true)
        defer { u.cleanup() }
        /// The programs the process of `dockbuild args` executed, traced with strace (as root, over
        /// setpriv). Its children are not followed: the holder it may start never exits.
        func execs(_ args: [String], env: [String: String] = [:]) throws -> (Scenario.Result, [String]) {
            let trace = u.dir + "/trace-\(UUID().uuidString)"
            let r = try Shell.run(["strace", "-qq", "-e", "trace=execve", "-o", trace] + u.command([u.binary] + args, env: env))
            let lines = ((try? String(contentsOfFile: trace, encoding: .utf8)) ?? "").split(separator: "\n")
            let programs = lines.filter { $0.contains("execve(") && $0.contains("= 0") }.compactMap { line -> String? in
                guard let open = line.range(of: "execve(\"")?.upperBound, let close = line[open...].firstIndex(of: "\"") else { return nil }
                return String(line[open..<close])
            }
            return (Scenario.Result(status: r.0, out: r.1, err: r.2), programs)
        }
        // the first command makes the holder and re-executes into its namespace
        let (first, made) = try execs(["import", u.busyboxTar, "bb:1"])
        #expect(first.status == 0, "\(first.err)")
        #expect(made.contains("/proc/self/exe"), "\(made)")
        // later ones join it before main: the binary is executed once
        let (later, joined) = try execs(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        #expect(later.status == 0 && later.out == "bb:1\n", "\(later.err)")
        #expect(joined.filter { $0 == u.binary || $0 == "/proc/self/exe" } == [u.binary], "\(joined)")
        // in the namespace: root inside, the user's map, and the host uid for paths
        #expect(try u.ok(["run", "--rm", "--network", "none", "bb:1", "cat", "/proc/self/uid_map"]).hasPrefix("0"))
        #expect(try u.ok(["info"]).contains("Rootless UID Map: 0:\(u.uid):1,1:"))
        // commands that run as they are do not join: `version` sees the host's user namespace
        let (_, version) = try execs(["version"])
        #expect(version.filter { $0 == "/proc/self/exe" }.isEmpty, "\(version)")
        // a _DOCKBUILD_ROOTLESS from the caller changes nothing (the join sets its own)
        #expect(try u.ok(["images", "-q"], env: ["_DOCKBUILD_ROOTLESS": "0"]).count == 12)
        // a holder that is gone: the pid file names a dead process, a new holder is made
        if let pid = u.holder { kill(pid, SIGKILL) }
        #expect(Scenario.eventually { u.holder.map { kill($0, 0) != 0 } ?? true })
        let (again, remade) = try execs(["images", "-q"])
        #expect(again.status == 0 && again.out.count == 13, "\(again.err)")
        #expect(remade.contains("/proc/self/exe"), "\(remade)")
        // a holder that dies between the check and the join (its pid handed to the re-executed
        // command): the command goes on unjoined once, makes a new holder and joins that one
        let dying = try #require(u.holder)
        kill(dying, SIGKILL)
        #expect(Scenario.eventually { kill(dying, 0) != 0 })
        let raced = try u.db(["images", "-q"], env: ["_DOCKBUILD_USERNS_JOIN": "\(dying)"])
        #expect(raced.status == 0 && raced.out.count == 13, "\(raced.err)")
        let fresh = try #require(u.holder)
        #expect(fresh != dying && kill(fresh, 0) == 0)
        // only once: a second dead holder in the same command is an error that says what to do
        kill(fresh, SIGKILL)
        #expect(Scenario.eventually { kill(fresh, 0) != 0 })
        let twice = try u.db(["images", "-q"], env: ["_DOCKBUILD_USERNS_JOIN": "\(fresh)", "_DOCKBUILD_USERNS_RETRIED": "1"])
        #expect(twice.status == 125 && twice.err.contains("kill it and retry"), "\(twice.status) \(twice.err)")
    }

    /// The same multi-stage Dockerfile (RUN steps that chown to other ids and set modes, a COPY
    /// --from) built rootless by dockbuild and by rootless buildah (and podman, where it runs) as
    /// the same user: each path has the same owner and mode in the images' layers.
    @Test(.enabled(if: RootlessUser.canRun && Shell.which("buildah") != nil)) func rootlessBuildMatchesRootlessBuildah() throws {
        let u = try RootlessUser("j", subordinateIDs: true)
        defer {
            // rootless podman's pause process keeps its namespaces (and the user) alive
            if let t = try? String(contentsOfFile: u.runDir + "/libpod/tmp/pause.pid", encoding: .utf8),
               let pid = Int32(t.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 { kill(pid, SIGKILL) }
            u.cleanup()
        }
        let ctx = u.dir + "/ctx"
        try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
        #expect(try Shell.status(["cp", "-a", u.dir + "/rootfs", ctx + "/rootfs"]) == 0)
        try """
            FROM scratch AS build
            COPY rootfs/ /
            RUN mkdir -p /out/sub && echo a > /out/a && echo b > /out/sub/b && chown -R 1000:1000 /out \\
                && chmod 0640 /out/a && chown 0:2000 /out/sub/b && chmod 2750 /out/sub
            FROM scratch
            COPY rootfs/ /
            COPY --from=build /out /app
            RUN mkdir /data && touch /data/f && chown 1000:1001 /data/f && chmod 600 /data/f \\
                && ln -s f /data/l && chown -h 7:8 /data/l && mkdir -m 1777 /data/tmp

            """.write(toFile: ctx + "/Dockerfile", atomically: true, encoding: .utf8)
        #expect(try Shell.status(["chmod", "-R", "a+rX", u.dir + "/ctx"]) == 0)

        // buildah as the user, with its own rootless defaults but vfs storage (no fuse needed)
        let buildah = ["buildah", "--storage-driver", "vfs"]
        let probe = try Shell.run(u.command(buildah + ["unshare", "true"], cwd: u.dir))
        if probe.0 != 0 {
            try Test.cancel("rootless buildah cannot run here (`buildah unshare true` as \(u.name): \(probe.2.trimmingCharacters(in: .whitespacesAndNewlines)))")
        }
        let peer = try Shell.run(u.command(buildah + ["bud", "--runtime", "runc", "--network", "none", "-t", "side:1", ctx], cwd: u.dir))
        #expect(peer.0 == 0, "buildah bud: \(peer.2)")
        let peerArchive = u.home + "/buildah.tar"
        let push = try Shell.run(u.command(buildah + ["push", "side:1", "docker-archive:\(peerArchive):side:1"], cwd: u.dir))
        #expect(push.0 == 0, "buildah push: \(push.2)")

        try u.ok(["build", "-q", "--network", "none", "-t", "side:1", ctx])
        let ours = u.home + "/dockbuild.tar"
        try u.ok(["save", "-o", ours, "side:1"])

        let mine = try RootlessUser.ownership(ofArchive: ours, in: u.dir + "/x-dockbuild")
        let theirs = try RootlessUser.ownership(ofArchive: peerArchive, in: u.dir + "/x-buildah")
        let paths = ["app", "app/a", "app/sub", "app/sub/b", "data", "data/f", "data/l", "data/tmp"]
        // what the Dockerfile asks for, so that the two cannot agree on something else
        #expect(mine["app/a"] == "-rw-r----- 1000/1000")
        #expect(mine["app/sub"] == "drwxr-s--- 1000/1000")
        #expect(mine["app/sub/b"] == "-rw-r--r-- 0/2000")
        #expect(mine["data/f"] == "-rw------- 1000/1001")
        #expect(mine["data/l"] == "lrwxrwxrwx 7/8")
        #expect(mine["data/tmp"] == "drwxrwxrwt 0/0")
        for path in paths {
            #expect(mine[path] != nil && mine[path] == theirs[path], "\(path): dockbuild \(mine[path] ?? "missing"), buildah \(theirs[path] ?? "missing")")
        }

        // podman build too (buildah's code behind podman's command line), where podman runs here
        let podman = ["podman", "--storage-driver", "vfs", "--cgroup-manager=cgroupfs", "--events-backend=file"]
        guard Shell.which("podman") != nil, try Shell.run(u.command(podman + ["unshare", "true"], cwd: u.dir)).0 == 0 else { return }
        let built = try Shell.run(u.command(podman + ["build", "--runtime", "runc", "--network", "none", "-t", "side:2", ctx], cwd: u.dir))
        #expect(built.0 == 0, "podman build: \(built.2)")
        let podmanArchive = u.home + "/podman.tar"
        let saved = try Shell.run(u.command(podman + ["save", "--format", "docker-archive", "-o", podmanArchive, "side:2"], cwd: u.dir))
        #expect(saved.0 == 0, "podman save: \(saved.2)")
        let podmans = try RootlessUser.ownership(ofArchive: podmanArchive, in: u.dir + "/x-podman")
        for path in paths {
            #expect(mine[path] == podmans[path], "\(path): dockbuild \(mine[path] ?? "missing"), podman \(podmans[path] ?? "missing")")
        }
    }

    /// The automatic fallback: a store on a filesystem the kernel's overlayfs refuses as an upper
    /// directory (here an overlayfs mount, as a home directory on overlayfs or NFS would be) makes
    /// the first mount fail; dockbuild mounts with fuse-overlayfs instead, records it and `info`
    /// says so. No DOCKBUILD_OVERLAY anywhere.
    @Test(.enabled(if: RootlessUser.canRun && Shell.which("fuse-overlayfs") != nil)) func fuseOverlayfsIsChosenWhenTheKernelRefusesTheStore() throws {
        RootlessUser.devicesUsable(["/dev/fuse"])
        let u = try RootlessUser("l", subordinateIDs: true)
        let ovl = u.dir + "/ovl"
        let store = ["DOCKBUILD_ROOT": ovl + "/merged/store"]
        defer {
            for id in ((try? u.db(["ps", "-aq"], env: store))?.out ?? "").split(separator: "\n") { _ = try? u.db(["rm", "-f", String(id)], env: store) }
            u.cleanup()
        }
        // the user's store on an overlayfs mount (made before the user's namespace, which copies it)
        for d in ["lower", "upper", "work", "merged"] {
            try FileManager.default.createDirectory(atPath: "\(ovl)/\(d)", withIntermediateDirectories: true)
        }
        guard mount("overlay", ovl + "/merged", "overlay", 0, "lowerdir=\(ovl)/lower,upperdir=\(ovl)/upper,workdir=\(ovl)/work") == 0 else {
            try Test.cancel("cannot mount an overlayfs for the store: \(String(cString: strerror(errno)))")
        }
        u.mounts.append(ovl + "/merged")
        // the kernel refuses an overlayfs upper directory there (root's mount, checked first)
        let probe = ovl + "/merged/probe"
        for d in ["l", "u", "w", "m"] { try FileManager.default.createDirectory(atPath: "\(probe)/\(d)", withIntermediateDirectories: true) }
        if mount("overlay", probe + "/m", "overlay", 0, "lowerdir=\(probe)/l,upperdir=\(probe)/u,workdir=\(probe)/w") == 0 {
            umount2(probe + "/m", Int32(MNT_DETACH))
            try Test.cancel("this kernel takes an overlayfs upper directory on overlayfs: nothing makes its overlay mount fail")
        }
        try FileManager.default.removeItem(atPath: probe)
        chown(ovl + "/merged", u.uid, u.gid)
        chmod(ovl + "/merged", 0o700)

        try u.ok(["import", u.busyboxTar, "bb:1"], env: store)
        // nothing mounted yet: info's probe (lowers only, in the runtime directory) takes the kernel's
        #expect(try u.ok(["info"], env: store).contains("Rootless Overlay: kernel overlayfs in the user namespace"))
        // a container: its upper directory is in the store, the kernel refuses, fuse-overlayfs mounts
        let out = try u.ok(["run", "--rm", "--network", "none", "bb:1", "sh", "-c",
                            "echo x > /f && chown 1000 /f && stat -c %u /f && grep ' / ' /proc/mounts"], env: store)
        #expect(out.hasPrefix("1000\nfuse-overlayfs / fuse.fuse-overlayfs"), "\(out)")
        // recorded, so later commands go straight to it, and info says why
        #expect((try? String(contentsOfFile: u.runDir + "/dockbuild/overlay-driver", encoding: .utf8)) == "fuse-overlayfs\n")
        #expect(try u.ok(["info"], env: store).contains("Rootless Overlay: fuse-overlayfs (the kernel refuses overlayfs in the user namespace)"))
        // a build's RUN step on it, and a container of the image
        let ctx = u.dir + "/ctx"
        try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
        chmod(ctx, 0o755)
        try "FROM bb:1\nRUN grep ' / ' /proc/mounts > /mounts && echo built > /b && chown 1000:1000 /b\n".write(toFile: ctx + "/Dockerfile", atomically: true, encoding: .utf8)
        chmod(ctx + "/Dockerfile", 0o644)
        try u.ok(["build", "-q", "--network", "none", "-t", "fb:1", ctx], env: store)
        #expect(try u.ok(["run", "--rm", "--network", "none", "fb:1", "sh", "-c", "stat -c %u:%g /b; cat /mounts"], env: store)
                    .hasPrefix("1000:1000\nfuse-overlayfs / fuse.fuse-overlayfs"))
        // a detached container, then gone with its fuse-overlayfs server
        let id = try u.ok(["run", "-d", "--network", "none", "bb:1", "sleep", "300"], env: store)
        #expect(try u.ok(["exec", id, "sh", "-c", "grep ' / ' /proc/mounts"], env: store).hasPrefix("fuse-overlayfs / "))
        try u.ok(["rm", "-f", id], env: store)
        #expect(Scenario.eventually {
            ((try? Shell.out(["pgrep", "-u", "\(u.uid)", "-f", "fuse-overlayfs.*\(id)"])) ?? "").isEmpty
        })
    }

    /// What can be checked of limits in a delegated cgroup v2 subtree on a host without one (this
    /// host's controllers are bound to v1): which flags are named, from a cgroup.controllers file.
    @Test func limitsWithoutTheirControllerInADelegatedCgroupV2SubtreeAreNamed() throws {
        let dir = "/var/tmp/dbcg-\(getpid())-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // the user's delegated cgroup, and dockbuild's directory below it (the container's is not made yet)
        try FileManager.default.createDirectory(atPath: dir + "/user.slice/dockbuild", withIntermediateDirectories: true)
        try "memory pids\n".write(toFile: dir + "/user.slice/cgroup.controllers", atomically: true, encoding: .utf8)
        let flags = [(flag: "--memory", controller: "memory"), (flag: "--cpus", controller: "cpu"),
                     (flag: "--pids-limit", controller: "pids"), (flag: "--memory-swap", controller: "memory")]
        let container = dir + "/user.slice/dockbuild/0123abcd"
        let w = ContainerManager.limitsWarning(flags: flags, cgroupVersion: "v2", directory: container, creatable: true)
        #expect(w?.hasPrefix("WARNING: --cpus not applied: the delegated cgroup v2 subtree has no cpu controller") == true, "\(w ?? "nil")")
        // where it looked, and what it found there
        #expect(w?.contains("(\(dir)/user.slice/cgroup.controllers: memory pids)") == true, "\(w ?? "nil")")
        // every controller delegated: nothing to say
        try "cpuset cpu io memory pids\n".write(toFile: dir + "/user.slice/cgroup.controllers", atomically: true, encoding: .utf8)
        #expect(ContainerManager.limitsWarning(flags: flags, cgroupVersion: "v2", directory: container, creatable: true) == nil)
        // the nearest existing cgroup decides: dockbuild's own directory, given only memory
        try "memory\n".write(toFile: dir + "/user.slice/dockbuild/cgroup.controllers", atomically: true, encoding: .utf8)
        #expect(ContainerManager.limitsWarning(flags: flags, cgroupVersion: "v2", directory: container, creatable: true)?
                    .hasPrefix("WARNING: --cpus, --pids-limit not applied: the delegated cgroup v2 subtree has no cpu, pids controller") == true)
        // a delegated v1 subtree has every controller's hierarchy: nothing to say
        #expect(ContainerManager.limitsWarning(flags: flags, cgroupVersion: "v1", directory: "", creatable: true) == nil)
        // no delegated subtree: no cgroup at all, every flag named
        #expect(ContainerManager.limitsWarning(flags: flags, cgroupVersion: "v2", directory: container, creatable: false)?
                    .hasPrefix("WARNING: --memory, --cpus, --pids-limit, --memory-swap not applied: running rootless without a delegated") == true)
    }

    @Test(.enabled(if: RootlessUser.canRun)) func aStoreOrStateDirectoryOfAnotherUserIsRefused() throws {
        let u = try RootlessUser("d", subordinateIDs: false)
        defer { u.cleanup() }
        let foreign = u.dir + "/foreign"
        try FileManager.default.createDirectory(atPath: foreign + "/dockbuild", withIntermediateDirectories: true)
        chmod(foreign, 0o777); chmod(foreign + "/dockbuild", 0o777)
        let store = try u.db(["--root", foreign + "/dockbuild", "images"])
        #expect(store.status != 0)
        #expect(store.err.contains("\(foreign)/dockbuild: it is owned by") && store.err.contains("--root"), "\(store.err)")
        let state = try u.db(["images"], env: ["XDG_RUNTIME_DIR": foreign])
        #expect(state.status == 125)
        #expect(state.err.contains("\(foreign)/dockbuild: it is owned by uid 0") && state.err.contains("XDG_RUNTIME_DIR"), "\(state.err)")
    }
}
