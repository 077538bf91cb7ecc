import Foundation
import Runtime
import SystemSupport
#if canImport(Glibc)
import Glibc
#endif

/// Running helper programs (runc, ip, iptables) and spawning detached processes.
public enum Shell {
    /// The result of a finished helper command.
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Finds an executable on PATH (plus the sbin directories root's PATH may lack).
    public static func which(_ name: String) -> String? {
        if name.hasPrefix("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for dir in path.split(separator: ":") {
            let p = "\(dir)/\(name)"
            if access(p, X_OK) == 0 { return p }
        }
        return nil
    }

    /// Runs a command to completion and captures its output.
    @discardableResult
    public static func run(_ args: [String], input: Data? = nil) throws -> Output {
        guard let first = args.first, let exe = which(first) else {
            throw ContainersError.missingTool(args.first ?? "?")
        }
        let r = try Subprocess.run(exe, Array(args.dropFirst()), input: input)
        return Output(status: r.status, stdout: r.stdout, stderr: r.stderr)
    }

    /// Runs a command and throws with its stderr when it fails.
    @discardableResult
    public static func check(_ args: [String], what: String? = nil) throws -> String {
        let r = try run(args)
        if r.status != 0 {
            let msg = r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            throw ContainersError.runtime("\(what ?? args.joined(separator: " ")) failed (exit \(r.status)): \(msg)")
        }
        return r.stdout
    }

    /// How a spawned process gets its standard descriptors: `fds[i]` becomes descriptor i.
    public struct SpawnOptions {
        public var fds: [Int32]
        public var newSession = false
        /// Open this path as fd 0,1,2 after setsid, making it the controlling terminal.
        public var controllingTTY: String?
        public var environment: [String]?
        public init(fds: [Int32]) { self.fds = fds }
    }

    /// posix_spawn with descriptors mapped, signals reset and (optionally) a new session.
    public static func spawn(_ args: [String], _ opts: SpawnOptions) throws -> pid_t {
        guard let first = args.first, let exe = which(first) else { throw ContainersError.missingTool(args.first ?? "?") }
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        // dup into high numbers first so mapping never clobbers a source.
        let base: Int32 = 200
        for (i, fd) in opts.fds.enumerated() { posix_spawn_file_actions_adddup2(&fa, fd, base + Int32(i)) }
        if let tty = opts.controllingTTY {
            posix_spawn_file_actions_addopen(&fa, 0, tty, O_RDWR, 0)
            posix_spawn_file_actions_adddup2(&fa, 0, 1)
            posix_spawn_file_actions_adddup2(&fa, 0, 2)
            for i in 3..<max(3, opts.fds.count) { posix_spawn_file_actions_adddup2(&fa, base + Int32(i), Int32(i)) }
        } else {
            for i in 0..<opts.fds.count { posix_spawn_file_actions_adddup2(&fa, base + Int32(i), Int32(i)) }
        }
        for i in 0..<opts.fds.count { posix_spawn_file_actions_addclose(&fa, base + Int32(i)) }
        Sys.markAllCloexec()
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if opts.newSession || opts.controllingTTY != nil { flags |= Int32(0x80) /* POSIX_SPAWN_SETSID */ }
        posix_spawnattr_setflags(&attr, Int16(flags))
        var empty = sigset_t(); sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var all = sigset_t(); sigfillset(&all)
        posix_spawnattr_setsigdefault(&attr, &all)
        let env = opts.environment ?? ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        var cenv: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) }; cenv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &fa, &attr, &cargs, &cenv)
        if rc != 0 { throw ContainersError.system("cannot start \(exe)", errno: rc) }
        return pid
    }

    /// waitpid that retries on EINTR; returns the shell-style status (128+signal when killed).
    public static func wait(_ pid: pid_t) -> Int32 {
        var st: Int32 = 0
        while waitpid(pid, &st, 0) < 0 { if errno != EINTR { return -1 } }
        if st & 0x7f == 0 { return (st >> 8) & 0xff }
        return 128 + (st & 0x7f)
    }
}

/// Portable spellings of the GNU-only calls Glibc's module does not export.
enum Sys {
    static func pipeCloexec() -> (Int32, Int32)? {
        var p: [Int32] = [0, 0]
        guard pipe(&p) == 0 else { return nil }
        _ = fcntl(p[0], F_SETFD, FD_CLOEXEC); _ = fcntl(p[1], F_SETFD, FD_CLOEXEC)
        return (p[0], p[1])
    }

    static func acceptCloexec(_ fd: Int32) -> Int32 {
        let c = accept(fd, nil, nil)
        if c >= 0 { _ = fcntl(c, F_SETFD, FD_CLOEXEC) }
        return c
    }

    /// Marks every inherited descriptor close-on-exec so spawned processes get only what they are given.
    static func markAllCloexec() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for n in names { if let fd = Int32(n), fd > 2 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) } }
    }

    static let TIOCSPTLCK: UInt = 0x4004_5431
    static let TIOCGPTN: UInt = 0x8004_5430

    static func major(_ d: UInt64) -> Int64 { Int64(((d >> 8) & 0xfff) | ((d >> 32) & ~UInt64(0xfff))) }
    static func minor(_ d: UInt64) -> Int64 { Int64((d & 0xff) | ((d >> 12) & ~UInt64(0xff))) }
}
