import CRuntime
import Foundation
import SystemSupport
#if canImport(Glibc)
import Glibc
#endif

extension Runtime {
    /// Creates container `id` from the bundle: namespaces, cgroup, root
    /// filesystem and process are set up, and the process waits for `start`.
    @discardableResult
    public func create(id: String, bundle: String, options: CreateOptions = CreateOptions()) throws -> ContainerState {
        trace("create")
        try Runtime.validate(id: id)
        let bundle = Sys.absolute(bundle)
        let (spec, json) = try Runtime.bundleSpec(bundle, cdiDevices: options.cdiDevices)
        trace("spec loaded")
        let record = try createRecord(id: id, bundle: bundle, spec: spec, options: options, specJSON: json)
        return publicState(record, status: "created")
    }

    /// The bundle's config.json with the CDI devices applied, and its bytes while they still
    /// describe it (no CDI edits), which state.json then keeps as they are.
    static func bundleSpec(_ bundle: String, cdiDevices: [String]) throws -> (spec: RuntimeSpec, json: Data?) {
        var (spec, bytes) = try loadSpecAndBytes(bundle: bundle)
        guard !cdiDevices.isEmpty else { return (spec, bytes) }
        try CDIRegistry.load().apply(cdiDevices, to: &spec)
        return (spec, nil)
    }

    /// Creates a container from an in-memory spec (the bundle directory is still
    /// where relative paths such as `root.path` are resolved).
    public func create(id: String, bundle: String, spec: RuntimeSpec, options: CreateOptions) throws -> ContainerState {
        let record = try createRecord(id: id, bundle: bundle, spec: spec, options: options)
        return publicState(record, status: "created")
    }

    /// `create`, returning the record it saved (so `run` need not read it back).
    /// `specJSON`: the bytes `spec` was decoded from, if it was not changed since.
    func createRecord(id: String, bundle: String, spec: RuntimeSpec, options: CreateOptions,
                      specJSON: Data? = nil) throws -> ContainerRecord {
        try Runtime.validate(id: id)
        let bundle = Sys.absolute(bundle)
        let major = spec.ociVersion.split(separator: ".").first
        guard major == "1", spec.ociVersion.split(separator: ".").count >= 2 else {
            throw RuntimeError(.invalidSpec, "ociVersion \"\(spec.ociVersion)\" is not a runtime-spec 1.x version")
        }
        if spec.process?.terminal == true && options.consoleSocket == nil && options.consoleConnection == nil {
            throw RuntimeError(.usage, "process.terminal is true but no --console-socket was given to receive the pty master")
        }
        guard let rootPath = spec.root?.path else { throw RuntimeError(.invalidSpec, "config.json has no root.path") }
        let rootfs = rootPath.hasPrefix("/") ? Sys.lexicallyClean(rootPath) : Sys.lexicallyClean(bundle + "/" + rootPath)
        guard Sys.isDir(rootfs) else { throw RuntimeError(.invalidSpec, "root.path \(rootfs) is not a directory") }

        try Sys.mkdirAll(root, mode: 0o711)
        let cdir = dir(id)
        if mkdir(cdir, 0o711) != 0 {
            if errno == EEXIST { throw RuntimeError(.exists, "container \"\(id)\" already exists in \(root)") }
            throw RuntimeError.sys("create \(cdir)")
        }
        var cleanup: [() -> Void] = [{ Sys.removeAll(cdir) }]
        func undo() { for c in cleanup.reversed() { c() } }

        do {
            let fifo = cdir + "/exec.fifo"
            if mkfifo(fifo, 0o622) != 0 { throw RuntimeError.sys("mkfifo \(fifo)") }

            // cgroup first, so that the init is placed in it before it forks.
            var cgroup: Cgroup?
            let linux = spec.linux ?? RuntimeSpec.Linux()
            var cg: Cgroup? = try Cgroup.resolve(cgroupsPath: linux.cgroupsPath, id: id)
            trace("cgroup resolved")
            // An ordinary user without a delegated cgroup subtree runs with none, as rootless
            // podman and docker do (the engine says which limits it could not apply).
            if StatePaths.isRootless, let c = cg, !c.isCreatable { cg = nil }
            var made: Cgroup?
            if var c = cg {
                // A frozen cgroup (paused by someone else) would freeze the init as it joins.
                try c.requireThawed(for: id)
                try c.create()
                let m = c
                cleanup.append { m.destroy() }
                try m.requireThawed(for: id)
                made = m
                cg = c
            }
            let resources = linux.resources ?? RuntimeSpec.Resources()
            let applyResources: @Sendable () throws -> Void = { [made] in try made?.apply(resources) }
            cgroup = cg

            guard spec.process != nil else {
                // No process: the container exists (created) but `start` must fail.
                let record = ContainerRecord(id: id, bundle: bundle, rootfs: rootfs, pid: 0, startTime: 0,
                                             created: Runtime.now(), spec: spec, cgroup: cgroup, specJSON: specJSON)
                try saveRecord(record)
                return record
            }
            trace("cgroup ready")
            var plan = try Runtime.containerPlan(spec: spec, rootfs: rootfs, bundle: bundle, cgroup: cg,
                                                 fifo: fifo, options: options)
            var record = ContainerRecord(id: id, bundle: bundle, rootfs: rootfs, pid: 0, startTime: 0,
                                         created: Runtime.now(), spec: spec, cgroup: cgroup, specJSON: specJSON)
            plan.finish()
            let pid = try launch(plan: plan, options: options, cgroup: made, spec: spec, applyResources: applyResources) { pid in
                record.pid = pid
                record.startTime = Sys.processStat(pid)?.startTime ?? 0
                return record
            }
            trace("init ready")
            record.pid = pid
            record.startTime = Sys.processStat(pid)?.startTime ?? 0
            try saveRecord(record)
            if let pf = options.pidFile {
                try Sys.writeAtomic(Sys.absolute(pf), Data("\(pid)".utf8))
            }
            return record
        } catch {
            undo()
            throw error
        }
    }

