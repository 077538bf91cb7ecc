import Build
import Containers
import Foundation
import ImageStore
import OCI
import Synchronization
import SystemSupport

/// docker compose's labels, so that `dockbuild ps --filter label=...` and scripts see a
/// project's containers and volumes as docker's would.
public enum ComposeLabel {
    public static let project = "com.docker.compose.project"
    public static let service = "com.docker.compose.service"
    public static let number = "com.docker.compose.container-number"
    public static let oneoff = "com.docker.compose.oneoff"
    public static let configHash = "com.docker.compose.config-hash"
    public static let workingDir = "com.docker.compose.project.working_dir"
    public static let configFiles = "com.docker.compose.project.config_files"
    public static let volume = "com.docker.compose.volume"
    public static let network = "com.docker.compose.network"
}

/// A project's containers over the Containers library: up, down, start, stop, remove, with
/// docker compose's names (`PROJECT-SERVICE-N`, volumes `PROJECT_KEY`) and labels. No state of
/// its own: the project is whatever containers carry its label.
public final class ComposeEngine: Sendable {
    public let project: ComposeProject
    public let manager: ContainerManager
    /// The monitor command for starting containers (`ContainerManager.start`).
    let monitorCommand: [String]
    /// Progress lines (` Container NAME  Started`), for the user's terminal.
    let progress: @Sendable (String) -> Void
    /// One rewrite of the project's hosts files at a time (services start in parallel).
    let hostsLock = Mutex(())

    public init(project: ComposeProject, manager: ContainerManager, monitorCommand: [String],
                progress: @escaping @Sendable (String) -> Void = { _ in }) {
        self.project = project; self.manager = manager; self.monitorCommand = monitorCommand; self.progress = progress
    }

    // MARK: - what exists

    /// The project's containers (one-offs of `run` only with `oneOff`), by service then number;
    /// `services` filters.
    public func containers(_ services: [String] = [], oneOff: Bool = false) -> [Container] {
        manager.store.list().filter { c in
            c.record.labels[ComposeLabel.project] == project.name && (oneOff || c.record.labels[ComposeLabel.oneoff] != "True")
                && (services.isEmpty || services.contains(c.record.labels[ComposeLabel.service] ?? ""))
        }.sorted { a, b in
            let sa = a.record.labels[ComposeLabel.service] ?? "", sb = b.record.labels[ComposeLabel.service] ?? ""
            if sa != sb { return sa < sb }
            return Int(a.record.labels[ComposeLabel.number] ?? "") ?? 0 < Int(b.record.labels[ComposeLabel.number] ?? "") ?? 0
        }
    }

    /// The service a container belongs to and its number, as `SERVICE-N` (what `logs` prefixes).
    public static func shortName(_ c: Container) -> String {
        "\(c.record.labels[ComposeLabel.service] ?? c.name)-\(c.record.labels[ComposeLabel.number] ?? "1")"
    }

    /// Checks that every name is a service of the project.
    public func checkServices(_ names: [String]) throws {
        for n in names where project.service(n) == nil {
            throw ComposeError.invalidArgument("no such service: \(n) (the project's services: \(project.services.map(\.name).joined(separator: ", ")))")
        }
    }

    /// A digest of what the service's container is made from: a change recreates it.
    public static func configHash(_ s: ComposeService) -> String {
        // (the number of replicas is not the containers' config: scaling keeps them)
        var s = s
        s.replicas = 1
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let data = (try? enc.encode(s)) ?? Data(s.name.utf8)
        return Digest.compute(data).encoded
    }

    // MARK: - up

    /// Creates and starts `services` (all when empty) and, unless `noDeps`, what they depend on,
    /// in dependency order, waiting for each dependency's condition. A running container whose
    /// service is unchanged is left alone; a changed one (or every one with `forceRecreate`)
    /// is recreated; a stopped one is started. Images missing from the store are pulled.
    public func up(_ services: [String] = [], forceRecreate: Bool = false, noDeps: Bool = false, removeOrphans: Bool = false,
                   build: Bool = false) async throws {
        try checkServices(services)
        let wanted = services.isEmpty ? project.services.map(\.name) : services
        let order = try DependencyOrder.sorted(project, services: wanted, withDependencies: !noDeps)
        let names = Set(project.services.map(\.name))
        let orphans = containers().filter { !names.contains($0.record.labels[ComposeLabel.service] ?? "") }
        if removeOrphans {
            for c in orphans { try removeContainer(c, stop: true) }
        } else if !orphans.isEmpty {
            progress("WARN: found orphan containers (\(orphans.map(\.name).joined(separator: ", "))) for this project; `up --remove-orphans` removes them")
        }
        try buildImages(order, always: build)
        try await pullImages(order)
        try createVolumes(for: order)
        try createNetworks(for: order)
        // in waves: every service whose dependencies are up starts at once with the others of its wave
        try inWaves(order) { s in
            try self.waitForDependencies(s, started: order.map(\.name))
            try self.converge(s, forceRecreate: forceRecreate)
            self.refreshHosts()
        }
    }

