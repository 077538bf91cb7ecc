import Foundation
import Testing
@testable import Runtime

/// Spec handling that must match runc where getting it wrong weakens the
/// container (issue #16): device rules, recursive mount attributes, unknown
/// mount options.
@Suite("spec defects", .serialized)
struct SpecDefectTests {
    /// `/dev/kmsg` listed in linux.devices, an unregistered char device 240:0
    /// as a probe (allowed: ENXIO, denied: EPERM), and the given device rules.
    static func kmsgSpec(_ b: Bundle, rules: [RuntimeSpec.DeviceCgroup]) -> RuntimeSpec {
        var s = b.spec(["sh", "-c", """
            if out=$( (true > /dev/kmsg) 2>&1); then echo "kmsg w ok"; else echo "kmsg w $out"; fi
            if out=$(cat /dev/probe 2>&1); then echo "probe r ok"; else echo "probe r $out"; fi
            echo x > /dev/null && echo "null w ok"
            """])
        s.linux?.devices = [
            .init(type: "c", path: "/dev/kmsg", major: 1, minor: 11, fileMode: 0o644, uid: 0, gid: 0),
            .init(type: "c", path: "/dev/probe", major: 240, minor: 0, fileMode: 0o666, uid: 0, gid: 0),
        ]
        var res = s.linux?.resources ?? .init()
        res.devices = rules
        s.linux?.resources = res
        return s
    }

    @Test("cgroup v1: a deny-all device rule keeps nodes listed in linux.devices closed (runc, crun)")
    func devicesDenyWinsV1() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        try #require(Cgroup.hierarchies().v1.contains { $0.controllers.contains("devices") }, "this host has no cgroup v1 devices hierarchy")
        var r = try b.run(Self.kmsgSpec(b, rules: [.init(allow: false, access: "rwm")]))
        var v = V2.verdicts(r.out)
        #expect(r.code == 0, "stderr: \(r.err)")
        #expect(v["kmsg w"] == "denied", "deny-all must win over linux.devices: \(r.out)")
        #expect(v["probe r"] == "denied", "\(r.out)")
        #expect(v["null w"] == "allowed", "the default devices stay usable: \(r.out)")

        // An explicit allow rule opens exactly that node.
        r = try b.run(Self.kmsgSpec(b, rules: [.init(allow: false, access: "rwm"),
                                               .init(allow: true, type: "c", major: 240, minor: 0, access: "rw")]))
        v = V2.verdicts(r.out)
        #expect(v["probe r"] == "allowed" && v["kmsg w"] == "denied", "\(r.out)")
    }

    @Test("cgroup v2: the BPF device program keeps nodes listed in linux.devices closed under deny-all")
    func devicesDenyWinsV2() throws {
        try #require(geteuid() == 0, "needs root")
        try #require(Cgroup.hierarchies().v2?.mountPoint != nil, "no cgroup2 mount on this host")
        let bin = try #require(V2.runtimeBinary, "no .build/debug/dockbuild-runc: run `swift build` before the tests")
        let b = try Bundle.make()
        defer { b.cleanup() }
        try b.write(Self.kmsgSpec(b, rules: [.init(allow: false, access: "rwm")]))
        let r = try V2.runc(bin, state: b.runtime.root, ["run", "-b", b.dir, "v2kmsg"], dir: b.dir)
        let v = V2.verdicts(r.out)
        #expect(r.code == 0, "stderr: \(r.err)")
        #expect(v["kmsg w"] == "denied", "deny-all must win over linux.devices: \(r.out)")
        #expect(v["probe r"] == "denied", "\(r.out)")
        #expect(v["null w"] == "allowed", "\(r.out)")
    }

    @Test("rule list: linux.devices adds no allow rule; the defaults follow the spec's rules")
    func effectiveRules() {
        let rules = Cgroup.effectiveDeviceRules([.init(allow: false, type: "c", major: 1, minor: 11, access: "rwm")])
        #expect(rules.first == .init(allow: false, access: "rwm"))
        #expect(rules[1] == .init(allow: false, type: "c", major: 1, minor: 11, access: "rwm"))
        #expect(Array(rules.dropFirst(2)) == Cgroup.defaultAllowedDevices)
    }
}
