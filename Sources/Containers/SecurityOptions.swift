import Foundation

/// `--security-opt` values as docker takes them (`key=value`, or the older `key:value`).
public struct SecurityOptions: Sendable, Equatable {
    /// Which seccomp filter the container gets.
    public enum Seccomp: Sendable, Equatable {
        /// docker's default profile for the container's capabilities.
        case `default`
        /// No filter (`seccomp=unconfined`).
        case unconfined
        /// A profile file (`seccomp=FILE`), read when the container is created.
        case profile(String)
    }

    public var seccomp: Seccomp = .default
    public var noNewPrivileges = false
    /// `label=disable`: no SELinux label (dockbuild applies none anyway).
    public var labelDisabled = false
    /// The AppArmor profile asked for; only `unconfined` is supported.
    public var appArmor: String?

    /// Parses the `--security-opt` values in order (a later one wins).
    public init(_ options: [String]) throws {
        for o in options {
            let sep = o.firstIndex { $0 == "=" || $0 == ":" }
            let key = sep.map { String(o[..<$0]) } ?? o
            let value = sep.map { String(o[o.index(after: $0)...]) }
            switch (key, value) {
            case ("no-new-privileges", nil), ("no-new-privileges", "true"): noNewPrivileges = true
            case ("no-new-privileges", "false"): noNewPrivileges = false
            case ("seccomp", "unconfined"?): seccomp = .unconfined
            case ("seccomp", let v?) where !v.isEmpty: seccomp = .profile(v)
            case ("label", "disable"?): labelDisabled = true
            case ("label", _):
                throw ContainersError.invalidArgument("--security-opt \(o): dockbuild applies no SELinux labels; only label=disable is accepted")
            case ("apparmor", let v?) where !v.isEmpty:
                guard v == "unconfined" else {
                    throw ContainersError.invalidArgument("--security-opt \(o): dockbuild loads no AppArmor profiles; only apparmor=unconfined is accepted")
                }
                appArmor = v
            default:
                throw ContainersError.invalidArgument("--security-opt \"\(o)\": use seccomp=unconfined|FILE, no-new-privileges[=true|false], label=disable or apparmor=unconfined")
            }
        }
    }

    /// True where the kernel enforces AppArmor.
    public static var appArmorEnabled: Bool {
        FS.readFile("/sys/module/apparmor/parameters/enabled")?.hasPrefix("Y") == true
    }

    /// What to tell the user about options that change nothing on this host.
    public var notices: [String] {
        var out: [String] = []
        if appArmor != nil && !Self.appArmorEnabled {
            out.append("apparmor=\(appArmor ?? ""): AppArmor is not enabled on this host, so there is no profile to lift; the option changes nothing")
        }
        return out
    }
}