    /// `create`: what `up` does but start: images, volumes, networks, and each service's
    /// containers created (changed ones recreated), in dependency order, none started.
    public func create(_ services: [String] = [], forceRecreate: Bool = false, noDeps: Bool = false, build: Bool = false) async throws {
        try checkServices(services)
        let order = try DependencyOrder.sorted(project, services: services.isEmpty ? project.services.map(\.name) : services,
                                               withDependencies: !noDeps)
        try buildImages(order, always: build)
        try await pullImages(order)
        try createVolumes(for: order)
        try createNetworks(for: order)
        for s in order { try converge(s, forceRecreate: forceRecreate, start: false) }
    }

    /// Runs `body` for each service once the services it depends on (among `order`) are done,
    /// those that are ready together on threads of their own; the first error (by service
    /// name) is thrown once its wave has ended.
    func inWaves(_ order: [ComposeService], _ body: @escaping @Sendable (ComposeService) throws -> Void) throws {
        let names = Set(order.map(\.name))
        var done = Set<String>()
        var remaining = order
        while !remaining.isEmpty {
            let wave = remaining.filter { s in s.dependsOn.allSatisfy { !names.contains($0.service) || done.contains($0.service) } }
            guard !wave.isEmpty else { throw ComposeError.invalidFile("dependency cycle among \(remaining.map(\.name).joined(separator: ", "))") }
            let errors = Mutex<[String: any Error]>([:])
            if wave.count == 1 {
                try body(wave[0])
            } else {
                DispatchQueue.concurrentPerform(iterations: wave.count) { i in
                    do { try body(wave[i]) } catch { errors.withLock { $0[wave[i].name] = error } }
                }
            }
            if let first = errors.withLock({ e in e.keys.sorted().first.flatMap { e[$0] } }) { throw first }
            done.formUnion(wave.map(\.name))
            remaining.removeAll { done.contains($0.name) }
        }
    }

