import CRuntime
#if canImport(Glibc)
import Glibc
#endif

/// The binary plan the C init reads (format in CRuntime/include/cruntime.h).
struct InitPlan {
    var bytes: [UInt8] = []
    mutating func appendRaw(_ b: [UInt8]) { bytes += b }

    mutating func record(_ type: cr_record, _ payload: [UInt8] = []) {
        append32(UInt32(type.rawValue))
        append32(UInt32(payload.count))
        bytes.append(contentsOf: payload)
    }

    private mutating func append32(_ v: UInt32) {
        withUnsafeBytes(of: v) { bytes.append(contentsOf: $0) }
    }

    static func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }
    static func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }
    static func str(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }

    mutating func string(_ type: cr_record, _ s: String) { record(type, InitPlan.str(s)) }
    mutating func flag(_ type: cr_record) { record(type) }
    mutating func finish() { record(CR_END) }
}

/// Mount option words to flags, as mount(8) and runc read them.
enum MountOptions {
    static let MS_RDONLY: UInt32 = 1, MS_NOSUID: UInt32 = 2, MS_NODEV: UInt32 = 4, MS_NOEXEC: UInt32 = 8
    static let MS_SYNCHRONOUS: UInt32 = 16, MS_REMOUNT: UInt32 = 32, MS_MANDLOCK: UInt32 = 64
    static let MS_DIRSYNC: UInt32 = 128, MS_NOATIME: UInt32 = 1024, MS_NODIRATIME: UInt32 = 2048
    static let MS_BIND: UInt32 = 4096, MS_MOVE: UInt32 = 8192, MS_REC: UInt32 = 16384, MS_SILENT: UInt32 = 32768
    static let MS_UNBINDABLE: UInt32 = 1 << 17, MS_PRIVATE: UInt32 = 1 << 18, MS_SLAVE: UInt32 = 1 << 19
    static let MS_SHARED: UInt32 = 1 << 20, MS_RELATIME: UInt32 = 1 << 21, MS_STRICTATIME: UInt32 = 1 << 24

    static let MS_NOSYMFOLLOW: UInt32 = 256, MS_POSIXACL: UInt32 = 1 << 16, MS_I_VERSION: UInt32 = 1 << 23
    static let MS_LAZYTIME: UInt32 = 1 << 25

    /// mount_setattr(2) attributes, applied with AT_RECURSIVE to the mount and every mount below it.
    static let ATTR_RDONLY: UInt64 = 0x1, ATTR_NOSUID: UInt64 = 0x2, ATTR_NODEV: UInt64 = 0x4, ATTR_NOEXEC: UInt64 = 0x8
    static let ATTR_ATIME_MASK: UInt64 = 0x70, ATTR_RELATIME: UInt64 = 0, ATTR_NOATIME: UInt64 = 0x10
    static let ATTR_STRICTATIME: UInt64 = 0x20, ATTR_NODIRATIME: UInt64 = 0x80, ATTR_NOSYMFOLLOW: UInt64 = 0x20_0000

    /// A mount's options sorted out: mount(2) flags, propagation, recursive
    /// attributes and the words left for the filesystem (`data`; the kernel
    /// refuses those it does not know, and a bind mount takes none).
    struct Parsed {
        var flags: UInt32 = 0, propagation: UInt32 = 0, data: [String] = [], bind = false
        /// mount_setattr(2) attributes to set and to clear on the whole tree (`rro`, `rnosuid`, ...).
        var attrSet: UInt64 = 0, attrClear: UInt64 = 0
    }

