import ArgumentParser
import Containers
import Foundation
import OCI

/// `container ...`: the lifecycle commands under one name, plus `prune`.
struct ContainerGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "container", abstract: "Manage containers.",
        subcommands: [ContainerInspectCommand.self, ContainerPruneCommand.self, PsCommand.self, RunCommand.self,
                      CreateCommand.self, StartCommand.self, StopCommand.self, RestartCommand.self, KillCommand.self,
                      RmCommand.self, LogsCommand.self, ExecCommand.self, AttachCommand.self, WaitCommand.self,
                      TopCommand.self, PortCommand.self, CpCommand.self, CommitCommand.self, StatsCommand.self,
                      UpdateCommand.self, RenameCommand.self, PauseCommand.self,
                      UnpauseCommand.self, DiffCommand.self, ExportCommand.self])
}

/// `container prune`: remove every stopped container.
struct ContainerPruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove all stopped containers.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Do not prompt for confirmation.") var force = false
    @Option(help: ArgumentHelp("Only containers created before a time (until=2026-01-02T15:04:05Z, a Unix time, or a duration like until=24h) or with (label=KEY[=VALUE]) or without (label!=KEY[=VALUE]) a label.", valueName: "filter"))
    var filter: [String] = []

    func run() throws {
        try ContainerCLI.guarded {
            let f = try PruneFilter(filter)
            guard force || ContainerCLI.confirm("WARNING! This will remove all stopped containers.") else { return }
            let m = try ContainerCLI.manager(global)
            let ids = m.prune(f)
            if !ids.isEmpty { ContainerCLI.out("Deleted Containers:\n" + ids.joined(separator: "\n") + "\n") }
            ContainerCLI.out("Total reclaimed space: 0B")
        }
    }
}

