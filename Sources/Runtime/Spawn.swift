import Foundation
import Logging
import CRuntime
#if canImport(Glibc)
import Glibc
#endif

/// posix_spawn with explicit fd wiring; Foundation's Process is too heavy
/// for the start path and cannot place fds at fixed numbers.
enum Spawn {
    /// Spawns `path` with `args`/`env`; `fds` maps child fd -> parent fd.
    static func spawn(_ path: String, args: [String], env: [String], fds: [Int32: Int32] = [:],
                      resetSignals: Bool = true) throws -> pid_t {
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        // dup each source to a high scratch number first so that targets never clobber sources.
        var scratch: [Int32: Int32] = [:]
        var next: Int32 = 100
        for (target, source) in fds.sorted(by: { $0.key < $1.key }) {
            posix_spawn_file_actions_adddup2(&fa, source, next)
            scratch[target] = next
            next += 1
        }
        for (target, s) in scratch { posix_spawn_file_actions_adddup2(&fa, s, target) }
        for (_, s) in scratch { posix_spawn_file_actions_addclose(&fa, s) }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var flags = Int16(POSIX_SPAWN_SETSIGMASK)
        if resetSignals {
            flags |= Int16(POSIX_SPAWN_SETSIGDEF)
            var all = sigset_t()
            sigfillset(&all)
            sigdelset(&all, SIGKILL)
            sigdelset(&all, SIGSTOP)
            posix_spawnattr_setsigdefault(&attr, &all)
        }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setflags(&attr, flags)
        var pid: pid_t = 0
        let cargs = args.map { strdup($0) } + [nil]
        let cenv = env.map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) }; cenv.forEach { free($0) } }
        let rc = posix_spawn(&pid, path, &fa, &attr, cargs, cenv)
        if rc != 0 { throw RuntimeError.sys("spawn \(path)", rc) }
        return pid
    }

    /// Waits for `pid`, killing it after `timeout` seconds (nil: no limit). Returns the wait status or nil on timeout.
    static func wait(_ pid: pid_t, timeout: Double?) -> Int32? {
        var status: Int32 = 0
        guard let timeout else {
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            return status
        }
        let deadline = Date().addingTimeInterval(timeout)
        var sleep: useconds_t = 200
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return status }
            if r < 0 && errno != EINTR { return status }
            if Date() >= deadline {
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return nil
            }
            usleep(sleep)
            sleep = min(sleep * 2, 20_000)
        }
    }
}

/// Runs OCI hooks with the container state on stdin (runtime-spec config.md#posix-platform-hooks).
enum Hooks {
    /// `inNamespacesOf`: run each hook in that process's namespaces (createContainer).
    /// `warnOnly`: a failing hook is a warning on stderr and the remaining hooks still run
    /// (poststart and poststop, runtime-spec config.md#poststart); otherwise the first failure throws.
    static func run(_ hooks: [RuntimeSpec.Hook], state: Data, kind: String, inNamespacesOf target: Int32? = nil,
                    warnOnly: Bool = false, logger: Logger? = nil) throws {
        for h in hooks {
            guard warnOnly else {
                try runOne(h, state: state, kind: kind, inNamespacesOf: target)
                continue
            }
            do { try runOne(h, state: state, kind: kind, inNamespacesOf: target) } catch {
                let text = "\(error); the remaining \(kind) hooks still run"
                if let logger { logger.warning(Logger.Message(stringLiteral: text)) } else {
                    FileHandle.standardError.write(Data("dockbuild runtime: warning: \(text)\n".utf8))
                }
            }
        }
    }

    private static func runOne(_ h: RuntimeSpec.Hook, state: Data, kind: String, inNamespacesOf target: Int32?) throws {
        do {
            var p: [Int32] = [0, 0]
            guard cruntime_pipe_cloexec(&p) == 0 else { throw RuntimeError.sys("pipe for \(kind) hook") }
            let pid: pid_t
            do {
                if let target {
                    let args = (h.args ?? [h.path]).map { strdup($0) } + [nil]
                    let env = (h.env ?? []).map { strdup($0) } + [nil]
                    defer { args.forEach { free($0) }; env.forEach { free($0) } }
                    pid = cruntime_spawn_in_ns(target, h.path, args, env, p[0])
                    if pid < 0 { throw RuntimeError.sys("fork") }
                } else {
                    pid = try Spawn.spawn(h.path, args: h.args ?? [h.path], env: h.env ?? [], fds: [0: p[0], 1: 1, 2: 2])
                }
            } catch {
                close(p[0]); close(p[1])
                throw RuntimeError(.hook, "\(kind) hook \(h.path) could not start: \(error)")
            }
            close(p[0])
            // A hook that does not read stdin must not block us: ignore EPIPE.
            signal(SIGPIPE, SIG_IGN)
            state.withUnsafeBytes { raw in
                var off = 0
                while off < raw.count {
                    let n = write(p[1], raw.baseAddress!.advanced(by: off), raw.count - off)
                    if n <= 0 { break }
                    off += n
                }
            }
            close(p[1])
            guard let status = Spawn.wait(pid, timeout: h.timeout.map(Double.init)) else {
                throw RuntimeError(.hook, "\(kind) hook \(h.path) timed out after \(h.timeout ?? 0)s and was killed")
            }
            let code = Sys.waitStatusCode(status)
            if code != 0 { throw RuntimeError(.hook, "\(kind) hook \(h.path) failed with exit status \(code)") }
        }
    }
}
