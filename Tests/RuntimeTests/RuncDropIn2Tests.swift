import Foundation
import Testing
@testable import Runtime

/// `dockbuild-runc` as a drop-in for runc (issue #16), continued: bind mount sources in a user
/// namespace, and seccomp notifications handed to an agent at `linux.seccomp.listenerPath`.
@Suite("runc drop-in 2", .serialized)
struct RuncDropIn2Tests {
    static func tag() -> String { "\(getpid())-\(UInt32.random(in: 0...UInt32.max))" }

    /// The runtimes to compare: ours, and runc where installed, each with a state root of its own.
    static func runtimes(_ b: Bundle) throws -> [(bin: String, root: String)] {
        var r = [(try RuncDropInTests.ours, b.dir + "/state")]
        if let runc = RuncDropInTests.runc { r.append((runc, b.dir + "/runc-state")) }
        return r
    }

    @Test("user namespace: a bind mount of a directory under a 0700 root-owned parent (opened as the host's root, as runc does)")
    func userNamespaceBindSource() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        // Mapped root (host uid 100000) cannot pass `hidden`; `data` and its file are readable by anyone.
        let hidden = b.dir + "/hidden", data = hidden + "/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        chmod(hidden, 0o700)
        chmod(data, 0o755)
        try Data("from the host\n".utf8).write(to: URL(fileURLWithPath: data + "/file"))
        try Data("single file\n".utf8).write(to: URL(fileURLWithPath: hidden + "/one"))
        chmod(hidden + "/one", 0o644)
        // Mount points exist already: the mapped root may not create them in the host-owned rootfs.
        try FileManager.default.createDirectory(atPath: b.rootfs + "/mnt/data", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: b.rootfs + "/mnt/one", contents: nil)
        chmod(b.rootfs, 0o755)
        let tag = Self.tag()
        for (bin, root) in try Self.runtimes(b) {
            var s = b.spec(["sh", "-c", "cat /mnt/data/file /mnt/one; id -u; ls /mnt/data"])
            s.linux?.namespaces?.append(.init(type: "user"))
            s.linux?.uidMappings = [.init(containerID: 0, hostID: 100_000, size: 65536)]
            s.linux?.gidMappings = [.init(containerID: 0, hostID: 100_000, size: 65536)]
            s.mounts?.append(.init(destination: "/mnt/data", type: "bind", source: data, options: ["rbind", "ro"]))
            s.mounts?.append(.init(destination: "/mnt/one", type: "bind", source: hidden + "/one", options: ["bind"]))
            s.linux?.cgroupsPath = "/dockbuild-usernsbind-\(bin.hasSuffix("dockbuild-runc") ? "ours" : "runc")-\(tag)"
            try b.write(s)
            let r = try RuncDropInTests.call([bin, "--root", root, "run", "--bundle", b.dir, "ub"])
            #expect(r.code == 0 && r.out == "from the host\nsingle file\n0\nfile\n", "\(bin): \(r)")
        }
        // A source that does not exist is still create's error, named.
        var s = b.spec(["true"])
        s.linux?.namespaces?.append(.init(type: "user"))
        s.linux?.uidMappings = [.init(containerID: 0, hostID: 100_000, size: 65536)]
        s.linux?.gidMappings = [.init(containerID: 0, hostID: 100_000, size: 65536)]
        s.mounts?.append(.init(destination: "/mnt/data", type: "bind", source: hidden + "/nosuch", options: ["rbind"]))
        s.linux?.cgroupsPath = "/dockbuild-usernsbind-missing-\(tag)"
        try b.write(s)
        let missing = try RuncDropInTests.call([try RuncDropInTests.ours, "--root", b.dir + "/state", "run", "--bundle", b.dir, "ub2"])
        #expect(missing.code != 0 && missing.err.contains(hidden + "/nosuch") && missing.err.contains("No such file"), "\(missing)")
    }
}
