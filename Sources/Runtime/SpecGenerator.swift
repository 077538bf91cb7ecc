/// Builds runtime specs with the defaults `runc spec` and docker use.
public enum SpecGenerator {
    /// Docker's default capability set.
    public static let defaultCapabilities = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ]

    public static let defaultMaskedPaths = [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
    ]

    public static let defaultReadonlyPaths = [
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
    ]

    public static let defaultMounts: [RuntimeSpec.Mount] = [
        .init(destination: "/proc", type: "proc", source: "proc"),
        .init(destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        .init(destination: "/dev/pts", type: "devpts", source: "devpts",
              options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        .init(destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
        .init(destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
        .init(destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"]),
        .init(destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"]),
    ]

    /// The spec `runc spec` writes: `sh` in a terminal, rootfs "rootfs", all namespaces but user and net shared... (pid, network, ipc, uts, mount, cgroup new).
    public static func runcDefault(args: [String] = ["sh"], terminal: Bool = true, rootless: Bool = false) -> RuntimeSpec {
        var caps = RuntimeSpec.Capabilities()
        let small = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
        caps.bounding = small
        caps.effective = small
        caps.permitted = small
        caps.ambient = small
        var process = RuntimeSpec.Process(terminal: terminal, args: args,
                                          env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                                          cwd: "/", capabilities: caps,
                                          rlimits: [.init(type: "RLIMIT_NOFILE", hard: 1024, soft: 1024)],
                                          noNewPrivileges: true)
        process.user = RuntimeSpec.User(uid: 0, gid: 0)
        var linux = RuntimeSpec.Linux()
        var res = RuntimeSpec.Resources()
        res.devices = [.init(allow: false, access: "rwm")]
        linux.resources = res
        linux.namespaces = ["pid", "network", "ipc", "uts", "mount", "cgroup"].map { RuntimeSpec.Namespace(type: $0) }
        linux.maskedPaths = defaultMaskedPaths
        linux.readonlyPaths = defaultReadonlyPaths
        var mounts = defaultMounts
        if rootless {
            linux.namespaces?.append(.init(type: "user"))
            linux.uidMappings = [.init(containerID: 0, hostID: UInt32(getuidSafe()), size: 1)]
            linux.gidMappings = [.init(containerID: 0, hostID: UInt32(getgidSafe()), size: 1)]
            linux.resources = nil
            mounts.removeAll { $0.type == "cgroup" }
            mounts = mounts.map { m in
                var m = m
                if m.destination == "/sys" { m = .init(destination: "/sys", type: "none", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"]) }
                if m.destination == "/dev/pts" { m.options?.removeAll { $0 == "gid=5" } }
                return m
            }
        }
        return RuntimeSpec(ociVersion: "1.0.2-dev", process: process, root: .init(path: "rootfs", readonly: true),
                           hostname: "runc", mounts: mounts, linux: linux)
    }

    /// The PATH docker gives a process whose image sets none.
    public static let defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// A spec with docker's defaults for running an image's command: docker's
    /// capabilities, seccomp profile, masked and read-only paths, a writable root, and the
    /// environment docker adds (a default PATH, HOME from the image's /etc/passwd). `run`,
    /// `create`, `exec` and build RUN steps all start from this spec.
    public static func dockerDefault(args: [String], env: [String] = [], cwd: String = "/", user: RuntimeSpec.User = .init(),
                                     hostname: String = "container", rootfs: String = "rootfs") -> RuntimeSpec {
        var spec = runcDefault(args: args, terminal: false)
        var caps = RuntimeSpec.Capabilities()
        caps.bounding = defaultCapabilities
        caps.effective = defaultCapabilities
        caps.permitted = defaultCapabilities
        spec.process?.capabilities = caps
        spec.process?.env = dockerEnvironment(env, uid: user.uid, rootfs: rootfs)
        spec.process?.cwd = cwd
        spec.process?.user = user
        spec.process?.noNewPrivileges = false
        spec.process?.rlimits = [.init(type: "RLIMIT_NOFILE", hard: 1_048_576, soft: 1_048_576)]
        spec.root = .init(path: rootfs, readonly: false)
        spec.hostname = hostname
        spec.mounts = spec.mounts?.map { m in
            guard m.destination == "/proc" else { return m }
            var m = m
            m.options = ["nosuid", "noexec", "nodev"]
            return m
        }
        spec.linux?.seccomp = DefaultSeccompProfile.docker
        return spec
    }

    /// `env` with what docker adds when the image and the flags leave it out: the default
    /// PATH, and HOME from the root filesystem's /etc/passwd for `uid` ("/" without an entry).
    public static func dockerEnvironment(_ env: [String], uid: UInt32, rootfs: String) -> [String] {
        var e = env
        if !e.contains(where: { $0.hasPrefix("PATH=") }) { e.insert(defaultPath, at: 0) }
        if !e.contains(where: { $0.hasPrefix("HOME=") }) { e.append("HOME=" + home(uid: uid, rootfs: rootfs)) }
        return e
    }

    /// The home directory of `uid` in `rootfs`'s /etc/passwd; "/" for a user without an
    /// entry (root included, as docker 20.10 does for an image without /etc/passwd). A
    /// relative `rootfs` (a bundle's "rootfs") is not read: root gets "/root" there.
    public static func home(uid: UInt32, rootfs: String) -> String {
        guard rootfs.hasPrefix("/") else { return uid == 0 ? "/root" : "/" }
        for line in (readInRoot(rootfs, "etc/passwd") ?? "").split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            if f.count >= 6, UInt32(f[2]) == uid, !f[5].isEmpty { return String(f[5]) }
        }
        return "/"
    }

    /// Reads a small file of an image's root filesystem (such as etc/passwd) without
    /// following any symlink on the way: a link in the image names a host path here, so a
    /// link anywhere gives nil rather than a host file.
    public static func readInRoot(_ rootfs: String, _ relative: String, limit: Int = 4 << 20) -> String? {
        var fd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        let parts = relative.split(separator: "/").map(String.init)
        for (i, part) in parts.enumerated() {
            let last = i == parts.count - 1
            let next = openat(fd, part, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (last ? O_NONBLOCK : O_DIRECTORY))
            close(fd)
            guard next >= 0 else { return nil }
            fd = next
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, Int(st.st_size) <= limit else { return nil }
        var buf = [UInt8](repeating: 0, count: Int(st.st_size))
        var off = 0
        while off < buf.count {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            off += n
        }
        return String(decoding: buf.prefix(off), as: UTF8.self)
    }
}

#if canImport(Glibc)
import Glibc
#endif
func getuidSafe() -> UInt32 { getuid() }
func getgidSafe() -> UInt32 { getgid() }

extension RuntimeSpec.ConsoleSize {
    /// A console size for `process.consoleSize` (the memberwise initializer is not public).
    public static func rows(_ height: UInt, columns width: UInt) -> RuntimeSpec.ConsoleSize {
        RuntimeSpec.ConsoleSize(height: height, width: width)
    }
}