    static let setFlags: [String: UInt32] = [
        "ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
        "sync": MS_SYNCHRONOUS, "remount": MS_REMOUNT, "mand": MS_MANDLOCK, "dirsync": MS_DIRSYNC,
        "noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME,
        "strictatime": MS_STRICTATIME, "silent": MS_SILENT, "nosymfollow": MS_NOSYMFOLLOW,
        "acl": MS_POSIXACL, "iversion": MS_I_VERSION, "lazytime": MS_LAZYTIME,
    ]
    static let clearFlags: [String: UInt32] = [
        "rw": MS_RDONLY, "suid": MS_NOSUID, "dev": MS_NODEV, "exec": MS_NOEXEC, "async": MS_SYNCHRONOUS,
        "nomand": MS_MANDLOCK, "atime": MS_NOATIME, "diratime": MS_NODIRATIME, "norelatime": MS_RELATIME,
        "nostrictatime": MS_STRICTATIME, "loud": MS_SILENT, "symfollow": MS_NOSYMFOLLOW,
        "noacl": MS_POSIXACL, "noiversion": MS_I_VERSION, "nolazytime": MS_LAZYTIME,
    ]
    static let propagationFlags: [String: UInt32] = [
        "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC, "shared": MS_SHARED,
        "rshared": MS_SHARED | MS_REC, "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
        "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
    ]
    /// runc's recursive options: (set or clear, attribute).
    static let recursiveAttrs: [String: (set: Bool, attr: UInt64)] = [
        "rro": (true, ATTR_RDONLY), "rrw": (false, ATTR_RDONLY),
        "rnosuid": (true, ATTR_NOSUID), "rsuid": (false, ATTR_NOSUID),
        "rnodev": (true, ATTR_NODEV), "rdev": (false, ATTR_NODEV),
        "rnoexec": (true, ATTR_NOEXEC), "rexec": (false, ATTR_NOEXEC),
        "rnodiratime": (true, ATTR_NODIRATIME), "rdiratime": (false, ATTR_NODIRATIME),
        "rnosymfollow": (true, ATTR_NOSYMFOLLOW), "rsymfollow": (false, ATTR_NOSYMFOLLOW),
    ]
    /// The access-time options set one mode of the tree (the kernel takes exactly one).
    static let recursiveAtime: [String: UInt64] = [
        "rrelatime": ATTR_RELATIME, "rnoatime": ATTR_NOATIME, "rstrictatime": ATTR_STRICTATIME,
        "ratime": ATTR_RELATIME, "rnorelatime": ATTR_STRICTATIME, "rnostrictatime": ATTR_RELATIME,
    ]

    static func parse(_ options: [String]) -> Parsed {
        var p = Parsed()
        for o in options {
            if let f = setFlags[o] { p.flags |= f }
            else if let f = clearFlags[o] { p.flags &= ~f }
            else if let f = propagationFlags[o] { p.propagation |= f }
            else if let r = recursiveAttrs[o] {
                if r.set { p.attrSet |= r.attr; p.attrClear &= ~r.attr } else { p.attrClear |= r.attr; p.attrSet &= ~r.attr }
            } else if let a = recursiveAtime[o] {
                p.attrSet = (p.attrSet & ~ATTR_ATIME_MASK) | a
                p.attrClear |= ATTR_ATIME_MASK
            }
            else if o == "bind" { p.bind = true; p.flags |= MS_BIND }
            else if o == "rbind" { p.bind = true; p.flags |= MS_BIND | MS_REC }
            else if o == "defaults" || o == "tmpcopyup" || o == "z" || o == "Z" { continue }
            else { p.data.append(o) }
        }
        return p
    }
}

/// Names of the spec mapped to kernel numbers; unknown names are errors,
/// as the spec requires for values that cannot be mapped.
enum Kernel {
    static let capabilities: [String] = [
        "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
        "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
        "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
        "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
        "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
        "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
    ]

    static func lastCap() -> Int {
        if let s = Sys.readFile("/proc/sys/kernel/cap_last_cap"),
           let n = Int(s.trimmingCharacters(in: .whitespacesAndNewlines)) { return n }
        return capabilities.count - 1
    }

    static func capMask(_ names: [String]?, lastCap: Int) throws -> UInt64 {
        var m: UInt64 = 0
        for n in names ?? [] {
            let key = n.uppercased().hasPrefix("CAP_") ? String(n.uppercased().dropFirst(4)) : n.uppercased()
            guard let i = capabilities.firstIndex(of: key) else {
                throw RuntimeError(.invalidSpec, "unknown capability \"\(n)\" in process.capabilities; use names like CAP_NET_ADMIN")
            }
            if i <= lastCap { m |= 1 << UInt64(i) }
        }
        return m
    }

    static let rlimits: [String: UInt32] = [
        "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
        "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
        "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
        "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
    ]

    /// Namespace type -> (clone flag, /proc/<pid>/ns name).
    static let namespaces: [String: (UInt32, String)] = [
        "pid": (0x2000_0000, "pid"), "network": (0x4000_0000, "net"), "mount": (0x0002_0000, "mnt"),
        "ipc": (0x0800_0000, "ipc"), "uts": (0x0400_0000, "uts"), "user": (0x1000_0000, "user"),
        "cgroup": (0x0200_0000, "cgroup"), "time": (0x0000_0080, "time"),
    ]
}

import Foundation
