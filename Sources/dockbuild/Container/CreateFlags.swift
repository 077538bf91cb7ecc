import ArgumentParser
import Containers
import Foundation

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
    @Option(name: [.long, .customLong("net")], help: "Network: bridge (default), host, none, container:NAME.") var network = "bridge"
    @Option(name: .shortAndLong, help: "Memory limit (e.g. 512M).") var memory: String?
    @Option(name: .customLong("memory-swap"), help: "Memory plus swap limit (-1 for unlimited).") var memorySwap: String?
    @Option(name: .long, help: "CPUs (e.g. 0.5).") var cpus: Double?
    @Option(name: .customLong("pids-limit"), help: "Maximum number of processes.") var pidsLimit: Int64?
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
    @Flag(name: .shortAndLong, help: "Keep stdin open.") var interactive = false
    @Flag(name: .shortAndLong, help: "Allocate a pseudo-terminal.") var tty = false
    @Flag(name: .long, help: "Remove the container when it exits.") var rm = false

    func options(image: String, command: [String]) throws -> CreateOptions {
        var o = CreateOptions(image: image)
        o.name = name
        o.command = command
        if let entrypoint { o.entrypoint = [entrypoint] }
        for f in envFile {
            guard let text = try? String(contentsOfFile: f, encoding: .utf8) else {
                throw ContainersError.invalidArgument("--env-file \(f): cannot read the file")
            }
            for line in text.split(separator: "\n") {
                let l = line.trimmingCharacters(in: .whitespaces)
                if l.isEmpty || l.hasPrefix("#") { continue }
                o.env.append(l)
            }
        }
        o.env += env
        o.workingDir = workdir
        o.user = user
        o.hostname = hostname
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
        o.mounts = try volume.map(MountParser.volume) + mount.map(MountParser.mount) + tmpfs.map(MountParser.tmpfs)
        o.ports = try publish.map { try PortBinding(parsing: $0) }
        o.publishAll = publishAll
        o.network = network
        o.memory = try memory.map(parseBytes)
        o.memorySwap = try memorySwap.map(parseBytes)
        if let cpus {
            guard cpus > 0 else { throw ContainersError.invalidArgument("--cpus \(cpus): must be more than 0") }
            o.nanoCpus = Int64((cpus * 1e9).rounded())
        }
        o.pidsLimit = pidsLimit
        o.gpus = gpus
        for l in label {
            let kv = l.split(separator: "=", maxSplits: 1).map(String.init)
            o.labels[kv[0]] = kv.count > 1 ? kv[1] : ""
        }
        return o
    }
}

/// Parses `-v`, `--mount` and `--tmpfs`.
enum MountParser {
    static func volume(_ s: String) throws -> MountPoint {
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
            return MountPoint(type: .volume, source: "", destination: fields[0], anonymous: true)
        case 2:
            let src = fields[0], dst = fields[1]
            if src.hasPrefix("/") || src.hasPrefix(".") {
                let abs = src.hasPrefix("/") ? src : FileManager.default.currentDirectoryPath + "/" + src
                if !FileManager.default.fileExists(atPath: abs) {
                    try? FileManager.default.createDirectory(atPath: abs, withIntermediateDirectories: true)
                }
                return MountPoint(type: .bind, source: URL(fileURLWithPath: abs).standardizedFileURL.path, destination: dst, readOnly: ro)
            }
            return MountPoint(type: .volume, source: src, destination: dst, readOnly: ro)
        default:
            throw ContainersError.invalidArgument("-v \(s): expected HOST:CONTAINER[:ro], NAME:CONTAINER[:ro] or CONTAINER")
        }
    }

    static func mount(_ s: String) throws -> MountPoint {
        var kv: [String: String] = [:]
        var ro = false
        for f in s.split(separator: ",") {
            let p = f.split(separator: "=", maxSplits: 1).map(String.init)
            let k = p[0].lowercased()
            if p.count == 1 {
                if k == "readonly" || k == "ro" { ro = true; continue }
                throw ContainersError.invalidArgument("--mount \(s): \"\(p[0])\" needs a value")
            }
            if k == "readonly" || k == "ro" { ro = p[1] == "true" || p[1] == "1"; continue }
            kv[k] = p[1]
        }
        let type = kv["type"] ?? "volume"
        guard let dst = kv["target"] ?? kv["destination"] ?? kv["dst"] else {
            throw ContainersError.invalidArgument("--mount \(s): target= is required")
        }
        let src = kv["source"] ?? kv["src"] ?? ""
        switch type {
        case "bind":
            guard src.hasPrefix("/") else { throw ContainersError.invalidArgument("--mount \(s): a bind mount needs an absolute source=") }
            return MountPoint(type: .bind, source: src, destination: dst, readOnly: ro)
        case "volume":
            return MountPoint(type: .volume, source: src, destination: dst, readOnly: ro, anonymous: src.isEmpty)
        case "tmpfs":
            var opts: [String] = []
            if let size = kv["tmpfs-size"] { opts.append("size=\(size)") }
            if let mode = kv["tmpfs-mode"] { opts.append("mode=\(mode)") }
            return MountPoint(type: .tmpfs, source: "", destination: dst, readOnly: ro, options: opts)
        default:
            throw ContainersError.invalidArgument("--mount \(s): type must be bind, volume or tmpfs")
        }
    }

    static func tmpfs(_ s: String) throws -> MountPoint {
        let p = s.split(separator: ":", maxSplits: 1).map(String.init)
        return MountPoint(type: .tmpfs, source: "", destination: p[0], options: p.count > 1 ? p[1].split(separator: ",").map(String.init) : [])
    }
}
