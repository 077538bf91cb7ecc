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
        let doc: [String: Any] = [
            "ociVersionMin": ociVersionMin,
            "ociVersionMax": ociVersionMax,
            "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
            "mountOptions": mountOptions,
            "linux": [
                "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
                "capabilities": Kernel.capabilities.map { "CAP_" + $0 },
                "cgroup": ["v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false],
                "seccomp": [
                    "enabled": true,
                    "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                                "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                    "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                                  "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                    "archs": archs,
                ] as [String: Any],
                "apparmor": ["enabled": false],
                "selinux": ["enabled": false],
            ] as [String: Any],
            "annotations": ["io.github.seccomp.libseccomp.version": libseccompVersion,
                            "org.dockbuild.runtime.version": RuntimeFeatures.version],
        ]
        return try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }
}
