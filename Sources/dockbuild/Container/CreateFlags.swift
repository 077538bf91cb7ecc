import ArgumentParser
import Containers
import Foundation
import OCI
import SystemSupport

/// The flags `run` and `create` share.
struct ContainerCreateFlags: ParsableArguments {
    @Option(name: .long, help: "Name of the container.") var name: String?
    @Option(name: .shortAndLong, help: "Set an environment variable (KEY=VALUE, or KEY to copy it from here).") var env: [String] = []
    @Option(name: .customLong("env-file"), help: "Read environment variables from a file.") var envFile: [String] = []
    @Option(name: .shortAndLong, help: "Bind mount HOST:CTR[:ro] or named volume NAME:CTR[:ro], or /CTR for an anonymous volume.") var volume: [String] = []
    @Option(name: .long, help: "Mount: type=bind|volume|tmpfs,source=...,target=...[,readonly].") var mount: [String] = []
    @Option(name: .long, help: "Mount a tmpfs: PATH[:OPTIONS].") var tmpfs: [String] = []
    @Option(name: .shortAndLong, help: "Publish a port: [IP:]HOST:CTR[/udp].") var publish: [String] = []
    @Flag(name: [.customShort("P"), .customLong("publish-all")], help: "Publish every exposed port on a free host port.") var publishAll = false
    @Option(name: [.long, .customLong("net")], help: "Network: bridge (default), host, none, container:NAME, or a network of `network create`.") var network = "bridge"
    @Option(name: [.customLong("network-alias"), .customLong("net-alias")], help: "Another name the container answers to on its user-defined network.") var networkAlias: [String] = []
    @Option(name: .shortAndLong, parsing: .unconditional, help: "Memory limit (e.g. 512M).") var memory: String?
    @Option(name: .customLong("memory-swap"), parsing: .unconditional, help: "Memory plus swap limit (-1 for unlimited).") var memorySwap: String?
    @Option(name: .long, parsing: .unconditional, help: "CPUs (e.g. 0.5).") var cpus: String?
    @Option(name: .customLong("pids-limit"), parsing: .unconditional, help: "Maximum number of processes (0 or -1: no limit).") var pidsLimit: String?
    @Option(name: .long, help: "GPUs through CDI: all, a count, or device=NAME[,NAME].") var gpus: String?
    @Option(name: .shortAndLong, help: "Working directory inside the container.") var workdir: String?
    @Option(name: .shortAndLong, help: "User: name|uid[:group|gid].") var user: String?
    @Option(name: .long, help: "Override the image's entrypoint (\"\" clears it).") var entrypoint: String?
    @Option(name: .long, help: "Container host name.") var hostname: String?
    @Flag(name: .customLong("read-only"), help: "Mount the root filesystem read-only.") var readOnly = false
    @Option(name: .customLong("cap-add"), help: "Add a capability.") var capAdd: [String] = []
    @Option(name: .customLong("cap-drop"), help: "Drop a capability.") var capDrop: [String] = []
    @Flag(name: .long, help: "Give all capabilities and host devices, no seccomp filter and no masked paths.") var privileged = false
    @Option(name: .customLong("security-opt"), help: "seccomp=unconfined|PROFILE.json, no-new-privileges[=true], label=disable, apparmor=unconfined; repeatable.")
    var securityOpt: [String] = []
    @Flag(name: .long, help: "Run an init (tini) as PID 1 that reaps zombies and forwards signals.") var `init` = false
    @Option(name: .long, help: "Pull policy: missing, always, never.") var pull = "missing"
    @Option(name: [.short, .long], help: "Set a label KEY=VALUE.") var label: [String] = []
    @Option(name: .customLong("label-file"), help: "Read labels (KEY=VALUE lines, # comments) from a file.") var labelFile: [String] = []
    @Option(help: "Write the container ID to this file (which must not exist yet).") var cidfile: String?
    @Flag(name: .shortAndLong, help: "Keep stdin open.") var interactive = false
    @Flag(name: .shortAndLong, help: "Allocate a pseudo-terminal.") var tty = false
    @Flag(name: .long, help: "Remove the container when it exits.") var rm = false
    @Option(name: .customLong("add-host"), help: "Add a line to the container's /etc/hosts: HOST:IP (or HOST:host-gateway).") var addHost: [String] = []
    @Option(name: .long, help: "A name server for the container's /etc/resolv.conf (IP address).") var dns: [String] = []
    @Option(name: .customLong("dns-search"), help: "A search domain for /etc/resolv.conf (. for none).") var dnsSearch: [String] = []
    @Option(name: .long, help: "A resource limit: NAME=SOFT[:HARD], e.g. nofile=1024:2048 (-1 for unlimited).") var ulimit: [String] = []
    @Option(name: .customLong("shm-size"), parsing: .unconditional, help: "Size of /dev/shm (e.g. 128m; default 64m).") var shmSize: String?
    @Option(name: .long, help: "Platform of the image to use: os/arch[/variant], e.g. linux/arm64 (pulled from an index when missing).") var platform: String?
    @Option(name: .customLong("log-driver"), help: "Logging driver: json-file (default) or none.") var logDriver: String?
    @Option(name: .customLong("log-opt"), help: "Log driver option: max-size=SIZE (rotate past it), max-file=N (files kept).") var logOpt: [String] = []
    @Option(name: .customLong("group-add"), help: "An additional group: a gid or a group name from the image.") var groupAdd: [String] = []
    @Option(name: .long, help: "IPC namespace: private (default), shareable, host, none, container:NAME.") var ipc: String?
    @Option(name: .long, help: "PID namespace: host or container:NAME (default: the container's own).") var pid: String?
    @Option(name: .long, help: "UTS namespace: host (default: the container's own).") var uts: String?
    @Option(name: .customLong("stop-signal"), help: "Signal that stops the container (default: the image's STOPSIGNAL, else SIGTERM).") var stopSignal: String?
    @Option(name: .customLong("stop-timeout"), parsing: .unconditional, help: "Seconds `stop` waits before SIGKILL (default 10; -1: no limit).") var stopTimeout: String?
    @Option(name: .long, help: "Give a host device: HOST[:CONTAINER][:PERMISSIONS], PERMISSIONS of r, w, m; or a CDI device, vendor.com/class=NAME (NAME or all).") var device: [String] = []
    @Option(name: .long, help: "Restart policy: no, always, unless-stopped, on-failure[:MAX-RETRIES].") var restart: String?
    @Option(name: .customLong("health-cmd"), parsing: .unconditional, help: "Command to run to check health (run by the container's shell).") var healthCmd: String?
    @Option(name: .customLong("health-interval"), parsing: .unconditional, help: "Time between running the check (ms|s|m|h) (default 30s).") var healthInterval: String?
    @Option(name: .customLong("health-timeout"), parsing: .unconditional, help: "Maximum time to allow one check to run (ms|s|m|h) (default 30s).") var healthTimeout: String?
    @Option(name: .customLong("health-start-period"), parsing: .unconditional, help: "Start period for the container to initialize before failures count toward retries (ms|s|m|h) (default 0s).") var healthStartPeriod: String?
    @Option(name: .customLong("health-start-interval"), parsing: .unconditional, help: "Time between running the check during the start period (ms|s|m|h) (default: the interval).") var healthStartInterval: String?
    @Option(name: .customLong("health-retries"), parsing: .unconditional, help: "Consecutive failures needed to report unhealthy (default 3).") var healthRetries: String?
    @Flag(name: .customLong("no-healthcheck"), help: "Disable any container-specified HEALTHCHECK.") var noHealthcheck = false
    @Option(name: [.customLong("dns-option"), .customLong("dns-opt")], help: "A resolver option for /etc/resolv.conf (e.g. ndots:2).") var dnsOption: [String] = []

