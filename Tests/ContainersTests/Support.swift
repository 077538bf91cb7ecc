import Archive
import Foundation
import ImageStore
import OCI
import Testing

/// A scenario: a temp store root, its own bridge and subnet, and the dockbuild binary.
final class Scenario: @unchecked Sendable {
    let root: String
    let bridge: String
    let subnet: String
    let binary: String
    nonisolated(unsafe) static var counter = 0

    init(_ tag: Int) throws {
        let pkg = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        binary = ["\(pkg)/.build/debug/dockbuild", "\(pkg)/.build/release/dockbuild"].first { FileManager.default.isExecutableFile(atPath: $0) }
            ?? "\(pkg)/.build/debug/dockbuild"
        root = FileManager.default.temporaryDirectory.appendingPathComponent("dbct-\(getpid())-\(tag)").path
        bridge = "dbt\(getpid() % 1000)x\(tag)"
        subnet = "10.89.\(100 + tag).0/24"
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    static var canRun: Bool {
        getuid() == 0 && Shell.which("ip") != nil && FileManager.default.fileExists(atPath: "/bin/busybox")
    }

    /// Builds `busybox:test` (and others) from Debian's busybox-static: the binary plus an applet
    /// link for every command, /etc/passwd, and a page under /www.
    func makeBusyboxImage(tag: String = "busybox:test", cmd: [String] = ["sh"], exposed: [String] = [],
                          extra: ((String) throws -> Void)? = nil) throws {
        let store = try ImageStore(root: root)
        let dir = "\(root)/imgsrc-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fm = FileManager.default
        for d in ["bin", "etc", "www", "tmp", "root", "data"] { try fm.createDirectory(atPath: "\(dir)/\(d)", withIntermediateDirectories: true) }
        try fm.copyItem(atPath: "/bin/busybox", toPath: "\(dir)/bin/busybox")
        let list = try Shell.out(["/bin/busybox", "--list"])
        for applet in list.split(separator: "\n") where applet != "busybox" {
            try? fm.createSymbolicLink(atPath: "\(dir)/bin/\(applet)", withDestinationPath: "busybox")
        }
        try "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n".write(toFile: "\(dir)/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\nnogroup:x:65534:\n".write(toFile: "\(dir)/etc/group", atomically: true, encoding: .utf8)
        try "<html>hello from the image</html>\n".write(toFile: "\(dir)/www/index.html", atomically: true, encoding: .utf8)
        try extra?(dir)
        let out = "\(store.tempDir)/layer-\(UUID().uuidString).tar.gz"
        let info = try LayerWriter.write(directory: dir, to: out, compression: .gzip(level: 1))
        try store.adoptFile(at: out, digest: info.digest)
        var cfg = ImageConfig(platform: .host)
        cfg.rootfs = RootFS(diffIDs: [info.diffID])
        cfg.config = ContainerConfig(exposedPorts: exposed.isEmpty ? nil : Dictionary(uniqueKeysWithValues: exposed.map { ($0, EmptyObject()) }),
                                     env: ["PATH=/bin"], cmd: cmd)
        try store.putImage(config: cfg, layers: [Descriptor(mediaType: info.mediaType, digest: info.digest, size: info.size)],
                           tag: try ImageReference(parsing: tag))
    }

    struct Result { var status: Int32; var out: String; var err: String }

    /// Runs `dockbuild <cmd> --root <root> args...`.
    @discardableResult
    func db(_ args: [String], input: String? = nil, env extraEnv: [String: String] = [:]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        let groups: Set<String> = ["container", "volume", "network"]
        let split = groups.contains(args[0]) && args.count > 1 ? 2 : 1
        p.arguments = Array(args.prefix(split)) + ["--root", root] + args.dropFirst(split)
        var env = ProcessInfo.processInfo.environment
        env["DOCKBUILD_BRIDGE"] = bridge
        env["DOCKBUILD_SUBNET"] = subnet
        env.merge(extraEnv) { $1 }
        p.environment = env
        let o = Pipe(), e = Pipe()
        p.standardOutput = o; p.standardError = e
        if let input {
            let i = Pipe(); p.standardInput = i
            try p.run()
            i.fileHandleForWriting.write(Data(input.utf8)); try? i.fileHandleForWriting.close()
        } else {
            p.standardInput = FileHandle.nullDevice
            try p.run()
        }
        let errBox = Box()
        let t = Thread { errBox.data = e.fileHandleForReading.readDataToEndOfFile(); errBox.done = true }
        t.start()
        let outData = o.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !errBox.done { usleep(1000) }
        return Result(status: p.terminationStatus, out: String(decoding: outData, as: UTF8.self),
                      err: String(decoding: errBox.data, as: UTF8.self))
    }

    /// Like `db` but fails the test on a non-zero exit; returns trimmed stdout.
    @discardableResult
    func ok(_ args: [String], input: String? = nil, env: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let r = try db(args, input: input, env: env)
        #expect(r.status == 0, "dockbuild \(args.joined(separator: " ")) exited \(r.status): \(r.err)", sourceLocation: sourceLocation)
        return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func inspect(_ ref: String) throws -> [String: Any] {
        let out = try ok(["container", "inspect", ref])
        let arr = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]]
        return arr?.first ?? [:]
    }

    /// Removes every container, the bridge, its iptables rules and the root.
    func cleanup() {
        if let r = try? db(["ps", "-aq", "--no-trunc"]) {
            for id in r.out.split(separator: "\n") { _ = try? db(["rm", "-f", "-v", String(id)]) }
        }
        // user-defined networks (compose's among them): their bridges and rules
        if let r = try? db(["network", "ls", "-q"]) {
            for n in r.out.split(separator: "\n") { _ = try? db(["network", "rm", String(n)]) }
        }
        var env = ProcessInfo.processInfo.environment
        env["DOCKBUILD_BRIDGE"] = bridge
        // bridge rules (the same ones the library adds)
        for rule in [["-t", "nat", "-D", "POSTROUTING", "-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE"],
                     ["-t", "filter", "-D", "FORWARD", "-i", bridge, "-j", "ACCEPT"],
                     ["-t", "filter", "-D", "FORWARD", "-o", bridge, "-j", "ACCEPT"]] {
            while (try? Shell.status(["iptables", "-w"] + rule)) == 0 {}
        }
        _ = try? Shell.status(["ip", "link", "del", bridge])
        try? FileManager.default.removeItem(atPath: "/run/dockbuild/ipam/\(bridge)")
        // anything still mounted under the root
        if let m = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) {
            for line in m.split(separator: "\n") {
                let f = line.split(separator: " ")
                if f.count > 4, f[4].hasPrefix(root) { umount2(String(f[4]), Int32(MNT_DETACH)) }
            }
        }
        try? FileManager.default.removeItem(atPath: root)
    }

