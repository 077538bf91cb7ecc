import Foundation
import Runtime

/// Every capability name the kernel may know, in bit order (capability.h).
let allCapabilities = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
                       "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
                       "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
                       "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
                       "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
                       "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
                       "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
                       "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]

/// The capabilities `--privileged` and `--cap-add ALL` give: every one the kernel knows, as
/// with docker, less any this process may not hand on (outside its bounding set, as in a
/// container that runs dockbuild), which no runtime could grant.
func hostCapabilities() -> [String] {
    let last = FS.readFile("/proc/sys/kernel/cap_last_cap").flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    var caps = Array(allCapabilities.prefix((last ?? allCapabilities.count - 1) + 1))
    if let status = FS.readFile("/proc/self/status"),
       let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapBnd:") }),
       let mask = UInt64(line.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) {
        caps = caps.enumerated().filter { mask & (1 << UInt64($0.offset)) != 0 }.map(\.element)
    }
    return caps
}

/// Normalises `net_admin`, `NET_ADMIN`, `CAP_NET_ADMIN` and `ALL`.
func capabilityName(_ s: String) throws -> String {
    let u = s.uppercased()
    if u == "ALL" { return "ALL" }
    let n = u.hasPrefix("CAP_") ? u : "CAP_\(u)"
    guard allCapabilities.contains(n) else {
        throw ContainersError.invalidArgument("unknown capability \"\(s)\" (e.g. NET_ADMIN, SYS_PTRACE, ALL)")
    }
    return n
}

/// docker's rule: start from the default set (or all with `--privileged`), drop (ALL drops
/// every one), then add (ALL adds every one the kernel knows).
func effectiveCapabilities(_ r: ContainerRecord) throws -> [String] {
    if r.privileged { return hostCapabilities() }
    var caps = SpecGenerator.defaultCapabilities
    let add = try r.capAdd.map(capabilityName), drop = try r.capDrop.map(capabilityName)
    if drop.contains("ALL") { caps = [] }
    for d in drop { caps.removeAll { $0 == d } }
    if add.contains("ALL") { caps = hostCapabilities() }
    for a in add where a != "ALL" && !caps.contains(a) { caps.append(a) }
    return caps
}

/// uid/gid for `-u` against the container's /etc/passwd and /etc/group (read without
/// following links out of the root filesystem): `Runtime.UserDatabase`'s rules.
func resolveUser(_ spec: String, rootfs: String) throws -> RuntimeSpec.User {
    do {
        let r = try UserDatabase(rootfs: rootfs).resolve(spec)
        return .init(uid: r.uid, gid: r.gid)
    } catch {
        throw ContainersError.invalidArgument("\(error)")
    }
}

/// docker's supplementary groups of a container's process: the primary gid, then (for `-u NAME`
/// or `-u UID` without a group) the groups of the image's /etc/group that list the user, then
/// `--group-add` (numbers, or names looked up in the container's /etc/group); no repeats.
func supplementaryGroups(userSpec: String, user: RuntimeSpec.User, groupAdd: [String], rootfs: String) throws -> [UInt32] {
    let db = UserDatabase(rootfs: rootfs)
    var gids = [user.gid]
    if !userSpec.contains(":") {
        let name = userSpec.isEmpty ? "root" : userSpec
        if let row = db.passwd.first(where: { $0.count >= 3 && ($0[0] == name || $0[2] == name) }) {
            gids += db.memberGroups(of: row[0])
        }
    }
    for g in groupAdd {
        guard let n = db.groupID(g) else {
            throw ContainersError.invalidArgument("--group-add \(g): no such group in the container's /etc/group; give a gid or a group name from it")
        }
        gids.append(n)
    }
    var seen = Set<UInt32>()
    return gids.filter { seen.insert($0).inserted }
}

/// Parses `512M`, `1g`, `67108864` as bytes (`-1` for unlimited); see `FlagValue.bytes`.
public func parseBytes(_ s: String) throws -> Int64 {
    try FlagValue.bytes(s, flag: "size", unlimited: true)
}

/// RLIMIT_NOFILE for the container: the host's hard limit, as docker gives 1048576 where allowed.
func nofileLimit() -> RuntimeSpec.Rlimit {
    var rl = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
    let hard = UInt64(min(rl.rlim_max, 1_048_576))
    return .init(type: "RLIMIT_NOFILE", hard: hard, soft: hard)
}

