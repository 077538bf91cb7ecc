import CRuntime
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How `exec` and `run` treat the started process.
public struct ExecOptions: Sendable {
    public var consoleSocket: String?
    public var pidFile: String?
    /// Return once the process runs instead of waiting for it.
    public var detach: Bool = false
    public var preserveFDs: Int = 0
    /// Exec into a paused container too (runc's `--ignore-paused`): the process starts frozen.
    public var ignorePaused: Bool = false
    /// Sub-cgroups to join instead of the container's (`--cgroup`): controller ("" for all) -> path
    /// below the container's cgroup; see `Cgroup.joining(sub:)`.
    public var subCgroups: [String: String] = [:]
    /// File descriptors that become the process's stdin/stdout/stderr (nil: this process's).
    public var stdin: Int32?
    public var stdout: Int32?
    public var stderr: Int32?
    public init(consoleSocket: String? = nil, pidFile: String? = nil, detach: Bool = false) {
        self.consoleSocket = consoleSocket
        self.pidFile = pidFile
        self.detach = detach
    }
}

extension Runtime {
    /// Runs another process in a running container's namespaces and cgroup.
    /// Returns its exit code, or its pid with `detach`.
    public func exec(id: String, process: RuntimeSpec.Process, options: ExecOptions = ExecOptions()) throws -> Int32 {
        let r = try loadRecord(id)
        let st = status(of: r)
        if st == "paused" && !options.ignorePaused {
            throw RuntimeError(.invalidState, "cannot exec in a paused container (use --ignore-paused to override)")
        }
        guard st == "running" || st == "created" || st == "paused" else {
            throw RuntimeError(.invalidState, "cannot exec in container \"\(id)\": it is \(st)")
        }
        var cgroup = r.cgroup
        if !options.subCgroups.isEmpty {
            guard let cg = r.cgroup else { throw RuntimeError(.cgroup, "container \"\(id)\" has no cgroup; --cgroup needs one") }
            cgroup = try cg.joining(sub: options.subCgroups)
        }
        var relay: TerminalRelay?
        if process.terminal == true && options.consoleSocket == nil {
            guard !options.detach else {
                throw RuntimeError(.usage, "a terminal with --detach needs --console-socket to receive the pty master")
            }
            relay = try TerminalRelay(input: options.stdin ?? 0, output: options.stdout ?? 1)
        }
        var p = InitPlan()
        p.record(CR_MODE, InitPlan.u32(2))
        p.record(CR_CLONE_FLAGS, InitPlan.u32(0))
        for ns in r.spec.linux?.namespaces ?? [] {
            guard let (flag, name) = Kernel.namespaces[ns.type] else { continue }
            let target = "/proc/\(r.pid)/ns/\(name)"
            var a = stat(), b = stat()
            if stat(target, &a) == 0, stat("/proc/self/ns/\(name)", &b) == 0, a.st_ino == b.st_ino, a.st_dev == b.st_dev { continue }
            p.record(CR_NS_JOIN, InitPlan.u32(flag) + InitPlan.str(target))
        }
        if process.terminal == true { p.flag(CR_SETSID) }
        try Runtime.processPlan(process, seccomp: r.spec.linux?.seccomp, into: &p)
        p.finish()
        var copts = CreateOptions(consoleSocket: options.consoleSocket, pidFile: nil, preserveFDs: options.preserveFDs)
        copts.stdin = options.stdin
        copts.stdout = options.stdout
        copts.stderr = options.stderr
        copts.consoleConnection = relay?.theirs
        let pid = try launch(plan: p, options: copts, cgroup: cgroup, spec: r.spec, exec: true) { _ in r }
        if let relay {
            do { try relay.start(consoleSize: process.consoleSize) } catch {
                Glibc.kill(pid, SIGKILL); _ = waitpid(pid, nil, 0)
                throw error
            }
        }
        if let pf = options.pidFile { try Sys.writeAtomic(Sys.absolute(pf), Data("\(pid)".utf8)) }
        if options.detach { return pid }
        let code = Runtime.waitForwarding(pid)
        relay?.finish()
        return code
    }

    /// `run --detach --keep` for an engine that links this library (the container monitor):
    /// creates and starts `id` from the bundle with `stdio` as the process's stdin, stdout and
    /// stderr, and returns its pid. The init is forked from the calling process, which waits
    /// for it; a failed start leaves no container behind.
    public func startDetached(id: String, bundle: String, pidFile: String?, stdio: (Int32, Int32, Int32)) throws -> Int32 {
        var options = CreateOptions(pidFile: pidFile)
        (options.stdin, options.stdout, options.stderr) = stdio
        let bundle = Sys.absolute(bundle)
        let (spec, json) = try Runtime.bundleSpec(bundle, cdiDevices: [])
        let record = try createRecord(id: id, bundle: bundle, spec: spec, options: options, specJSON: json)
        do { try start(record: record) } catch {
            try? delete(record: record, force: true)
            throw error
        }
        trace("started")
        return record.pid
    }

    /// create + start, then (unless detached) wait for the process and delete the container
    /// (or keep its state with `keep`), like `runc run`. A terminal without `consoleSocket`
    /// is relayed to this process's stdin and stdout, as runc does in the foreground.
    public func run(id: String, bundle: String, options: CreateOptions = CreateOptions(), detach: Bool = false,
                    keep: Bool = false) throws -> Int32 {
        let bundle = Sys.absolute(bundle)
        let (spec, json) = try Runtime.bundleSpec(bundle, cdiDevices: options.cdiDevices)
        var options = options
        var relay: TerminalRelay?
        if spec.process?.terminal == true && options.consoleSocket == nil && !detach {
            relay = try TerminalRelay(input: options.stdin ?? 0, output: options.stdout ?? 1)
            options.consoleConnection = relay?.theirs
        }
        // The record stays in memory: start and delete need not read state.json back.
        let record = try createRecord(id: id, bundle: bundle, spec: spec, options: options, specJSON: json)
        do {
            try relay?.start(consoleSize: spec.process?.consoleSize)
            try start(record: record)
        } catch {
            relay?.finish()
            try? delete(record: record, force: true)
            throw error
        }
        trace("started")
        if detach { return 0 }
        let code = Runtime.waitForwarding(record.pid)
        relay?.finish()
        trace("exited")
        if !keep { try? delete(record: record, force: true) }
        trace("deleted")
        return code
    }

    /// Waits for child `pid`, passing SIGTERM, SIGINT, SIGHUP, ... on to it.
    static func waitForwarding(_ pid: Int32) -> Int32 {
        cruntime_forward_signals(pid)
        defer { cruntime_forward_signals(0) }
        var status: Int32 = 0
        while true {
            let w = waitpid(pid, &status, 0)
            if w == pid { return Sys.waitStatusCode(status) }
            if w < 0 && errno != EINTR { return 255 }
        }
    }
}