    /// Builds the images of `services` that have `build` (all of them with `always`, else those
    /// the store lacks), tagged with the service's image name.
    public func buildImages(_ services: [ComposeService], always: Bool, noCache: Bool = false) throws {
        for s in services {
            guard let b = s.build else { continue }
            let store = try manager.images()
            if !always, (try? store.image(s.image)) != nil { continue }
            progress(" Service \(s.name)  Building")
            let text: String
            var name = b.dockerfile
            if let inline = b.dockerfileInline { text = inline; name = "<inline>" } else {
                let path = b.dockerfile.hasPrefix("/") ? b.dockerfile : "\(b.context)/\(b.dockerfile)"
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw ComposeError.service("service \"\(s.name)\": cannot read the Dockerfile \(path)")
                }
                text = String(decoding: data, as: UTF8.self)
                name = path
            }
            var o = BuildOptions(contextDir: b.context, dockerfileText: text, dockerfileName: name)
            o.buildArgs = b.args
            o.target = b.target
            o.labels = b.labels
            o.noCache = noCache
            if let n = b.network { o.network = n }
            do {
                o.tags = [try ImageReference(parsing: s.image)]
                o.cacheFromRegistry = try b.cacheFrom.map { try ImageReference(parsing: $0) }
                if let p = s.platform { o.platform = try Platform(parsing: p) }
                let builder = try Builder(store: store, options: o, progress: { e in
                    if case let .step(stage, n, total, text) = e { self.progress(" \(s.name) [\(stage) \(n)/\(total)] \(text)") }
                    if case let .output(_, _, line) = e { self.progress(" \(s.name) | \(line)") }
                })
                _ = try builder.build()
            } catch {
                throw ComposeError.service("service \"\(s.name)\": build failed: \(error)")
            }
            progress(" Service \(s.name)  Built")
        }
    }

    /// Pulls the images of `services` that the store lacks (or every time with `pull_policy: always`);
    /// images built by the project (`build`) are not pulled.
    func pullImages(_ services: [ComposeService]) async throws {
        for s in services where s.build == nil {
            do {
                let store = try manager.images()
                let policy = s.pullPolicy.flatMap(PullPolicy.init(rawValue:)) ?? .missing
                let platform = try s.platform.map { try Platform(parsing: $0) }
                try await ImagePull.ensure(s.image, policy: policy, store: store, platform: platform) { ref in self.progress(" \(s.name) Pulling \(ref.familiarString)") }
            } catch {
                throw ComposeError.service("service \"\(s.name)\": image \(s.image): \(error)")
            }
        }
    }

    /// Named volumes the services use: created (with the project's labels) when missing;
    /// external ones must exist.
    func createVolumes(for services: [ComposeService]) throws {
        let used = Set(services.flatMap { $0.volumes.filter { $0.type == .volume && !$0.source.isEmpty }.map(\.source) })
        for v in project.volumes where used.contains(v.key) {
            if (try? manager.volumes.inspect(v.name)) != nil { continue }
            if v.external {
                throw ComposeError.service("external volume \"\(v.name)\" not found: create it (`dockbuild volume create \(v.name)`)")
            }
            var labels = v.labels
            labels[ComposeLabel.project] = project.name
            labels[ComposeLabel.volume] = v.key
            do { _ = try manager.volumes.create(v.name, labels: labels) } catch {
                throw ComposeError.service("volume \(v.name): \(error)")
            }
            progress(" Volume \(v.name)  Created")
        }
    }

    /// The networks `services` join: created (a user-defined bridge each, with the project's
    /// labels) when missing; external ones must exist.
    func createNetworks(for services: [ComposeService]) throws {
        let used = Set(services.flatMap { $0.networks.keys })
        for n in project.networks where used.contains(n.key) {
            if (try? manager.networks.inspect(n.name)) != nil { continue }
            if n.external {
                throw ComposeError.service("external network \"\(n.name)\" not found: create it (`dockbuild network create \(n.name)`)")
            }
            var labels = n.labels
            labels[ComposeLabel.project] = project.name
            labels[ComposeLabel.network] = n.key
            progress(" Network \(n.name)  Creating")
            do { _ = try manager.networks.create(n.name, labels: labels) } catch {
                // (another `up` of the project may have made it meanwhile)
                if (try? manager.networks.inspect(n.name)) != nil { continue }
                throw ComposeError.service("network \(n.name): \(error)")
            }
            progress(" Network \(n.name)  Created")
        }
    }

    /// Where the project keeps the files it writes for containers (secrets and configs given
    /// as text): under the store root, removed by `down`.
    var projectFilesDir: String { "\(manager.root)/compose/\(project.name)" }

    /// The host file of a secret or config: its `file`, or its text written (mode 0444) under
    /// `projectFilesDir`.
    func fileObjectPath(_ obj: ComposeFileObject, kind: String, service: String) throws -> String {
        if let f = obj.file {
            guard FileManager.default.fileExists(atPath: f) else {
                throw ComposeError.service("service \"\(service)\": \(kind) \(obj.key): file \(f) does not exist")
            }
            return f
        }
        guard let content = obj.content else {
            throw ComposeError.service("service \"\(service)\": \(kind) \(obj.key): environment variable \(obj.environment ?? "?") is not set: set it, or use file:")
        }
        let path = "\(projectFilesDir)/\(kind)s/\(obj.key)"
        do {
            _ = try FileSystem.makeDirectories((path as NSString).deletingLastPathComponent)
            try FileSystem.writeAtomically(Data(content.utf8), to: path, mode: 0o444)
        } catch {
            throw ComposeError.service("service \"\(service)\": \(kind) \(obj.key): cannot write \(path): \(error)")
        }
        return path
    }

    /// The network a container of `s` joins: its `network_mode`, else the store name of its network.
    func networkName(_ s: ComposeService) -> String {
        if let m = s.networkMode { return m }
        let key = s.networks.keys.sorted().first ?? "default"
        return project.network(key)?.name ?? "\(project.name)_\(key)"
    }

    /// Brings one service to its wanted state: containers 1...replicas, each converged; those
    /// numbered above (scaled down) stopped and removed, the highest first.
    func converge(_ s: ComposeService, forceRecreate: Bool, start: Bool = true) throws {
        let hash = Self.configHash(s)
        let existing = containers([s.name])
        var byNumber: [Int: Container] = [:]
        for c in existing {
            let n = Int(c.record.labels[ComposeLabel.number] ?? "") ?? 1
            if byNumber[n] == nil { byNumber[n] = c } else { try removeContainer(c, stop: true, quiet: true, volumes: true) }
        }
        for n in byNumber.keys.sorted(by: >) where n > s.replicas {
            if let c = byNumber[n] { try removeContainer(c, stop: true) }
        }
        for n in stride(from: 1, through: s.replicas, by: 1) {
            try converge(s, number: n, existing: byNumber[n], hash: hash, forceRecreate: forceRecreate, start: start)
        }
    }

    /// Brings container `number` of `s` to its wanted state: left alone when running and
    /// unchanged, started when stopped and unchanged, else (re)created and started.
    func converge(_ s: ComposeService, number: Int, existing: Container?, hash: String, forceRecreate: Bool, start: Bool) throws {
        if let c = existing {
            // a new image under the same name (rebuilt, pulled) recreates too, as docker compose
            let imageID = (try? manager.images().image(s.image))?.id.description
            if c.record.labels[ComposeLabel.configHash] == hash && !forceRecreate && (imageID == nil || imageID == c.record.imageID) {
                if c.isRunning { progress(" Container \(c.name)  Running"); return }
                guard start else { progress(" Container \(c.name)  Created"); return }
                progress(" Container \(c.name)  Starting")
                try startContainer(c.id, s)
                progress(" Container \(c.name)  Started")
                return
            }
            progress(" Container \(c.name)  Recreate")
            // its anonymous volumes go with it (named volumes stay)
            try removeContainer(c, stop: true, quiet: true, volumes: true)
            let rec = try createContainer(s, number: number, hash: hash)
            progress(" Container \(rec.name)  Recreated")
            guard start else { return }
            progress(" Container \(rec.name)  Starting")
            try startContainer(rec.id, s)
            progress(" Container \(rec.name)  Started")
            return
        }
        let name = s.containerName ?? "\(project.name)-\(s.name)-\(number)"
        progress(" Container \(name)  Creating")
        let rec = try createContainer(s, number: number, hash: hash)
        progress(" Container \(rec.name)  Created")
        guard start else { return }
        progress(" Container \(rec.name)  Starting")
        try startContainer(rec.id, s)
        progress(" Container \(rec.name)  Started")
    }

    func startContainer(_ id: String, _ s: ComposeService) throws {
        // the addresses of the running peers now (they may have changed since the container was
        // created): the monitor writes them into its /etc/hosts before its process starts
        if var r = try? manager.store.record(id), r.network == "bridge" {
            let hosts = s.extraHosts + peerHosts()
            if r.extraHosts != hosts {
                r.extraHosts = hosts.isEmpty ? nil : hosts
                try? manager.store.withLock(id) { try manager.store.save(r) }
            }
        }
        do {
            let launch = try manager.start(id, monitorCommand: monitorCommand, attach: false)
            try launch.waitStarted()
        } catch {
            throw ComposeError.service("service \"\(s.name)\": cannot start its container: \(error)")
        }
    }

    /// The `HOST:IP` entries naming every running container of the project by its service
    /// and container names (the project's name resolution; see docs/compose.md).
    func peerHosts() -> [String] {
        containers().filter { $0.isRunning && !$0.state.ipAddress.isEmpty && $0.record.network == "bridge" }.flatMap { c -> [String] in
            let ip = c.state.ipAddress
            let service = c.record.labels[ComposeLabel.service] ?? ""
            let aliases = project.service(service)?.aliases ?? []
            return (service.isEmpty || service == c.name ? [] : ["\(service):\(ip)"]) + ["\(c.name):\(ip)"]
                + aliases.map { "\($0):\(ip)" }
        }
    }

    /// Rewrites the /etc/hosts of every running container of the project so that each names
    /// all the others (called after any container of it starts or stops).
    public func refreshHosts() {
        hostsLock.withLock { _ in refreshHostsLocked() }
    }

    private func refreshHostsLocked() {
        let peers = peerHosts()
        for c in containers() where c.isRunning && c.record.network == "bridge" {
            let own = project.service(c.record.labels[ComposeLabel.service] ?? "")?.extraHosts ?? []
            try? manager.rewriteHosts(c.id, extraHosts: own + peers)
        }
    }

    /// A container of `s`, created.
    func createContainer(_ s: ComposeService, number: Int, hash: String, oneOff: OneOff? = nil) throws -> ContainerRecord {
        var o = try options(s, number: number, hash: hash)
        if let one = oneOff {
            o.name = one.name ?? "\(project.name)-\(s.name)-run-\(ContainerStore.newID().prefix(12))"
            o.labels[ComposeLabel.oneoff] = "True"
            if let c = one.command { o.command = c }
            if let e = one.entrypoint { o.entrypoint = e; if one.command == nil { o.command = [] } }
            o.env += one.env
            if let u = one.user { o.user = u }
            if let w = one.workdir { o.workingDir = w }
            if !one.servicePorts { o.ports = [] }
            o.autoRemove = one.remove
            o.networkAliases = []
            o.moreNetworks = o.moreNetworks.mapValues { _ in [] }
            o.tty = one.tty
            o.openStdin = one.interactive
            o.attach = one.detach ? [] : (one.interactive ? ["stdin", "stdout", "stderr"] : ["stdout", "stderr"])
            // restart policies do not apply to one-off containers (docker compose run)
            o.restartPolicy = nil
        }
        do { return try manager.create(o) } catch {
            throw ComposeError.service("service \"\(s.name)\": cannot create its container: \(error)")
        }
    }

    /// The container's settings from the service.
    func options(_ s: ComposeService, number: Int, hash: String) throws -> CreateOptions {
        var o = CreateOptions(image: s.image)
        o.name = s.containerName ?? "\(project.name)-\(s.name)-\(number)"
        o.command = s.command ?? []
        o.entrypoint = s.entrypoint
        o.env = s.environment.keys.sorted().map { "\($0)=\(s.environment[$0] ?? "")" }
        o.workingDir = s.workingDir
        o.user = s.user
        o.hostname = s.hostname
        o.tty = s.tty
        o.openStdin = s.stdinOpen
        o.attach = []
        var labels = s.labels
        labels[ComposeLabel.project] = project.name
        labels[ComposeLabel.service] = s.name
        labels[ComposeLabel.number] = String(number)
        labels[ComposeLabel.oneoff] = "False"
        labels[ComposeLabel.configHash] = hash
        labels[ComposeLabel.workingDir] = project.workingDir
        labels[ComposeLabel.configFiles] = project.files.joined(separator: ",")
        o.labels = labels
        o.ports = try s.ports.map { p in
            guard p.published.isEmpty || Int(p.published) != nil else {
                throw ComposeError.service("service \"\(s.name)\": published port \"\(p.published)\" must be a single port number")
            }
            return PortBinding(hostIP: p.hostIP, hostPort: Int(p.published) ?? 0, containerPort: p.target, proto: p.proto)
        }
        var mounts: [MountPoint] = []
        for m in s.volumes {
            switch m.type {
            case .bind:
                // docker compose creates a missing host directory (create_host_path)
                if !FileManager.default.fileExists(atPath: m.source) {
                    do { _ = try FileSystem.makeDirectories(m.source) } catch {
                        throw ComposeError.service("service \"\(s.name)\": cannot create the bind mount source \(m.source): \(error)")
                    }
                }
                mounts.append(MountPoint(type: .bind, source: m.source, destination: m.target, readOnly: m.readOnly))
            case .volume:
                let name = m.source.isEmpty ? "" : project.volumes.first { $0.key == m.source }?.name ?? m.source
                mounts.append(MountPoint(type: .volume, source: name, destination: m.target, readOnly: m.readOnly))
            case .tmpfs:
                mounts.append(MountPoint(type: .tmpfs, source: "", destination: m.target, readOnly: m.readOnly))
            }
        }
        for t in s.tmpfs { mounts.append(try FlagValue.tmpfs(t, flag: "tmpfs")) }
        for (refs, objects, kind) in [(s.secrets, project.secrets, "secret"), (s.configs, project.configs, "config")] {
            for r in refs {
                guard let obj = objects.first(where: { $0.key == r.source }) else {
                    throw ComposeError.service("service \"\(s.name)\": undefined \(kind) \(r.source)")
                }
                mounts.append(MountPoint(type: .bind, source: try fileObjectPath(obj, kind: kind, service: s.name), destination: r.target, readOnly: true))
            }
        }
        o.mounts = mounts
        o.network = networkName(s)
        // on a user-defined network the service's name and aliases resolve to the container
        // (the network keeps every member's hosts file current); `network_mode: bridge` uses
        // the project's own hosts entries (peerHosts)
        if s.networkMode == nil {
            // the first network (by key) is eth0; the others are more interfaces
            let keys = s.networks.keys.sorted()
            func aliases(_ k: String) -> [String] { [s.name] + (s.networks[k] ?? []).filter { $0 != s.name } }
            o.networkAliases = keys.first.map(aliases) ?? [s.name]
            for k in keys.dropFirst() { o.moreNetworks[project.network(k)?.name ?? "\(project.name)_\(k)"] = aliases(k) }
        }
        o.restartPolicy = try s.restart.flatMap { try FlagValue.restartPolicy($0, flag: "restart") }
        if let h = s.healthcheck {
            o.healthcheck = h.disable ? HealthConfig(test: ["NONE"])
                : HealthConfig(test: h.test, interval: h.interval, timeout: h.timeout, startPeriod: h.startPeriod,
                               startInterval: h.startInterval, retries: h.retries)
        }
        o.capAdd = s.capAdd
        o.capDrop = s.capDrop
        o.privileged = s.privileged
        o.readOnly = s.readOnly
        o.initProcess = s.initProcess
        o.stopSignal = s.stopSignal
        o.stopTimeout = s.stopGracePeriod
        o.dns = s.dns
        o.dnsSearch = s.dnsSearch
        o.dnsOptions = s.dnsOpt
        o.memory = s.memLimit
        o.nanoCpus = s.nanoCpus
        o.pidsLimit = s.pidsLimit
        o.shmSize = s.shmSize
        o.ulimits = s.ulimits
        o.gpus = s.gpus
        o.securityOpt = s.securityOpt
        o.groupAdd = s.groupAdd
        o.platform = s.platform
        o.cdiDevices = s.devices.filter(FlagValue.isCDIDevice)
        o.devices = try s.devices.filter { !FlagValue.isCDIDevice($0) }.map { try FlagValue.device($0, flag: "devices") }
        // the peers that run now; the others are added as they start (refreshHosts)
        o.extraHosts = s.extraHosts + (o.network == "bridge" ? peerHosts() : [])
        return o
    }

    // MARK: - dependencies

    /// Waits until each dependency of `s` meets its condition (service_started: it was started;
    /// service_healthy: its health check passed; service_completed_successfully: it exited 0).
    func waitForDependencies(_ s: ComposeService, started: [String]) throws {
        for d in s.dependsOn.sorted(by: { $0.service < $1.service }) {
            guard let c = containers([d.service]).first else {
                if !d.required { continue }
                // with --no-deps the dependency may simply not be up: docker goes on too
                continue
            }
            switch d.condition {
            case .serviceStarted: continue
            case .serviceHealthy:
                guard c.record.healthcheck.map({ $0.test?.first != "NONE" }) == true else {
                    throw ComposeError.service("dependency failed to start: container \(c.name) has no healthcheck configured (service \"\(s.name)\" waits for service_healthy)")
                }
                progress(" Container \(c.name)  Waiting")
                while true {
                    let now = try manager.store.container(c.id)
                    if !now.isRunning {
                        throw ComposeError.service("dependency failed to start: container \(c.name) exited (\(now.state.exitCode)) before it became healthy")
                    }
                    if now.state.health?.status == .healthy { break }
                    if now.state.health?.status == .unhealthy {
                        throw ComposeError.service("dependency failed to start: container \(c.name) is unhealthy")
                    }
                    usleep(100_000)
                }
                progress(" Container \(c.name)  Healthy")
            case .serviceCompletedSuccessfully:
                progress(" Container \(c.name)  Waiting")
                let code = manager.wait(c.id)
                guard code == 0 else {
                    throw ComposeError.service("service \"\(d.service)\" didn't complete successfully: exit \(code) (service \"\(s.name)\" waits for it)")
                }
                progress(" Container \(c.name)  Exited")
            }
        }
    }

    // MARK: - stop, start, remove, down

    func removeContainer(_ c: Container, stop: Bool, quiet: Bool = false, volumes: Bool = false) throws {
        if stop && c.isRunning {
            if !quiet { progress(" Container \(c.name)  Stopping") }
            try manager.stop(c.id)
            if !quiet { progress(" Container \(c.name)  Stopped") }
        }
        if !quiet { progress(" Container \(c.name)  Removing") }
        try manager.remove(c.id, force: true, volumes: volumes)
        if !quiet { progress(" Container \(c.name)  Removed") }
    }

    /// Stops the services' containers (all when empty), dependents first.
    public func stop(_ services: [String] = [], timeout: Int? = nil) throws {
        try checkServices(services)
        let order = try DependencyOrder.sorted(project, services: services.isEmpty ? project.services.map(\.name) : services, withDependencies: false)
        var done = Set<String>()
        for s in order.reversed() {
            for c in containers([s.name]) where c.isRunning {
                progress(" Container \(c.name)  Stopping")
                try manager.stop(c.id, timeout: timeout)
                progress(" Container \(c.name)  Stopped")
                done.insert(c.id)
            }
        }
        // containers of services no longer in the file
        if services.isEmpty {
            for c in containers() where c.isRunning && !done.contains(c.id) { try manager.stop(c.id, timeout: timeout) }
        }
        refreshHosts()
    }

    /// Starts the services' existing containers (all when empty), dependencies first.
    public func start(_ services: [String] = []) throws {
        try checkServices(services)
        let order = try DependencyOrder.sorted(project, services: services.isEmpty ? project.services.map(\.name) : services, withDependencies: false)
        guard order.contains(where: { !containers([$0.name]).isEmpty }) else {
            throw ComposeError.service("no containers to start: create them with `dockbuild compose up`")
        }
        for s in order {
            try waitForDependencies(s, started: [])
            for c in containers([s.name]) where !c.isRunning {
                progress(" Container \(c.name)  Starting")
                try startContainer(c.id, s)
                progress(" Container \(c.name)  Started")
                refreshHosts()
            }
        }
    }

    /// Removes the services' stopped containers (all when empty); `stopFirst` stops running ones.
    public func remove(_ services: [String] = [], stopFirst: Bool = false, volumes: Bool = false) throws -> Int {
        try checkServices(services)
        var n = 0
        for c in containers(services) where stopFirst || !c.isRunning {
            try removeContainer(c, stop: true, volumes: volumes)
            n += 1
        }
        refreshHosts()
        return n
    }

    /// Stops and removes every container of the project (services no longer in the file
    /// included), then with `volumes` the project's named volumes and the containers'
    /// anonymous ones.
    public func down(volumes: Bool = false, timeout: Int? = nil) throws {
        let all = containers(oneOff: true)
        let order = (try? DependencyOrder.sorted(project, services: project.services.map(\.name))) ?? []
        let rank = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($0.element.name, $0.offset) })
        // dependents first
        let sorted = all.sorted { (rank[$0.record.labels[ComposeLabel.service] ?? ""] ?? -1) > (rank[$1.record.labels[ComposeLabel.service] ?? ""] ?? -1) }
        for c in sorted where c.isRunning {
            progress(" Container \(c.name)  Stopping")
            try manager.stop(c.id, timeout: timeout)
            progress(" Container \(c.name)  Stopped")
        }
        for c in sorted {
            progress(" Container \(c.name)  Removing")
            try manager.remove(c.id, force: true, volumes: volumes)
            progress(" Container \(c.name)  Removed")
        }
        removeNetworks()
        try? FileSystem.removeTree(projectFilesDir)
        guard volumes else { return }
        for v in manager.volumes.list() where v.labels[ComposeLabel.project] == project.name {
            progress(" Volume \(v.name)  Removing")
            do { try manager.volumes.remove(v.name) } catch {
                throw ComposeError.service("volume \(v.name): \(error)")
            }
            progress(" Volume \(v.name)  Removed")
        }
    }
}