/// The runtime spec of a container: SpecGenerator's docker defaults (the same ones build RUN
/// steps get) with the container's process, mounts, namespaces, resources, security options
/// and CDI devices applied.
enum ContainerSpec {
    /// The container's cgroup, below the runtime's own (`dockbuild/<id>`).
    static func cgroupsPath(_ id: String) -> String { "dockbuild/\(id)" }

    /// The file in the container's directory that keeps the `--security-opt seccomp=FILE` profile as read at create.
    static let seccompFile = "seccomp-profile.json"

    /// Builds the runtime spec for a container whose rootfs is mounted at `rootfs`.
    static func build(_ r: ContainerRecord, dir: String, rootfs: String, netnsPath: String?,
                      volumes: VolumeStore, initPath: String?, consoleSize: (UInt, UInt)?,
                      peers: [String: Int32] = [:], shmSource: String? = nil) throws -> RuntimeSpec {
        var args = r.argv
        guard !args.isEmpty else {
            throw ContainersError.invalidArgument("no command: the image has no Entrypoint or Cmd; give one after the image name")
        }
        if r.initProcess, initPath != nil { args = ["/dev/init", "--"] + args }
        let security = try SecurityOptions(r.securityOpt ?? [])
        let user = try resolveUser(r.user, rootfs: rootfs)
        var spec = SpecGenerator.dockerDefault(args: args, env: r.env, cwd: r.workingDir.isEmpty ? "/" : r.workingDir,
                                               user: user, hostname: r.hostname, rootfs: rootfs)
        let caps = try effectiveCapabilities(r)
        spec.process?.terminal = r.tty
        if let (h, w) = consoleSize { spec.process?.consoleSize = .rows(h, columns: w) }
        spec.process?.capabilities = .init(bounding: caps, effective: caps, permitted: caps)
        var rlimits = [nofileLimit()]
        for u in r.ulimits ?? [] {
            guard let type = Ulimit.names[u.name] else { continue }
            let l = RuntimeSpec.Rlimit(type: type, hard: u.hard < 0 ? UInt64.max : UInt64(u.hard), soft: u.soft < 0 ? UInt64.max : UInt64(u.soft))
            if let i = rlimits.firstIndex(where: { $0.type == type }) { rlimits[i] = l } else { rlimits.append(l) }
        }
        spec.process?.rlimits = rlimits
        spec.process?.user.additionalGids = try supplementaryGroups(userSpec: r.user, user: user, groupAdd: r.groupAdd ?? [], rootfs: rootfs)
        spec.process?.noNewPrivileges = security.noNewPrivileges
        spec.root = .init(path: rootfs, readonly: r.readOnly)

        var mounts = spec.mounts ?? []
        // --ipc: the host's /dev/shm (and message queues) with the host's namespace, none at all
        // with "none"; shareable and container:NAME bind the host-side tmpfs (`shmSource`)
        if let shmSource {
            mounts = mounts.map { m in
                guard m.destination == "/dev/shm" else { return m }
                return .init(destination: m.destination, type: "bind", source: shmSource, options: ["rbind", "rprivate"])
            }
        }
        switch r.ipcMode {
        case "host":
            mounts = mounts.compactMap { m in
                guard m.destination == "/dev/shm" || m.destination == "/dev/mqueue" else { return m }
                guard FS.isDir(m.destination) else { return nil }
                return .init(destination: m.destination, type: "bind", source: m.destination, options: ["rbind", "rprivate"])
            }
        case "none":
            mounts.removeAll { $0.destination == "/dev/shm" }
        default: break
        }
        if let shm = r.shmSize, r.ipcMode == nil {
            mounts = mounts.map { m in
                guard m.destination == "/dev/shm" else { return m }
                var m = m
                m.options = (m.options ?? []).filter { !$0.hasPrefix("size=") } + ["size=\(shm)"]
                return m
            }
        }
        if r.privileged {
            // docker: /sys and the cgroup tree writable for a privileged container
            mounts = mounts.map { m in
                guard m.destination == "/sys" || m.destination == "/sys/fs/cgroup" else { return m }
                var m = m
                m.options = (m.options ?? []).map { $0 == "ro" ? "rw" : $0 }
                return m
            }
        }
        for f in ["hosts", "hostname", "resolv.conf"] where FS.exists("\(dir)/\(f)") {
            mounts.append(.init(destination: "/etc/\(f)", type: "bind", source: "\(dir)/\(f)", options: ["rbind", "rprivate"]))
        }
        if r.initProcess, let initPath {
            mounts.append(.init(destination: "/dev/init", type: "bind", source: initPath, options: ["bind", "ro"]))
        }
        for m in r.mounts {
            switch m.type {
            case .bind:
                mounts.append(.init(destination: m.destination, type: "bind", source: m.source,
                                    options: ["rbind", "rprivate"] + (m.readOnly ? ["ro"] : []) + m.options))
            case .volume:
                // a volume made with --opt is mounted once on the host, as docker's local driver
                let path = try volumes.mountedDataPath(m.source)
                mounts.append(.init(destination: m.destination, type: "bind", source: path,
                                    options: ["rbind", "rprivate"] + (m.readOnly ? ["ro"] : [])))
            case .tmpfs:
                mounts.append(.init(destination: m.destination, type: "tmpfs", source: "tmpfs",
                                    options: ["nosuid", "nodev", "mode=1777"] + (m.readOnly ? ["ro"] : []) + m.options))
            }
        }
        spec.mounts = mounts

        var linux = spec.linux ?? RuntimeSpec.Linux()
        // --pid/--ipc/--uts host leave the namespace out (the runtime's own is kept); container:NAME joins that one's
        var namespaces: [RuntimeSpec.Namespace] = []
        for (type, mode) in [("pid", r.pidMode), ("ipc", r.ipcMode), ("uts", r.utsMode)] where mode != "host" {
            namespaces.append(.init(type: type, path: mode?.hasPrefix("container:") == true ? peers[type].map { "/proc/\($0)/ns/\(type)" } : nil))
        }
        if r.utsMode == "host" { spec.hostname = nil }
        namespaces.append(.init(type: "mount"))
        // docker's default: a private cgroup namespace on cgroup v2, the host's on v1
        if FS.exists("/sys/fs/cgroup/cgroup.controllers") { namespaces.append(.init(type: "cgroup")) }
        if r.network != "host" { namespaces.append(.init(type: "network", path: netnsPath)) }
        linux.namespaces = namespaces

        var res = RuntimeSpec.Resources()
        var rules: [RuntimeSpec.DeviceCgroup] = [.init(allow: r.privileged, access: "rwm")]
        // docker's default device allow list, spelled out so every runtime applies the same
        for (t, ma, mi) in [("c", 1, 3), ("c", 1, 5), ("c", 1, 7), ("c", 1, 8), ("c", 1, 9), ("c", 5, 0), ("c", 5, 1), ("c", 5, 2)] as [(String, Int64, Int64)] {
            rules.append(.init(allow: true, type: t, major: ma, minor: mi, access: "rwm"))
        }
        rules.append(.init(allow: true, type: "c", major: 136, access: "rwm"))
        // --device: the node (as the host's now is) and a rule that allows what was asked
        var added: [RuntimeSpec.Device] = []
        for d in r.devices ?? [] {
            let node = try d.hostDevice()
            added.append(node)
            rules.append(.init(allow: true, type: node.type, major: node.major, minor: node.minor, access: d.cgroupPermissions))
        }
        res.devices = rules
        if r.memory > 0 { res.memory = .init(limit: r.memory, swap: r.memorySwap != 0 ? r.memorySwap : nil) }
        if r.nanoCpus > 0 { res.cpu = .init(quota: r.nanoCpus / 10_000, period: 100_000) }
        if r.pidsLimit > 0 { res.pids = .init(limit: r.pidsLimit) }
        linux.resources = res
        linux.cgroupsPath = cgroupsPath(r.id)

        if r.privileged {
            linux.maskedPaths = nil
            linux.readonlyPaths = nil
            linux.seccomp = nil
            linux.devices = hostDevices().filter { h in !added.contains { $0.path == h.path } } + added
        } else {
            linux.devices = (linux.devices ?? []) + added
            switch security.seccomp {
            case .default: linux.seccomp = DefaultSeccompProfile.forCapabilities(caps)
            case .unconfined: linux.seccomp = nil
            case .profile:
                let path = "\(dir)/\(seccompFile)"
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw ContainersError.invalidState("the seccomp profile kept at create (\(path)) is missing: recreate the container")
                }
                do { linux.seccomp = try SeccompProfile.parse(data, source: path).resolved(capabilities: caps) } catch let e as RuntimeError {
                    throw ContainersError.invalidArgument(e.message)
                }
            }
        }
        spec.linux = linux

