import Foundation
import SystemSupport
import struct Runtime.BridgeNetwork
import struct Runtime.RootlessNetwork
import struct Runtime.Runtime
import struct Runtime.RuntimeError

/// The per-container monitor (podman's conmon role). It is the `dockbuild` binary re-executed
/// in its own session: it mounts the rootfs, sets up the network, runs the OCI runtime in the
/// foreground, holds the container's stdio (pipes or a pty), writes the JSON-lines log, serves
/// attach clients on a unix socket, runs the port forwarders, and records the exit code and
/// OOM kill when the container ends. It outlives the CLI that started it.
public final class Monitor: @unchecked Sendable {
    let manager: ContainerManager
    let id: String
    var record: ContainerRecord
    let dir: String
    let clients = Locked<[Int32]>([])
    var ptyMaster: Int32 = -1
    let stdinFD = Locked<Int32>(-1)
    var log: RotatingLog?
    var readyFD: Int32

    init(manager: ContainerManager, id: String, readyFD: Int32) throws {
        self.manager = manager
        self.id = id
        self.record = try manager.store.record(id)
        self.dir = manager.store.directory(id)
        self.readyFD = readyFD
    }

    /// Entry point of `dockbuild container-monitor`; returns the process exit status.
    public static func main(root: String, id: String, waitAttach: Bool, readyFD: Int32) -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        signal(SIGHUP, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        do {
            let m = try Monitor(manager: try ContainerManager(root: root), id: id, readyFD: readyFD)
            return m.run(waitAttach: waitAttach)
        } catch {
            report(readyFD, "error: \(error)")
            return 1
        }
    }

    static func report(_ fd: Int32, _ line: String) {
        guard fd >= 0 else { return }
        _ = Sock.writeAll(fd, Data((line + "\n").utf8))
    }

    private func ready(_ line: String, close done: Bool) {
        Self.report(readyFD, line)
        if done && readyFD >= 0 { close(readyFD); readyFD = -1 }
    }

    // MARK: - run

    // What one monitor holds while the container lives (the monitor is single-purpose: these
    // are set by `prepare` and released by `teardown`).
    var net: BridgeNetwork?
    /// The record's `moreNetworks` joined: network name -> (bridge, address).
    var more: [String: (BridgeNetwork, String)] = [:]
    /// An ordinary user's `bridge`: a namespace connected by pasta, which also publishes the ports.
    var rootlessNet: RootlessNetwork?
    var ip = ""
    var forwarders: [PortForwarder] = []
    var bound: [PortBinding] = []
    var runtimePid: pid_t = 0
    /// With the runtime run in this process (`startInProcess`): the container's pid, 0 when
    /// it could not start; nil with a runtime process.
    var inProcessPid: pid_t?
    var listenFD: Int32 = -1
    /// The embedded DNS server at 127.0.0.11 (containers on user-defined networks).
    var dns: EmbeddedDNS?

    func run(waitAttach: Bool) -> Int32 {
        let runtime: OCIRuntime
        do { runtime = try OCIRuntime(storeRoot: manager.root) } catch { fail("\(error)"); return 1 }
        log = RotatingLog(path: "\(dir)/container.log", config: LogConfig(record: record))
        do {
            let (firstClient, size) = try prepare(runtime: runtime, waitAttach: waitAttach)
            return try runLoop(runtime: runtime, firstClient: firstClient, size: size)
        } catch {
            if runtimePid > 0 { _ = kill(runtimePid, SIGKILL); _ = Shell.wait(runtimePid) }
            runtime.delete(id)
            teardown()
            if listenFD >= 0 { unlink("\(dir)/attach.sock") }
            finish(exitCode: 125, oom: false, error: "\(error)", clientsToo: true, remove: record.autoRemove)
            fail("\(error)")
            return 1
        }
    }