    /// Checks every value before anything is pulled or created: a bad one is a one-line
    /// usage error naming the flag, exit 125 as in docker, never a crash.
    func validate() throws {
        do {
            _ = try memory.map { try FlagValue.bytes($0, flag: "--memory") }
            _ = try memorySwap.map { try FlagValue.bytes($0, flag: "--memory-swap", unlimited: true) }
            _ = try cpus.map { try FlagValue.nanoCPUs($0) }
            _ = try pidsLimit.map { try FlagValue.pidsLimit($0) }
            _ = try hostname.map { try FlagValue.hostname($0) }
            _ = try workdir.map { try FlagValue.workdir($0) }
            for e in env { _ = try FlagValue.env(e) }
            for l in label { _ = try FlagValue.label(l) }
            for t in tmpfs { _ = try FlagValue.tmpfs(t) }
            for p in publish { _ = try PortBinding(parsing: p) }
            for m in mount { _ = try MountParser.mount(m) }
            for v in volume { try MountParser.checkVolume(v) }
            for h in addHost { _ = try FlagValue.extraHost(h) }
            for d in dns { _ = try FlagValue.dnsServer(d) }
            for d in dnsSearch { _ = try FlagValue.dnsSearch(d) }
            for d in dnsOption { _ = try FlagValue.dnsOption(d) }
            for u in ulimit { _ = try FlagValue.ulimit(u) }
            _ = try shmSize.map { try FlagValue.shmSize($0) }
            _ = try LogConfig(driver: logDriver, options: try logOptions())
            if let platform {
                do { _ = try Platform(parsing: platform).validated() } catch { throw ContainersError.invalidArgument("--platform \(platform): \(error)") }
            }
            for g in groupAdd { _ = try FlagValue.groupAdd(g) }
            _ = try stopSignal.map { try FlagValue.stopSignal($0) }
            _ = try stopTimeout.map { try FlagValue.stopTimeout($0) }
            for d in device where !FlagValue.isCDIDevice(d) { _ = try FlagValue.device(d) }
            _ = try restart.map { try FlagValue.restartPolicy($0) }
            _ = try healthConfig()
            _ = try ipc.map { try FlagValue.namespaceMode($0, flag: "--ipc", modes: ["host", "none", "shareable"], container: true) }
            _ = try pid.map { try FlagValue.namespaceMode($0, flag: "--pid", modes: ["host"], container: true) }
            _ = try uts.map { try FlagValue.namespaceMode($0, flag: "--uts", modes: ["host"], container: false) }
        } catch {
            FileHandle.standardError.write(Data("dockbuild: \(error)\n".utf8))
            throw ExitCode(125)
        }
    }