/// `volume create|ls|inspect|rm|prune`.
struct VolumeGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "volume", abstract: "Manage named volumes.",
        subcommands: [Create.self, Ls.self, Inspect.self, Rm.self, Prune.self])

    /// A volume as `volume ls --format` sees it (docker's fields).
    static func row(_ v: Volume) -> TemplateValue {
        .object([("Driver", .string(v.driver)),
                 ("Labels", .string(v.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))),
                 ("Links", .string("N/A")), ("Mountpoint", .string(v.mountpoint)), ("Name", .string(v.name)),
                 ("Scope", .string("local")), ("Size", .string("N/A"))])
    }

    static let headers = ["Driver": "DRIVER", "Labels": "LABELS", "Links": "LINKS", "Mountpoint": "MOUNTPOINT",
                          "Name": "VOLUME NAME", "Scope": "SCOPE", "Size": "SIZE"]

    static func usedVolumes(_ m: ContainerManager) -> [String: [String]] {
        var used: [String: [String]] = [:]
        for c in m.store.list() { for v in c.record.mounts where v.type == .volume { used[v.source, default: []].append(c.name) } }
        return used
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a volume.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Label KEY=VALUE.") var label: [String] = []
        @Option(name: [.customShort("o"), .customLong("opt")], help: "Driver option KEY=VALUE: type, device, o (as mount(8): --opt type=tmpfs --opt device=tmpfs --opt o=size=100m).")
        var opt: [String] = []
        @Option(name: .shortAndLong, help: "Volume driver (only local).") var driver = "local"
        @Argument(help: "The volume's name (a random one when left out).") var name: String?
        func run() throws {
            try ContainerCLI.guarded {
                let m = try ContainerCLI.manager(global)
                guard driver == "local" else { throw ContainersError.invalidArgument("--driver \(driver): only the local driver exists") }
                var labels: [String: String] = [:]
                for l in label { let kv = l.split(separator: "=", maxSplits: 1).map(String.init); labels[kv[0]] = kv.count > 1 ? kv[1] : "" }
                var options: [String: String] = [:]
                for o in opt {
                    let kv = o.split(separator: "=", maxSplits: 1).map(String.init)
                    guard kv.count == 2, !kv[0].isEmpty else { throw ContainersError.invalidArgument("--opt \(o): use KEY=VALUE") }
                    options[kv[0]] = kv[1]
                }
                ContainerCLI.out(try m.volumes.create(name, labels: labels, options: options).name)
            }
        }
    }

    struct Ls: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List volumes.", aliases: ["list"])
        @OptionGroup var global: GlobalOptions
        @Flag(name: .shortAndLong, help: "Only names.") var quiet = false
        @Option(help: "Format with a Go template ('{{.Name}}'), table TEMPLATE, or json.") var format: String?
        func run() throws {
            try ContainerCLI.guarded {
                let m = try ContainerCLI.manager(global)
                if !quiet, let out = try OutputFormat.list(format, rows: m.volumes.list().map(VolumeGroup.row), headers: VolumeGroup.headers,
                                                           typeName: "*formatter.volumeContext") {
                    if !out.isEmpty { ContainerCLI.out(out) }
                    return
                }
                if !quiet { ContainerCLI.out("DRIVER    VOLUME NAME") }
                for v in m.volumes.list() { ContainerCLI.out(quiet ? v.name : "local     \(v.name)") }
            }
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show volumes as JSON.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Format with a Go template ('{{.Mountpoint}}') or json.") var format: String?
        @Argument(help: "Volume names.") var names: [String]
        func run() throws { try Self.show(global, names: names, format: format) }

        /// docker's volume document: its seven fields in its order, indented as docker prints it.
        static func document(_ v: Volume) -> TemplateValue {
            .object([("CreatedAt", .string(v.createdAt.split(separator: ".").first.map { String($0) + (v.createdAt.contains(".") ? "Z" : "") } ?? v.createdAt)),
                     ("Driver", .string(v.driver)),
                     ("Labels", .object(v.labels.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
                     ("Mountpoint", .string(v.mountpoint)), ("Name", .string(v.name)),
                     ("Options", .object((v.options ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
                     ("Scope", .string("local"))])
        }

        static func show(_ global: GlobalOptions, names: [String], format: String?) throws {
            let template = try format.map { try OutputFormat.parse($0 == "json" ? "{{json .}}" : $0, typeName: "volume.Volume", strictMaps: true) }
            try ContainerCLI.guarded {
                let m = try ContainerCLI.manager(global)
                let docs = try names.map { document(try m.volumes.inspect($0)) }
                if let template {
                    for d in docs { ContainerCLI.out(try template.render(d)) }
                    return
                }
                ContainerCLI.out(TemplateValue.array(docs).pretty(indent: "    "))
            }
        }
    }

    struct Rm: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove volumes.", aliases: ["remove"])
        @OptionGroup var global: GlobalOptions
        @Flag(name: .shortAndLong, help: "Remove even when a container uses it.") var force = false
        @Argument(help: "Volume names.") var names: [String]
        func run() throws {
            try ContainerCLI.guarded {
                let m = try ContainerCLI.manager(global)
                let used = VolumeGroup.usedVolumes(m)
                for n in names {
                    if let users = used[n], !force {
                        throw ContainersError.volume("volume \(n) is in use by \(users.joined(separator: ", ")): remove those containers first")
                    }
                    try m.volumes.remove(n)
                    ContainerCLI.out(n)
                }
            }
        }
    }

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove unused anonymous volumes (-a: all unused).")
        @OptionGroup var global: GlobalOptions
        @Flag(name: .shortAndLong, help: "Remove unused named volumes too.") var all = false
        @Flag(name: .shortAndLong, help: "Do not prompt for confirmation.") var force = false
        @Option(help: ArgumentHelp("Only volumes with (label=KEY[=VALUE]) or without (label!=KEY[=VALUE]) a label.", valueName: "filter"))
        var filter: [String] = []
        func run() throws {
            try ContainerCLI.guarded {
                let f = try PruneFilter(filter, allowUntil: false)
                guard force || ContainerCLI.confirm("WARNING! This will remove all local volumes not used by at least one container.") else { return }
                let m = try ContainerCLI.manager(global)
                let used = VolumeGroup.usedVolumes(m)
                var removed: [String] = []
                for v in m.volumes.list() where used[v.name] == nil && (all || v.anonymous) && f.matches(labels: v.labels, created: nil) {
                    try m.volumes.remove(v.name)
                    removed.append(v.name)
                }
                if !removed.isEmpty { ContainerCLI.out("Deleted Volumes:\n" + removed.joined(separator: "\n") + "\n") }
                ContainerCLI.out("Total reclaimed space: 0B")
            }
        }
    }
}
