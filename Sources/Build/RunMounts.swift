import Foundation
import OCI
import Archive
import ImageStore
#if canImport(Glibc)
import Glibc
#endif

/// The host side of one RUN's mounts. Every bind source is opened inside its root (the context
/// view, a stage or an image) with `InRootPath.openPath` and mounted from `/proc/self/fd/N` on a
/// private mount point under the builder's temp dir, so a symlink in the context or in a stage
/// can neither lead the mount to a host path nor be swapped in between the check and the mount.
/// Read-only sources are read-only bind mounts (`MS_RDONLY` remount); read-write ones are
/// throw-away copies (an overlay with a fresh upper over the read-only bind, or a private copy of
/// a single file), discarded after the step as BuildKit does. Nothing a RUN does through a mount
/// reaches the context, the stage, or the unpacked layers that builds share.
final class RunMountStaging {
    /// A private directory for mount points, uppers and context views.
    let base: String
    private var mountPoints: [String] = []
    private var count = 0

    init(tmp: String) throws {
        base = "\(tmp)/mounts-\(UUID().uuidString.prefix(12).lowercased())"
        if mkdir(base, 0o700) != 0 { throw FS.sys("create directory", base) }
    }

    /// A copy of a secret on a private tmpfs (never on disk), owned `uid:gid` with `mode`, as
    /// BuildKit mounts secrets (default 0400, root): the step sees the copy, never the file given
    /// with `--secret`.
    func secretFile(_ data: Data, mode: mode_t, uid: UInt32, gid: UInt32, what: String) throws -> String {
        if secretsDir == nil {
            let d = fresh("secrets")
            if mkdir(d, 0o700) != 0 { throw FS.sys("create directory", d) }
            let size = max(1 << 20, (data.count + 4095) / 4096 * 4096 * 4)
            if mount("tmpfs", d, "tmpfs", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), "mode=0700,size=\(size)") != 0 {
                let e = String(cString: strerror(errno))
                rmdir(d)
                throw BuildError.system("cannot mount a tmpfs for the secrets: \(e)")
            }
            mountPoints.append(d)
            secretsDir = d
        }
        guard let dir = secretsDir else { throw BuildError.system("no secrets directory") }
        count += 1
        let f = "\(dir)/\(count)"
        let fd = open(f, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FS.sys("create", "the copy of secret \(what)") }
        defer { close(fd) }
        let ok = data.withUnsafeBytes { b -> Bool in
            var off = 0
            while off < b.count {
                let n = write(fd, b.baseAddress?.advanced(by: off), b.count - off)
                if n < 0 { if errno == EINTR { continue }; return false }
                off += n
            }
            return true
        }
        guard ok, fchown(fd, uid, gid) == 0, fchmod(fd, mode) == 0 else { throw FS.sys("write", "the copy of secret \(what)") }
        return f
    }
    private var secretsDir: String?

    /// A fresh name under `base`.
    func fresh(_ prefix: String) -> String {
        count += 1
        return "\(base)/\(prefix)-\(count)"
    }

    /// Mounts the object `fd` holds (an `O_PATH` descriptor) on a new private mount point,
    /// read-only, nosuid and nodev.
    func bindReadOnly(_ fd: Int32, what: String) throws -> String {
        var st = StatBuf()
        guard fstat(fd, &st) == 0 else { throw FS.sys("stat", what) }
        let mp = fresh("ro")
        if FS.isDir(st) {
            if mkdir(mp, 0o700) != 0 { throw FS.sys("create directory", mp) }
        } else {
            let f = open(mp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard f >= 0 else { throw FS.sys("create", mp) }
            close(f)
        }
        if mount("/proc/self/fd/\(fd)", mp, nil, UInt(MS_BIND), nil) != 0 {
            throw BuildError.system("cannot bind-mount \(what) for RUN: \(String(cString: strerror(errno)))")
        }
        mountPoints.append(mp)
        let flags = UInt(MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        if mount(nil, mp, nil, flags, nil) != 0 {
            throw BuildError.system("cannot make the bind mount of \(what) read-only: \(String(cString: strerror(errno)))")
        }
        return mp
    }

    /// A writable copy-on-write view of the object `fd` holds: an overlay (the read-only bind as
    /// its lower, a throw-away upper) for a directory, a private copy for a regular file, and a
    /// read-only bind for anything else (a FIFO is never opened here: that would block).
    func copyOnWrite(_ fd: Int32, what: String) throws -> String {
        var st = StatBuf()
        guard fstat(fd, &st) == 0 else { throw FS.sys("stat", what) }
        if !FS.isDir(st) && !FS.isReg(st) { return try bindReadOnly(fd, what: what) }
        guard FS.isDir(st) else {
            let copy = fresh("file")
            try FS.copyFile("/proc/self/fd/\(fd)", copy, st: st)
            lchown(copy, st.st_uid, st.st_gid)
            return copy
        }
        let lower = try bindReadOnly(fd, what: what)
        let upper = fresh("upper"), work = fresh("work"), merged = fresh("rw")
        for d in [upper, work, merged] where mkdir(d, 0o700) != 0 { throw FS.sys("create directory", d) }
        // The overlay's root directory is its upper's: give it the source's owner and mode.
        chmod(upper, st.st_mode & 0o7777)
        lchown(upper, st.st_uid, st.st_gid)
        do {
            // discarded after the step: its unmount need not sync the disk
            try Overlay.mount(lowers: [lower], upper: upper, work: work, at: merged, flags: UInt(MS_NOSUID | MS_NODEV), volatile: true)
        } catch {
            throw BuildError.system("cannot mount a copy-on-write view of \(what) for RUN: \(error)")
        }
        mountPoints.append(merged)
        return merged
    }

    /// Unmounts everything (newest first) and removes `base`. A mount point is removed only once
    /// it is no longer a mount, so a failed unmount never deletes what it showed.
    func cleanup() {
        for mp in mountPoints.reversed() { Self.unmount(mp) }
        mountPoints.removeAll()
        FS.removeTree(base)
    }

    /// Detaches a mount and removes its (now empty) mount point; leaves it when still mounted.
    static func unmount(_ mp: String) {
        if umount2(mp, Int32(MNT_DETACH)) != 0 && errno != EINVAL { return }
        if isMountPoint(mp) { return }
        if rmdir(mp) != 0 && errno == ENOTDIR { unlink(mp) }
    }

    /// True when `path` appears as a mount point in /proc/self/mountinfo.
    static func isMountPoint(_ path: String) -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return false }
        return text.split(separator: "\n").contains { line in
            let f = line.split(separator: " ")
            return f.count > 4 && f[4] == Substring(path)
        }
    }
}

