import Foundation
import Testing

/// The security test target drives the real `dockbuild` binary as an attacker would: each test
/// is the repro of an attack (issue #14) and asserts that it fails. Each area keeps its own
/// helpers in its own file; this file holds only what every area needs.
enum Sec {
    static let package: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// The CLI under test (debug build first, as `make test` builds it).
    static let binary: String = ["\(package)/.build/debug/dockbuild", "\(package)/.build/release/dockbuild"]
        .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "\(package)/.build/debug/dockbuild"

    /// Tests that need namespaces, mounts and busybox-static run only as root.
    static var canRun: Bool { getuid() == 0 && FileManager.default.fileExists(atPath: "/bin/busybox") }

    struct Result { var status: Int32; var out: String; var err: String }

    /// Runs a program with arguments, optional stdin bytes, extra environment and working dir.
    @discardableResult
    static func run(_ args: [String], input: Data? = nil, env extra: [String: String] = [:], cwd: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: args[0].hasPrefix("/") ? args[0] : which(args[0]) ?? args[0])
        p.arguments = Array(args.dropFirst())
        var env = ProcessInfo.processInfo.environment
        env.merge(extra) { $1 }
        p.environment = env
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let o = Pipe(), e = Pipe()
        p.standardOutput = o; p.standardError = e
        let i = Pipe()
        p.standardInput = input == nil ? FileHandle.nullDevice : i
        try p.run()
        if let input {
            let w = i.fileHandleForWriting
            Thread { w.write(input); try? w.close() }.start()
        }
        let errBox = DataBox()
        let t = Thread { errBox.set(e.fileHandleForReading.readDataToEndOfFile()) }
        t.start()
        let out = o.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let err = errBox.wait()
        return Result(status: p.terminationStatus, out: String(decoding: out, as: UTF8.self), err: String(decoding: err, as: UTF8.self))
    }

    static func which(_ n: String) -> String? {
        for d in ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        where FileManager.default.isExecutableFile(atPath: "\(d)/\(n)") { return "\(d)/\(n)" }
        return nil
    }

    /// Polls until `cond` holds or `seconds` pass.
    static func eventually(_ seconds: Double = 10, _ cond: () throws -> Bool) rethrows -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end { if try cond() { return true }; usleep(100_000) }
        return try cond()
    }
}

/// A throw-away store root with `busybox:test` imported from Debian's busybox-static, and the
/// CLI bound to it (`--root` given before the verb's arguments).
final class SecStore: @unchecked Sendable {
    let dir: String
    var root: String { dir + "/store" }

    init(busybox: Bool = true) throws {
        dir = "/var/tmp/dbsec-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if busybox { try importBusybox() }
    }

    deinit { cleanup() }

    /// `dockbuild VERB --root ROOT ARGS...` (two words for group verbs such as `container ls`).
    @discardableResult
    func db(_ args: [String], input: Data? = nil, env: [String: String] = [:], cwd: String? = nil) throws -> Sec.Result {
        let groups: Set<String> = ["container", "volume", "image", "layer", "registry", "cache", "runtime", "dockerfile"]
        let split = groups.contains(args[0]) && args.count > 1 ? 2 : 1
        return try Sec.run([Sec.binary] + Array(args.prefix(split)) + ["--root", root] + args.dropFirst(split),
                           input: input, env: env, cwd: cwd)
    }

    /// Like `db`, recording a test failure on a non-zero exit; returns trimmed stdout.
    @discardableResult
    func ok(_ args: [String], input: Data? = nil, env: [String: String] = [:], cwd: String? = nil,
            sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let r = try db(args, input: input, env: env, cwd: cwd)
        #expect(r.status == 0, "dockbuild \(args.joined(separator: " ")) exited \(r.status): \(r.err)", sourceLocation: sourceLocation)
        return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A directory under this test's temp dir, created (with parents).
    func path(_ name: String) throws -> String {
        let p = dir + "/" + name
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    /// Writes `text` to `dir/name` (parents created).
    func write(_ name: String, _ text: String, in base: String? = nil) throws {
        let p = (base ?? dir) + "/" + name
        try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: p))
    }

    /// busybox:test — busybox-static with an applet link per command, /etc/passwd and /etc/group.
    func importBusybox(tag: String = "busybox:test") throws {
        let rootfs = dir + "/busybox-rootfs"
        let fm = FileManager.default
        if !fm.fileExists(atPath: rootfs) {
            for d in ["bin", "etc", "tmp", "root", "home/user", "var", "usr/bin", "sbin"] {
                try fm.createDirectory(atPath: "\(rootfs)/\(d)", withIntermediateDirectories: true)
            }
            chmod(rootfs + "/tmp", 0o1777)
            try fm.copyItem(atPath: "/bin/busybox", toPath: "\(rootfs)/bin/busybox")
            let list = try Sec.run(["/bin/busybox", "--list"]).out
            for applet in list.split(separator: "\n") where applet != "busybox" {
                symlink("busybox", "\(rootfs)/bin/\(applet)")
            }
            try write("busybox-rootfs/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
            try write("busybox-rootfs/etc/group", "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n")
        }
        try ok(["import", "-c", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "-c", "CMD [\"sh\"]", rootfs, tag])
    }

    /// Unmounts anything left under this test's directory and removes it.
    func cleanup() {
        if let m = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) {
            for line in m.split(separator: "\n").reversed() {
                let f = line.split(separator: " ")
                if f.count > 4, f[4].hasPrefix(dir) { umount2(String(f[4]), Int32(MNT_DETACH)) }
            }
        }
        try? FileManager.default.removeItem(atPath: dir)
    }
}

final class DataBox: @unchecked Sendable {
    private let cond = NSCondition()
    private var data: Data?
    func set(_ d: Data) { cond.lock(); data = d; cond.broadcast(); cond.unlock() }
    func wait() -> Data { cond.lock(); defer { cond.unlock() }; while data == nil { cond.wait() }; return data ?? Data() }
}
