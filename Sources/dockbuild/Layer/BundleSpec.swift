import Archive
import Foundation
import OCI
import Runtime

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

    /// `user`, `uid`, `user:group`, `uid:gid`: `Runtime.UserDatabase`'s rules against the image's
    /// /etc/passwd and /etc/group; a user given alone also gets the groups that list it.
    static func resolveUser(_ spec: String, rootfs: String) throws -> User {
        let db = UserDatabase(rootfs: rootfs)
        let r: UserDatabase.Resolved
        do { r = try db.resolve(spec) } catch { throw ArchiveError.invalidArgument("the image config's \(error)") }
        let additional = !spec.isEmpty && !spec.contains(":") ? (r.name.map { db.memberGroups(of: $0) } ?? []).filter { $0 != r.gid } : []
        return User(uid: r.uid, gid: r.gid, additional: additional)
    }
}