    /// Spawns the init, feeds it the plan and serves its requests until it is ready.
    /// `recordFor` gives the state hooks see once the pid is known.
    /// `applyResources` writes the cgroup limits; it runs before the process may pass READY.
    func launch(plan: InitPlan, options: CreateOptions, cgroup: Cgroup?, spec: RuntimeSpec,
                exec: Bool = false, applyResources: (@Sendable () throws -> Void)? = nil,
                recordFor: (Int32) -> ContainerRecord) throws -> Int32 {
        var sv: [Int32] = [0, 0]
        guard cruntime_socketpair_cloexec(&sv) == 0 else { throw RuntimeError.sys("socketpair") }
        defer { close(sv[0]) }
        var consoleConn: Int32 = -1
        var plan = plan
        if let cs = options.consoleSocket {
            consoleConn = try Runtime.connectUnix(cs)
        } else if let c = options.consoleConnection {
            consoleConn = fcntl(c, F_DUPFD_CLOEXEC, 3)
            if consoleConn < 0 { throw RuntimeError.sys("dup the console connection") }
        }
        defer { if consoleConn >= 0 { close(consoleConn) } }
        let stage0: pid_t
        if let initPath {
            let sockFD = Int32(3 + options.preserveFDs)
            var fds: [Int32: Int32] = [sockFD: sv[1]]
            if let fd = options.stdin { fds[0] = fd }
            if let fd = options.stdout { fds[1] = fd }
            if let fd = options.stderr { fds[2] = fd }
            for i in 0..<options.preserveFDs { fds[Int32(3 + i)] = Int32(3 + i) }
            if consoleConn >= 0 {
                fds[sockFD + 1] = consoleConn
                plan = Runtime.withConsoleFD(plan, fd: sockFD + 1)
            }
            do {
                stage0 = try Spawn.spawn(initPath, args: ["dockbuild-init"],
                                         env: ["\(CRUNTIME_INIT_ENV)=\(sockFD)"], fds: fds)
            } catch {
                close(sv[1])
                throw error
            }
        } else {
            if consoleConn >= 0 { plan = Runtime.withConsoleFD(plan, fd: consoleConn) }
            stage0 = cruntime_fork_init(sv[1], sv[0], Int32(options.preserveFDs), options.stdin ?? -1, options.stdout ?? -1, options.stderr ?? -1)
            if stage0 < 0 { let e = errno; close(sv[1]); throw RuntimeError.sys("fork container init", e) }
        }
        close(sv[1])
        trace("forked")
        var reaped = false
        defer { if !reaped { Glibc.kill(stage0, SIGKILL); _ = waitpid(stage0, nil, 0) } }
        // The first cgroup.procs write of a run waits for an RCU grace period
        // (~15 ms on v1). Without a new cgroup namespace (whose root must be
        // the container's cgroup) the container process is attached while it
        // sets up its mounts, and before it is allowed past READY.
        let newCgroupNS = spec.linux?.namespaces?.contains { $0.type == "cgroup" && ($0.path ?? "").isEmpty } ?? false
        let deferAttach = !exec && cgroup != nil && !newCgroupNS
        if let cgroup, !deferAttach {
            try applyResources?()
            try cgroup.addProcess(stage0)
        }
        try Runtime.sendAll(sv[0], InitPlan.u32(UInt32(plan.bytes.count)) + plan.bytes)
        let attach = BackgroundWork()
        defer { _ = try? attach.wait() }

        var pid: Int32 = 0
        while true {
            guard let (tag, payload) = Runtime.readReply(sv[0]) else {
                throw RuntimeError(.system, "container init exited before it was ready (see the messages above)")
            }
            switch tag {
            case UInt8(ascii: "E"):
                if pid > 0 { Glibc.kill(pid, SIGKILL); _ = waitpid(pid, nil, 0) }
                let message = String(decoding: payload, as: UTF8.self)
                // The program of process.args cannot run: said the way runc says it, at create/exec time.
                if message.hasPrefix("exec: \"") { throw RuntimeError(.exec, message) }
                throw RuntimeError(.system, "container init: " + message)
            case UInt8(ascii: "U"):
                let p = payload.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
                try Runtime.writeIDMaps(pid: Int32(p), spec: spec)
                try Runtime.sendAck(sv[0])
            case UInt8(ascii: "P"):
                pid = Int32(bitPattern: payload.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
                if deferAttach, let cg = cgroup {
                    let p = pid
                    attach.start {
                        try applyResources?()
                        try cg.addProcess(p)
                    }
                }
                var st: Int32 = 0
                _ = waitpid(stage0, &st, 0)
                reaped = true
            case UInt8(ascii: "H"):
                do { try attach.wait() } catch {
                    Glibc.kill(pid, SIGKILL); _ = waitpid(pid, nil, 0)
                    throw error
                }
                let state = Runtime.stateJSON(publicState(recordFor(pid), status: "created"))
                do {
                    let hooks = spec.hooks
                    try Hooks.run(hooks?.prestart ?? [], state: state, kind: "prestart")
                    try Hooks.run(hooks?.createRuntime ?? [], state: state, kind: "createRuntime")
                    try Hooks.run(hooks?.createContainer ?? [], state: state, kind: "createContainer", inNamespacesOf: pid)
                } catch {
                    if pid > 0 { Glibc.kill(pid, SIGKILL); _ = waitpid(pid, nil, 0) }
                    throw error
                }
                try Runtime.sendAck(sv[0])
            case UInt8(ascii: "S"):
                // The seccomp listener (SCMP_ACT_NOTIFY rules): on to the agent with the process state.
                do {
                    let status = exec ? publicState(recordFor(pid)).status : "creating"
                    try Runtime.sendSeccompListener(from: sv[0], spec: spec, processPID: pid, record: recordFor(pid), status: status)
                } catch {
                    if pid > 0 { Glibc.kill(pid, SIGKILL); _ = waitpid(pid, nil, 0) }
                    throw error
                }
            case UInt8(ascii: "R"):
                do { try attach.wait() } catch {
                    Glibc.kill(pid, SIGKILL); _ = waitpid(pid, nil, 0)
                    throw error
                }
                let state = exec ? Data() : Runtime.stateJSON(publicState(recordFor(pid), status: "created"))
                try Runtime.sendAck(sv[0], state)
                return pid
            default:
                throw RuntimeError(.system, "container init sent an unknown reply \(tag)")
            }
        }
    }

    static func withConsoleFD(_ plan: InitPlan, fd: Int32) -> InitPlan {
        // The plan ends with an 8-byte END record; put CONSOLE_FD before it.
        var p = InitPlan()
        var bytes = plan.bytes
        bytes.removeLast(8)
        p.appendRaw(bytes)
        p.record(CR_CONSOLE_FD, InitPlan.u32(UInt32(fd)))
        p.finish()
        return p
    }

    static func connectUnix(_ path: String, what: String = "console socket") throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw RuntimeError.sys("socket") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw RuntimeError(.usage, "\(what) path is too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 { let e = errno; close(fd); throw RuntimeError.sys("connect to \(what) \(path)", e) }
        return fd
    }

    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress!.advanced(by: off), bytes.count - off) }
            if n < 0 { if errno == EINTR { continue }; throw RuntimeError.sys("send init plan") }
            off += n
        }
    }

    static func sendAck(_ fd: Int32, _ payload: Data = Data()) throws {
        var msg: [UInt8] = [UInt8(ascii: "A")]
        msg += InitPlan.u32(UInt32(payload.count))
        msg += payload
        try sendAll(fd, msg)
    }

    static func readExact(_ fd: Int32, _ n: Int) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: n)
        var off = 0
        while off < n {
            let r = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!.advanced(by: off), n - off) }
            if r < 0 { if errno == EINTR { continue }; return nil }
            if r == 0 { return nil }
            off += r
        }
        return buf
    }

    static func readReply(_ fd: Int32) -> (UInt8, [UInt8])? {
        guard let hdr = readExact(fd, 5) else { return nil }
        let len = Int(UInt32(hdr[1]) | UInt32(hdr[2]) << 8 | UInt32(hdr[3]) << 16 | UInt32(hdr[4]) << 24)
        if len == 0 { return (hdr[0], []) }
        guard let body = readExact(fd, len) else { return nil }
        return (hdr[0], body)
    }

    static func writeIDMaps(pid: Int32, spec: RuntimeSpec) throws {
        func fmt(_ m: [RuntimeSpec.IDMapping]?) -> String {
            (m ?? []).map { "\($0.containerID) \($0.hostID) \($0.size)\n" }.joined()
        }
        let uid = fmt(spec.linux?.uidMappings), gid = fmt(spec.linux?.gidMappings)
        if getuid() != 0 { try? Sys.writeFile("/proc/\(pid)/setgroups", "deny") }
        if !uid.isEmpty { try Sys.writeFile("/proc/\(pid)/uid_map", uid) }
        if !gid.isEmpty { try Sys.writeFile("/proc/\(pid)/gid_map", gid) }
    }
}

/// One blocking job on another thread, joined later (cgroup attach overlap).
final class BackgroundWork: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var error: (any Error)?
    private var pending = false

    func start(_ body: @escaping @Sendable () throws -> Void) {
        lock.lock(); pending = true; lock.unlock()
        DispatchQueue.global().async {
            var failure: (any Error)?
            do { try body() } catch { failure = error }
            self.lock.lock(); self.error = failure; self.lock.unlock()
            self.done.signal()
        }
    }

    /// Waits for the job if one was started; rethrows its error.
    func wait() throws {
        lock.lock()
        let was = pending
        pending = false
        lock.unlock()
        guard was else { return }
        done.wait()
        lock.lock(); let e = error; error = nil; lock.unlock()
        if let e { throw e }
    }
}
