import CRuntime
import Foundation
import SystemSupport
#if canImport(Glibc)
import Glibc
#endif

/// Rootless dockbuild's user namespace: one per user, as podman's. A small holder process
/// keeps a user namespace (the caller as root, plus its subordinate ids from /etc/subuid and
/// /etc/subgid, mapped by Debian's setuid `newuidmap`/`newgidmap`) and a mount namespace alive;
/// every command that needs root's powers re-executes itself into both (`rootless.c` joins them
/// before main). Containers' root filesystems, mounted there, stay visible to the next command,
/// and files keep their ids: uid 1000 inside is subordinate uid START+999 on the host.
///
/// Nothing here is setuid: the user gains no access on the host it did not have.
public enum RootlessNamespace {
    /// A subordinate id range from /etc/subuid or /etc/subgid.
    public struct Range: Sendable, Equatable {
        public var start: UInt32
        public var count: UInt32
    }

    /// The holder's pid file and lock, in the user's runtime directory.
    static var pidFile: String { StatePaths.runtimeDir() + "/userns.pid" }

    /// The first range of `user` (name or uid) in a subuid/subgid file's text.
    public static func subordinateRange(in text: String, user: String, id: UInt32) -> Range? {
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            guard f.count == 3, f[0] == user || f[0] == "\(id)",
                  let start = UInt32(f[1]), let count = UInt32(f[2]), count > 0 else { continue }
            return Range(start: start, count: count)
        }
        return nil
    }

    /// Sets `_DOCKBUILD_ROOTLESS` in a process that joined the namespace before main with no
    /// re-exec (rootless.c cannot set it there); call first thing in main, before anything reads
    /// `StatePaths` or starts a process.
    public static func adoptEarlyJoin() {
        let uid = cruntime_rootless_joined_uid()
        if uid >= 0 { setenv(StatePaths.rootlessEnv, "\(uid)", 1) }
    }

    /// Re-executes this process into the user's namespace (making it first when needed).
    /// Returns only when nothing is to be done: real root, or already inside.
    public static func enter(arguments: [String]) throws {
        guard geteuid() != 0, !StatePaths.inRootlessNamespace else { return }
        let dir = StatePaths.runtimeDir()
        do { try StatePaths.ensurePrivateDirectory(dir) } catch {
            throw RuntimeError(.system, "rootless: \(error)")
        }
        let lock: FileLock
        do {
            lock = try FileLock(path: dir + "/userns.lock", mode: 0o600)
            try lock.lock()
        } catch {
            throw RuntimeError(.system, "rootless: cannot lock \(dir)/userns.lock: \(error)")
        }
        let pid: Int32
        if let held = liveHolder() {
            pid = held
        } else {
            pid = try startHolder()
            let start = Sys.processStat(pid)?.startTime ?? 0
            try Sys.writeAtomic(pidFile, Data("\(pid) \(start)\n".utf8), mode: 0o600)
        }
        lock.unlock()
        setenv(CRUNTIME_USERNS_JOIN_ENV, "\(pid)", 1)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        execv("/proc/self/exe", &argv)
        throw RuntimeError.sys("rootless: cannot re-execute /proc/self/exe")
    }

    /// The holder recorded in the pid file, if it still runs (same start time, ours).
    static func liveHolder() -> Int32? {
        guard let text = Sys.readFile(pidFile) else { return nil }
        let f = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard f.count == 2, let pid = Int32(f[0]), let start = UInt64(f[1]), pid > 0,
              Sys.processStat(pid)?.startTime == start else { return nil }
        var st = stat()
        guard stat("/proc/\(pid)", &st) == 0, st.st_uid == geteuid(), access("/proc/\(pid)/ns/user", R_OK) == 0 else { return nil }
        return pid
    }

    /// The pid of the namespace holder for the current user, if one runs (tests and `info`).
    public static var holderPID: Int32? { liveHolder() }

    /// Why user namespaces are refused, from the sysctls that refuse them.
    static func refusal() -> String? {
        if let v = Sys.readFile("/proc/sys/user/max_user_namespaces")?.trimmingCharacters(in: .whitespacesAndNewlines), v == "0" {
            return "user namespaces are disabled (user.max_user_namespaces = 0): as root, `sysctl -w user.max_user_namespaces=28633`"
        }
        if let v = Sys.readFile("/proc/sys/kernel/unprivileged_userns_clone")?.trimmingCharacters(in: .whitespacesAndNewlines), v == "0" {
            return "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0): as root, `sysctl -w kernel.unprivileged_userns_clone=1`"
        }
        if let v = Sys.readFile("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")?.trimmingCharacters(in: .whitespacesAndNewlines), v == "1" {
            return "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1): as root, set it to 0 or give dockbuild an AppArmor profile that allows userns"
        }
        return nil
    }

    /// The user's name for /etc/subuid (which may name the user or its uid).
    static func userName(_ uid: uid_t) -> String {
        guard let pw = getpwuid(uid), let n = pw.pointee.pw_name else { return "\(uid)" }
        return String(cString: n)
    }

    /// A program on the usual paths (newuidmap lives in /usr/bin).
    static func which(_ name: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/bin:/bin:/usr/sbin:/sbin"
        for d in path.split(separator: ":") where access("\(d)/\(name)", X_OK) == 0 { return "\(d)/\(name)" }
        return nil
    }

    /// Starts the holder and maps its ids; returns its pid once it is ready.
    static func startHolder() throws -> Int32 {
        if let why = refusal() { throw RuntimeError(.system, "rootless: \(why)") }
        let uid = geteuid(), gid = getegid()
        let name = userName(uid)
        let subuid = Sys.readFile("/etc/subuid").flatMap { subordinateRange(in: $0, user: name, id: uid) }
        let subgid = Sys.readFile("/etc/subgid").flatMap { subordinateRange(in: $0, user: name, id: uid) }
        let ranges = subuid != nil && subgid != nil
        var newuidmap: String?, newgidmap: String?
        if ranges {
            newuidmap = which("newuidmap")
            newgidmap = which("newgidmap")
            guard newuidmap != nil, newgidmap != nil else {
                throw RuntimeError(.system, "rootless: newuidmap/newgidmap not found, needed to map the subordinate ids of \(name) "
                    + "from /etc/subuid and /etc/subgid: install Debian's `uidmap` package (apt-get install uidmap)")
            }
        }
        var toChild: [Int32] = [-1, -1], fromChild: [Int32] = [-1, -1]
        guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else { throw RuntimeError.sys("rootless: pipe") }
        defer { for fd in toChild + fromChild where fd >= 0 { close(fd) } }
        _ = fcntl(toChild[1], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fromChild[0], F_SETFD, FD_CLOEXEC)
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { if devnull >= 0 { close(devnull) } }
        var env = ProcessInfo.processInfo.environment
        env[CRUNTIME_USERNS_HOLD_ENV] = "3,4"
        env.removeValue(forKey: CRUNTIME_USERNS_JOIN_ENV)
        let pid = try Spawn.spawn("/proc/self/exe", args: ["dockbuild-userns"], env: env.map { "\($0.key)=\($0.value)" },
                                  fds: [0: devnull, 1: devnull, 2: devnull, 3: toChild[0], 4: fromChild[1]])
        close(toChild[0]); toChild[0] = -1
        close(fromChild[1]); fromChild[1] = -1
        func fail(_ message: String) -> RuntimeError {
            kill(pid, SIGKILL)
            _ = Spawn.wait(pid, timeout: nil)
            return RuntimeError(.system, "rootless: " + message)
        }
        func expect(_ tag: UInt8) throws {
            var b = [UInt8](repeating: 0, count: 5)
            var n = 0
            repeat { n = read(fromChild[0], &b, 1) } while n < 0 && errno == EINTR
            if n == 1 && b[0] == tag { return }
            if n == 1 && b[0] == UInt8(ascii: "E") {
                var m = 0
                repeat { m = read(fromChild[0], &b[1], 4) } while m < 0 && errno == EINTR
                let err = m == 4 ? Int32(b[1]) | Int32(b[2]) << 8 | Int32(b[3]) << 16 | Int32(b[4]) << 24 : EPERM
                throw fail("cannot create a user namespace: \(String(cString: strerror(err))); "
                    + "the kernel must allow unprivileged user namespaces (user.max_user_namespaces > 0, "
                    + "kernel.unprivileged_userns_clone = 1 where it exists)")
            }
            throw fail("the user namespace holder exited while it was set up")
        }
        try expect(UInt8(ascii: "U"))
        if let subuid, let subgid, let newuidmap, let newgidmap {
            for (tool, id, r) in [(newuidmap, UInt32(uid), subuid), (newgidmap, UInt32(gid), subgid)] {
                let out = try Subprocess.run(tool, ["\(pid)", "0", "\(id)", "1", "1", "\(r.start)", "\(r.count)"])
                guard out.status == 0 else {
                    throw fail("\(tool) \(pid) 0 \(id) 1 1 \(r.start) \(r.count) failed: "
                        + out.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
                        + " (is \(tool) setuid root, and is the range in /etc/subuid and /etc/subgid \(name)'s?)")
                }
            }
        } else {
            do {
                try Sys.writeFile("/proc/\(pid)/uid_map", "0 \(uid) 1\n")
                try Sys.writeFile("/proc/\(pid)/setgroups", "deny\n")
                try Sys.writeFile("/proc/\(pid)/gid_map", "0 \(gid) 1\n")
            } catch {
                throw fail("cannot write the id maps of the user namespace: \(error)")
            }
            FileHandle.standardError.write(Data(("WARNING: no subordinate ids for \(name) in /etc/subuid and /etc/subgid: "
                + "only your own uid and gid are mapped (as root in containers). Files of images owned by other ids "
                + "are stored as root, and RUN steps or containers cannot change files to other owners. To map more, as root: "
                + "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 \(name)\n").utf8))
        }
        var go = UInt8(ascii: "M")
        _ = write(toChild[1], &go, 1)
        try expect(UInt8(ascii: "R"))
        return pid
    }
}

/// The id ranges of this process's user namespace (`/proc/self/uid_map`, `gid_map`).
struct IDMap {
    var ranges: [(inside: UInt32, count: UInt32)]

    /// The map in force; all ids when it cannot be read (the initial namespace maps all).
    static func current(_ file: String) -> IDMap {
        guard let text = Sys.readFile("/proc/self/" + file) else { return IDMap(ranges: [(0, UInt32.max)]) }
        return IDMap(ranges: text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count == 3, let i = UInt32(f[0]), let c = UInt32(f[2]) else { return nil }
            return (i, c)
        })
    }

    func contains(_ id: UInt32) -> Bool {
        ranges.contains { id >= $0.inside && UInt64(id) < UInt64($0.inside) + UInt64($0.count) }
    }
}