    /// `--log-opt KEY=VALUE` pairs.
    func logOptions() throws -> [String: String] {
        var out: [String: String] = [:]
        for o in logOpt {
            let kv = o.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, !kv[0].isEmpty else { throw ContainersError.invalidArgument("--log-opt \(o): use KEY=VALUE, e.g. max-size=10m") }
            out[kv[0]] = kv[1]
        }
        return out
    }

    func options(image: String, command: [String]) throws -> CreateOptions {
        var o = CreateOptions(image: image)
        o.name = name
        o.command = command
        if let entrypoint { o.entrypoint = [entrypoint] }
        for f in envFile { o.env += try FlagValue.envFile(f) }
        o.env += try env.map { try FlagValue.env($0) }
        o.workingDir = try workdir.map { try FlagValue.workdir($0) }
        o.user = user
        o.hostname = try hostname.map { try FlagValue.hostname($0) }
        o.tty = tty
        o.openStdin = interactive
        o.autoRemove = rm
        o.readOnly = readOnly
        o.privileged = privileged
        o.capAdd = capAdd
        o.capDrop = capDrop
        o.securityOpt = securityOpt
        for notice in try SecurityOptions(securityOpt).notices {
            FileHandle.standardError.write(Data("dockbuild: notice: \(notice)\n".utf8))
        }
        o.initProcess = `init`
        o.mounts = try volume.map(MountParser.volume) + mount.map(MountParser.mount) + tmpfs.map { try FlagValue.tmpfs($0) }
        o.ports = try publish.map { try PortBinding(parsing: $0) }
        o.publishAll = publishAll
        o.network = network
        o.networkAliases = networkAlias
        o.memory = try memory.map { try FlagValue.bytes($0, flag: "--memory") }
        o.memorySwap = try memorySwap.map { try FlagValue.bytes($0, flag: "--memory-swap", unlimited: true) }
        o.nanoCpus = try cpus.map { try FlagValue.nanoCPUs($0) }
        o.pidsLimit = try pidsLimit.map { try FlagValue.pidsLimit($0) }
        o.gpus = gpus
        o.extraHosts = addHost
        o.dns = dns
        o.dnsSearch = dnsSearch
        o.dnsOptions = dnsOption
        o.ulimits = try ulimit.map { try FlagValue.ulimit($0) }
        o.shmSize = try shmSize.map { try FlagValue.shmSize($0) }
        o.platform = platform
        o.logDriver = logDriver
        o.logOpts = try logOptions()
        o.groupAdd = groupAdd
        o.ipcMode = ipc ?? ""
        o.stopSignal = stopSignal
        o.devices = try device.filter { !FlagValue.isCDIDevice($0) }.map { try FlagValue.device($0) }
        o.cdiDevices = device.filter { FlagValue.isCDIDevice($0) }
        o.restartPolicy = try restart.flatMap { try FlagValue.restartPolicy($0) }
        o.stopTimeout = try stopTimeout.map { try FlagValue.stopTimeout($0) }
        o.healthcheck = try healthConfig()
        o.pidMode = pid ?? ""
        o.utsMode = uts ?? ""
        for f in labelFile {
            guard let text = try? String(contentsOfFile: f, encoding: .utf8) else {
                throw ContainersError.invalidArgument("--label-file \(f): cannot read the file")
            }
            for line in text.split(separator: "\n") {
                let l = line.trimmingCharacters(in: .whitespaces)
                if l.isEmpty || l.hasPrefix("#") { continue }
                let (k, v) = try FlagValue.label(l)
                o.labels[k] = v
            }
        }
        for l in label {
            let (k, v) = try FlagValue.label(l)
            o.labels[k] = v
        }
        return o
    }