    /// A free TCP port on 127.0.0.1.
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: a.sin_port))
    }

    /// Polls until `cond` holds or `seconds` pass.
    static func eventually(_ seconds: Double = 10, _ cond: () throws -> Bool) rethrows -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end { if try cond() { return true }; usleep(100_000) }
        return try cond()
    }
}

final class Box: @unchecked Sendable { var data = Data(); var done = false }

enum Shell {
    static func which(_ n: String) -> String? {
        for d in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin", "/usr/local/sbin"] where FileManager.default.isExecutableFile(atPath: "\(d)/\(n)") { return "\(d)/\(n)" }
        return nil
    }

    /// Runs a command whose output does not matter and that may leave daemons holding pipes (tmux).
    static func detached(_ args: [String]) throws -> Int32 {
        let exe = args[0].hasPrefix("/") ? args[0] : (which(args[0]) ?? args[0])
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        for fd in Int32(0)...2 { posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", O_RDWR, 0) }
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, exe, &fa, nil, &argv, environ) == 0 else { return -1 }
        var st: Int32 = 0
        while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
        return (st >> 8) & 0xff
    }

    static func run(_ args: [String]) throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: args[0].hasPrefix("/") ? args[0] : (which(args[0]) ?? args[0]))
        p.arguments = Array(args.dropFirst())
        let o = Pipe(), e = Pipe()
        p.standardOutput = o; p.standardError = e; p.standardInput = FileHandle.nullDevice
        try p.run()
        let errBox = Box()
        let t = Thread { errBox.data = e.fileHandleForReading.readDataToEndOfFile(); errBox.done = true }
        t.start()
        let out = o.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !errBox.done { usleep(1000) }
        return (p.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: errBox.data, as: UTF8.self))
    }

    static func out(_ args: [String]) throws -> String { try run(args).1 }
    static func status(_ args: [String]) throws -> Int32 { try run(args).0 }
}
