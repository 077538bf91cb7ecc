import Foundation
import Testing

/// Runs the real `dockbuild` binary and the peer tools, in a temp dir that is removed afterwards.
final class CLI {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let binary = packageRoot + "/.build/debug/dockbuild"

    let dir: String
    var root: String { dir + "/store" }

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("dockbuild-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try #require(FileManager.default.isExecutableFile(atPath: CLI.binary),
                     "\(CLI.binary) is missing: run `swift build` (or `make test`) first")
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    struct Result {
        var status: Int32
        var out: String
        var err: String
        var ok: Bool { status == 0 }
    }

    /// Runs an executable (absolute path or looked up in PATH) with stdin from a file.
    @discardableResult
    func exec(_ tool: String, _ args: [String], stdin: String? = nil, env: [String: String] = [:]) throws -> Result {
        let p = Process()
        if tool.hasPrefix("/") {
            p.executableURL = URL(fileURLWithPath: tool)
            p.arguments = args
        } else {
            let found = ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"].map { $0 + "/" + tool }
                .first { FileManager.default.isExecutableFile(atPath: $0) }
            try #require(found != nil, "\(tool) is not installed: run `make deps` (Debian package providing \(tool))")
            p.executableURL = URL(fileURLWithPath: found ?? tool)
            p.arguments = args
        }
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        let outPath = dir + "/.out-\(UUID().uuidString)", errPath = dir + "/.err-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outPath); try? FileManager.default.removeItem(atPath: errPath) }
        let outH = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let errH = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        p.standardOutput = outH
        p.standardError = errH
        if let stdin { p.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: stdin)) } else {
            p.standardInput = FileHandle.nullDevice
        }
        try p.run()
        p.waitUntilExit()
        try outH.close()
        try errH.close()
        return Result(status: p.terminationStatus,
                      out: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                      err: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }

    /// `dockbuild --root <temp store> args...`
    @discardableResult
    func db(_ args: [String], stdin: String? = nil, root: String? = nil) throws -> Result {
        guard let cmd = args.first else { return Result(status: 1, out: "", err: "") }
        var full = [cmd]
        if cmd == "image", args.count > 1 {
            full = ["image", args[1], "--root", root ?? self.root] + args.dropFirst(2)
        } else {
            full += ["--root", root ?? self.root] + args.dropFirst()
        }
        return try exec(CLI.binary, full, stdin: stdin)
    }

    /// A busybox root filesystem from Debian's busybox-static: /bin/busybox, applet links, /etc/passwd.
    func busyboxRootfs() throws -> String {
        let bb = "/bin/busybox"
        try #require(FileManager.default.isExecutableFile(atPath: bb), "busybox-static is not installed: run `make deps`")
        let r = dir + "/rootfs"
        let fm = FileManager.default
        if fm.fileExists(atPath: r) { return r }
        try fm.createDirectory(atPath: r + "/bin", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: r + "/etc", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: r + "/tmp", withIntermediateDirectories: true)
        try fm.copyItem(atPath: bb, toPath: r + "/bin/busybox")
        for applet in ["sh", "ls", "cat", "echo", "true"] {
            try fm.createSymbolicLink(atPath: r + "/bin/" + applet, withDestinationPath: "busybox")
        }
        try "root:x:0:0:root:/root:/bin/sh\n".write(toFile: r + "/etc/passwd", atomically: true, encoding: .utf8)
        return r
    }

    /// Relative paths of every file under the store, for "the store is as it was" checks.
    func storeFiles() -> [String] {
        var out: [String] = []
        let e = FileManager.default.enumerator(atPath: root)
        while let p = e?.nextObject() as? String {
            if !p.hasSuffix(".lock") { out.append(p) }
        }
        return out.sorted()
    }
}
