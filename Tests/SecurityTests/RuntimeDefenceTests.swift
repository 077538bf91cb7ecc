import Foundation
import Testing

/// The runtime's own defences (docs/security.md, "The runtime's own defences"): an OCI bundle
/// written by an attacker (or a careless tool) must not get more than runc would give it.
/// Each test runs `dockbuild runtime run` on a bundle over busybox:test's root filesystem.
@Suite(.serialized) struct RuntimeDefenceTests {
    @Test("deny-all device rules win over a node listed in linux.devices (/dev/kmsg stays closed)",
          .enabled(if: Sec.canRun))
    func runtimeDefenceDeviceDenyWins() throws {
        let s = try SecStore()
        let bundle = try RuntimeDefence.bundle(s, "kmsg", script: """
            if (true > /dev/kmsg) 2>/dev/null; then echo KMSG-WRITABLE; else echo kmsg-closed; fi
            if cat /dev/probe 2>&1 | grep -q 'not permitted'; then echo probe-closed; else echo PROBE-OPEN; fi
            """) { linux in
            linux["devices"] = [
                ["path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o644, "uid": 0, "gid": 0],
                ["path": "/dev/probe", "type": "c", "major": 240, "minor": 0, "fileMode": 0o666, "uid": 0, "gid": 0],
            ]
            linux["resources"] = ["devices": [["allow": false, "access": "rwm"]]]
        }
        let r = try RuntimeDefence.run(s, bundle)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("kmsg-closed") && r.out.contains("probe-closed"),
                "a node in linux.devices must not be usable when linux.resources.devices denies it: \(r.out)")
    }

    @Test("rro is applied to every mount below a bind mount, never dropped; an unknown bind option is refused",
          .enabled(if: Sec.canRun))
    func runtimeDefenceRecursiveReadOnly() throws {
        let s = try SecStore()
        let tree = try s.path("tree/sub")
        try #require(mount("tmpfs", tree, "tmpfs", 0, "size=1m") == 0, "mount a tmpfs on \(tree)")
        defer { umount2(tree, Int32(MNT_DETACH)) }
        let bundle = try RuntimeDefence.bundle(s, "rro", script: """
            touch /data/sub/planted 2>/dev/null && echo SUBMOUNT-WRITABLE
            touch /data/planted 2>/dev/null && echo TOP-WRITABLE
            echo done
            """, edit: { spec in
                var mounts = spec["mounts"] as? [[String: Any]] ?? []
                mounts.append(["destination": "/data", "type": "bind", "source": s.dir + "/tree", "options": ["rbind", "rro"]])
                spec["mounts"] = mounts
            })
        let r = try RuntimeDefence.run(s, bundle)
        #expect(r.status == 0 && r.out.contains("done"), "\(r.err)")
        #expect(!r.out.contains("WRITABLE"), "rro must make the bind mount and its submounts read-only: \(r.out)")
        #expect(!FileManager.default.fileExists(atPath: tree + "/planted"))

        // A misspelt option is an error, not a silently writable mount.
        let typo = try RuntimeDefence.bundle(s, "rro-typo", script: "touch /data/sub/planted && echo PLANTED", edit: { spec in
            var mounts = spec["mounts"] as? [[String: Any]] ?? []
            mounts.append(["destination": "/data", "type": "bind", "source": s.dir + "/tree", "options": ["rbind", "r-ro"]])
            spec["mounts"] = mounts
        })
        let t = try RuntimeDefence.run(s, typo)
        #expect(t.status != 0 && t.err.contains("\"r-ro\""), "out: \(t.out) err: \(t.err)")
        #expect(!FileManager.default.fileExists(atPath: tree + "/planted"))
    }
}

/// Helpers of this file (names prefixed so they cannot collide with other areas').
enum RuntimeDefence {
    /// A bundle over busybox:test's root filesystem (read-only) running `sh -c script`, from
    /// `dockbuild runtime spec` with `editLinux` applied to its `linux` object.
    static func bundle(_ s: SecStore, _ name: String, script: String,
                       editLinux: (inout [String: Any]) -> Void = { _ in },
                       edit: (inout [String: Any]) -> Void = { _ in }) throws -> String {
        let dir = try s.path("bundle-" + name)
        let r = try Sec.run([Sec.binary, "runtime", "spec", "-b", dir])
        try #require(r.status == 0, "runtime spec: \(r.err)")
        let url = URL(fileURLWithPath: dir + "/config.json")
        var spec = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        spec["root"] = ["path": s.dir + "/busybox-rootfs", "readonly": true]
        var process = spec["process"] as? [String: Any] ?? [:]
        process["terminal"] = false
        process["args"] = ["sh", "-c", script]
        spec["process"] = process
        var linux = spec["linux"] as? [String: Any] ?? [:]
        editLinux(&linux)
        spec["linux"] = linux
        edit(&spec)
        try JSONSerialization.data(withJSONObject: spec, options: [.sortedKeys]).write(to: url)
        return dir
    }

    /// `dockbuild runtime run -b BUNDLE ID` with the store's root as the runtime's state root.
    static func run(_ s: SecStore, _ bundle: String, verb: [String] = ["run"]) throws -> Sec.Result {
        try s.db(["runtime"] + verb + ["-b", bundle, "rd-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"])
    }
}