/// A context bind's source, opened inside the context: the descriptor the view is built from,
/// its path relative to the context (for `.dockerignore`), and the digest of what the view holds.
struct ContextBindSource {
    var fd: Int32
    var rel: String
    var shown: String
    var digest: String
}

extension Builder {
    /// Opens a context bind's `source` inside the context (symlinks and `..` resolved as if the
    /// context were `/`), refuses one that `.dockerignore` excludes, and digests the entries
    /// the view will hold (the step's cache-key input) without building the view. The caller
    /// closes `fd`.
    func contextBindSource(_ source: String?, line: Int) throws -> ContextBindSource {
        guard let ctx = options.contextDir else { throw err(line, "--mount=type=bind needs a build context (this build has none)") }
        let shown = source ?? "."
        let fd: Int32
        do { fd = try InRootPath.openPath(source ?? "", in: ctx) } catch {
            throw err(line, "--mount=type=bind: source \(shown) is not usable in the build context: \(error); give a path inside the context")
        }
        do {
            let real = realpath(ctx, nil).map { p in defer { free(p) }; return String(cString: p) } ?? ctx
            let held = try InRootPath.fdPath(fd)
            let rel = held == real ? "" : String(held.dropFirst(real == "/" ? 1 : real.count + 1))
            if !rel.isEmpty, ignore.matches(rel) {
                throw err(line, "--mount=type=bind: source \(shown) is excluded by .dockerignore; remove it from .dockerignore to mount it")
            }
            var st = StatBuf()
            guard fstat(fd, &st) == 0 else { throw FS.sys("stat", "the context's \(shown)") }
            var lines: [String]
            if FS.isDir(st) {
                let dir = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                guard dir >= 0 else { throw FS.sys("open", "the context's \(shown)") }
                defer { close(dir) }
                let ignore = self.ignore
                lines = try FS.treeLines(dir, rel: "", path: rel, keepEmpty: true, exceptions: ignore.hasExceptions) { ignore.matches($0) }
            } else if FS.isReg(st) {
                let f = open("/proc/self/fd/\(fd)", O_RDONLY | O_CLOEXEC)
                guard f >= 0 else { throw FS.sys("open", "the context's \(shown)") }
                defer { close(f) }
                lines = ["\u{0}\(st.st_mode)\u{0}\(st.st_size)\u{0}" + (try FS.contentDigest(f, shown, size: Int(st.st_size)))]
            } else {
                throw err(line, "--mount=type=bind: source \(shown) is neither a file nor a directory")
            }
            lines.insert("context-bind-v1", at: 0)
            let digest = Digest.compute(Data(lines.joined(separator: "\n").utf8)).encoded
            return ContextBindSource(fd: fd, rel: rel, shown: shown, digest: digest)
        } catch {
            close(fd)
            throw error
        }
    }

    /// A private, filtered copy of a context bind's source for mounting (never the raw context):
    /// files that `.dockerignore` excludes left out, regular files hard-linked where the file
    /// system allows it (copied where it does not), symlinks recreated, device nodes and sockets
    /// left out.
    func contextBindView(_ src: ContextBindSource, staging: RunMountStaging) throws -> String {
        var st = StatBuf()
        guard fstat(src.fd, &st) == 0 else { throw FS.sys("stat", "the context's \(src.shown)") }
        let view = staging.fresh("ctx")
        if FS.isDir(st) {
            let dir = openat(src.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard dir >= 0 else { throw FS.sys("open", "the context's \(src.shown)") }
            defer { close(dir) }
            let ignore = self.ignore
            try FS.linkTree(dir, to: view, rel: src.rel, keepEmpty: true, exceptions: ignore.hasExceptions) { ignore.matches($0) }
        } else if linkat(src.fd, "", AT_FDCWD, view, atEmptyPath) != 0 {
            try FS.copyFile("/proc/self/fd/\(src.fd)", view, st: st)
            lchown(view, st.st_uid, st.st_gid)
        }
        return view
    }
}
