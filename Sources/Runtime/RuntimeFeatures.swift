import CSeccomp
import Foundation

/// What this runtime supports, in the shape of runc's `features` document (the runtime-spec's
/// `features.md`), which containerd and other callers read to decide what they may ask for.
/// Every list is derived from the tables the runtime itself uses, so it cannot drift.
public enum RuntimeFeatures {
    /// The OCI runtime-spec versions this runtime accepts.
    public static let ociVersionMin = "1.0.0"
    public static let ociVersionMax = "1.0.2"
    /// This runtime's own version.
    public static let version = "0.1.0"

    /// libseccomp's version, as runc's `--version` prints it.
    public static var libseccompVersion: String {
        guard let v = seccomp_version() else { return "unknown" }
        return "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.micro)"
    }

    /// The features document as canonical JSON (sorted keys, indented as runc prints it).
    public static func json() throws -> Data {
        let mountOptions = (Array(MountOptions.setFlags.keys) + Array(MountOptions.clearFlags.keys)
            + Array(MountOptions.propagationFlags.keys) + Array(MountOptions.recursiveAttrs.keys)
            + Array(MountOptions.recursiveAtime.keys) + ["bind", "rbind", "defaults"]).sorted()
        // The architectures this machine's libseccomp knows (the ones a profile may name).
        let archs = ["AARCH64", "ARM", "MIPS", "MIPS64", "MIPS64N32", "MIPSEL", "MIPSEL64", "MIPSEL64N32", "PPC",
                     "PPC64", "PPC64LE", "RISCV64", "S390", "S390X", "X32", "X86", "X86_64"]
            .filter { seccomp_arch_resolve_name($0.lowercased()) != 0 }.map { "SCMP_ARCH_" + $0 }
        func strings(_ l: [String]) -> OrderedJSON { .array(l.map { .string($0) }) }
        // runc's keys in runc's order (Go's struct order), indented as runc prints them.
        let doc: OrderedJSON = .object([
            ("ociVersionMin", .string(ociVersionMin)),
            ("ociVersionMax", .string(ociVersionMax)),
            ("hooks", strings(["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"])),
            ("mountOptions", strings(mountOptions)),
            ("linux", .object([
                ("namespaces", strings(["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"])),
                ("capabilities", strings(Kernel.capabilities.map { "CAP_" + $0 })),
                ("cgroup", .object([("v1", .bool(true)), ("v2", .bool(true)), ("systemd", .bool(false)), ("systemdUser", .bool(false)),
                                    ("rdma", .bool(false))])),
                ("seccomp", .object([
                    ("enabled", .bool(true)),
                    ("actions", strings(["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                                         "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"])),
                    ("operators", strings(["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                                           "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"])),
                    ("archs", strings(archs)),
                ])),
                ("apparmor", .object([("enabled", .bool(false))])),
                ("selinux", .object([("enabled", .bool(false))])),
            ])),
            ("annotations", .object([("io.github.seccomp.libseccomp.version", .string(libseccompVersion)),
                                     ("org.dockbuild.runtime.version", .string(RuntimeFeatures.version))])),
        ])
        return Data(doc.indented().utf8)
    }
}