    /// `--health-*` and `--no-healthcheck`; nil when none is given.
    func healthConfig() throws -> HealthConfig? {
        try FlagValue.healthConfig(cmd: healthCmd, interval: healthInterval, timeout: healthTimeout, startPeriod: healthStartPeriod,
                                   startInterval: healthStartInterval, retries: healthRetries, none: noHealthcheck)
    }

    /// `--cidfile`: refused before anything is created when the file exists (docker's rule: it
    /// may belong to a container still running).
    func checkCidfile() throws {
        if let cidfile, FileManager.default.fileExists(atPath: cidfile) {
            throw ContainersError.invalidArgument("--cidfile \(cidfile): container ID file found, make sure the other container isn't running or delete \(cidfile)")
        }
    }

    /// Writes the new container's ID to `--cidfile`.
    func writeCidfile(_ id: String) throws {
        guard let cidfile else { return }
        guard FileManager.default.createFile(atPath: cidfile, contents: Data(id.utf8)) else {
            throw ContainersError.invalidArgument("--cidfile \(cidfile): cannot write the container ID file")
        }
    }
}

/// Parses `-v`, `--mount` and `--tmpfs`.
enum MountParser {
    /// The checks of `volume` without its side effect (creating a missing host directory).
    static func checkVolume(_ s: String) throws {
        _ = try volumeFields(s)
    }

