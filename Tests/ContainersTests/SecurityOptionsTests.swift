import Foundation
import Testing
@testable import Containers

/// `--security-opt` and `--cap-*` parsing, without running anything.
@Suite struct SecurityOptionsTests {
    @Test func dockerSpellingsParse() throws {
        #expect(try SecurityOptions([]) == SecurityOptions([]))
        #expect(try SecurityOptions([]).seccomp == .default)
        #expect(try SecurityOptions(["seccomp=unconfined"]).seccomp == .unconfined)
        #expect(try SecurityOptions(["seccomp:unconfined"]).seccomp == .unconfined)
        #expect(try SecurityOptions(["seccomp=/etc/p.json"]).seccomp == .profile("/etc/p.json"))
        for nnp in ["no-new-privileges", "no-new-privileges=true", "no-new-privileges:true"] {
            #expect(try SecurityOptions([nnp]).noNewPrivileges, "\(nnp)")
        }
        #expect(try !SecurityOptions(["no-new-privileges", "no-new-privileges=false"]).noNewPrivileges)
        #expect(try SecurityOptions(["label=disable"]).labelDisabled)
        #expect(try SecurityOptions(["apparmor=unconfined"]).appArmor == "unconfined")
        for bad in ["seccomp", "seccomp=", "label=user:u", "apparmor=docker-default", "no-new-privileges=yes", "privileged"] {
            #expect(throws: ContainersError.self, "\(bad)") { try SecurityOptions([bad]) }
        }
    }

    @Test func capabilityNames() throws {
        #expect(try capabilityName("net_admin") == "CAP_NET_ADMIN")
        #expect(try capabilityName("CAP_SYS_PTRACE") == "CAP_SYS_PTRACE")
        #expect(try capabilityName("all") == "ALL")
        #expect(throws: ContainersError.self) { try capabilityName("SUPERPOWER") }
        let host = hostCapabilities()
        #expect(host.count >= 38 && host.allSatisfy { $0.hasPrefix("CAP_") })
    }
}
