// Seccomp profiles in the format docker, podman and containerd ship (moby's
// profiles/seccomp/default.json: `archMap`, per-rule `includes`/`excludes` on
// capabilities, architectures and kernel versions), turned into the
// runtime-spec's `linux.seccomp` (config-linux.md#seccomp) for one container.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A seccomp profile file as `--security-opt seccomp=FILE` takes it: docker's format, or
/// the runtime-spec's `linux.seccomp` object itself (a subset of docker's).
public struct SeccompProfile: Decodable, Sendable {
    public var defaultAction: String
    public var defaultErrnoRet: UInt32?
    public var architectures: [String]?
    public var archMap: [ArchMap]?
    public var flags: [String]?
    public var syscalls: [Rule]?

    public struct ArchMap: Decodable, Sendable {
        public var architecture: String
        public var subArchitectures: [String]?
    }

    /// One rule: `name` (older profiles) or `names`, an action, and the conditions under
    /// which the rule applies to a container.
    public struct Rule: Decodable, Sendable {
        public var name: String?
        public var names: [String]?
        public var action: String
        public var errnoRet: UInt32?
        public var args: [RuntimeSpec.SyscallArg]?
        public var includes: Filter?
        public var excludes: Filter?
    }

    /// `includes` (every listed capability and one of the architectures needed) or
    /// `excludes` (any listed capability or architecture drops the rule).
    public struct Filter: Decodable, Sendable {
        public var caps: [String]?
        public var arches: [String]?
        public var minKernel: String?
    }

    /// Parses a profile file's bytes; `source` names it in errors.
    public static func parse(_ data: Data, source: String) throws -> SeccompProfile {
        do { return try JSONDecoder().decode(SeccompProfile.self, from: data) } catch {
            throw RuntimeError(.seccomp, "seccomp profile \(source) is not a docker or runtime-spec seccomp profile: \(error); give a JSON file like /usr/share/containers/seccomp.json")
        }
    }

    /// This host's architecture as docker's `includes.arches` name it (Go's name) and as
    /// libseccomp names it.
    static let hostArch: (go: String, seccomp: String) = {
        #if arch(x86_64)
        return ("amd64", "SCMP_ARCH_X86_64")
        #elseif arch(arm64)
        return ("arm64", "SCMP_ARCH_AARCH64")
        #elseif arch(arm)
        return ("arm", "SCMP_ARCH_ARM")
        #elseif arch(i386)
        return ("386", "SCMP_ARCH_X86")
        #else
        return ("unknown", "SCMP_ARCH_NATIVE")
        #endif
    }()

    /// The Go architecture name docker's `includes.arches` use for this host.
    static var hostGoArch: String { hostArch.go }

    /// libseccomp's name for this host's native architecture.
    static var hostSeccompArch: String { hostArch.seccomp }

    /// The running kernel's version as (major, minor).
    static var kernelVersion: (Int, Int) {
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return parseVersion(release) ?? (0, 0)
    }

    static func parseVersion(_ s: String) -> (Int, Int)? {
        let parts = s.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard parts.count == 2 else { return nil }
        return (parts[0], parts[1])
    }

    /// docker's architecture names for `includes.arches`: the Go name and libseccomp's spellings.
    static func archMatches(_ list: [String]) -> Bool {
        let host = hostGoArch
        let aliases: [String: Set<String>] = [
            "amd64": ["amd64", "x86_64", "scmp_arch_x86_64"],
            "arm64": ["arm64", "aarch64", "scmp_arch_aarch64"],
            "arm": ["arm", "scmp_arch_arm"],
            "386": ["386", "x86", "scmp_arch_x86"],
        ]
        let mine = aliases[host] ?? [host]
        return list.contains { mine.contains($0.lowercased()) }
    }

    /// The runtime-spec seccomp for a container with `capabilities` (names like CAP_SYS_ADMIN):
    /// rules whose `includes` are not met, or whose `excludes` are, are left out, as docker does.
    public func resolved(capabilities: [String]) throws -> RuntimeSpec.Seccomp {
        let caps = Set(capabilities.map { $0.uppercased() })
        var arches = architectures ?? []
        if let map = archMap, arches.isEmpty {
            for m in map where m.architecture == Self.hostSeccompArch {
                arches = [m.architecture] + (m.subArchitectures ?? [])
            }
        }
        let kernel = Self.kernelVersion
        var rules: [RuntimeSpec.Syscall] = []
        for (i, r) in (syscalls ?? []).enumerated() {
            let names = (r.names ?? []) + (r.name.map { [$0] } ?? [])
            guard !names.isEmpty else {
                throw RuntimeError(.seccomp, "seccomp profile rule \(i) names no syscall; give \"names\": [...]")
            }
            if let inc = r.includes {
                if let c = inc.caps, !c.isEmpty, !c.allSatisfy({ caps.contains($0.uppercased()) }) { continue }
                if let a = inc.arches, !a.isEmpty, !Self.archMatches(a) { continue }
                if let k = inc.minKernel, !k.isEmpty {
                    guard let want = Self.parseVersion(k) else {
                        throw RuntimeError(.seccomp, "seccomp profile rule \(i): minKernel \"\(k)\" is not a version like 5.8")
                    }
                    if kernel < want { continue }
                }
            }
            if let exc = r.excludes {
                if let c = exc.caps, c.contains(where: { caps.contains($0.uppercased()) }) { continue }
                if let a = exc.arches, !a.isEmpty, Self.archMatches(a) { continue }
            }
            rules.append(.init(names: names, action: r.action, errnoRet: r.errnoRet, args: (r.args ?? []).isEmpty ? nil : r.args))
        }
        var s = RuntimeSpec.Seccomp(defaultAction: defaultAction, defaultErrnoRet: defaultErrnoRet,
                                    architectures: arches.isEmpty ? nil : arches, syscalls: rules)
        s.flags = flags
        return s
    }
}
