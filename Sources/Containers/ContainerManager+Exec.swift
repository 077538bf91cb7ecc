import Foundation
import Runtime

extension ContainerManager {
    /// Runs a process in a running container with this process's stdio; returns its exit code.
    /// The process starts from the container's own spec process (capabilities, seccomp,
    /// no_new_privs, rlimits and environment), as `docker exec` does, with HOME and the
    /// default PATH set for the user it runs as.
    public func exec(_ id: String, command: [String], tty: Bool, interactive: Bool, detach: Bool,
                     env: [String], user: String?, workdir: String?, privileged: Bool = false) throws -> Int32 {
        let c = try store.container(id)
        guard c.isRunning else { throw ContainersError.invalidState("container \(c.name) is not running: start it first") }
        guard !c.isPaused else { throw ContainersError.invalidState("container \(c.name) is paused, unpause the container before exec") }
        guard c.state.restarting != true else {
            throw ContainersError.invalidState("container \(c.name) is restarting, wait until the container is running")
        }
        let rootfs = store.rootfsPath(id)
        let bundle = "\(c.directory)/bundle/config.json"
        guard let data = FileManager.default.contents(atPath: bundle),
              let spec = try? JSONDecoder().decode(RuntimeSpec.self, from: data), var proc = spec.process else {
            throw ContainersError.invalidState("container \(c.name) has no readable runtime spec (\(bundle)): restart it")
        }
        if let user {
            proc.user = try resolveUser(user, rootfs: rootfs)
            proc.user.additionalGids = try supplementaryGroups(userSpec: user, user: proc.user, groupAdd: c.record.groupAdd ?? [], rootfs: rootfs)
        }
        var fullEnv = proc.env ?? []
        func setEnv(_ kv: String) {
            let key = kv.split(separator: "=", maxSplits: 1).first.map(String.init) ?? kv
            fullEnv.removeAll { $0 == key || $0.hasPrefix(key + "=") }
            fullEnv.append(kv)
        }
        // HOME follows the user the process runs as, unless -e gives one
        if user != nil { fullEnv.removeAll { $0.hasPrefix("HOME=") } }
        for e in env {
            if e.contains("=") { setEnv(e) } else if let v = ProcessInfo.processInfo.environment[e] { setEnv("\(e)=\(v)") }
        }
        if tty && !fullEnv.contains(where: { $0.hasPrefix("TERM=") }) { fullEnv.append("TERM=xterm") }
        proc.env = SpecGenerator.dockerEnvironment(fullEnv, uid: proc.user.uid, rootfs: rootfs)
        proc.args = command
        proc.terminal = tty
        proc.consoleSize = nil
        if let workdir { proc.cwd = workdir }
        if privileged {
            // docker's exec --privileged: every capability, whatever the container was given
            let all = hostCapabilities()
            proc.capabilities = .init(bounding: all, effective: all, permitted: all)
        }
        let processFile = "\(c.directory)/exec-\(UUID().uuidString.lowercased()).json"
        try FS.writeJSON(proc, to: processFile)
        defer { unlink(processFile) }
        let rt = try runtime(for: id)
        let args = rt.cmd("exec", ["--process", processFile] + (detach ? ["--detach"] : []) + [id])
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
