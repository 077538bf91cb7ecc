import CArchive
import Glibc

/// Opens directories below a root directory, resolving every symlink as if the root were `/`
/// (openat2 with RESOLVE_IN_ROOT, or the same walk by hand with O_NOFOLLOW where openat2 is missing).
/// Nothing it returns can lie outside the root.
final class InRoot {
    let rootfd: Int32
    let rootPath: String
    var useOpenat2: Bool
    private var cacheKey: [UInt8]?
    private var cacheFD: Int32 = -1

    init(path: String, useOpenat2: Bool = true) throws {
        rootPath = path
        rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if rootfd < 0 { throw ArchiveError.sys(path, "open directory") }
        self.useOpenat2 = useOpenat2
    }

    deinit {
        invalidate()
        close(rootfd)
    }

    /// Forgets the cached directory (after anything was removed or replaced).
    func invalidate() {
        if cacheFD >= 0 { close(cacheFD) }
        cacheFD = -1
        cacheKey = nil
    }

    func display(_ components: [[UInt8]]) -> String {
        rootPath + "/" + FS.string(Array(components.joined(separator: [0x2f])))
    }

    /// The directory at `components` (validated: no "", ".", ".."), created (0755, like tar's implicit
    /// directories) where missing when `create`. The returned fd stays owned by this object: do not close it.
    func directory(_ components: [[UInt8]], create: Bool) throws -> Int32 {
        if components.isEmpty { return rootfd }
        let key = Array(components.joined(separator: [0x2f]))
        if let cacheKey, cacheKey == key, cacheFD >= 0 { return cacheFD }
        let fd = try resolve(components, key: key, create: create)
        invalidate()
        cacheKey = key
        cacheFD = fd
        return fd
    }

    private func resolve(_ components: [[UInt8]], key: [UInt8], create: Bool) throws -> Int32 {
        if useOpenat2 {
            let fd = FS.withCString(key) { dockbuild_openat_in_root(rootfd, $0, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0) }
            if fd >= 0 { return fd }
            let e = errno
            if e == ENOSYS || e == EPERM {
                useOpenat2 = false // old kernel or a seccomp filter: walk by hand from now on
            } else if e == ENOENT && create {
                // fall through to the walk, which creates what is missing
            } else if e == ENOTDIR {
                throw ArchiveError.unsafeEntry(entry: FS.string(key), reason: "a parent path component is not a directory")
            } else if e == ELOOP {
                throw ArchiveError.unsafeEntry(entry: FS.string(key), reason: "too many levels of symbolic links")
            } else {
                throw ArchiveError.sys(display(components), "open directory", e)
            }
        }
        return try walk(components, create: create)
    }

    /// RESOLVE_IN_ROOT by hand: one component at a time with O_NOFOLLOW; symlinks are read and their
    /// targets resolved from the root (absolute) or the current directory (relative); ".." stops at the root.
    func walk(_ components: [[UInt8]], create: Bool) throws -> Int32 {
        var stack: [Int32] = []
        defer { for fd in stack { close(fd) } }
        var pending: [[UInt8]] = components.reversed()
        var links = 0
        func current() -> Int32 { stack.last ?? rootfd }
        while let comp = pending.popLast() {
            if comp.isEmpty || comp == [0x2e] { continue }
            if comp == [0x2e, 0x2e] {
                if let last = stack.popLast() { close(last) }
                continue
            }
            var st = stat()
            var rc = FS.withCString(comp) { fstatat(current(), $0, &st, AT_SYMLINK_NOFOLLOW) }
            if rc != 0 && errno == ENOENT && create {
                rc = FS.withCString(comp) { mkdirat(current(), $0, 0o755) }
                if rc != 0 && errno != EEXIST { throw ArchiveError.sys(display(components), "mkdir") }
                rc = FS.withCString(comp) { fstatat(current(), $0, &st, AT_SYMLINK_NOFOLLOW) }
            }
            if rc != 0 { throw ArchiveError.sys(display(components), "stat") }
            if FS.isType(st.st_mode, S_IFLNK) {
                links += 1
                if links > 40 {
                    throw ArchiveError.unsafeEntry(entry: FS.string(Array(components.joined(separator: [0x2f]))), reason: "too many levels of symbolic links")
                }
                guard let target = FS.readlinkAt(current(), comp) else { throw ArchiveError.sys(display(components), "readlink") }
                if target.first == 0x2f {
                    for fd in stack { close(fd) }
                    stack.removeAll()
                }
                for part in target.split(separator: 0x2f, omittingEmptySubsequences: true).reversed() {
                    pending.append(Array(part))
                }
                continue
            }
            guard FS.isType(st.st_mode, S_IFDIR) else {
                throw ArchiveError.unsafeEntry(entry: FS.string(Array(components.joined(separator: [0x2f]))),
                                               reason: "parent \"\(FS.string(comp))\" is not a directory")
            }
            let fd = FS.withCString(comp) { openat(current(), $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            if fd < 0 { throw ArchiveError.sys(display(components), "open directory") }
            stack.append(fd)
        }
        if let last = stack.popLast() { return last }
        let fd = dup(rootfd)
        if fd < 0 { throw ArchiveError.sys(rootPath, "dup") }
        return fd
    }

    /// Removes `name` in `dirfd` and, if it is a directory, everything below it, never following symlinks.
    func removeTree(_ dirfd: Int32, _ name: [UInt8]) throws {
        defer { invalidate() }
        try Self.remove(dirfd, name, display: rootPath)
    }

    private static func remove(_ dirfd: Int32, _ name: [UInt8], display: String) throws {
        guard let st = FS.lstatAt(dirfd, name) else {
            if errno == ENOENT { return }
            throw ArchiveError.sys(display + "/" + FS.string(name), "stat")
        }
        if FS.isType(st.st_mode, S_IFDIR) {
            let fd = FS.withCString(name) { openat(dirfd, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            if fd < 0 { throw ArchiveError.sys(display + "/" + FS.string(name), "open directory") }
            defer { close(fd) }
            for child in try FS.sortedNames(fd, path: display) {
                try remove(fd, child, display: display + "/" + FS.string(name))
            }
            if FS.withCString(name, { unlinkat(dirfd, $0, AT_REMOVEDIR) }) != 0 && errno != ENOENT {
                throw ArchiveError.sys(display + "/" + FS.string(name), "rmdir")
            }
        } else if FS.withCString(name, { unlinkat(dirfd, $0, 0) }) != 0 && errno != ENOENT {
            throw ArchiveError.sys(display + "/" + FS.string(name), "unlink")
        }
    }
}