    /// Releases what `prepare` set up: the network, the port forwarders, the root file system
    /// and a shareable /dev/shm.
    private func teardown() {
        dns?.stop()
        dns = nil
        if let net { net.detach(containerID: id); if !ip.isEmpty { net.release(ip: ip, containerID: id) } }
        for (n, address) in more.values { n.release(ip: address, containerID: id) }
        more = [:]
        if rootlessNet != nil { RootlessNetwork.remove(id: id) }
        for f in forwarders { close(f.fd) }
        let rootfs = manager.store.rootfsPath(id)
        FS.unmount(rootfs)
        rmdir(rootfs)
        FS.unmount("\(dir)/shm")
        // volumes made with --opt: the last running container using one unmounts it
        let mounted = record.mounts.filter { $0.type == .volume && (try? manager.volumes.inspect($0.source))?.options != nil }
        if !mounted.isEmpty {
            let inUse = Set(manager.store.list().filter { $0.id != id && $0.isRunning }
                .flatMap { $0.record.mounts.filter { $0.type == .volume }.map(\.source) })
            for m in mounted where !inUse.contains(m.source) { manager.volumes.release(m.source) }
        }
    }

    /// Everything before the first run of the process: what a previous run left, the root file
    /// system, the network and /etc files, the port forwarders, the attach socket (and, for an
    /// attached start, the first client with its terminal size), the working directory, the
    /// namespaces to join and the bundle's spec.
    private func prepare(runtime: OCIRuntime, waitAttach: Bool) throws -> (firstClient: Int32, size: (UInt, UInt)?) {
        // what a previous run left, under the runtime that ran it, then under this one
        if let old = try? manager.runtime(for: id), old.command != runtime.command { old.delete(id) }
        runtime.delete(id)
        try manager.store.updateState(id) { $0.ociRuntime = runtime.command }
        let rootfs = try manager.mountRootfs(record)
        let nsPath = try joinNetwork()
        try joinMoreNetworks()
        try startDNS(netns: nsPath)
        try writeEtcFiles(ip: ip, gateway: net?.gateway ?? "")
        if let rootlessNet {
            bound = rootlessNet.forwards.map { PortBinding(hostIP: $0.hostIP, hostPort: $0.hostPort, containerPort: $0.containerPort, proto: $0.proto) }
        } else if net != nil {
            for b in manager.portRequests(record) {
                let f = try PortForwarder(b, target: ip)
                forwarders.append(f)
                bound.append(f.binding)
            }
        }
        listenFD = try Sock.unixListen("\(dir)/attach.sock")
        let (firstClient, size) = waitAttach ? awaitFirstClient() : (-1, nil)
        try manager.makeWorkingDirectory(record, rootfs: rootfs)
        let (peers, shmSource) = try namespacePeers()
        let spec = try ContainerSpec.build(record, dir: dir, rootfs: rootfs, netnsPath: nsPath, volumes: manager.volumes,
                                           initPath: manager.initBinary(record), consoleSize: size, peers: peers, shmSource: shmSource)
        try FS.mkdirs("\(dir)/bundle")
        try FS.writeJSON(spec, to: "\(dir)/bundle/config.json", durable: false)
        return (firstClient, size)
    }

    /// `--network`: an address on the bridge, or another container's namespace; returns the
    /// network namespace to join (nil: the container's own, or the host's).
    private func joinNetwork() throws -> String? {
        switch record.network {
        case "bridge" where StatePaths.isRootless:
            let forwards = manager.portRequests(record).map {
                RootlessNetwork.Forward(hostIP: $0.hostIP, hostPort: $0.hostPort, containerPort: $0.containerPort, proto: $0.proto)
            }
            let n = try RootlessNetwork.create(id: id, forwards: forwards)
            rootlessNet = n
            return n.namespacePath
        case "bridge":
            let n = try BridgeNetwork.current()
            net = n
            ip = try n.allocate(containerID: id, holderPid: getpid())
            return try n.attach(containerID: id, ip: ip)
        case "none", "host":
            return nil
        default:
            guard record.network.hasPrefix("container:") else {
                // a user-defined network: its own bridge and /24
                let n: BridgeNetwork
                do { n = try manager.networks.inspect(record.network).bridgeNetwork } catch {
                    throw ContainersError.network("network \(record.network) of container \(record.name) is gone: create it again (`dockbuild network create \(record.network)`) or recreate the container")
                }
                net = n
                ip = try n.allocate(containerID: id, holderPid: getpid())
                return try n.attach(containerID: id, ip: ip)
            }
            let other = try manager.store.lookup(String(record.network.dropFirst(10)))
            guard other.isRunning else { throw ContainersError.invalidState("--network \(record.network): that container is not running") }
            return "/proc/\(other.state.pid)/ns/net"
        }
    }

