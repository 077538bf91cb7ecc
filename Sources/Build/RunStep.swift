import Foundation
import Dockerfile
#if canImport(Glibc)
import Glibc
#endif

/// A mount a RUN asks for (`--mount=type=...`), with the builder's defaults filled in.
struct RunMount: Sendable, Hashable {
    typealias Kind = Mount.MountType
    var kind: Kind
    var target: String
    var source: String?     // bind/cache: path inside `from` (or context); secret: unused
    var from: String?
    var id: String?
    var readOnly: Bool
    var required: Bool
    var mode: UInt32?
    var uid: UInt32?
    var gid: UInt32?

    /// From the Dockerfile library's parsed mount: a secret's target defaults to
    /// `/run/secrets/<id>`, its id to the source's name; a cache's id to its target.
    init(_ m: Mount, file: String, line: Int) throws {
        kind = m.type
        id = m.cacheID
        from = m.from
        source = m.source
        mode = m.mode; uid = m.uid; gid = m.gid
        readOnly = m.readOnly
        required = m.required
        if let t = m.target {
            target = t
        } else if m.type == .secret {
            target = "/run/secrets/" + (id ?? (source.map { ($0 as NSString).lastPathComponent } ?? ""))
        } else {
            throw BuildError.dockerfile(file: file, line: line, message: "--mount=type=\(m.type.rawValue) needs target=PATH")
        }
        if kind == .secret, id == nil { id = source.map { ($0 as NSString).lastPathComponent } ?? (target as NSString).lastPathComponent }
        if kind == .cache, id == nil { id = target }
    }
}

/// One RUN as the runner sees it.
struct RunRequest: Sendable {
    var argv: [String]
    var env: [String]
    var workdir: String
    var uid: UInt32
    var gid: UInt32
    var additionalGids: [UInt32] = []
    var lowers: [String]          // top first
    var network: String           // default, host, none
    var mounts: [(RunMount, String)] // with host source path (bind/cache/secret); tmpfs ignores it
    var scriptFiles: [String: String] // files to place in the skeleton (heredoc scripts)
}

/// Runs commands in an overlay over the parent's layers, in private mount, PID, UTS and IPC
/// namespaces, chrooted into the merged tree. (Until the Runtime library lands, this is the
/// builder's small runner: `unshare` does the namespace and root switch.)
enum Runner {
    struct Outcome { var status: Int32; var output: String; var upper: String }

    /// Which runner executes RUN: the Runtime library (default) or `unshare` + chroot
    /// (`DOCKBUILD_BUILD_RUNNER=unshare`).
    static var useRuntime: Bool { ProcessInfo.processInfo.environment["DOCKBUILD_BUILD_RUNNER"] != "unshare" }

