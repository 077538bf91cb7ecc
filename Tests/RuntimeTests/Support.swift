import Foundation
import Testing
@testable import Runtime

/// A busybox bundle in a temp dir and a runtime with its own state root.
/// Everything is removed by `cleanup()`.
struct Bundle {
    let dir: String
    let runtime: Runtime
    var rootfs: String { dir + "/rootfs" }

    /// Fails the test (not silently passes) when not root or busybox-static is missing.
    static func make(_ name: String = #function) throws -> Bundle {
        try #require(geteuid() == 0, "Runtime tests need root (namespaces, mounts, cgroups); run `swift test` as root")
        let busybox = ["/bin/busybox", "/usr/bin/busybox"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let bb = try #require(busybox, "busybox-static is missing; install it with `apt-get install busybox-static`")
        let base = FileManager.default.temporaryDirectory.path + "/rt-\(getpid())-\(UUID().uuidString.prefix(8))"
        let fm = FileManager.default
        for d in ["rootfs/bin", "rootfs/proc", "rootfs/sys", "rootfs/dev", "rootfs/tmp", "rootfs/etc", "state"] {
            try fm.createDirectory(atPath: base + "/" + d, withIntermediateDirectories: true)
        }
        try copyCloexec(bb, base + "/rootfs/bin/busybox")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bb)
        p.arguments = ["--list"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let list = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        for applet in list.split(separator: "\n") where applet != "busybox" {
            try? fm.createSymbolicLink(atPath: base + "/rootfs/bin/" + applet, withDestinationPath: "busybox")
        }
        return Bundle(dir: base, runtime: Runtime(root: base + "/state"))
    }

    /// runc's default spec, without a terminal, running `args`.
    func spec(_ args: [String]) -> RuntimeSpec {
        var s = SpecGenerator.runcDefault(args: args, terminal: false)
        s.root = .init(path: "rootfs", readonly: false)
        return s
    }

    func write(_ spec: RuntimeSpec) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        try enc.encode(spec).write(to: URL(fileURLWithPath: dir + "/config.json"))
    }

    /// Runs the spec to completion; returns exit code, stdout and stderr.
    func run(_ spec: RuntimeSpec, id: String = "c\(UInt32.random(in: 0...UInt32.max))") throws -> (code: Int32, out: String, err: String) {
        try write(spec)
        let outPath = dir + "/out-\(id)", errPath = dir + "/err-\(id)"
        let o = open(outPath, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o644)
        let e = open(errPath, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o644)
        defer { close(o); close(e) }
        var opts = CreateOptions()
        opts.stdout = o
        opts.stderr = e
        let code = try runtime.run(id: id, bundle: dir, options: opts)
        return (code, (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }

    func cleanup() {
        for s in runtime.list() { try? runtime.delete(id: s.id, force: true) }
        try? FileManager.default.removeItem(atPath: dir)
    }
}

func readFile(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

/// Copies with close-on-exec fds: a write fd inherited by a process forked at
/// the same moment would make the copy "text file busy" for execve.
func copyCloexec(_ from: String, _ to: String) throws {
    let i = open(from, O_RDONLY | O_CLOEXEC)
    let o = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
    defer { close(i); close(o) }
    try #require(i >= 0 && o >= 0, "cannot copy \(from) to \(to)")
    var buf = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buf.withUnsafeMutableBytes { read(i, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        _ = buf.withUnsafeBytes { write(o, $0.baseAddress, n) }
    }
}
