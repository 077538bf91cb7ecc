import Foundation

extension ContainerManager {
    /// Runs a process in a running container with this process's stdio; returns its exit code.
    public func exec(_ id: String, command: [String], tty: Bool, interactive: Bool, detach: Bool,
                     env: [String], user: String?, workdir: String?) throws -> Int32 {
        let c = try store.container(id)
        guard c.isRunning else { throw ContainersError.invalidState("container \(c.name) is not running: start it first") }
        var uidgid: String?
        if let user {
            let u = try resolveUser(user, rootfs: store.rootfsPath(id))
            uidgid = "\(u.uid):\(u.gid)"
        } else if !c.record.user.isEmpty {
            let u = try resolveUser(c.record.user, rootfs: store.rootfsPath(id))
            uidgid = "\(u.uid):\(u.gid)"
        }
        var fullEnv = env
        if tty && !env.contains(where: { $0.hasPrefix("TERM=") }) { fullEnv.append("TERM=xterm") }
        let args = try runtime(for: id).execArgs(id: id, tty: tty, detach: detach, env: fullEnv, user: uidgid,
                                          cwd: workdir, args: command)
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devnull) }
        let opts = Shell.SpawnOptions(fds: [interactive || tty ? 0 : devnull, 1, 2])
        // The runtime's --log says why an exec failed: a program that cannot run is 127/126, as with docker.
        let logFile = "\(store.directory(id))/exec-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { unlink(logFile) }
        let pid = try Shell.spawn(ExecFailure.withLog(args, logFile), opts)
        // the runtime forwards signals and the terminal size itself; we only wait
        signal(SIGINT, SIG_IGN)
        let status = Shell.wait(pid)
        if status != 0, let log = try? String(contentsOfFile: logFile, encoding: .utf8), let code = ExecFailure.exitCode(log) {
            return code
        }
        return status
    }

    /// `top`: the container's processes as `ps` shows them.
    public func top(_ id: String, psArgs: [String]) throws -> String {
        let c = try store.container(id)
        guard c.isRunning else { throw ContainersError.invalidState("container \(c.name) is not running") }
        let pids = try runtime(for: id).pids(id)
        let args = psArgs.isEmpty ? ["-f"] : psArgs
        let out = try Shell.run(["ps"] + args)
        guard out.status == 0 else { throw ContainersError.runtime("ps \(args.joined(separator: " ")): \(out.stderr)") }
        var lines = out.stdout.split(separator: "\n").map(String.init)
        guard let header = lines.first else { return "" }
        lines.removeFirst()
        let cols = header.split(separator: " ")
        guard let pidCol = cols.firstIndex(of: "PID") else { return out.stdout }
        let set = Set(pids)
        let keep = lines.filter { l in
            let f = l.split(separator: " ")
            return f.count > pidCol && Int32(f[pidCol]).map(set.contains) == true
        }
        return ([header] + keep).joined(separator: "\n")
    }
}