extension ComposeEngine {
    /// Removes the project's networks (those carrying its label) that no container uses;
    /// one still used (by a container outside the project) stays, with a warning.
    func removeNetworks() {
        for n in manager.networks.list() where n.labels[ComposeLabel.project] == project.name {
            let users = manager.containers(onNetwork: n.name)
            if !users.isEmpty {
                progress("WARN: network \(n.name) is still used by \(users.map(\.name).sorted().joined(separator: ", ")): left in place")
                continue
            }
            progress(" Network \(n.name)  Removing")
            do { try manager.networks.remove(n.name) } catch {
                progress("WARN: network \(n.name): \(error)")
                continue
            }
            progress(" Network \(n.name)  Removed")
        }
    }

    /// `up --wait`: until every service's container runs (and is healthy, where it has a
    /// health check); a one-shot that exited 0 counts as done. Throws on a failure or timeout.
    public func waitRunningOrHealthy(_ services: [String], timeout: Double?) throws {
        let names = services.isEmpty ? project.services.map(\.name) : services
        let end = timeout.map { Date().addingTimeInterval($0) }
        for n in names {
            for c in containers([n]) {
                while true {
                    let now = try manager.store.container(c.id)
                    let hasCheck = now.record.healthcheck.map { $0.test?.first != "NONE" } ?? false
                    if now.isRunning && (!hasCheck || now.state.health?.status == .healthy) { break }
                    if !now.isRunning && now.state.exitCode == 0 && now.state.status == .exited { break }
                    if !now.isRunning { throw ComposeError.service("container \(c.name) exited (\(now.state.exitCode))") }
                    if now.state.health?.status == .unhealthy { throw ComposeError.service("container \(c.name) is unhealthy") }
                    if let end, Date() > end { throw ComposeError.service("timeout waiting for container \(c.name) to be running and healthy") }
                    usleep(100_000)
                }
                progress(" Container \(c.name)  \(c.record.healthcheck.map { $0.test?.first != "NONE" } ?? false ? "Healthy" : "Running")")
            }
        }
    }
}

