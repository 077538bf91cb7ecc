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

    // MARK: recursive mount options and unknown options

    /// A host directory with a file and a tmpfs mounted below it (`sub`), for
    /// checking that an option reaches the mounts under a bind mount too.
    static func treeWithSubmount(_ b: Bundle) throws -> String {
        let src = b.dir + "/tree"
        try FileManager.default.createDirectory(atPath: src + "/sub", withIntermediateDirectories: true)
        try #require(mount("tmpfs", src + "/sub", "tmpfs", 0, "size=1m") == 0, "mount tmpfs on \(src)/sub")
        return src
    }

    static func unmountTree(_ src: String) { umount2(src + "/sub", Int32(MNT_DETACH)) }

    /// The mount options (field 6 of mountinfo) of each mount point the container sees under /mnt.
    static let mountsUnderMnt = #"while read -r id p mm root mp opts rest; do case $mp in /mnt*) echo "$mp $opts";; esac; done < /proc/self/mountinfo"#

    static func options(_ out: String, _ mp: String) -> Set<String> {
        for line in out.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 2, f[0] == mp { return Set(f[1].split(separator: ",").map(String.init)) }
        }
        return []
    }

    @Test("rro makes a bind mount and every mount below it read-only (mount_setattr AT_RECURSIVE), as runc")
    func recursiveReadOnly() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let src = try Self.treeWithSubmount(b)
        defer { Self.unmountTree(src) }
        var s = b.spec(["sh", "-c", """
            touch /mnt/top 2>/dev/null && echo TOP-WRITABLE
            touch /mnt/sub/below 2>/dev/null && echo SUB-WRITABLE
            \(Self.mountsUnderMnt)
            """])
        s.mounts?.append(.init(destination: "/mnt", type: "bind", source: src, options: ["rbind", "rro"]))
        var r = try b.run(s)
        #expect(r.code == 0, "\(r.err)")
        #expect(!r.out.contains("TOP-WRITABLE") && !r.out.contains("SUB-WRITABLE"), "rro must not be dropped: \(r.out)")
        #expect(Self.options(r.out, "/mnt").contains("ro") && Self.options(r.out, "/mnt/sub").contains("ro"), "\(r.out)")
        #expect(!FileManager.default.fileExists(atPath: src + "/sub/below"))

        // Plain "ro" is not recursive (runc: only the bind mount itself); "rrw" after "rro" undoes it.
        s.mounts?.removeLast()
        s.mounts?.append(.init(destination: "/mnt", type: "bind", source: src, options: ["rbind", "ro"]))
        r = try b.run(s)
        #expect(!r.out.contains("TOP-WRITABLE") && r.out.contains("SUB-WRITABLE"), "\(r.out)")
        s.mounts?.removeLast()
        s.mounts?.append(.init(destination: "/mnt", type: "bind", source: src, options: ["rbind", "rro", "rrw"]))
        r = try b.run(s)
        #expect(r.out.contains("TOP-WRITABLE") && r.out.contains("SUB-WRITABLE"), "\(r.out)")
    }

    @Test("rnosuid, rnodev, rnoexec and rnoatime reach the mounts below a bind mount")
    func recursiveFlags() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let src = try Self.treeWithSubmount(b)
        defer { Self.unmountTree(src) }
        var s = b.spec(["sh", "-c", Self.mountsUnderMnt])
        s.mounts?.append(.init(destination: "/mnt", type: "bind", source: src, options: ["rbind", "rnosuid", "rnodev", "rnoexec", "rnoatime"]))
        let r = try b.run(s)
        #expect(r.code == 0, "\(r.err)")
        for mp in ["/mnt", "/mnt/sub"] {
            let o = Self.options(r.out, mp)
            #expect(o.isSuperset(of: ["rw", "nosuid", "nodev", "noexec", "noatime"]), "\(mp): \(o) in \(r.out)")
        }
    }

    @Test("unknown mount options are errors (bind: refused here; tmpfs: by the kernel)")
    func unknownMountOptions() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        var s = b.spec(["true"])
        s.mounts?.append(.init(destination: "/mnt", type: "bind", source: b.rootfs + "/tmp", options: ["rbind", "rr0"]))
        try b.write(s)
        #expect {
            try b.runtime.create(id: "unknown-bind", bundle: b.dir)
        } throws: { e in
            let m = (e as? RuntimeError)?.message ?? ""
            return m.contains("\"rr0\"") && m.contains("/mnt") && m.contains("rro")
        }
        #expect(b.runtime.list().isEmpty, "nothing left behind")

        s.mounts?.removeLast()
        s.mounts?.append(.init(destination: "/mnt", type: "tmpfs", source: "tmpfs", options: ["nosuid", "sizee=1m"]))
        try b.write(s)
        #expect {
            try b.runtime.create(id: "unknown-tmpfs", bundle: b.dir)
        } throws: { e in
            let m = (e as? RuntimeError)?.message ?? ""
            return m.contains("sizee=1m") && m.contains("/mnt")
        }
        // rro etc. are not handed to the filesystem as data.
        s.mounts?.removeLast()
        s.mounts?.append(.init(destination: "/mnt", type: "tmpfs", source: "tmpfs", options: ["rro", "rnosuid", "size=1m"]))
        let r = try b.run(s)
        #expect(r.code == 0, "\(r.err)")
    }

    @Test("key=value filesystem data on a bind mount is ignored (runc, crun); bare unknown words stay errors")
    func bindMountFilesystemData() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        // runtime-tools' `mounts` test: tmpfs-style data next to the flags of a bind mount.
        var s = b.spec(["sh", "-c", Self.mountsUnderMnt])
        s.mounts?.append(.init(destination: "/mnt", type: "bind", source: b.rootfs + "/tmp",
                               options: ["nosuid", "strictatime", "mode=755", "size=1k", "bind", "shared"]))
        let r = try b.run(s)
        #expect(r.code == 0, "\(r.err)")
        #expect(Self.options(r.out, "/mnt").contains("nosuid"), "the flags still apply: \(r.out)")

        // A bare word among them is still refused, and only it is named.
        s.mounts?.removeLast()
        s.mounts?.append(.init(destination: "/mnt", type: "bind", source: b.rootfs + "/tmp",
                               options: ["rbind", "mode=755", "r-ro"]))
        try b.write(s)
        #expect {
            try b.runtime.create(id: "bind-data-typo", bundle: b.dir)
        } throws: { e in
            let m = (e as? RuntimeError)?.message ?? ""
            return m.contains("\"r-ro\"") && !m.contains("mode=755") && m.contains("/mnt")
        }
        #expect(b.runtime.list().isEmpty, "nothing left behind")
    }

    @Test("a read-only /dev gets its nodes, links and submounts first, then turns read-only (nosuid kept)")
    func readOnlyDev() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        var s = b.spec(["sh", "-c", """
            echo x > /dev/null && echo null-ok
            test -c /dev/zero && test -L /dev/fd && test -d /dev/pts && test -d /dev/shm && echo nodes-ok
            touch /dev/new 2>/dev/null && echo DEV-WRITABLE
            echo x > /dev/shm/f && echo shm-ok
            while read -r id p mm root mp opts rest; do [ "$mp" = /dev ] && echo "dev $opts"; done < /proc/self/mountinfo
            true
            """])
        var mounts = s.mounts ?? []
        for i in mounts.indices where mounts[i].destination == "/dev" { mounts[i].options?.append("ro") }
        s.mounts = mounts
        var r = try b.run(s)
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out.contains("null-ok") && r.out.contains("nodes-ok") && r.out.contains("shm-ok"), "\(r.out) \(r.err)")
        #expect(!r.out.contains("DEV-WRITABLE"), "\(r.out)")
        let devOpts = r.out.split(separator: "\n").first { $0.hasPrefix("dev ") }.map { Set($0.dropFirst(4).split(separator: ",").map(String.init)) } ?? []
        #expect(devOpts.isSuperset(of: ["ro", "nosuid"]), "/dev keeps nosuid when it turns read-only: \(r.out)")

        // rro on /dev: the submounts turn read-only too, still after the nodes exist.
        for i in mounts.indices where mounts[i].destination == "/dev" {
            mounts[i].options = (mounts[i].options ?? []).filter { $0 != "ro" } + ["rro"]
        }
        s.mounts = mounts
        r = try b.run(s)
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out.contains("null-ok") && r.out.contains("nodes-ok") && !r.out.contains("shm-ok"), "\(r.out)")
    }
}
