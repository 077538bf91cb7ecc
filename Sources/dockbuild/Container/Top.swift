import ArgumentParser
import Containers
import Foundation

/// `top`: the container's processes.
struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "top", abstract: "Show a container's processes.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Container name or ID.") var container: String
    @Argument(parsing: .captureForPassthrough, help: "ps options (default -ef).") var psArgs: [String] = []

    func run() throws {
        try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            ContainerCLI.out(try m.top(try m.store.lookup(container).id, psArgs: psArgs))
        }
    }
}
