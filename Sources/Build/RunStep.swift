import Foundation
import SystemSupport
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
    /// tmpfs: the `size=` limit in bytes (0: the kernel's default, half the memory).
    var sizeLimit: Int64
    /// secret: also expose the secret's value as this environment variable (`env=`).
    var env: String?
    /// cache: how concurrent builds share it (`shared`, the default; `private`; `locked`).
    var sharing: Mount.Sharing

    /// From the Dockerfile library's parsed mount: a secret's target defaults to
    /// `/run/secrets/<id>`, its id to the source's name; a cache's id to its target.
    init(_ m: Mount, file: String, line: Int, sshIndex: Int = 0) throws {
        kind = m.type
        id = m.cacheID
        from = m.from
        source = m.source
        mode = m.mode; uid = m.uid; gid = m.gid
        readOnly = m.readOnly
        required = m.required
        sizeLimit = m.sizeLimit
        env = m.env
        sharing = m.sharing ?? .shared
        if let t = m.target {
            target = t
        } else if m.type == .secret {
            target = "/run/secrets/" + (id ?? (source.map { ($0 as NSString).lastPathComponent } ?? ""))
        } else if m.type == .ssh {
            target = "/run/buildkit/ssh_agent.\(sshIndex)"   // BuildKit's default
        } else {
            throw BuildError.dockerfile(file: file, line: line, message: "--mount=type=\(m.type.rawValue) needs target=PATH")
        }
        if cleanPath(target).isEmpty {
            throw BuildError.dockerfile(file: file, line: line, message: "--mount=type=\(m.type.rawValue),target=\(target) would cover the whole root file system; mount below it, e.g. target=/mnt")
        }
        if kind == .secret, id == nil { id = source.map { ($0 as NSString).lastPathComponent } ?? (target as NSString).lastPathComponent }
        if kind == .cache, id == nil { id = target }
        if kind == .ssh, id == nil { id = "default" }
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
    var mounts: [(RunMount, String)] // with the prepared host source (RunMountStaging, cache dir, secret file); tmpfs ignores it
    var scriptFiles: [String: String] // files to place in the skeleton (heredoc scripts)
}

/// Runs a RUN's command in a container of the Runtime library (RuntimeRunner.swift): an overlay
/// over the parent's layers and a skeleton, with the step's mounts prepared by `RunMountStaging`.
/// There is one RUN path, so there is one to defend.
enum Runner {
    struct Outcome { var status: Int32; var output: String; var upper: String }

    static func run(_ req: RunRequest, tmp: String, onOutput: (String) -> Void) throws -> Outcome {
        try runWithRuntime(req, tmp: tmp, onOutput: onOutput)
    }

    /// The skeleton: the lowest lower dir, holding every mount point, so none is created in upper.
    static func makeSkeleton(_ skel: String, _ req: RunRequest) throws {
        for d in ["proc", "dev", "sys", "etc"] { try FS.mkdirs(skel + "/" + d) }
        // Files of a scratch tree, removed with the step: written without fsync (Foundation's
        // createFile synced each one, a few ms a file on a loaded disk).
        for f in ["etc/hosts", "etc/resolv.conf", "etc/hostname"] { try writeScratch(skel + "/" + f, Data()) }
        for (m, src) in req.mounts {
            let t = skel + "/" + cleanPath(m.target)
            let fileSource = m.kind == .bind && FS.follow(src).map { !FS.isDir($0) } == true
            if m.kind == .secret || m.kind == .ssh || fileSource {
                try FS.mkdirs((t as NSString).deletingLastPathComponent)
                try writeScratch(t, Data())
            } else { try FS.mkdirs(t) }
        }
        for (path, content) in req.scriptFiles {
            let t = skel + "/" + cleanPath(path)
            try FS.mkdirs((t as NSString).deletingLastPathComponent)
            try writeScratch(t, Data(content.utf8), mode: 0o755)
        }
    }

    /// Writes a file of the skeleton with exactly `mode` (whatever the umask), without fsync.
    private static func writeScratch(_ path: String, _ data: Data, mode: mode_t = 0o644) throws {
        try FS.io {
            try FileSystem.writeAtomically(to: path, mode: mode, durability: .none) { fd in
                try data.withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: path) }
                if fchmod(fd, mode) != 0 { throw SystemError("chmod", path: path) }
            }
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
}
