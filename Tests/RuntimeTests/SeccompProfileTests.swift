import Foundation
import Testing
@testable import Runtime

/// Seccomp profiles of other tools (docker's format) and the compiler's tolerance of the
/// repeated and overlapping rules they contain.
@Suite("seccomp profiles") struct SeccompProfileTests {
    static let profile = """
        {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
         "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                     {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
         "syscalls": [
           {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
           {"name": "exit", "action": "SCMP_ACT_ALLOW"},
           {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
           {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "excludes": {"caps": ["CAP_SYS_CHROOT"]}},
           {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
           {"names": ["sync_file_range2"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["ppc64le"]}},
           {"names": ["futex_waitv"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.16"}},
           {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
            "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}],
            "excludes": {"caps": ["CAP_AUDIT_WRITE"]}},
           {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 2, "value": 9, "op": "SCMP_CMP_NE"}],
            "excludes": {"caps": ["CAP_AUDIT_WRITE"]}},
           {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_NE"}],
            "excludes": {"caps": ["CAP_AUDIT_WRITE"]}},
           {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 2, "value": 9, "op": "SCMP_CMP_NE"}],
            "excludes": {"caps": ["CAP_AUDIT_WRITE"]}},
           {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_AUDIT_WRITE"]}}
         ]}
        """

    func resolved(_ caps: [String]) throws -> RuntimeSpec.Seccomp {
        try SeccompProfile.parse(Data(Self.profile.utf8), source: "test").resolved(capabilities: caps)
    }

    func names(_ s: RuntimeSpec.Seccomp) -> [String] { (s.syscalls ?? []).flatMap(\.names) }

    @Test("includes and excludes follow the capabilities, architecture and kernel")
    func filters() throws {
        let plain = try resolved(["CAP_CHOWN"])
        #expect(!names(plain).contains("mount"))
        #expect(names(plain).contains("chroot"))
        #expect(names(plain).filter { $0 == "socket" }.count == 4)
        #expect(names(plain).contains("exit"))
        #expect(!names(plain).contains("sync_file_range2"))
        #if arch(x86_64)
        #expect(names(plain).contains("arch_prctl"))
        #expect(plain.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        #endif
        #expect(names(plain).contains("futex_waitv") == (SeccompProfile.kernelVersion >= (5, 16)))

        let admin = try resolved(["CAP_SYS_ADMIN", "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE"])
        #expect(names(admin).contains("mount"))
        #expect(!names(admin).contains("chroot"))
        #expect(names(admin).filter { $0 == "socket" }.count == 1)
    }

    @Test("repeated and overlapping rules compile, as runc accepts them")
    func overlappingRulesCompile() throws {
        for caps in [[], ["CAP_AUDIT_WRITE"], ["CAP_SYS_ADMIN", "CAP_SYS_CHROOT"]] {
            let bpf = try SeccompCompiler.compile(try resolved(caps))
            #expect(bpf.count > 8 && bpf.count % 8 == 0, "\(caps)")
        }
        let podman = "/usr/share/containers/seccomp.json"
        if let data = FileManager.default.contents(atPath: podman) {
            let p = try SeccompProfile.parse(data, source: podman)
            for caps in [[], SpecGenerator.defaultCapabilities, SpecGenerator.defaultCapabilities.filter { $0 != "CAP_AUDIT_WRITE" }] {
                _ = try SeccompCompiler.compile(try p.resolved(capabilities: caps))
            }
        }
    }

    @Test("a profile that is not one is refused with its name")
    func badProfile() {
        #expect(throws: RuntimeError.self) { try SeccompProfile.parse(Data("{\"syscalls\": 3}".utf8), source: "bad.json") }
        let noName = #"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}"#
        #expect(throws: RuntimeError.self) {
            _ = try SeccompProfile.parse(Data(noName.utf8), source: "x").resolved(capabilities: [])
        }
    }

    @Test("docker's default profile opens a capability's syscalls only with it")
    func defaultProfileFollowsCapabilities() throws {
        let plain = DefaultSeccompProfile.forCapabilities(SpecGenerator.defaultCapabilities)
        let admin = DefaultSeccompProfile.forCapabilities(SpecGenerator.defaultCapabilities + ["CAP_SYS_ADMIN"])
        #expect(!names(plain).contains("mount") && names(admin).contains("mount"))
        #expect(names(plain).contains("chroot"))
        #expect(!names(DefaultSeccompProfile.forCapabilities([])).contains("chroot"))
        // clone stays flag-filtered without SYS_ADMIN
        #expect(plain.syscalls?.contains { $0.names == ["clone"] && $0.args != nil } == true)
        #expect(admin.syscalls?.contains { $0.names == ["clone"] } == false)
        for s in [plain, admin] { _ = try SeccompCompiler.compile(s) }
    }

    @Test("a profile compiled before gives the same program again, and another profile its own")
    func compiledProgramsAreKeptPerProfile() throws {
        let plain = DefaultSeccompProfile.forCapabilities(SpecGenerator.defaultCapabilities)
        let admin = DefaultSeccompProfile.forCapabilities(SpecGenerator.defaultCapabilities + ["CAP_SYS_ADMIN"])
        let first = try SeccompCompiler.compile(plain)
        let other = try SeccompCompiler.compile(admin)
        #expect(first != other)
        #expect(try SeccompCompiler.compile(plain) == first)
        var changed = plain
        changed.defaultErrnoRet = 38
        #expect(try SeccompCompiler.compile(changed) != first, "a changed profile is compiled anew")
    }
}