    /// A container on a user-defined network gets the embedded DNS server at 127.0.0.11 in its
    /// network namespace (docker's), answering the names its /etc/hosts gets.
    private func startDNS(netns: String?) throws {
        guard let netns, !manager.userNetworks(record).isEmpty else { return }
        let upstreams = EmbeddedDNS.upstreams(dns: record.dns ?? [])
        let (m, r) = (manager, record)
        dns = try EmbeddedDNS.start(netns: netns, hostsPath: "\(dir)/hosts", upstreams: upstreams) { m.allNetworkPeers(r) }
    }

    /// The record's other user-defined networks: eth1, eth2, ... in name order.
    private func joinMoreNetworks() throws {
        for (i, name) in (record.moreNetworks ?? [:]).keys.sorted().enumerated() {
            let n: BridgeNetwork
            do { n = try manager.networks.inspect(name).bridgeNetwork } catch {
                throw ContainersError.network("network \(name) of container \(record.name) is gone: create it again (`dockbuild network create \(name)`) or recreate the container")
            }
            let address = try n.allocate(containerID: id, holderPid: getpid())
            more[name] = (n, address)
            try n.attachMore(containerID: id, ip: address, interface: "eth\(i + 1)")
        }
    }

    /// An attached start: tells the CLI the socket listens and takes its connection (30 s at
    /// most), with the terminal size it sends first for a tty.
    private func awaitFirstClient() -> (Int32, (UInt, UInt)?) {
        ready("listening", close: false)
        var pfd = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, 30_000) > 0 else { return (-1, nil) }
        let client = Sys.acceptCloexec(listenFD)
        var size: (UInt, UInt)?
        if client >= 0, record.tty, let (k, p) = AttachFrame.read(client), k == .resize, p.count == 4 {
            size = (UInt(UInt16(p[p.startIndex]) << 8 | UInt16(p[p.startIndex + 1])),
                    UInt(UInt16(p[p.startIndex + 2]) << 8 | UInt16(p[p.startIndex + 3])))
        }
        return (client, size)
    }

    /// `--ipc`/`--pid container:NAME` (that container's init, which must be running) and a
    /// shareable /dev/shm: the pids to join by namespace type, and the /dev/shm to bind.
    private func namespacePeers() throws -> (peers: [String: Int32], shmSource: String?) {
        var peers: [String: Int32] = [:]
        var shmSource: String?
        for (type, mode) in [("ipc", record.ipcMode), ("pid", record.pidMode)] {
            guard let mode, mode.hasPrefix("container:") else { continue }
            let other = try manager.store.lookup(String(mode.dropFirst(10)))
            guard other.isRunning, other.state.pid > 0 else {
                throw ContainersError.invalidState("--\(type) \(mode): that container is not running")
            }
            if type == "ipc" {
                guard other.record.ipcMode == "shareable" else { throw ContainersError.invalidArgument(ContainerManager.notShareable(mode)) }
                shmSource = "\(other.directory)/shm"
            }
            peers[type] = other.state.pid
        }
        // --ipc shareable: /dev/shm is a tmpfs on the host side, which joiners bind too (docker's way)
        if record.ipcMode == "shareable" {
            let shm = "\(dir)/shm"
            try FS.mkdirs(shm)
            if !FS.isMountPoint(shm) {
                let opts = "mode=1777,size=\(record.shmSize ?? 67_108_864)"
                guard Glibc.mount("shm", shm, "tmpfs", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), opts) == 0 else {
                    throw ContainersError.system("cannot mount the container's shareable /dev/shm at \(shm)", errno: errno)
                }
            }
            shmSource = shm
        }
        return (peers, shmSource)
    }

    /// Runs the container's process, once, or again and again as a `--restart` policy asks;
    /// returns the monitor's exit status.
    private func runLoop(runtime: OCIRuntime, firstClient: Int32, size: (UInt, UInt)?) throws -> Int32 {
        var restarts = 0
        var delay: UInt32 = 100_000
        while true {
            let first = restarts == 0
            let pidFile = "\(dir)/bundle/pid"
            unlink(pidFile)
            inProcessPid = nil
            // the first client gets the output from the first byte (a container started in this
            // process can write before the readers below start); its input once stdin exists
            if first && firstClient >= 0 { clients.withLock { $0.append(firstClient) } }
            let readers: [(Int32, String)]
            do { readers = try spawnRuntime(runtime, pidFile: pidFile, size: size) } catch {
                if first && firstClient >= 0 { clients.withLock { $0.removeAll { $0 == firstClient } } }
                throw error
            }
            let group = DispatchGroup()
            for (fd, stream) in readers {
                group.enter()
                let t = Thread { [self] in pumpOutput(fd, stream: stream); group.leave() }
                t.start()
            }
            if first && firstClient >= 0 { addClient(firstClient, listed: true) }

            // (the runtime in this process knows the pid, or failed with the runtime's status)
            let (pid, early) = inProcessPid.map { ($0, $0 > 0 ? nil : 1) } ?? waitForPid(pidFile)
            if pid == 0 {
                startFailed(runtime, early: early, output: group)
                return 1
            }
            let cg = Self.cgroupPaths(pid)
            let startedAt = Date()
            try markRunning(pid: pid, cgroups: cg, restarts: restarts, first: first)
            manager.event("start", record)
            let health = HealthMonitor.start(manager: manager, record: record)
            if first { serveClients() }

            // (a runtime reaped while its pid file was awaited: its status is the container's)
            let status = early ?? Shell.wait(runtimePid)
            health?.stop()
            runtimePid = 0
            let drained = group.wait(timeout: .now() + 5) == .success
            if record.tty && ptyMaster >= 0 && drained {
                stdinFD.withLock { $0 = -1 }
                close(ptyMaster); ptyMaster = -1
            }
            let oom = Self.oomKilled(cg) || (status == 137 && Self.memoryFailed(cg))
            runtime.delete(id)

            // --restart: the policy, unless `stop` (or kill, rm -f) asked for the end
            if shouldRestart(status: status, restarts: restarts) {
                // a process that ran a while starts the back-off again, as docker's
                if Date().timeIntervalSince(startedAt) >= 10 { delay = 100_000 }
                if try waitToRestart(status: status, oom: oom, delay: delay) {
                    delay = min(delay * 2, 60_000_000)
                    restarts += 1
                    continue
                }
            }
            unlink("\(dir)/attach.sock")
            teardown()
            finish(exitCode: status, oom: oom, error: "", clientsToo: true, remove: record.autoRemove)
            for n in manager.userNetworks(record) { manager.refreshNetworkHosts(n) }
            return 0
        }
    }

    /// Starts the OCI runtime's `run` with the container's stdio: a pty for `-t`, else pipes
    /// (stdin only for `-i`). Returns the descriptors to copy out, with their stream names.
    private func spawnRuntime(_ runtime: OCIRuntime, pidFile: String, size: (UInt, UInt)?) throws -> [(Int32, String)] {
        let args = runtime.runArgs(id: id, bundle: "\(dir)/bundle", pidFile: pidFile)
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devnull) }
        if record.tty {
            let (m, slave) = try Self.openPTY()
            ptyMaster = m
            if let size { Self.setSize(m, rows: size.0, cols: size.1) }
            var spawnOpts = Shell.SpawnOptions(fds: [])
            spawnOpts.controllingTTY = slave
            stdinFD.withLock { $0 = m }
            runtimePid = try Shell.spawn(args, spawnOpts)
            return [(m, "stdout")]
        }
        guard let op = Sys.pipeCloexec(), let ep = Sys.pipeCloexec(), let ip2 = Sys.pipeCloexec() else {
            throw ContainersError.system("pipe", errno: errno)
        }
        let o = [op.0, op.1], e = [ep.0, ep.1], i = [ip2.0, ip2.1]
        var inRead = devnull
        if record.openStdin { inRead = i[0]; stdinFD.withLock { $0 = i[1] } } else { close(i[0]); close(i[1]) }
        defer { close(o[1]); close(e[1]); if record.openStdin { close(i[0]) } }
        if let rt = runtime.library {
            startInProcess(rt, pidFile: pidFile, stdio: (inRead, o[1], e[1]))
            return [(o[0], "stdout"), (e[0], "stderr")]
        }
        var spawnOpts = Shell.SpawnOptions(fds: [inRead, o[1], e[1]])
        spawnOpts.newSession = true
        runtimePid = try Shell.spawn(args, spawnOpts)
        return [(o[0], "stdout"), (e[0], "stderr")]
    }

    /// dockbuild's own runtime, run in this process instead of as `dockbuild runtime run
    /// --keep` (a third process of the 110 MB binary on every start, issue #19): the same
    /// create and start of the Runtime library, the same state files and pid file, with the
    /// container's init forked from here (its stage 0 resets the signals this process ignores
    /// and starts its own session). `runtimePid` is then the container's init, a child of this
    /// process, whose status is the container's. A failure is written to the container's
    /// stderr as the runtime's process wrote it, and `inProcessPid` is 0.
    private func startInProcess(_ rt: Runtime, pidFile: String, stdio: (Int32, Int32, Int32)) {
        do {
            let pid = try rt.startDetached(id: id, bundle: "\(dir)/bundle", pidFile: pidFile, stdio: stdio)
            runtimePid = pid
            inProcessPid = pid
        } catch {
            let message = (error as? RuntimeError)?.message ?? "\(error)"
            _ = Sock.writeAll(stdio.2, Data("dockbuild runtime: \(message)\n".utf8))
            unlink(pidFile)
            inProcessPid = 0
        }
    }

    /// The container's pid from the runtime's pid file, or the runtime's early exit status.
    /// Polled every millisecond for the first half second (a container starts in about 15 ms,
    /// and a 10 ms step added 5 ms to every `run` on average), every 10 ms after that, for 30
    /// seconds at most.
    /// When the runtime has exited already (a process that ran and ended between two looks),
    /// `early` is its status: with a pid, the container's exit status; without, the start failed.
    private func waitForPid(_ pidFile: String) -> (pid: Int32, early: Int32?) {
        func readPid() -> Int32? {
            guard let s = try? String(contentsOfFile: pidFile, encoding: .utf8) else { return nil }
            return Int32(s.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let waitStart = Time.monotonic()
        while Time.monotonic() - waitStart < 30 {
            if let p = readPid() { return (p, nil) }
            var st: Int32 = 0
            if waitpid(runtimePid, &st, WNOHANG) == runtimePid {
                // the pid file may have come between the two looks: the process ran
                return (readPid() ?? 0, (st & 0x7f == 0) ? (st >> 8) & 0xff : 128 + (st & 0x7f))
            }
            usleep(Time.monotonic() - waitStart < 0.5 ? 1_000 : 10_000)
        }
        return (0, nil)
    }

    /// The runtime exited (or hung) before the process ran: records the failure, with 127 (not
    /// found) or 126 (not executable) for a program that cannot run, as docker.
    private func startFailed(_ runtime: OCIRuntime, early: Int32?, output: DispatchGroup) {
        var early = early
        if early == nil { _ = kill(runtimePid, SIGKILL); early = Shell.wait(runtimePid) }
        runtimePid = 0
        _ = output.wait(timeout: .now() + 2)
        let msg = lastLogLines()
        runtime.delete(id)
        teardown()
        if listenFD >= 0 { unlink("\(dir)/attach.sock") }
        // record (and for --rm remove) first: the CLI returns as soon as it reads the error
        finish(exitCode: ExecFailure.exitCode(msg) ?? 127, oom: false, error: msg, clientsToo: true, remove: record.autoRemove)
        fail("the OCI runtime could not start the container (exit \(early ?? -1)): \(msg)")
    }

    /// Records the running process in the container's state.
    private func markRunning(pid: Int32, cgroups: [String: String], restarts: Int, first: Bool) throws {
        let mac = net?.macAddress(containerID: id) ?? ""
        let gw = net?.gateway ?? ""
        let me = getpid()
        let (ip, bound) = (ip, bound)
        let moreIPs = more.mapValues(\.1)
        try manager.store.updateState(id) { s in
            s.status = .running; s.pid = pid; s.monitorPid = me
            s.monitorStartTime = ContainerStore.processStartTime(me) ?? 0
            s.exitCode = 0; s.oomKilled = false; s.error = ""
            s.startedAt = Time.now(); s.ipAddress = ip; s.gateway = gw; s.macAddress = mac
            s.moreIPs = moreIPs.isEmpty ? nil : moreIPs
            s.ports = bound; s.cgroupPaths = cgroups
            s.restartCount = restarts; s.restarting = nil
            if first { s.manuallyStopped = nil }
        }
        // the other containers of its user-defined networks learn its name (and it theirs)
        for n in manager.userNetworks(record) { manager.refreshNetworkHosts(n) }
    }

    /// After the first start: the port forwarders run, the CLI is told, and attach clients are
    /// accepted for the rest of the container's life.
    private func serveClients() {
        for f in forwarders { f.start() }
        ready("ok", close: true)
        let lfd = listenFD
        let acceptThread = Thread { [self] in
            while true {
                let c = Sys.acceptCloexec(lfd)
                if c < 0 { if errno == EINTR { continue }; return }
                addClient(c)
            }
        }
        acceptThread.start()
    }

    /// Between two runs of a restart policy: docker's "restarting" state for `delay`
    /// microseconds; false when `stop` (or kill, rm -f) asked for the end meanwhile.
    private func waitToRestart(status: Int32, oom: Bool, delay: UInt32) throws -> Bool {
        manager.event("die", (try? manager.store.record(id)) ?? record, ["exitCode": String(status)])
        notifyExit(status)
        try manager.store.updateState(id) { s in
            s.exitCode = status; s.oomKilled = oom; s.pid = 0; s.finishedAt = Time.now()
            s.restarting = true
        }
        var waited: UInt32 = 0
        while waited < delay && !stopRequested() {
            usleep(50_000); waited += 50_000
        }
        return !stopRequested()
    }

    private func fail(_ message: String) {
        ready("error: \(message)", close: true)
    }

    private func finish(exitCode: Int32, oom: Bool, error: String, clientsToo: Bool, remove: Bool = false) {
        // (the record as it is now: a rename since the start shows)
        let now = (try? manager.store.record(id)) ?? record
        if oom { manager.event("oom", now) }
        manager.event("die", now, ["exitCode": String(exitCode)])
        _ = try? manager.store.updateState(id) { s in
            s.status = .exited; s.exitCode = exitCode; s.oomKilled = oom; s.pid = 0
            s.finishedAt = Time.now(); s.error = error; s.ipAddress = ""; s.ports = []; s.moreIPs = nil
            s.restarting = nil
        }
        // `run --rm` returns once the container is gone, so remove it before reporting the exit
        if remove { try? manager.removeFiles(record) }
        let frame = AttachFrame.encode(.exit, Data(String(exitCode).utf8))
        for c in clients.withLock({ l in defer { l = [] }; return l }) {
            _ = Sock.writeAll(c, frame)
            shutdown(c, Int32(SHUT_RDWR))
            close(c)
        }
    }

    /// Whether `stop`, `kill` or `rm -f` asked the container to end (which disables `--restart`), or it is gone.
    private func stopRequested() -> Bool {
        guard (try? manager.store.record(id)) != nil else { return true }
        return manager.store.rawState(id).manuallyStopped == true
    }

    /// docker's rules: always and unless-stopped restart whatever the status, on-failure[:N] a
    /// non-zero one (at most N times when N > 0); none after a stop.
    private func shouldRestart(status: Int32, restarts: Int) -> Bool {
        // read again: `update --restart` may have changed it
        guard let policy = (try? manager.store.record(id))?.restartPolicy, !stopRequested() else { return false }
        switch policy.name {
        case "always", "unless-stopped": return true
        case "on-failure": return status != 0 && (policy.maximumRetryCount == 0 || restarts < policy.maximumRetryCount)
        default: return false
        }
    }

    /// Tells the attached clients that the process exited (the container restarts without them).
    private func notifyExit(_ exitCode: Int32) {
        let frame = AttachFrame.encode(.exit, Data(String(exitCode).utf8))
        for c in clients.withLock({ l in defer { l = [] }; return l }) {
            _ = Sock.writeAll(c, frame)
            shutdown(c, Int32(SHUT_RDWR))
            close(c)
        }
    }

    private func lastLogLines() -> String {
        guard let d = FileManager.default.contents(atPath: "\(dir)/container.log") else { return "" }
        let lines = String(decoding: d, as: UTF8.self).split(separator: "\n").suffix(5)
        return lines.compactMap { LogReader.decode(String($0))?.text }.joined().trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: - /etc files

    private func writeEtcFiles(ip: String, gateway: String) throws {
        // docker's default entries, the --add-host ones (and compose's peers), its own address
        // (on a user-defined network, the names of the containers running on it)
        let peers = manager.allNetworkPeers(record, excluding: id)
        let hosts = EtcFiles.hosts(record, extraHosts: (record.extraHosts ?? []) + peers, gateway: gateway, ownIP: ip)
        try FS.writeAtomic(Data(hosts.utf8), to: "\(dir)/hosts", durable: false)
        try FS.writeAtomic(Data((record.hostname + "\n").utf8), to: "\(dir)/hostname", durable: false)
        let host = (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? ""
        // (a container joining one of a user-defined network's uses that one's server, as docker)
        var embedded = dns != nil
        if record.network.hasPrefix("container:"), let other = try? manager.store.lookup(String(record.network.dropFirst(10))),
           !manager.userNetworks(other.record).isEmpty {
            embedded = true
        }
        let resolv = embedded
            ? EtcFiles.embeddedResolvConf(host: host, search: record.dnsSearch ?? [], options: record.dnsOptions ?? [])
            : EtcFiles.resolvConf(host: host, dns: record.dns ?? [], search: record.dnsSearch ?? [], options: record.dnsOptions ?? [],
                                  dropLoopback: record.network != "host")
        try FS.writeAtomic(Data(resolv.utf8), to: "\(dir)/resolv.conf", durable: false)
    }

    // MARK: - stdio

    private func addClient(_ c: Int32, listed: Bool = false) {
        if !listed { clients.withLock { $0.append(c) } }
        let t = Thread { [self] in
            while let (kind, payload) = AttachFrame.read(c) {
                switch kind {
                case .stdin:
                    let fd = stdinFD.current
                    if fd >= 0 { _ = Sock.writeAll(fd, payload) }
                case .resize:
                    if ptyMaster >= 0, payload.count == 4 {
                        let b = [UInt8](payload)
                        Self.setSize(ptyMaster, rows: UInt(UInt16(b[0]) << 8 | UInt16(b[1])), cols: UInt(UInt16(b[2]) << 8 | UInt16(b[3])))
                    }
                case .stdinClose:
                    if !record.tty { stdinFD.withLock { if $0 >= 0 { close($0); $0 = -1 } } }
                default: break
                }
            }
            // client went away (detach): keep the container running
            let stillListed = clients.withLock { l -> Bool in
                guard let i = l.firstIndex(of: c) else { return false }
                l.remove(at: i); return true
            }
            if stillListed { close(c) }
        }
        t.start()
    }

    private func pumpOutput(_ fd: Int32, stream: String) {
        var buf = [UInt8](repeating: 0, count: 32768)
        var pending = Data()
        let kind: AttachFrame = stream == "stderr" ? .stderr : .stdout
        while true {
            let n = read(fd, &buf, buf.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            let chunk = Data(buf[0..<n])
            let frame = AttachFrame.encode(kind, chunk)
            for c in clients.current { _ = Sock.writeAll(c, frame) }
            pending.append(chunk)
            while let nl = pending.firstIndex(of: 10) {
                writeLog(pending[pending.startIndex...nl], stream: stream)
                pending = Data(pending[(nl + 1)...])
            }
            if pending.count >= 16384 { writeLog(pending, stream: stream); pending = Data() }
        }
        if !pending.isEmpty { writeLog(pending, stream: stream) }
        if fd != ptyMaster { close(fd) }
    }

    private func writeLog(_ d: Data, stream: String) {
        guard let log else { return }
        log.write(LogReader.encode(text: String(decoding: d, as: UTF8.self), stream: stream, time: Time.now()))
    }

    // MARK: - pty and cgroups

    static func openPTY() throws -> (Int32, String) {
        let m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard m >= 0 else { throw ContainersError.system("cannot allocate a pseudo-terminal", errno: errno) }
        var unlock: Int32 = 0
        var n: UInt32 = 0
        guard ioctl(m, Sys.TIOCSPTLCK, &unlock) == 0, ioctl(m, Sys.TIOCGPTN, &n) == 0 else {
            let e = errno; close(m)
            throw ContainersError.system("cannot unlock the pseudo-terminal", errno: e)
        }
        return (m, "/dev/pts/\(n)")
    }

    static func setSize(_ fd: Int32, rows: UInt, cols: UInt) {
        var ws = winsize(ws_row: UInt16(truncatingIfNeeded: rows), ws_col: UInt16(truncatingIfNeeded: cols), ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(fd, UInt(TIOCSWINSZ), &ws)
    }

    /// controller -> cgroup path of a process ("" key for the v2 unified hierarchy).
    static func cgroupPaths(_ pid: Int32) -> [String: String] {
        guard let text = FS.readFile("/proc/\(pid)/cgroup") else { return [:] }
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard f.count == 3 else { continue }
            for c in f[1].split(separator: ",") { out[String(c)] = String(f[2]) }
            if f[1].isEmpty { out[""] = String(f[2]) }
        }
        return out
    }

    static func cgroupFile(_ cg: [String: String], controller: String, file: String) -> String? {
        if let p = cg[controller], FS.exists("/sys/fs/cgroup/\(controller)\(p)/\(file)") { return "/sys/fs/cgroup/\(controller)\(p)/\(file)" }
        if let p = cg[""], FS.exists("/sys/fs/cgroup\(p)/\(file)") { return "/sys/fs/cgroup\(p)/\(file)" }
        return nil
    }

    static func oomKilled(_ cg: [String: String]) -> Bool {
        for file in ["memory.oom_control", "memory.events"] {
            if let p = cgroupFile(cg, controller: "memory", file: file), let t = FS.readFile(p) {
                for line in t.split(separator: "\n") where line.hasPrefix("oom_kill ") {
                    if let n = Int(line.dropFirst(9).trimmingCharacters(in: .whitespaces)), n > 0 { return true }
                }
            }
        }
        return false
    }

    static func memoryFailed(_ cg: [String: String]) -> Bool {
        if let p = cgroupFile(cg, controller: "memory", file: "memory.failcnt"), let t = FS.readFile(p),
           let n = Int(t.trimmingCharacters(in: .whitespacesAndNewlines)) { return n > 0 }
        return false
    }
}
