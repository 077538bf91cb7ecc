import ArgumentParser
import Containers
import Foundation

/// `port`: published ports.
struct PortCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "port", abstract: "List a container's published ports.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Container name or ID.") var container: String
    @Argument(help: "PORT[/PROTO] to show only that one.") var port: String?

    func run() throws {
        try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            let c = try m.store.lookup(container)
            var found = false
            for p in c.state.ports {
                let key = "\(p.containerPort)/\(p.proto)"
                if let port, port != key, port != String(p.containerPort) { continue }
                found = true
                let host = "\(p.hostIP.isEmpty ? "0.0.0.0" : p.hostIP):\(p.hostPort)"
                ContainerCLI.out(port == nil ? "\(key) -> \(host)" : host)
            }
            if let port, !found { throw ContainersError.invalidArgument("no public port \(port) published for \(c.name)") }
        }
    }
}