/// `compose run`: what a one-off container changes from its service.
public struct OneOff: Sendable {
    public var name: String?
    public var command: [String]?
    public var entrypoint: [String]?
    public var env: [String] = []
    public var user: String?
    public var workdir: String?
    /// `--service-ports`: publish the service's ports (not done by default).
    public var servicePorts = false
    public var remove = false
    public var tty = false
    public var interactive = false
    public var detach = false
    public init() {}
}

extension ComposeEngine {
    /// `compose run`: starts the service's dependencies (unless `noDeps`), then creates a
    /// one-off container of `service` (labelled `oneoff=True`, named
    /// `PROJECT-SERVICE-run-ID`) for the caller to start.
    public func createOneOff(_ service: String, _ one: OneOff, noDeps: Bool) async throws -> ContainerRecord {
        try checkServices([service])
        guard let s = project.service(service) else { throw ComposeError.invalidArgument("no such service: \(service)") }
        let deps = s.dependsOn.map(\.service).filter { project.service($0) != nil }
        if !noDeps && !deps.isEmpty { try await up(deps) }
        try buildImages([s], always: false)
        try await pullImages([s])
        try createVolumes(for: [s])
        try createNetworks(for: [s])
        if !noDeps { try waitForDependencies(s, started: deps) }
        return try createContainer(s, number: 1, hash: Self.configHash(s), oneOff: one)
    }