    static func volume(_ s: String) throws -> MountPoint {
        let (src, dst, ro) = try volumeFields(s)
        guard let src else {
            return MountPoint(type: .volume, source: "", destination: dst, anonymous: true)
        }
        if src.hasPrefix("/") || src.hasPrefix(".") {
            let abs = src.hasPrefix("/") ? src : FileManager.default.currentDirectoryPath + "/" + src
            if !FileManager.default.fileExists(atPath: abs) {
                _ = try? FileSystem.makeDirectories(abs)
            }
            return MountPoint(type: .bind, source: URL(fileURLWithPath: abs).standardizedFileURL.path, destination: dst, readOnly: ro)
        }
        return MountPoint(type: .volume, source: src, destination: dst, readOnly: ro)
    }

    /// `-v` split into source (nil for an anonymous volume), container path and read-only.
    static func volumeFields(_ s: String) throws -> (String?, String, Bool) {
        let parts = s.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var ro = false
        var fields = parts
        if fields.count == 3 {
            let opts = fields.removeLast().split(separator: ",")
            for o in opts {
                switch o {
                case "ro": ro = true
                case "rw", "z", "Z", "rprivate", "private", "shared", "rshared", "slave", "rslave", "nocopy": break
                default: throw ContainersError.invalidArgument("-v \(s): unknown option \"\(o)\" (ro, rw)")
                }
            }
        }
        switch fields.count {
        case 1:
            return (nil, try FlagValue.containerPath(fields[0], flag: "-v", text: s), ro)
        case 2:
            let src = fields[0]
            let dst = try FlagValue.containerPath(fields[1], flag: "-v", text: s)
            if src.hasPrefix("/") || src.hasPrefix(".") {
                guard !src.contains("\0") else { throw ContainersError.invalidArgument("-v \(s): the host path contains NUL") }
                return (src, dst, ro)
            }
            return (try FlagValue.volumeName(src, flag: "-v", text: s), dst, ro)
        default:
            throw ContainersError.invalidArgument("-v \(s): expected HOST:CONTAINER[:ro], NAME:CONTAINER[:ro] or CONTAINER")
        }
    }

    static func mount(_ s: String) throws -> MountPoint {
        var kv: [String: String] = [:]
        var ro = false
        for f in s.split(separator: ",") {
            let p = f.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard let first = p.first, !first.isEmpty else {
                throw ContainersError.invalidArgument("--mount \(s): \"\(f)\" has no key; give type=bind|volume|tmpfs,source=...,target=...[,readonly]")
            }
            let k = first.lowercased()
            if p.count == 1 {
                if k == "readonly" || k == "ro" { ro = true; continue }
                throw ContainersError.invalidArgument("--mount \(s): \"\(p[0])\" needs a value")
            }
            if k == "readonly" || k == "ro" { ro = p[1] == "true" || p[1] == "1"; continue }
            kv[k] = p[1]
        }
        let type = kv["type"] ?? "volume"
        guard let target = kv["target"] ?? kv["destination"] ?? kv["dst"] else {
            throw ContainersError.invalidArgument("--mount \(s): target= is required")
        }
        let dst = try FlagValue.containerPath(target, flag: "--mount", text: s)
        let src = kv["source"] ?? kv["src"] ?? ""
        switch type {
        case "bind":
            guard src.hasPrefix("/") else { throw ContainersError.invalidArgument("--mount \(s): a bind mount needs an absolute source=") }
            return MountPoint(type: .bind, source: src, destination: dst, readOnly: ro)
        case "volume":
            if !src.isEmpty { _ = try FlagValue.volumeName(src, flag: "--mount", text: s) }
            return MountPoint(type: .volume, source: src, destination: dst, readOnly: ro, anonymous: src.isEmpty)
        case "tmpfs":
            var opts: [String] = []
            if let size = kv["tmpfs-size"] { opts.append(try FlagValue.tmpfsOption("size=\(size)", flag: "--mount", text: s)) }
            if let mode = kv["tmpfs-mode"] { opts.append(try FlagValue.tmpfsOption("mode=\(mode)", flag: "--mount", text: s)) }
            return MountPoint(type: .tmpfs, source: "", destination: dst, readOnly: ro, options: opts)
        default:
            throw ContainersError.invalidArgument("--mount \(s): type must be bind, volume or tmpfs")
        }
    }

}
