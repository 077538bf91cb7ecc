import ArgumentParser
import Containers
import Foundation

/// `network create|ls|inspect|rm`: user-defined bridge networks, whose containers reach each
/// other by name.
struct NetworkGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "network", abstract: "Manage user-defined bridge networks.",
        subcommands: [Create.self, Ls.self, Inspect.self, Rm.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a bridge network with a /24 of its own.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Label KEY=VALUE.") var label: [String] = []
        @Option(help: "The /24 to use (e.g. 10.91.0.0/24); a free one of 10.90.0.0/16 when left out.") var subnet: String?
        @Option(name: .shortAndLong, help: "Driver (only bridge).") var driver = "bridge"
        @Argument(help: "The network's name.") var name: String
        func run() throws {
            try ContainerCLI.guarded {
                guard driver == "bridge" else { throw ContainersError.invalidArgument("--driver \(driver): only the bridge driver exists") }
                let m = try ContainerCLI.manager(global)
                var labels: [String: String] = [:]
                for l in label { let kv = l.split(separator: "=", maxSplits: 1).map(String.init); labels[kv[0]] = kv.count > 1 ? kv[1] : "" }
                ContainerCLI.out(try m.networks.create(name, labels: labels, subnet: subnet).id)
            }
        }
    }

    struct Ls: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List networks.", aliases: ["list"])
        @OptionGroup var global: GlobalOptions
        @Flag(name: .shortAndLong, help: "Only names.") var quiet = false
        @Option(help: ArgumentHelp("Only networks with a label (label=KEY[=VALUE]).", valueName: "filter")) var filter: [String] = []
        func run() throws {
            try ContainerCLI.guarded {
                let m = try ContainerCLI.manager(global)
                let f = try PruneFilter(filter, allowUntil: false)
                let nets = m.networks.list().filter { f.matches(labels: $0.labels, created: nil) }
                if quiet { for n in nets { ContainerCLI.out(n.name) }; return }
                ContainerCLI.out("NETWORK ID     NAME                 DRIVER    SUBNET")
                for n in nets {
                    ContainerCLI.out(String(n.id.prefix(12)) + "   " + n.name.padding(toLength: max(20, n.name.count), withPad: " ", startingAt: 0)
                        + " bridge    " + n.subnet)
                }
            }
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show networks as JSON.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Network names.") var names: [String]
        func run() throws {
            try ContainerCLI.guarded {
                let m = try ContainerCLI.manager(global)
                let docs: [TemplateValue] = try names.map { name in
                    let n = try m.networks.inspect(name)
                    let users = m.containers(onNetwork: n.name).filter(\.isRunning).sorted { $0.name < $1.name }
                    return .object([
                        ("Name", .string(n.name)), ("Id", .string(n.id)), ("Created", .string(n.createdAt)),
                        ("Scope", .string("local")), ("Driver", .string("bridge")),
                        ("IPAM", .object([("Config", .array([.object([("Subnet", .string(n.subnet)), ("Gateway", .string(n.gateway))])]))])),
                        ("Containers", .object(users.map { c in
                            (c.id, .object([("Name", .string(c.name)), ("IPv4Address", .string("\(c.state.ipAddress)/24"))]))
                        })),
                        ("Options", .object([("com.docker.network.bridge.name", .string(n.bridge))])),
                        ("Labels", .object(n.labels.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
                    ])
                }
                ContainerCLI.out(TemplateValue.array(docs).pretty(indent: "    "))
            }
        }
    }

    struct Rm: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove networks no container uses.", aliases: ["remove"])
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Network names.") var names: [String]
        func run() throws {
            try ContainerCLI.guarded {
                let m = try ContainerCLI.manager(global)
                for name in names {
                    let n = try m.networks.inspect(name)
                    let users = m.containers(onNetwork: n.name)
                    if !users.isEmpty {
                        throw ContainersError.network("network \(n.name) is in use by \(users.map(\.name).sorted().joined(separator: ", ")): remove those containers first")
                    }
                    try m.networks.remove(n.name)
                    ContainerCLI.out(name)
                }
            }
        }
    }
}
