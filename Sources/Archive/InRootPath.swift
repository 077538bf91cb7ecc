import Foundation

/// Resolves paths as a process whose root directory is `root` would see them: `..` stops at the
/// root and symlinks (absolute or relative) are followed inside it, so a path named by a
/// Dockerfile, a `cp` or a layer never leads to the host's files. Used wherever a path given
/// by a user or an image is opened under a root that is not ours (build contexts, stage
/// roots, container root filesystems).
public enum InRootPath {
    /// The host path `path` names under `root`. Symlinks in every component but the last are
    /// followed within `root`; the last one too when `followFinal` (a `COPY link` copies the
    /// link itself, a `cp` follows it). Components need not exist.
    public static func resolve(_ path: String, in root: String, followFinal: Bool = true) throws -> String {
        var pending = path.split(separator: "/").map(String.init)
        var resolved: [String] = []
        var hops = 0
        while !pending.isEmpty {
            let part = pending.removeFirst()
            if part == "." || part.isEmpty { continue }
            if part == ".." { _ = resolved.popLast(); continue }
            let isFinal = pending.isEmpty
            let candidate = root + "/" + (resolved + [part]).joined(separator: "/")
            if isFinal && !followFinal {
                resolved.append(part)
                continue
            }
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: candidate) else {
                resolved.append(part)
                continue
            }
            hops += 1
            if hops > 40 {
                throw ArchiveError.invalidArgument("\(path): too many levels of symbolic links under \(root)")
            }
            if target.hasPrefix("/") { resolved = [] }
            pending = target.split(separator: "/").map(String.init) + pending
        }
        return resolved.isEmpty ? root : root + "/" + resolved.joined(separator: "/")
    }
}