    /// Sends `signal` to the services' running containers.
    public func kill(_ services: [String], signal: String) throws {
        try checkServices(services)
        for c in containers(services) where c.isRunning {
            try manager.kill(c.id, signal: signal)
            progress(" Container \(c.name)  Killed")
        }
    }

    /// Freezes (or thaws) the services' running containers.
    public func pause(_ services: [String], _ on: Bool) throws {
        try checkServices(services)
        for c in containers(services) where c.isRunning && c.isPaused != on {
            if on { try manager.pause(c.id) } else { try manager.unpause(c.id) }
            progress(" Container \(c.name)  \(on ? "Paused" : "Unpaused")")
        }
    }
}

extension ComposeEngine {
    /// `compose pull`: the images of the services (all when empty) that are not built here,
    /// pulled again from their registries.
    public func pull(_ services: [String]) async throws {
        try checkServices(services)
        let store = try manager.images()
        for s in project.services where (services.isEmpty || services.contains(s.name)) && s.build == nil {
            progress(" \(s.name) Pulling")
            do {
                try await ImagePull.ensure(s.image, policy: .always, store: store, platform: try s.platform.map { try Platform(parsing: $0) })
            } catch {
                throw ComposeError.service("service \"\(s.name)\": image \(s.image): \(error)")
            }
            progress(" \(s.name) Pulled")
        }
    }
}
