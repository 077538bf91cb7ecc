import ArgumentParser
import Containers
import Foundation

/// `diff`: what a container changed in its file system (A added, C changed, D deleted).
struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "diff", abstract: "Inspect changes to files or directories on a container's filesystem.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The container (name, id or id prefix).") var container: String

    func run() throws {
        try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            let changes = try m.changes(try m.store.lookup(container).id)
            if !changes.isEmpty { ContainerCLI.out(changes.map(\.line).joined(separator: "\n")) }
        }
    }
}