        if let gpus = r.gpus {
            let requests = try gpuRequests(gpus)
            do { try requests.registry.apply(requests.devices, to: &spec) } catch let e as RuntimeError {
                throw ContainersError.invalidArgument("--gpus \(gpus): \(e.message)")
            }
        }
        if let names = r.cdiDevices {
            do { try cdiRegistry(for: names).apply(names, to: &spec) } catch let e as RuntimeError {
                throw ContainersError.invalidArgument("--device: \(e.message)")
            }
        }
        return spec
    }

    /// The CDI specs (`cdiDirectories`), checked to define every one of `names`.
    static func cdiRegistry(for names: [String]) throws -> CDIRegistry {
        let dirs = cdiDirectories
        do {
            let registry = try CDIRegistry.load(directories: dirs)
            for n in names { _ = try registry.edits(for: n) }
            return registry
        } catch let e as RuntimeError {
            throw ContainersError.invalidArgument("--device \(names.joined(separator: ",")): \(e.message) (CDI specs are read from \(dirs.joined(separator: ", ")))")
        }
    }

    /// Every character and block device under the host's /dev, as docker gives a privileged
    /// container (pseudo-terminals, shm, mqueue and fd are the container's own).
    static func hostDevices() -> [RuntimeSpec.Device] {
        var out: [RuntimeSpec.Device] = []
        func walk(_ dir: String) {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
            for n in names {
                let p = "\(dir)/\(n)"
                if dir == "/dev", ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev", "console", "ptmx"].contains(n) { continue }
                var st = stat()
                guard lstat(p, &st) == 0 else { continue }
                let fmt = st.st_mode & S_IFMT
                if fmt == S_IFDIR { walk(p); continue }
                guard fmt == S_IFCHR || fmt == S_IFBLK else { continue }
                let rdev = UInt64(st.st_rdev)
                out.append(.init(type: fmt == S_IFCHR ? "c" : "b", path: p, major: Int64(Sys.major(rdev)), minor: Int64(Sys.minor(rdev)),
                                 fileMode: UInt32(st.st_mode & 0o777), uid: st.st_uid, gid: st.st_gid))
            }
        }
        walk("/dev")
        return out
    }

    /// `$DOCKBUILD_CDI_DIRS` (colon separated), else /etc/cdi and /var/run/cdi.
    static var cdiDirectories: [String] {
        if let d = ProcessInfo.processInfo.environment["DOCKBUILD_CDI_DIRS"], !d.isEmpty {
            return d.split(separator: ":").map(String.init)
        }
        return CDIRegistry.defaultDirectories
    }

    /// Resolves `--gpus all|N|device=NAME[,NAME]` to fully-qualified CDI device names of the
    /// GPU kinds (`nvidia.com/gpu`, or any kind ending in /gpu) in the CDI directories.
    static func gpuRequests(_ request: String) throws -> (registry: CDIRegistry, devices: [String]) {
        let dirs = cdiDirectories
        let registry: CDIRegistry
        do { registry = try CDIRegistry.load(directories: dirs) } catch let e as RuntimeError {
            throw ContainersError.invalidArgument("--gpus \(request): \(e.message)")
        }
        let gpus = registry.specs.filter { $0.kind.hasSuffix("/gpu") }
            .flatMap { s in s.devices.filter { $0.name != "all" }.map { (s.kind, $0.name) } }
        guard !gpus.isEmpty else {
            throw ContainersError.invalidArgument("--gpus \(request): no CDI spec for GPUs in \(dirs.joined(separator: ", ")); generate one (`dockbuild cdi generate` or `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.json`)")
        }
        var req = request.trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
        if req.hasPrefix("count=") { req = String(req.dropFirst(6)) }
        let chosen: [(String, String)]
        if req == "all" || req == "-1" {
            chosen = gpus
        } else if req.hasPrefix("device=") {
            let names = req.replacingOccurrences(of: "\"", with: "").dropFirst(7).split(separator: ",").map(String.init)
            chosen = try names.map { n in
                guard let m = gpus.first(where: { $0.1 == n }) else {
                    throw ContainersError.invalidArgument("--gpus: no GPU named \"\(n)\" in the CDI specs (have: \(gpus.map(\.1).joined(separator: ", ")))")
                }
                return m
            }
        } else if let n = Int(req), n >= 0 {
            guard n <= gpus.count else { throw ContainersError.invalidArgument("--gpus \(n): only \(gpus.count) GPU(s) are described by the CDI specs") }
            chosen = Array(gpus.prefix(n))
        } else {
            throw ContainersError.invalidArgument("--gpus \"\(request)\": expected all, a number, or device=NAME[,NAME]")
        }
        return (registry, chosen.map { "\($0.0)=\($0.1)" })
    }
}
