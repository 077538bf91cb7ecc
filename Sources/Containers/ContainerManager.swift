import Archive
import Foundation
import SystemSupport
import struct Runtime.BridgeNetwork
import ImageStore
import OCI
import Runtime

/// The container lifecycle without a daemon: every operation reads and writes the state under
/// the store root, and running containers are held by their monitor processes.
public final class ContainerManager: Sendable {
    public let root: String
    public let store: ContainerStore
    public let volumes: VolumeStore

    public init(root: String) throws {
        let root = ImageStore.absolute(root)
        self.root = root
        store = try ContainerStore(root: root)
        volumes = VolumeStore(root: root)
    }

    /// The image store (opened per use: an open store holds gc's shared lock).
    public func images() throws -> ImageStore { try ImageStore(root: root) }

    /// The OCI runtime for new containers (`$DOCKBUILD_OCI_RUNTIME`, or dockbuild's own).
    public func runtime() throws -> OCIRuntime { try OCIRuntime(storeRoot: root) }

    /// The OCI runtime container `id` was started with.
    public func runtime(for id: String) throws -> OCIRuntime {
        try OCIRuntime(storeRoot: root, recorded: store.state(id).ociRuntime)
    }

    // MARK: - create

    /// Creates a container from an image in the store and flags (`ImagePull.ensure` fetches a
    /// missing image first, as `--pull` asks).
    public func create(_ o: CreateOptions) throws -> ContainerRecord {
        let imgStore = try images()
        let image: Image
        let wanted: Platform?
        do { wanted = try o.platform.map { try Platform(parsing: $0) } } catch {
            throw ContainersError.invalidArgument("--platform \(o.platform ?? ""): \(error)")
        }
        do { image = try imgStore.image(o.image, platform: wanted ?? .host) } catch let e as ImageStoreError {
            if case .imageNotFound = e {
                let pull = wanted.map { "dockbuild pull --platform \($0) \(o.image)" } ?? "dockbuild pull \(o.image)"
                throw ContainersError.invalidArgument("image \(o.image) is not in the store\(wanted.map { " for \($0)" } ?? ""): pull it (`\(pull)`), build it, or drop --pull never")
            }
            throw e
        }
        if let wanted, !wanted.matches(image.platform) {
            // docker's refusal of a stored image of another platform
            throw ContainersError.invalidArgument("image \(o.image) was found but does not match the specified platform: wanted \(wanted), actual: \(image.platform) (pull it with `dockbuild pull --platform \(wanted) \(o.image)`)")
        }
        let id = ContainerStore.newID()
        let name: String
        if let n = o.name {
            let clean = n.hasPrefix("/") ? String(n.dropFirst()) : n
            guard ContainerStore.validName(clean) else {
                throw ContainersError.invalidArgument("--name \"\(n)\": use two or more letters, digits, _ . - (starting with a letter or digit)")
            }
            if let other = store.nameInUse(clean) { throw ContainersError.nameInUse(clean, id: other) }
            name = clean
        } else {
            name = store.generateName()
        }
        guard ["bridge", "host", "none"].contains(o.network) || o.network.hasPrefix("container:") || (try? networks.inspect(o.network)) != nil else {
            throw ContainersError.invalidArgument("--network \(o.network): use bridge, host, none, container:NAME or a network of `dockbuild network create`")
        }
        for n in o.moreNetworks.keys.sorted() {
            guard o.network == "bridge" || isUserNetwork(o.network), isUserNetwork(n), n != o.network, (try? networks.inspect(n)) != nil else {
                throw ContainersError.invalidArgument("network \(n): a container joins more networks only when they are user-defined (`dockbuild network create`), other than its first one (\(o.network)), which is bridge or user-defined")
            }
        }
        if !o.networkAliases.isEmpty, !isUserNetwork(o.network) {
            throw ContainersError.invalidArgument("--network-alias needs a user-defined network (`dockbuild network create`); --network is \(o.network)")
        }
        if o.network == "bridge", StatePaths.isRootless, let why = RootlessNetwork.unavailableReason() {
            throw ContainersError.invalidArgument("an ordinary user's --network bridge is a network namespace connected by pasta, "
                + "and \(why); or run with --network none or --network host (see docs/rootless.md)")
        }
        if let gpus = o.gpus { _ = try ContainerSpec.gpuRequests(gpus) }
        if !o.cdiDevices.isEmpty { _ = try ContainerSpec.cdiRegistry(for: o.cdiDevices) }
        let security = try SecurityOptions(o.securityOpt)
        var seccompProfile: Data?
        if case let .profile(path) = security.seccomp {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ContainersError.invalidArgument("--security-opt seccomp=\(path): cannot read the file; give a seccomp profile (JSON) such as /usr/share/containers/seccomp.json, or seccomp=unconfined")
            }
            seccompProfile = data
        }
        let ic = image.config.config ?? ContainerConfig()
        // environment: image first, flags override by key
        var env = ic.env ?? ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        func setEnv(_ kv: String) {
            let key = kv.split(separator: "=", maxSplits: 1).first.map(String.init) ?? kv
            env.removeAll { $0 == key || $0.hasPrefix(key + "=") }
            env.append(kv)
        }
        let ipcMode = try FlagValue.namespaceMode(o.ipcMode, flag: "--ipc", modes: ["host", "none", "shareable"], container: true)
        let pidMode = try FlagValue.namespaceMode(o.pidMode, flag: "--pid", modes: ["host"], container: true)
        let utsMode = try FlagValue.namespaceMode(o.utsMode, flag: "--uts", modes: ["host"], container: false)
        for (flag, mode) in [("--ipc", ipcMode), ("--pid", pidMode)] {
            guard let mode, mode.hasPrefix("container:") else { continue }
            let other: Container
            do { other = try store.lookup(String(mode.dropFirst(10))) } catch {
                throw ContainersError.invalidArgument("\(flag) \(mode): \(error)")
            }
            if flag == "--ipc" && other.record.ipcMode != "shareable" { throw ContainersError.invalidArgument(Self.notShareable(mode)) }
        }
        if utsMode == "host", o.hostname != nil {
            throw ContainersError.invalidArgument("--hostname and --uts host conflict: with the host's UTS namespace the container has the host's name")
        }
        let hostname = o.hostname ?? (o.network == "host" || utsMode == "host" ? ProcessInfo.processInfo.hostName : String(id.prefix(12)))
        setEnv("HOSTNAME=\(hostname)")
        if o.tty && !env.contains(where: { $0.hasPrefix("TERM=") }) { env.append("TERM=xterm") }
        for e in o.env {
            if e.contains("=") { setEnv(e) } else if let v = ProcessInfo.processInfo.environment[e] { setEnv("\(e)=\(v)") }
        }
        var entrypoint = ic.entrypoint ?? []
        var cmd = ic.cmd ?? []
        if let ep = o.entrypoint { entrypoint = ep.filter { !$0.isEmpty }; cmd = [] }
        if !o.command.isEmpty { cmd = o.command }
        guard !(entrypoint + cmd).isEmpty else {
            throw ContainersError.invalidArgument("no command given and the image \(o.image) has no Entrypoint or Cmd: add one after the image name")
        }
        var exposed = Set((ic.exposedPorts ?? [:]).keys)
        for p in o.ports { exposed.insert("\(p.containerPort)/\(p.proto)") }
        // mounts: named volumes exist, anonymous ones are created, image VOLUMEs get one each
        var mounts: [MountPoint] = []
        for var m in o.mounts {
            guard m.destination.hasPrefix("/") else {
                throw ContainersError.invalidArgument("mount destination \"\(m.destination)\" must be an absolute path")
            }
            if m.type == .volume {
                if m.source.isEmpty { m.source = try volumes.create(nil, anonymous: true).name; m.anonymous = true }
                else { try volumes.create(m.source) }
            }
            if m.type == .bind {
                var st = stat()
                guard stat(m.source, &st) == 0 else {
                    throw ContainersError.invalidArgument("bind mount source \(m.source) does not exist on the host")
                }
            }
            mounts.append(m)
        }
        for v in (ic.volumes ?? [:]).keys.sorted() where !mounts.contains(where: { $0.destination == v }) {
            let vol = try volumes.create(nil, anonymous: true)
            mounts.append(MountPoint(type: .volume, source: vol.name, destination: v, anonymous: true))
        }
        var record = ContainerRecord(
            id: id, name: name, created: Time.now(), image: o.image, imageID: image.id.description,
            imageDescriptor: image.descriptor, chainID: image.chainID?.description,
            entrypoint: entrypoint, cmd: cmd, env: env,
            workingDir: o.workingDir ?? ic.workingDir.flatMap { $0.isEmpty ? nil : $0 } ?? "/",
            user: o.user ?? ic.user ?? "", hostname: hostname, tty: o.tty, openStdin: o.openStdin,
            labels: (ic.labels ?? [:]).merging(o.labels) { $1 }, exposedPorts: exposed.sorted(),
            stopSignal: try o.stopSignal.map { try FlagValue.stopSignal($0) } ?? ic.stopSignal, autoRemove: o.autoRemove, readOnly: o.readOnly, privileged: o.privileged,
            capAdd: o.capAdd, capDrop: o.capDrop, initProcess: o.initProcess, mounts: mounts, ports: o.ports,
            publishAll: o.publishAll, network: o.network, memory: o.memory ?? 0, memorySwap: o.memorySwap ?? 0,
            nanoCpus: o.nanoCpus ?? 0, pidsLimit: o.pidsLimit ?? 0, gpus: o.gpus,
            securityOpt: o.securityOpt.isEmpty ? nil : o.securityOpt)
        func nonEmpty<T>(_ a: [T]) -> [T]? { a.isEmpty ? nil : a }
        record.extraHosts = nonEmpty(try o.extraHosts.map { try FlagValue.extraHost($0) })
        record.networkAliases = nonEmpty(o.networkAliases)
        record.moreNetworks = o.moreNetworks.isEmpty ? nil : o.moreNetworks
        if record.extraHosts?.contains(where: { $0.hasSuffix(":host-gateway") }) == true, o.network == "none" || o.network.hasPrefix("container:") {
            throw ContainersError.invalidArgument("--add-host HOST:host-gateway needs --network bridge or host: a container on network \(o.network) has no gateway")
        }
        record.dns = nonEmpty(try o.dns.map { try FlagValue.dnsServer($0) })
        record.dnsSearch = nonEmpty(try o.dnsSearch.map { try FlagValue.dnsSearch($0) })
        record.dnsOptions = nonEmpty(try o.dnsOptions.map { try FlagValue.dnsOption($0) })
        record.stopTimeout = o.stopTimeout
        record.devices = nonEmpty(o.devices)
        record.restartPolicy = o.restartPolicy
        // the flags' values are checked, the image's taken as they are (as docker's daemon)
        if let h = o.healthcheck { try HealthCheck.validate(h) }
        record.healthcheck = HealthCheck.merge(user: o.healthcheck, image: ic.healthcheck)
        record.shell = ic.shell.flatMap { $0.isEmpty ? nil : $0 }
        if o.restartPolicy != nil && o.autoRemove {
            throw ContainersError.invalidArgument("--restart and --rm conflict: a container that restarts is not removed when it exits")
        }
        for d in o.devices { _ = try d.hostDevice() }
        record.ipcMode = ipcMode
        record.pidMode = pidMode
        record.utsMode = utsMode
        var ulimits: [Ulimit] = []
        for u in o.ulimits {
            if let i = ulimits.firstIndex(where: { $0.name == u.name }) { ulimits[i] = u } else { ulimits.append(u) }
        }
        record.ulimits = nonEmpty(ulimits)
        record.platform = image.platform.description
        record.cdiDevices = nonEmpty(o.cdiDevices)
        record.attach = o.attach
        let logConfig = try LogConfig(driver: o.logDriver, options: o.logOpts)
        record.logDriver = logConfig.driver == "json-file" ? nil : logConfig.driver
        record.logOpts = o.logOpts.isEmpty ? nil : o.logOpts
        if let shm = o.shmSize {
            guard shm >= 0 else { throw ContainersError.invalidArgument("--shm-size \(shm): a size cannot be negative") }
            record.shmSize = shm > 0 ? shm : nil
        }
        record.groupAdd = nonEmpty(try o.groupAdd.map { try FlagValue.groupAdd($0) })
        // group names must be in the image's /etc/group (they are looked up again at each start)
        if let names = record.groupAdd?.filter({ UInt32($0) == nil }), !names.isEmpty {
            let snaps = imgStore.snapshotter
            let users = try snaps.withView(try snaps.lowers(for: image)) { view in UserDatabase(rootfs: view) }
            for n in names where users.groupID(n) == nil {
                throw ContainersError.invalidArgument("--group-add \(n): no such group in the image's /etc/group; give a gid or a group name from it")
            }
        }
        let caps = try effectiveCapabilities(record)
        if let seccompProfile, case let .profile(path) = security.seccomp {
            // a profile that cannot be compiled fails here, not at every start
            do { _ = try SeccompCompiler.compile(try SeccompProfile.parse(seccompProfile, source: path).resolved(capabilities: caps)) } catch let e as RuntimeError {
                throw ContainersError.invalidArgument("--security-opt seccomp=\(path): \(e.message)")
            }
        }
        if record.initProcess && initBinary(record) == nil {
            if let p = ProcessInfo.processInfo.environment["DOCKBUILD_INIT"], !p.isEmpty {
                throw ContainersError.invalidArgument("--init: $DOCKBUILD_INIT \(p) is not an executable file")
            }
            throw ContainersError.missingTool("tini")
        }
        let dir = store.directory(id)
        try FS.mkdirs(dir)
        try FS.mkdirs("\(dir)/upper")
        try FS.mkdirs("\(dir)/work")
        try store.save(record)
        event("create", record)
        if let seccompProfile { try FS.writeAtomic(seccompProfile, to: "\(dir)/\(ContainerSpec.seccompFile)", durable: !record.autoRemove) }
        try store.saveState(id, ContainerState())
        try imgStore.hold(image.descriptor.digest, by: "container-\(id)", durable: !record.autoRemove)
        // docker copies the image's files into a fresh volume mounted over them
        // (not one made with --opt: its content is whatever its options mount)
        let fresh = mounts.filter { $0.type == .volume && volumes.isEmpty($0.source) && (try? volumes.inspect($0.source))?.optionMount == nil }
        if !fresh.isEmpty {
            let snaps = imgStore.snapshotter
            try snaps.withView(try snaps.lowers(for: image)) { view in
                for m in fresh {
                    let src = view + m.destination
                    if FS.isDir(src), let data = try? volumes.dataPath(m.source) {
                        _ = try? Shell.run(["cp", "-a", "\(src)/.", data])
                    }
                }
            }
        }
        return record
    }

    /// What an ordinary user is told once about the resource flags of `r` that cannot be
    /// applied; nil for root and when every one applies. See `limitsWarning(flags:cgroupVersion:directory:creatable:)`.
    public static func limitsWarning(_ r: ContainerRecord) -> String? {
        guard StatePaths.isRootless else { return nil }
        var flags: [(flag: String, controller: String)] = []
        if r.memory > 0 { flags.append(("--memory", "memory")) }
        if r.memorySwap > 0 { flags.append(("--memory-swap", "memory")) }
        if r.nanoCpus > 0 { flags.append(("--cpus", "cpu")) }
        if r.pidsLimit > 0 { flags.append(("--pids-limit", "pids")) }
        guard !flags.isEmpty, let cg = try? Cgroup.resolve(cgroupsPath: ContainerSpec.cgroupsPath(r.id), id: r.id) else { return nil }
        return limitsWarning(flags: flags, cgroupVersion: cg.version, directory: cg.paths[""] ?? "", creatable: cg.isCreatable)
    }

    /// The warning for `flags` (each with the controller it needs) of a rootless container whose
    /// cgroup would be `directory`: without a delegated subtree (`creatable` false) the container
    /// runs in no cgroup of its own, as with rootless podman and docker, and none applies; in a
    /// delegated cgroup v2 subtree, a flag whose controller the subtree was not given (missing from
    /// `cgroup.controllers` of the nearest existing cgroup: systemd's default delegation to a
    /// user leaves some out, cpu, cpuset or io on many distributions) is not applied, and the others are.
    public static func limitsWarning(flags: [(flag: String, controller: String)], cgroupVersion: String, directory: String,
                                     creatable: Bool) -> String? {
        guard !flags.isEmpty else { return nil }
        guard creatable else {
            return "WARNING: \(flags.map(\.flag).joined(separator: ", ")) not applied: running rootless without a "
                + "delegated cgroup v2 subtree, the container gets no cgroup of its own (see docs/rootless.md)"
        }
        guard cgroupVersion == "v2" else { return nil }
        let missing = Cgroup.unavailableV2Controllers(flags.map(\.controller), below: directory)
        let unapplied = flags.filter { missing.contains($0.controller) }.map(\.flag)
        guard !unapplied.isEmpty else { return nil }
        let nearest = Cgroup.nearestV2Cgroup(directory)
        let have = Cgroup.controllers(at: nearest).sorted().joined(separator: " ")
        return "WARNING: \(unapplied.joined(separator: ", ")) not applied: the delegated cgroup v2 subtree has no "
            + "\(missing.joined(separator: ", ")) controller (\(nearest)/cgroup.controllers: \(have.isEmpty ? "none" : have)); ask for it in the delegation, "
            + "e.g. systemd's Delegate=cpu cpuset io memory pids for user@.service (see docs/rootless.md)"
    }

    /// Mounts the container's rootfs: an overlay of the image's layer snapshots.
    /// Nothing is copied; the container's writes land in `upper/`.
    public func mountRootfs(_ r: ContainerRecord) throws -> String {
        let dir = store.directory(r.id)
        let rootfs = store.rootfsPath(r.id)
        if FS.isMountPoint(rootfs) { return rootfs }
        let s = try images()
        let image = try s.image(for: r.imageDescriptor)
        let snaps = s.snapshotter
        let lowers = try snaps.lowers(for: image)
        try FS.mkdirs("\(dir)/upper"); try FS.mkdirs("\(dir)/work")
        // the mounted image content (setuid binaries included) is for the container only
        let parent = (rootfs as NSString).deletingLastPathComponent
        try FS.mkdirs(parent)
        chmod(parent, 0o700)
        try FS.mkdirs(rootfs)
        // a --rm container's upper is removed with it: its unmount need not sync the disk
        try snaps.mount(lowers: lowers, upper: "\(dir)/upper", work: "\(dir)/work", at: rootfs, volatile: r.autoRemove)
        return rootfs
    }

    /// Creates the working directory in the container's root filesystem when the image lacks
    /// it, as docker does for `-w` and WORKDIR (owned by root, 0755). Links in the image are
    /// followed inside the root filesystem only.
    func makeWorkingDirectory(_ r: ContainerRecord, rootfs: String) throws {
        let wd = r.workingDir
        guard wd.hasPrefix("/"), wd != "/" else { return }
        let target: String
        do { target = try InRootPath.resolve(wd, in: rootfs) } catch {
            throw ContainersError.invalidArgument("working directory \(wd): \(error)")
        }
        var path = rootfs
        for part in target.dropFirst(rootfs.count).split(separator: "/") {
            path += "/" + part
            var st = stat()
            if lstat(path, &st) == 0 {
                guard (st.st_mode & S_IFMT) == S_IFDIR else {
                    throw ContainersError.invalidArgument("working directory \(wd): \(path.dropFirst(rootfs.count)) exists in the image and is not a directory")
                }
                continue
            }
            if mkdir(path, 0o755) != 0 && errno != EEXIST {
                throw ContainersError.system("cannot create the working directory \(wd) in the container", errno: errno)
            }
        }
    }

    /// Ports to publish: the `-p` bindings plus, with `-P`, every exposed port on a free host port.
    func portRequests(_ r: ContainerRecord) -> [PortBinding] {
        var out = r.ports
        if r.publishAll {
            for e in r.exposedPorts {
                let parts = e.split(separator: "/")
                guard let p = Int(parts[0]) else { continue }
                let proto = parts.count > 1 ? String(parts[1]) : "tcp"
                if !out.contains(where: { $0.containerPort == p && $0.proto == proto }) {
                    out.append(PortBinding(hostPort: 0, containerPort: p, proto: proto))
                }
            }
        }
        return out
    }

    /// A static init for `--init`: `$DOCKBUILD_INIT`, dockbuild's own (`dockbuild-init`, built
    /// by `make build` beside the dockbuild binary), or docker-init, tini-static (Debian's tini
    /// package) or catatonit from the host; a dynamically linked tini is the last resort (it
    /// needs libc in the image).
    func initBinary(_ r: ContainerRecord) -> String? {
        guard r.initProcess else { return nil }
        if let p = ProcessInfo.processInfo.environment["DOCKBUILD_INIT"], !p.isEmpty {
            return FileManager.default.isExecutableFile(atPath: p) ? p : nil
        }
        if let exe = Bundle.main.executablePath {
            let own = URL(fileURLWithPath: exe).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("dockbuild-init").path
            if FileManager.default.isExecutableFile(atPath: own) { return own }
        }
        for n in ["docker-init", "tini-static", "catatonit", "tini"] { if let p = Shell.which(n) { return p } }
        return nil
    }

    // MARK: - start

    /// The monitor that was started, and the pipe it reports on ("listening", then "ok" or "error: ...").
    public struct Launch: Sendable {
        public let pid: Int32
        public let readyFD: Int32

        /// The next line the monitor reports; nil when it closed the pipe.
        public func nextLine() -> String? {
            var bytes: [UInt8] = []
            var b: UInt8 = 0
            while true {
                let n = read(readyFD, &b, 1)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
                if b == 10 { return String(decoding: bytes, as: UTF8.self) }
                bytes.append(b)
            }
        }

        /// Waits for "ok"; throws the monitor's error.
        public func waitStarted() throws {
            while let line = nextLine() {
                if line == "ok" { close(readyFD); return }
                if line.hasPrefix("error: ") { close(readyFD); throw ContainersError.runtime(String(line.dropFirst(7))) }
            }
            close(readyFD)
            throw ContainersError.runtime("the container's monitor exited before starting it (see monitor.log in the container's directory)")
        }
    }

    /// Starts a created or exited container by launching its monitor (`monitorCommand` is the
    /// re-executed dockbuild binary with its hidden subcommand and arguments, id last).
    public func start(_ id: String, monitorCommand: [String], attach: Bool) throws -> Launch {
        if store.state(id).status == .dead {
            try reapDead(id)
            _ = try store.record(id)  // a --rm container is gone with the reap
        }
        return try store.withLock(id) {
            let st = store.state(id)
            if st.status == .running && ContainerStore.isFrozen(st.cgroupPaths) {
                throw ContainersError.invalidState("cannot start a paused container, try unpause instead")
            }
            if st.status == .running { throw ContainersError.invalidState("container \(id.prefix(12)) is already running") }
            let dir = store.directory(id)
            guard let pp = Sys.pipeCloexec() else { throw ContainersError.system("pipe", errno: errno) }
            let p = [pp.0, pp.1]
            let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
            let log = open("\(dir)/monitor.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
            defer { close(devnull); if log >= 0 { close(log) }; close(p[1]) }
            var opts = Shell.SpawnOptions(fds: [devnull, log >= 0 ? log : devnull, log >= 0 ? log : devnull, p[1]])
            opts.newSession = true
            let args = monitorCommand + (attach ? ["--attach"] : []) + [id]
            let pid = try Shell.spawn(args, opts)
            var s = store.rawState(id)
            s.status = st.status == .created ? .created : .exited
            return Launch(pid: pid, readyFD: p[0])
        }
    }

    // MARK: - stop, kill, wait

    /// Waits until the container is no longer running; false on timeout.
    public func waitStopped(_ id: String, timeout: Double) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while store.state(id).status == .running {
            if Date() > end { return false }
            usleep(20_000)
        }
        return true
    }

    /// Sends the stop signal, then SIGKILL after `timeout` seconds (the container's
    /// `--stop-timeout` when nil, else 10), like `docker stop`.
    public func stop(_ id: String, timeout: Int? = nil) throws {
        let c = try store.container(id)
        let timeout = timeout ?? c.record.defaultStopTimeout
        if c.state.status == .dead { try reapDead(id); return }
        guard c.isRunning else { return }
        try markStopped(id)
        defer { event("stop", c.record) }
        let rt = try runtime(for: id)
        event("kill", c.record, ["signal": String(Runtime.signalNumber(c.record.stopSignal ?? "SIGTERM") ?? 15)])
        try rt.kill(id, signal: c.record.stopSignal ?? "SIGTERM")
        // as docker: a paused container is thawed after the signal, so that it gets it
        if c.isPaused { try? rt.resume(id) }
        // a monitor that dies meanwhile ends the wait as "dead": reap what it left
        if waitStopped(id, timeout: Double(timeout)) {
            if store.state(id).status == .dead { try reapDead(id) }
            return
        }
        try rt.kill(id, signal: "SIGKILL", all: true)
        if (try? store.container(id))?.isPaused == true { try? rt.resume(id) }
        if !waitStopped(id, timeout: 15) {
            throw ContainersError.runtime("container \(id.prefix(12)) did not stop after SIGKILL")
        }
        if store.state(id).status == .dead { try reapDead(id) }
    }

    /// docker's refusal to join the IPC namespace of a container that did not offer it.
    static func notShareable(_ mode: String) -> String {
        "--ipc \(mode): that container's IPC is not shareable; create it with --ipc shareable"
    }

    /// Records that the container was asked to end, so that its monitor does not restart it.
    func markStopped(_ id: String) throws {
        try store.updateState(id) { $0.manuallyStopped = true }
    }

    public func kill(_ id: String, signal: String) throws {
        let c = try store.container(id)
        if c.state.status == .dead {
            throw ContainersError.invalidState("container \(c.name) is dead (its monitor is gone): `dockbuild stop \(c.name)` or `dockbuild rm -f \(c.name)` kills what is left of it")
        }
        guard c.isRunning else { throw ContainersError.invalidState("container \(c.name) is not running") }
        // as docker: SIGKILL or the stop signal is a manual stop, which a restart policy respects
        let n = Runtime.signalNumber(signal)
        if n == SIGKILL || n == Runtime.signalNumber(c.record.stopSignal ?? "SIGTERM") { try markStopped(id) }
        let rt = try runtime(for: id)
        try rt.kill(id, signal: signal)
        event("kill", c.record, ["signal": n.map { String($0) } ?? signal])
        // docker thaws a paused container after SIGKILL or its stop signal (any signal when the
        // container has no stop signal of its own); other signals wait for `unpause`
        if c.isPaused {
            let n = Runtime.signalNumber(signal), stop = c.record.stopSignal.flatMap(Runtime.signalNumber)
            if stop == nil || n == SIGKILL || n == stop { try? rt.resume(id) }
        }
    }

    /// Blocks until the container exits and returns its exit code.
    public func wait(_ id: String) -> Int32 {
        while store.state(id).status == .running || isStarting(id) { usleep(50_000) }
        return store.state(id).exitCode
    }

    private func isStarting(_ id: String) -> Bool { false }

    // MARK: - dead containers

    /// Cleans up after a container whose monitor died while it ran (`ContainerState.Status.dead`):
    /// kills every process left in it (through the runtime, and its recorded init pid when that
    /// pid is still in the container's cgroup), deletes the runtime state, unmounts the rootfs,
    /// frees its network address, and records it as exited (137 when something had to be
    /// killed). `--rm` containers are then removed. Does nothing for any other state.
    public func reapDead(_ id: String) throws {
        let record = try store.record(id)
        let reaped: Bool = try store.withLock(id) {
            let s = store.rawState(id)
            guard s.status == .dead || (s.status == .running && !ContainerStore.monitorAlive(s)) else { return false }
            var killed = false
            let rt = try? runtime(for: id)
            let paused = rt?.status(id) == "paused"
            if rt?.status(id) == "running" || paused { killed = true }
            try? rt?.kill(id, signal: "SIGKILL", all: true)
            if paused { try? rt?.resume(id) }
            // the init pid, but only while it is still the container's (same cgroup): pids are reused
            func ownPid() -> Bool {
                s.pid > 0 && ContainerStore.processStartTime(s.pid) != nil && !s.cgroupPaths.isEmpty
                    && Monitor.cgroupPaths(s.pid) == s.cgroupPaths
            }
            if ownPid() { killed = true; _ = Foundation.kill(s.pid, SIGKILL) }
            for _ in 0..<100 where ownPid() || rt?.status(id) == "running" { usleep(50_000) }
            rt?.delete(id)
            let rootfs = store.rootfsPath(id)
            FS.unmount(rootfs)
            rmdir(rootfs)
            FS.unmount("\(store.directory(id))/shm")
            unlink("\(store.directory(id))/attach.sock")
            if record.network == "bridge", StatePaths.isRootless {
                RootlessNetwork.remove(id: id)
            } else if let n = bridgeNetwork(record.network) {
                n.detach(containerID: id)
                if !s.ipAddress.isEmpty { n.release(ip: s.ipAddress, containerID: id) }
            }
            var out = s
            ContainerStore.markDead(&out)
            out.status = .exited
            if killed { out.exitCode = 137 }
            out.pid = 0; out.ipAddress = ""; out.ports = []; out.moreIPs = nil
            try store.saveState(id, out)
            return true
        }
        if reaped && record.autoRemove { try removeFiles(record) }
    }

    /// Removes a container whose record cannot be read (`ContainerStore.damagedID`), from what
    /// its state and the id alone tell: its processes are killed (the runtime's view, then its
    /// recorded init pid while still in its cgroup), its monitor is given time to exit, then the
    /// runtime state, rootfs mount, network namespace, address lease, image hold and directory go.
    public func removeDamaged(_ id: String) throws {
        let s = store.rawState(id)
        let rt = try? OCIRuntime(storeRoot: root, recorded: s.ociRuntime)
        try? rt?.kill(id, signal: "SIGKILL", all: true)
        func ownPid() -> Bool {
            s.pid > 0 && ContainerStore.processStartTime(s.pid) != nil && !s.cgroupPaths.isEmpty
                && Monitor.cgroupPaths(s.pid) == s.cgroupPaths
        }
        if ownPid() { _ = Foundation.kill(s.pid, SIGKILL) }
        for _ in 0..<200 where ownPid() || (s.status == .running && ContainerStore.monitorAlive(s)) { usleep(50_000) }
        rt?.delete(id)
        let rootfs = store.rootfsPath(id)
        FS.unmount(rootfs)
        rmdir(rootfs)
        if StatePaths.isRootless {
            RootlessNetwork.remove(id: id)
        } else if let n = try? BridgeNetwork.current() {
            n.detach(containerID: id)
            if !s.ipAddress.isEmpty { n.release(ip: s.ipAddress, containerID: id) }
        }
        // (the record is unreadable: the lease may be on a user-defined network's bridge)
        if !s.ipAddress.isEmpty { for n in networks.list() { n.bridgeNetwork.release(ip: s.ipAddress, containerID: id) } }
        if let images = try? images() { images.release(holder: "container-\(id)") }
        let dir = store.directory(id)
        var lastError: (any Error)?
        for _ in 0..<100 {
            do { try FileSystem.removeTree(dir); return } catch {
                lastError = error
                usleep(100_000)
            }
        }
        throw ContainersError.invalidState("cannot remove \(dir): \(lastError.map { "\($0)" } ?? "busy"); retry `dockbuild rm -f` in a moment")
    }

    // MARK: - remove

    /// Removes a container (`force` kills it first; `volumes` removes its anonymous volumes).
    public func remove(_ id: String, force: Bool, volumes removeVolumes: Bool) throws {
        if store.state(id).status == .dead {
            try reapDead(id)
            if (try? store.record(id)) == nil { return }  // a --rm container: gone with the reap
        }
        let c = try store.container(id)
        if c.isRunning {
            guard force else {
                if c.isPaused {
                    throw ContainersError.invalidState("container \(c.name) is paused: you cannot remove a paused container; unpause and then stop it first, or use `rm -f`")
                }
                throw ContainersError.invalidState("container \(c.name) is running: stop it first or use `rm -f`")
            }
            try? markStopped(id)
            let rt = try? runtime(for: id)
            try? rt?.kill(id, signal: "SIGKILL", all: true)
            if c.isPaused { try? rt?.resume(id) }
            _ = waitStopped(id, timeout: 15)
        }
        var r = c.record
        if !removeVolumes { r.mounts = r.mounts.map { var m = $0; m.anonymous = false; return m } }
        try removeFiles(r)
        event("destroy", c.record)
    }

    /// Records a container event in the store's log (`dockbuild events`), with docker's
    /// attributes: the image, the name, the container's labels, and `extra`.
    func event(_ action: String, _ r: ContainerRecord, _ extra: [String: String] = [:]) {
        var attrs = r.labels
        attrs["image"] = r.image
        attrs["name"] = r.name
        for (k, v) in extra { attrs[k] = v }
        EventLog(root: root).record(StoreEvent(type: "container", action: action, id: r.id, attributes: attrs))
    }

    /// Deletes everything a stopped container left: runtime state, mounts, namespace, files, hold.
    func removeFiles(_ r: ContainerRecord) throws {
        let dir = store.directory(r.id)
        if let rt = try? runtime(for: r.id) { rt.delete(r.id) }
        let rootfs = store.rootfsPath(r.id)
        FS.unmount(rootfs)
        rmdir(rootfs)
        FS.unmount("\(dir)/shm")  // --ipc shareable's tmpfs, should its monitor have died
        if r.network == "bridge", StatePaths.isRootless {
            RootlessNetwork.remove(id: r.id)
        } else if let n = bridgeNetwork(r.network) { n.detach(containerID: r.id) }
        for m in r.mounts where m.anonymous && m.type == .volume { try? volumes.remove(m.source) }
        if let s = try? images() { s.release(holder: "container-\(r.id)") }
        // a lazily unmounted overlay keeps its upper/work dirs busy until the last process of
        // the container is gone: retry for a while
        var lastError: (any Error)?
        for _ in 0..<100 {
            do { try FileSystem.removeTree(dir); return } catch {
                lastError = error
                usleep(100_000)
            }
        }
        throw ContainersError.invalidState("cannot remove \(dir): \(lastError.map { "\($0)" } ?? "busy"); retry `dockbuild rm` in a moment")
    }

    /// Removes every stopped container; returns their ids.
    public func prune(_ filter: PruneFilter? = nil) -> [String] {
        var out: [String] = []
        for c in store.list() where !c.isRunning {
            if let filter, !filter.matches(labels: c.record.labels, created: Time.parse(c.record.created)) { continue }
            if (try? remove(c.id, force: false, volumes: false)) != nil { out.append(c.id) }
        }
        return out
    }

    // MARK: - update

    /// Changes the resources of a container (and of its cgroup when it runs).
    public func update(_ id: String, memory: Int64?, memorySwap: Int64?, nanoCpus: Int64?, pidsLimit: Int64?) throws {
        try store.withLock(id) {
            var r = try store.record(id)
            if store.state(id).status == .running {
                var swap = memorySwap
                if let m = memory, swap == nil, r.memorySwap > 0, r.memorySwap < m { swap = m }
                if let m = memory, swap == nil, r.memorySwap == 0 { swap = -1; _ = m }
                try runtime(for: id).update(id, memory: memory, memorySwap: swap, cpuQuota: nanoCpus.map { $0 / 10_000 },
                                     cpuPeriod: nanoCpus.map { _ in 100_000 }, pids: pidsLimit)
            }
            if let memory { r.memory = memory }
            if let memorySwap { r.memorySwap = memorySwap }
            if let nanoCpus { r.nanoCpus = nanoCpus }
            if let pidsLimit { r.pidsLimit = pidsLimit }
            try store.save(r)
        }
    }

    /// `update --restart`: a new restart policy (nil for "no"); a running container's monitor
    /// applies it at the next exit.
    public func updateRestartPolicy(_ id: String, _ policy: RestartPolicy?) throws {
        try store.withLock(id) {
            var r = try store.record(id)
            if policy != nil && r.autoRemove {
                throw ContainersError.invalidArgument("--restart: the restart policy of a container started with --rm cannot be changed")
            }
            r.restartPolicy = policy
            try store.save(r)
        }
    }

    // MARK: - commit

    /// Turns the container's changes (its overlay upper dir) into a layer on top of its image.
    /// `changes` are Dockerfile instructions applied to the new config (`import --change`'s
    /// set); `pause` freezes a running container while its layer is written, as docker's
    /// default (`--pause=false` to not).
    public func commit(_ id: String, tag: String?, author: String?, message: String?,
                       changes: [String] = [], pause: Bool = true) throws -> Image {
        // the changes are checked before anything is written
        var probe = ContainerConfig()
        for ch in changes { try ConfigChange.apply(ch, to: &probe) }
        let c = try store.container(id)
        let s = try images()
        if pause, c.isRunning, !c.isPaused, (try? self.pause(id)) != nil {
            defer { try? self.unpause(id) }
            return try commitFrozen(c, s, tag: tag, author: author, message: message, changes: changes)
        }
        return try commitFrozen(c, s, tag: tag, author: author, message: message, changes: changes)
    }

    private func commitFrozen(_ c: Container, _ s: ImageStore, tag: String?, author: String?, message: String?,
                              changes: [String]) throws -> Image {
        let id = c.id
        let base = try s.image(for: c.record.imageDescriptor)
        let tmp = "\(s.tempDir)/commit-\(id.prefix(12))-\(getpid()).tar.gz"
        defer { unlink(tmp) }
        let info = try LayerDiff.fromOverlayUpper("\(c.directory)/upper", to: tmp, compression: .default)
        if !s.has(info.digest) { try s.adoptFile(at: tmp, digest: info.digest) }
        var cfg = base.config
        let now = Time.now()
        cfg.created = now
        if let author { cfg.author = author }
        var cc = cfg.config ?? ContainerConfig()
        cc.env = c.record.env.filter { !$0.hasPrefix("HOSTNAME=") }
        cc.entrypoint = c.record.entrypoint.isEmpty ? nil : c.record.entrypoint
        cc.cmd = c.record.cmd.isEmpty ? nil : c.record.cmd
        cc.workingDir = c.record.workingDir
        cc.user = c.record.user.isEmpty ? nil : c.record.user
        cc.labels = c.record.labels.isEmpty ? nil : c.record.labels
        // as docker: the container's health check (flags over the image's) goes into the image
        if let h = c.record.healthcheck { cc.healthcheck = h }
        for ch in changes { try ConfigChange.apply(ch, to: &cc) }
        cfg.config = cc
        cfg.rootfs.diffIDs.append(info.diffID)
        cfg.history = (cfg.history ?? []) + [History(created: now, author: author, createdBy: "dockbuild commit \(c.name)", comment: message)]
        let layer = Descriptor(mediaType: info.mediaType, digest: info.digest, size: info.size)
        let ref = try tag.map { try ImageReference(parsing: $0) }
        let image = try s.putImage(config: cfg, layers: base.manifest.layers + [layer], tag: ref)
        event("commit", c.record, ["comment": message ?? ""])
        return image
    }
}
