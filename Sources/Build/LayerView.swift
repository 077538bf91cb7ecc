import CArchive
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A read-only view of an image's file system through its unpacked layers (top first),
/// without mounting: enough to read /etc/passwd and to ask whether a path exists.
struct LayerView: Sendable {
    var dirs: [String]   // top layer first

    /// The host path of the topmost entry at `path` (absolute in the image), or nil when absent
    /// or hidden by a whiteout. Walks one component at a time and only ever descends through
    /// directories, so a symlink in a layer is never followed on the host (a layer's `/etc ->
    /// /host/dir` cannot make a lookup read the host); `resolve` follows links inside the image.
    func find(_ path: String) -> String? {
        let comps = cleanPath(path).split(separator: "/").map(String.init)
        if comps.isEmpty { return dirs.first }
        var layers = dirs
        var prefix = ""
        for (i, c) in comps.enumerated() {
            prefix = prefix.isEmpty ? c : prefix + "/" + c
            var next: [String] = []
            for d in layers {
                guard let st = FS.info(d + "/" + prefix) else { continue }
                if st.st_mode & S_IFMT == S_IFCHR && st.st_rdev == 0 { break }   // whiteout
                if i == comps.count - 1 { return d + "/" + prefix }
                guard FS.isDir(st) else { break }   // a file or link hides the lower layers here
                next.append(d)
                if Self.isOpaque(d + "/" + prefix) { break }
            }
            if next.isEmpty { return nil }
            layers = next
        }
        return nil
    }

    /// `path` with every symlink in it resolved inside the image (as if the image were `/`),
    /// the final component too when `followFinal`. Dangling or looping links end the walk.
    func resolve(_ path: String, followFinal: Bool = true) -> String {
        var todo = cleanPath(path).split(separator: "/").map(String.init)
        var done: [String] = []
        var hops = 0
        while !todo.isEmpty {
            let c = todo.removeFirst()
            if c == "." || c.isEmpty { continue }
            if c == ".." { _ = done.popLast(); continue }
            let candidate = "/" + (done + [c]).joined(separator: "/")
            if todo.isEmpty && !followFinal { done.append(c); break }
            if let host = find(candidate), let st = FS.info(host), FS.isLink(st), hops < 40, let target = FS.readLink(host) {
                hops += 1
                if target.hasPrefix("/") { done = [] }
                todo = target.split(separator: "/").map(String.init) + todo
                continue
            }
            done.append(c)
        }
        return "/" + done.joined(separator: "/")
    }

    func isDirectory(_ path: String) -> Bool {
        guard let p = find(resolve(path)), let st = FS.info(p) else { return false }
        return FS.isDir(st)
    }

    static func isOpaque(_ dir: String) -> Bool {
        var v: UInt8 = 0
        return dockbuild_lgetxattr(dir, "trusted.overlay.opaque", &v, 1) == 1 && v == UInt8(ascii: "y")
    }

    func read(_ path: String) -> String? {
        guard let p = find(resolve(path)), let d = FileManager.default.contents(atPath: p) else { return nil }
        return String(decoding: d, as: UTF8.self)
    }

    /// Resolves `user[:group]` (names or numbers) as docker does: names through /etc/passwd and
    /// /etc/group of the image; a user without group takes the user's primary group.
    func resolveUser(_ spec: String, chownRule: Bool) throws -> (uid: UInt32, gid: UInt32) {
        let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
        let user = parts.first ?? ""
        var uid: UInt32
        var primary: UInt32?
        if let n = UInt32(user) {
            uid = n
            if !chownRule, let line = passwd().first(where: { $0.count > 3 && UInt32($0[2]) == n }) { primary = UInt32(line[3]) }
        } else {
            guard let line = passwd().first(where: { $0.first == user }), line.count > 3,
                  let u = UInt32(line[2]) else {
                throw BuildError.notFound("user `\(user)` is not in the image's /etc/passwd; use a numeric uid or add the user first")
            }
            uid = u
            primary = UInt32(line[3])
        }
        var gid: UInt32
        if parts.count > 1 {
            let g = parts[1]
            if let n = UInt32(g) { gid = n } else {
                guard let line = group().first(where: { $0.first == g }), line.count > 2, let n = UInt32(line[2]) else {
                    throw BuildError.notFound("group `\(g)` is not in the image's /etc/group; use a numeric gid")
                }
                gid = n
            }
        } else if chownRule {
            gid = primary ?? uid
        } else {
            gid = primary ?? 0
        }
        return (uid, gid)
    }

    /// Supplementary groups of a user: the /etc/group entries that list it as a member.
    func supplementaryGroups(_ spec: String) -> [UInt32] {
        var name = String(spec.split(separator: ":", maxSplits: 1).first ?? "")
        if let n = UInt32(name), let line = passwd().first(where: { $0.count > 2 && UInt32($0[2]) == n }) { name = line[0] }
        return group().compactMap { g in
            guard g.count > 3, g[3].split(separator: ",").contains(Substring(name)) else { return nil }
            return UInt32(g[2])
        }
    }

    private func passwd() -> [[String]] { table("/etc/passwd") }
    private func group() -> [[String]] { table("/etc/group") }
    private func table(_ p: String) -> [[String]] {
        (read(p) ?? "").split(separator: "\n").map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) }
    }
}
