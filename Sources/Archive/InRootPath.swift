import Foundation
import CArchive
#if canImport(Glibc)
import Glibc
#endif

/// Resolves paths as a process whose root directory is `root` would see them: `..` stops at the
/// root and symlinks (absolute or relative) are followed inside it, so a path named by a
/// Dockerfile, a `cp` or a layer never leads to the host's files. Used wherever a path given
/// by a user or an image is opened under a root that is not ours (build contexts, stage
/// roots, container root filesystems).
public enum InRootPath {
    /// `O_PATH` (Linux), which Swift's Glibc module does not surface.
    public static let oPath: Int32 = 0o10_000_000

    /// The host path `path` names under `root`. Symlinks in every component but the last are
    /// followed within `root`; the last one too when `followFinal` (a `COPY link` copies the
    /// link itself, a `cp` follows it). Components need not exist.
    public static func resolve(_ path: String, in root: String, followFinal: Bool = true) throws -> String {
        let resolved = try walk(path, followFinal: followFinal, under: root) { components in
            let candidate = root + "/" + components.joined(separator: "/")
            return (try? FileManager.default.destinationOfSymbolicLink(atPath: candidate)).map { .link($0) } ?? .other
        } ?? []  // (a walk that is not strict always ends)
        return resolved.isEmpty ? root : root + "/" + resolved.joined(separator: "/")
    }

    /// What a walk finds at a path under its root.
    public enum Entry: Sendable, Equatable {
        /// Nothing there: the walk goes on (`resolve`), or the caller's lookup gave up.
        case missing
        /// A symbolic link, with its target.
        case link(String)
        /// A directory.
        case directory
        /// Anything else (or a kind the caller does not tell apart).
        case other
    }

    /// The one symlink walk every resolver under a root uses (`resolve` here, the builder's
    /// layered image view): `path`'s components from the root, `..` stopping at it, each
    /// symlink's target (absolute: from the root; relative: from its directory) spliced in, 40
    /// links at most. `lookup` says what lies at the components resolved so far (which hold no
    /// symlink). Returns the resolved components; nil when `strict` and a component is missing, or
    /// a component before the last is not a directory.
    /// - Throws: `ArchiveError.invalidArgument` past 40 links (a loop).
    public static func walk(_ path: String, followFinal: Bool, strict: Bool = false, under root: String,
                            lookup: ([String]) -> Entry) throws -> [String]? {
        var pending = path.split(separator: "/").map(String.init)
        var resolved: [String] = []
        var hops = 0
        while !pending.isEmpty {
            let part = pending.removeFirst()
            if part == "." || part.isEmpty { continue }
            if part == ".." { _ = resolved.popLast(); continue }
            let isFinal = pending.isEmpty
            if isFinal && !followFinal && !strict {
                resolved.append(part)
                continue
            }
            let found = lookup(resolved + [part])
            if case let .link(target) = found, followFinal || !isFinal {
                hops += 1
                if hops > 40 {
                    throw ArchiveError.invalidArgument("\(path): too many levels of symbolic links under \(root)")
                }
                if target.hasPrefix("/") { resolved = [] }
                pending = target.split(separator: "/").map(String.init) + pending
                continue
            }
            if strict {
                if found == .missing { return nil }
                if !isFinal && found != .directory { return nil }
            }
            resolved.append(part)
        }
        return resolved
    }

    /// Opens what `path` names under `root` as an `O_PATH` descriptor, resolved as `resolve`
    /// does (openat2 with RESOLVE_IN_ROOT, or `resolve` followed by an `O_NOFOLLOW` open where
    /// openat2 is missing), and verifies through `/proc/self/fd` that the object it holds lies
    /// inside `root`. Mount `/proc/self/fd/N` rather than a path string so that nothing can swap
    /// a component for a symlink between the check and the mount. The caller closes the fd.
    /// With `followFinal` false a final symlink is opened itself (a COPY copies the link).
    /// - Throws: `ArchiveError` when the path does not exist, leaves the root, or names a symlink
    ///   that cannot be followed inside it.
    /// - Parameter useOpenat2: false takes the fallback path (for tests).
    public static func openPath(_ path: String, in root: String, followFinal: Bool = true, useOpenat2: Bool = true) throws -> Int32 {
        let rootfd = open(root, oPath | O_DIRECTORY | O_CLOEXEC)
        if rootfd < 0 { throw ArchiveError.sys(root, "open directory") }
        defer { close(rootfd) }
        let rel = path.split(separator: "/").joined(separator: "/")
        let flags = oPath | O_CLOEXEC | (followFinal ? 0 : O_NOFOLLOW)
        var fd = useOpenat2 ? dockbuild_openat_in_root(rootfd, rel.isEmpty ? "." : rel, flags, 0) : -1
        if fd < 0 {
            let e = useOpenat2 ? errno : ENOSYS
            guard e == ENOSYS || e == EPERM else { throw ArchiveError.sys(root + "/" + rel, "open", e) }
            let host = try resolve(path, in: root, followFinal: followFinal)
            fd = open(host, oPath | O_NOFOLLOW | O_CLOEXEC)
            if fd < 0 { throw ArchiveError.sys(host, "open") }
        }
        do {
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw ArchiveError.sys(root + "/" + rel, "stat") }
            if followFinal && st.st_mode & S_IFMT == S_IFLNK {
                throw ArchiveError.unsafeEntry(entry: path, reason: "it is a symbolic link that changed while it was resolved under \(root)")
            }
            let real = realpath(root, nil).map { p in defer { free(p) }; return String(cString: p) } ?? root
            let held = try fdPath(fd)
            guard held == real || held.hasPrefix(real == "/" ? "/" : real + "/") else {
                throw ArchiveError.unsafeEntry(entry: path, reason: "it resolves to \(held), outside \(root)")
            }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// The path the kernel holds for an open descriptor (`/proc/self/fd/N`).
    public static func fdPath(_ fd: Int32) throws -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/fd/\(fd)", &buf, Int(PATH_MAX))
        guard n > 0 else { throw ArchiveError.sys("/proc/self/fd/\(fd)", "readlink") }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
