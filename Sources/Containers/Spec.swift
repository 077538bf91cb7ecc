import Foundation

/// The subset of the OCI runtime-spec (config.md, config-linux.md) that containers need.
/// When the Runtime library's RuntimeSpec lands this maps onto it one to one.
struct OCISpec: Codable {
    var ociVersion = "1.0.2"
    var process: Process
    var root: Root
    var hostname: String?
    var mounts: [Mount]
    var linux: Linux

    struct User: Codable { var uid: UInt32; var gid: UInt32; var additionalGids: [UInt32]? }
    struct Capabilities: Codable { var bounding, effective, permitted: [String]; var inheritable: [String]? ; var ambient: [String]? }
    struct Rlimit: Codable { var type: String; var hard: UInt64; var soft: UInt64 }
    struct ConsoleSize: Codable { var height: UInt; var width: UInt }
    struct Process: Codable {
        var terminal: Bool
        var consoleSize: ConsoleSize?
        var user: User
        var args: [String]
        var env: [String]
        var cwd: String
        var capabilities: Capabilities
        var rlimits: [Rlimit]
        var noNewPrivileges: Bool
    }
    struct Root: Codable { var path: String; var readonly: Bool }
    struct Mount: Codable { var destination: String; var type: String; var source: String; var options: [String] }
    struct Namespace: Codable { var type: String; var path: String? }
    struct DeviceCgroup: Codable { var allow: Bool; var type: String?; var major: Int64?; var minor: Int64?; var access: String }
    struct Memory: Codable { var limit: Int64?; var swap: Int64? }
    struct CPU: Codable { var quota: Int64?; var period: UInt64? }
    struct Pids: Codable { var limit: Int64 }
    struct Resources: Codable { var devices: [DeviceCgroup]; var memory: Memory?; var cpu: CPU?; var pids: Pids? }
    struct Device: Codable { var path: String; var type: String; var major: Int64; var minor: Int64; var fileMode: UInt32?; var uid: UInt32?; var gid: UInt32? }
    struct Linux: Codable {
        var namespaces: [Namespace]
        var resources: Resources
        var cgroupsPath: String
        var devices: [Device]?
        var maskedPaths: [String]?
        var readonlyPaths: [String]?
    }
}

/// Docker's default capability set.
let defaultCapabilities = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
                           "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
                           "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]

let allCapabilities = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
                       "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
                       "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
                       "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
                       "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
                       "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
                       "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
                       "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ"]

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

func effectiveCapabilities(_ r: ContainerRecord) throws -> [String] {
    if r.privileged { return allCapabilities }
    var caps = defaultCapabilities
    let add = try r.capAdd.map(capabilityName), drop = try r.capDrop.map(capabilityName)
    if drop.contains("ALL") { caps = [] }
    for d in drop { caps.removeAll { $0 == d } }
    if add.contains("ALL") { caps = allCapabilities }
    for a in add where a != "ALL" && !caps.contains(a) { caps.append(a) }
    return caps
}

/// uid/gid for `-u` against the container's /etc/passwd and /etc/group.
func resolveUser(_ spec: String, rootfs: String) throws -> OCISpec.User {
    if spec.isEmpty { return .init(uid: 0, gid: 0, additionalGids: nil) }
    let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
    let passwd = (try? String(contentsOfFile: "\(rootfs)/etc/passwd", encoding: .utf8)) ?? ""
    let group = (try? String(contentsOfFile: "\(rootfs)/etc/group", encoding: .utf8)) ?? ""
    func lookup(_ text: String, _ name: String) -> [String]? {
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            if f.count >= 4, f[0] == name || f[2] == name { return f }
        }
        return nil
    }
    var uid: UInt32, gid: UInt32 = 0
    if let u = UInt32(parts[0]) {
        uid = u
        if let f = lookup(passwd, parts[0]), let g = UInt32(f[3]) { gid = g }
    } else {
        guard let f = lookup(passwd, parts[0]), let u = UInt32(f[2]), let g = UInt32(f[3]) else {
            throw ContainersError.invalidArgument("user \"\(parts[0])\" is not in the image's /etc/passwd: give a numeric uid[:gid]")
        }
        uid = u; gid = g
    }
    if parts.count == 2 {
        if let g = UInt32(parts[1]) { gid = g } else {
            guard let f = lookup(group, parts[1]), let g = UInt32(f[2]) else {
                throw ContainersError.invalidArgument("group \"\(parts[1])\" is not in the image's /etc/group: give a numeric gid")
            }
            gid = g
        }
    }
    return .init(uid: uid, gid: gid, additionalGids: nil)
}

/// Parses `512M`, `1g`, `67108864` as bytes (`-1` for unlimited); see `FlagValue.bytes`.
public func parseBytes(_ s: String) throws -> Int64 {
    try FlagValue.bytes(s, flag: "size", unlimited: true)
}

