import Archive
import Foundation
import OCI

/// An OCI runtime-spec config.json for an unpacked image: runc's `spec` defaults, with the
/// process taken from the image config (Entrypoint + Cmd, Env, WorkingDir, User).
enum BundleSpec {
    static let defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    static func make(config: ImageConfig, rootfs: String, terminal: Bool) throws -> [String: Any] {
        let c = config.config
        var env = c?.env ?? []
        if !env.contains(where: { $0.hasPrefix("PATH=") }) { env.insert(defaultPath, at: 0) }
        if terminal && !env.contains(where: { $0.hasPrefix("TERM=") }) { env.append("TERM=xterm") }
        var args = (c?.entrypoint ?? []) + (c?.cmd ?? [])
        if args.isEmpty { args = ["sh"] }
        var cwd = c?.workingDir ?? "/"
        if cwd.isEmpty { cwd = "/" }
        let user = try resolveUser(c?.user ?? "", rootfs: rootfs)
        var userJSON: [String: Any] = ["uid": user.uid, "gid": user.gid]
        if !user.additional.isEmpty { userJSON["additionalGids"] = user.additional }
        let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
        var annotations: [String: String] = [:]
        for (k, v) in c?.labels ?? [:] { annotations[k] = v }
        var spec: [String: Any] = [
            "ociVersion": "1.0.2-dev",
            "process": [
                "terminal": terminal,
                "user": userJSON,
                "args": args,
                "env": env,
                "cwd": cwd,
                "capabilities": ["bounding": caps, "effective": caps, "permitted": caps, "ambient": caps],
                "rlimits": [["type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024]],
                "noNewPrivileges": true,
            ] as [String: Any],
            "root": ["path": "rootfs", "readonly": true] as [String: Any],
            "hostname": "runc",
            "mounts": [
                mount("/proc", "proc", "proc", nil),
                mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
                mount("/dev/pts", "devpts", "devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
                mount("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
                mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
                mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
                mount("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "relatime", "ro"]),
            ],
            "linux": [
                "resources": ["devices": [["allow": false, "access": "rwm"]]],
                "namespaces": ["pid", "network", "ipc", "uts", "mount"].map { ["type": $0] },
                "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
                "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
            ] as [String: Any],
        ]
        if !annotations.isEmpty { spec["annotations"] = annotations }
        return spec
    }

    private static func mount(_ dest: String, _ type: String, _ source: String, _ options: [String]?) -> [String: Any] {
        var m: [String: Any] = ["destination": dest, "type": type, "source": source]
        if let options { m["options"] = options }
        return m
    }

    struct User { var uid: UInt32; var gid: UInt32; var additional: [UInt32] }

    /// `user`, `uid`, `user:group`, `uid:gid` — names looked up in the image's /etc/passwd and /etc/group.
    static func resolveUser(_ spec: String, rootfs: String) throws -> User {
        if spec.isEmpty { return User(uid: 0, gid: 0, additional: []) }
        let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
        let passwd = parse(try RootFile.read(root: rootfs, path: "/etc/passwd"))
        let group = parse(try RootFile.read(root: rootfs, path: "/etc/group"))
        var uid: UInt32
        var gid: UInt32 = 0
        var userName: String?
        if let n = UInt32(parts[0]) {
            uid = n
            if let row = passwd.first(where: { $0.count > 3 && UInt32($0[2]) == n }) {
                gid = UInt32(row[3]) ?? 0
                userName = row[0]
            }
        } else if let row = passwd.first(where: { $0.count > 3 && $0[0] == parts[0] }), let u = UInt32(row[2]) {
            uid = u
            gid = UInt32(row[3]) ?? 0
            userName = row[0]
        } else {
            throw ArchiveError.invalidArgument("user \"\(parts[0])\" of the image config is not in the image's /etc/passwd")
        }
        if parts.count == 2 {
            if let g = UInt32(parts[1]) {
                gid = g
            } else if let row = group.first(where: { $0.count > 2 && $0[0] == parts[1] }), let g = UInt32(row[2]) {
                gid = g
            } else {
                throw ArchiveError.invalidArgument("group \"\(parts[1])\" of the image config is not in the image's /etc/group")
            }
        }
        var additional: [UInt32] = []
        if let userName, parts.count == 1 {
            for row in group where row.count > 3 {
                if row[3].split(separator: ",").contains(where: { $0 == userName }), let g = UInt32(row[2]), g != gid {
                    additional.append(g)
                }
            }
        }
        return User(uid: uid, gid: gid, additional: additional)
    }

    private static func parse(_ bytes: [UInt8]?) -> [[String]] {
        guard let bytes else { return [] }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").map {
            $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        }
    }
}
