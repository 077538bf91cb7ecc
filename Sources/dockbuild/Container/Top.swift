import ArgumentParser
import Containers
import Foundation

/// `top`: the container's processes.
struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "top", abstract: "Show a container's processes.")
    @OptionGroup var global: GlobalOptions
    @Argument var container: String
    @Argument(parsing: .captureForPassthrough) var psArgs: [String] = []

    func run() throws {
        try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            ContainerCLI.out(try m.top(try m.store.lookup(container).id, psArgs: psArgs))
        }
    }
}