/// RLIMIT_NOFILE for the container: the host's hard limit, as docker gives 1048576 where allowed.
func nofileLimit() -> OCISpec.Rlimit {
    var rl = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
    let hard = UInt64(min(rl.rlim_max, 1_048_576))
    return .init(type: "RLIMIT_NOFILE", hard: hard, soft: hard)
}

enum SpecBuilder {
    /// Builds the runtime spec for a container whose rootfs is mounted at `rootfs`.
    static func build(_ r: ContainerRecord, dir: String, rootfs: String, netnsPath: String?,
                      volumes: VolumeStore, gpuEdits: CDIEdits?, initPath: String?, consoleSize: (UInt, UInt)?) throws -> OCISpec {
        let caps = try effectiveCapabilities(r)
        var env = r.env
        if let g = gpuEdits { env.append(contentsOf: g.env) }
        var args = r.argv
        guard !args.isEmpty else {
            throw ContainersError.invalidArgument("no command: the image has no Entrypoint or Cmd; give one after the image name")
        }
        if r.initProcess, let initPath {
            _ = initPath
            args = ["/dev/init", "--"] + args
        }
        let process = OCISpec.Process(
            terminal: r.tty,
            consoleSize: consoleSize.map { .init(height: $0.0, width: $0.1) },
            user: try resolveUser(r.user, rootfs: rootfs),
            args: args, env: env, cwd: r.workingDir.isEmpty ? "/" : r.workingDir,
            capabilities: .init(bounding: caps, effective: caps, permitted: caps, inheritable: nil, ambient: nil),
            rlimits: [nofileLimit()],
            noNewPrivileges: false)
        var mounts: [OCISpec.Mount] = [
            .init(destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"]),
            .init(destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            .init(destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
            .init(destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            .init(destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
            .init(destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", r.privileged ? "rw" : "ro"]),
            .init(destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", r.privileged ? "rw" : "ro"]),
        ]
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
                let path = try volumes.dataPath(m.source)
                mounts.append(.init(destination: m.destination, type: "bind", source: path,
                                    options: ["rbind", "rprivate"] + (m.readOnly ? ["ro"] : [])))
            case .tmpfs:
                mounts.append(.init(destination: m.destination, type: "tmpfs", source: "tmpfs",
                                    options: ["nosuid", "nodev", "mode=1777"] + (m.readOnly ? ["ro"] : []) + m.options))
            }
        }
        if let g = gpuEdits {
            for m in g.mounts { mounts.append(.init(destination: m.containerPath, type: m.type ?? "bind", source: m.hostPath, options: m.options ?? ["rbind", "ro"])) }
        }
        var namespaces: [OCISpec.Namespace] = [.init(type: "pid", path: nil), .init(type: "ipc", path: nil),
                                               .init(type: "uts", path: nil), .init(type: "mount", path: nil)]
        switch r.network {
        case "host": break
        default: namespaces.append(.init(type: "network", path: netnsPath))
        }
        var devCg: [OCISpec.DeviceCgroup] = [.init(allow: r.privileged, type: nil, major: nil, minor: nil, access: "rwm")]
        // docker's default device allow list, spelled out so every runtime applies the same
        for (t, ma, mi) in [("c", 1, 3), ("c", 1, 5), ("c", 1, 7), ("c", 1, 8), ("c", 1, 9), ("c", 5, 0), ("c", 5, 1), ("c", 5, 2)] as [(String, Int64, Int64)] {
            devCg.append(.init(allow: true, type: t, major: ma, minor: mi, access: "rwm"))
        }
        devCg.append(.init(allow: true, type: "c", major: 136, minor: nil, access: "rwm"))
        var devices: [OCISpec.Device] = []
        if let g = gpuEdits {
            for d in g.devices {
                devices.append(d)
                devCg.append(.init(allow: true, type: d.type, major: d.major, minor: d.minor, access: "rwm"))
            }
        }
        var mem: OCISpec.Memory?
        if r.memory > 0 { mem = .init(limit: r.memory, swap: r.memorySwap != 0 ? r.memorySwap : nil) }
        var cpu: OCISpec.CPU?
        if r.nanoCpus > 0 { cpu = .init(quota: r.nanoCpus / 10_000, period: 100_000) }
        let linux = OCISpec.Linux(
            namespaces: namespaces,
            resources: .init(devices: devCg, memory: mem, cpu: cpu, pids: r.pidsLimit > 0 ? .init(limit: r.pidsLimit) : nil),
            cgroupsPath: "dockbuild/\(r.id)",
            devices: devices.isEmpty ? nil : devices,
            maskedPaths: r.privileged ? nil : ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                                                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            readonlyPaths: r.privileged ? nil : ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"])
        return OCISpec(process: process, root: .init(path: rootfs, readonly: r.readOnly),
                       hostname: r.hostname, mounts: mounts, linux: linux)
    }
}