    static func run(_ req: RunRequest, tmp: String, onOutput: (String) -> Void) throws -> Outcome {
        if useRuntime { return try runWithRuntime(req, tmp: tmp, onOutput: onOutput) }
        let base = "\(tmp)/run-\(UUID().uuidString.prefix(12))"
        let upper = base + "/upper", work = base + "/work", merged = base + "/merged", skel = base + "/skel"
        for d in [upper, work, merged, skel] { try FS.mkdirs(d) }
        defer { FS.removeTree(work); FS.removeTree(merged); FS.removeTree(skel) }
        try makeSkeleton(skel, req)
        let lowers = (req.lowers + [skel]).joined(separator: ":")
        var s = "set -e\nfail() { echo \"dockbuild: cannot set up the RUN environment: $1\" >&2; exit 222; }\n"
        s += "mount -t overlay overlay -o \(q("lowerdir=\(lowers),upperdir=\(upper),workdir=\(work)")) \(q(merged)) || fail overlay\n"
        s += "M=\(q(merged))\n"
        s += "mount -t proc proc \"$M/proc\" || fail proc\n"
        s += "mount -t tmpfs -o nosuid,mode=755 tmpfs \"$M/dev\" || fail dev\n"
        s += "for n in null zero full random urandom tty; do : > \"$M/dev/$n\"; mount --bind /dev/$n \"$M/dev/$n\"; done\n"
        s += "mkdir -p \"$M/dev/shm\" \"$M/dev/pts\"; mount -t tmpfs -o nosuid,nodev tmpfs \"$M/dev/shm\"\n"
        s += "ln -s /proc/self/fd \"$M/dev/fd\"; ln -s /proc/self/fd/0 \"$M/dev/stdin\"; ln -s /proc/self/fd/1 \"$M/dev/stdout\"; ln -s /proc/self/fd/2 \"$M/dev/stderr\"\n"
        s += "mount -t sysfs -o ro,nosuid,nodev,noexec sysfs \"$M/sys\" 2>/dev/null || true\n"
        s += "[ -f /etc/resolv.conf ] && mount --bind -o ro /etc/resolv.conf \"$M/etc/resolv.conf\" || true\n"
        s += "printf '127.0.0.1\\tlocalhost\\n::1\\tlocalhost ip6-localhost ip6-loopback\\n' > \(q(base))/hosts; mount --bind \(q(base))/hosts \"$M/etc/hosts\"\n"
        for (m, src) in req.mounts {
            let t = "\"$M\"" + q("/" + cleanPath(m.target))
            switch m.kind {
            case .tmpfs: s += "mount -t tmpfs tmpfs \(t) || fail tmpfs\n"
            case .secret, .bind, .cache, .ssh:
                s += "mount --bind \(q(src)) \(t) || fail \(q(m.target))\n"
                if m.readOnly { s += "mount -o remount,bind,ro \(t) || fail ro\n" }
            }
        }
        if req.network == "none" { s += "ip link set lo up 2>/dev/null || true\n" }
        var cmd = ["env", "-i"] + req.env + ["unshare", "--root=" + merged, "--wd=" + (req.workdir.isEmpty ? "/" : req.workdir)]
        if req.uid != 0 || req.gid != 0 { cmd += ["--setgid", String(req.gid), "--setuid", String(req.uid)] }
        cmd += ["--"] + req.argv
        s += "exec " + cmd.map(q).joined(separator: " ") + "\n"

        var uargs = ["--mount", "--pid", "--fork", "--uts", "--ipc", "--propagation", "private", "--kill-child"]
        if req.network == "none" { uargs.append("--net") }
        uargs += ["/bin/sh", "-c", s]
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        p.arguments = uargs
        p.environment = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { throw BuildError.system("cannot start unshare: \(error)") }
        var output = Data()
        let h = pipe.fileHandleForReading
        var pending = Data()
        while true {
            let chunk = h.availableData
            if chunk.isEmpty { break }
            output.append(chunk)
            pending.append(chunk)
            while let nl = pending.firstIndex(of: 0x0a) {
                onOutput(String(decoding: pending[pending.startIndex..<nl], as: UTF8.self))
                pending = Data(pending[(nl + 1)...])
            }
        }
        if !pending.isEmpty { onOutput(String(decoding: pending, as: UTF8.self)) }
        p.waitUntilExit()
        let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
        return Outcome(status: status, output: String(decoding: output, as: UTF8.self), upper: upper)
    }


    /// The skeleton: the lowest lower dir, holding every mount point, so none is created in upper.
    static func makeSkeleton(_ skel: String, _ req: RunRequest) throws {
        for d in ["proc", "dev", "sys", "etc"] { try FS.mkdirs(skel + "/" + d) }
        for f in ["etc/hosts", "etc/resolv.conf", "etc/hostname"] { _ = FileManager.default.createFile(atPath: skel + "/" + f, contents: Data()) }
        for (m, src) in req.mounts {
            let t = skel + "/" + cleanPath(m.target)
            let fileSource = m.kind == .bind && FS.follow(src).map { !FS.isDir($0) } == true
            if m.kind == .secret || fileSource {
                try FS.mkdirs((t as NSString).deletingLastPathComponent)
                _ = FileManager.default.createFile(atPath: t, contents: Data())
            } else { try FS.mkdirs(t) }
        }
        for (path, content) in req.scriptFiles {
            let t = skel + "/" + cleanPath(path)
            try FS.mkdirs((t as NSString).deletingLastPathComponent)
            _ = FileManager.default.createFile(atPath: t, contents: Data(content.utf8), attributes: [.posixPermissions: 0o755])
        }
    }

    static func readLines(_ fd: Int32, into output: inout Data, onOutput: (String) -> Void) {
        var pending = Data()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            output.append(contentsOf: buf[0..<n])
            pending.append(contentsOf: buf[0..<n])
            while let nl = pending.firstIndex(of: 0x0a) {
                onOutput(String(decoding: pending[pending.startIndex..<nl], as: UTF8.self))
                pending = Data(pending[(nl + 1)...])
            }
        }
        if !pending.isEmpty { onOutput(String(decoding: pending, as: UTF8.self)) }
    }

    static func q(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}
