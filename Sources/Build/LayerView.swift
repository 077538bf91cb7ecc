import Archive
import CArchive
import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// A read-only view of an image's file system through its unpacked layers (top first),
/// without mounting: enough to read /etc/passwd and to ask whether a path exists. Paths resolve
/// as in the merged image: a symlink in a layer (absolute or relative) is followed inside the
/// image, and no lookup ever goes through a symlink on the host, so an image whose /etc/passwd
/// links to a host file never makes the builder read that file.
struct LayerView: Sendable {
    var dirs: [String]   // top layer first

    /// The host path of the topmost entry at `path` (absolute in the image), or nil when absent
    /// or hidden by a whiteout. Symlinks in the parent components are followed inside the image;
    /// the last component is not.
    func find(_ path: String) -> String? { resolve(path, followFinal: false) }

    /// The host path `path` names in the merged image, every symlink followed inside the image
    /// (the last one too when `followFinal`), or nil when it does not exist.
    func resolve(_ path: String, followFinal: Bool) -> String? {
        // InRootPath's walk over the merged layers: a missing component or a non-directory
        // parent ends it; a loop of links is "not there"
        let walked = try? InRootPath.walk(path, followFinal: followFinal, strict: true, under: "the image") { components in
            guard let host = entry(components), let st = FS.info(host) else { return .missing }
            if FS.isLink(st) { return FS.readLink(host).map { .link($0) } ?? .missing }
            return FS.isDir(st) ? .directory : .other
        }
        guard let resolved = walked.flatMap({ $0 }) else { return nil }
        return resolved.isEmpty ? dirs.first : entry(resolved)
    }

    /// The host path of the topmost layer's entry at `components` (which hold no symlink in the
    /// image), as overlayfs shows it: a layer where a parent is not a directory, or where the
    /// entry is a whiteout, hides the layers below. Parents are checked one by one with lstat,
    /// so no lookup follows a symlink in a layer directory.
    private func entry(_ components: [String]) -> String? {
        layers: for d in dirs {
            var p = d
            for (i, c) in components.enumerated() {
                p += "/" + c
                guard let st = FS.info(p) else { continue layers }
                if st.st_mode & S_IFMT == S_IFCHR && st.st_rdev == 0 { return nil }
                if i == components.count - 1 { return p }
                if !FS.isDir(st) { return nil }
                // An opaque directory hides the layers below it (overlayfs' trusted.overlay.opaque).
                if Self.isOpaque(p) && i < components.count - 1 {
                    return entryBelowOpaque(components, from: d, opaqueDepth: i)
                }
            }
        }
        return nil
    }

    /// `entry` for a path under an opaque directory of layer `top`: only `top` and the layers
    /// above it can hold it.
    private func entryBelowOpaque(_ components: [String], from top: String, opaqueDepth: Int) -> String? {
        var p = top
        for (i, c) in components.enumerated() {
            p += "/" + c
            guard let st = FS.info(p) else { return nil }
            if st.st_mode & S_IFMT == S_IFCHR && st.st_rdev == 0 { return nil }
            if i == components.count - 1 { return p }
            if !FS.isDir(st) { return nil }
        }
        return nil
    }

    static func isOpaque(_ dir: String) -> Bool {
        var v: UInt8 = 0
        // user.overlay.opaque: a rootless store's (see LayerApplier)
        if dockbuild_lgetxattr(dir, "trusted.overlay.opaque", &v, 1) == 1 && v == UInt8(ascii: "y") { return true }
        return dockbuild_lgetxattr(dir, "user.overlay.opaque", &v, 1) == 1 && v == UInt8(ascii: "y")
    }

    /// `path` as an image path with its symlinks resolved inside the image (the last one too
    /// when `followFinal`); components that do not exist are kept as written. COPY uses it to
    /// write through an image's symlinked directories (`COPY f /link/`) without ever leaving it.
    func imagePath(_ path: String, followFinal: Bool = true) -> String {
        var todo = path.split(separator: "/").map(String.init)
        var done: [String] = []
        var hops = 0
        while !todo.isEmpty {
            let c = todo.removeFirst()
            if c == "." || c.isEmpty { continue }
            if c == ".." { _ = done.popLast(); continue }
            if todo.isEmpty && !followFinal { done.append(c); break }
            if let host = entry(done + [c]), let st = FS.info(host), FS.isLink(st), hops < 40, let target = FS.readLink(host) {
                hops += 1
                if target.hasPrefix("/") { done = [] }
                todo = target.split(separator: "/").map(String.init) + todo
                continue
            }
            done.append(c)
        }
        return "/" + done.joined(separator: "/")
    }

    func isDirectory(_ path: String, followFinal: Bool = false) -> Bool {
        guard let p = followFinal ? resolve(path, followFinal: true) : find(path), let st = FS.info(p) else { return false }
        return FS.isDir(st)
    }

    /// The content of a regular file of the image (symlinks followed inside the image).
    func read(_ path: String) -> String? {
        guard let p = resolve(path, followFinal: true) else { return nil }
        let fd = open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)   // a FIFO must not block the build
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = StatBuf()
        guard fstat(fd, &st) == 0, FS.isReg(st) else { return nil }
        var data = Data()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            data.append(contentsOf: buf[0..<n])
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Resolves `user[:group]` (names or numbers) as docker does (`Runtime.UserDatabase`):
    /// names through the image's /etc/passwd and /etc/group; a user without a group takes its
    /// primary group (with `chownRule`, a uid not in /etc/passwd takes the same number).
    func resolveUser(_ spec: String, chownRule: Bool) throws -> (uid: UInt32, gid: UInt32) {
        do {
            let r = try users().resolve(spec, chownRule: chownRule)
            return (r.uid, r.gid)
        } catch {
            throw BuildError.notFound("\(error)")
        }
    }

    /// Supplementary groups of a user: the /etc/group entries that list it as a member.
    func supplementaryGroups(_ spec: String) -> [UInt32] {
        let db = users()
        var name = String(spec.split(separator: ":", maxSplits: 1).first ?? "")
        if let n = UInt32(name), let row = db.passwd.first(where: { $0.count > 2 && UInt32($0[2]) == n }) { name = row[0] }
        return db.memberGroups(of: name)
    }

    private func users() -> UserDatabase { UserDatabase(passwd: read("/etc/passwd") ?? "", group: read("/etc/group") ?? "") }
}
