import ArgumentParser
import Containers
import Foundation

/// `rename`: a container gets a new name (docker's exit 1 for every refusal, a bad name included).
struct RenameCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rename", abstract: "Rename a container.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The container (name, id or id prefix).") var container: String
    @Argument(help: "Its new name: letters, digits, _ . - (starting with a letter or digit).") var newName: String

    func run() throws {
        // docker's client trims both names and refuses empty ones before asking the daemon
        let old = container.trimmingCharacters(in: .whitespaces), new = newName.trimmingCharacters(in: .whitespaces)
        guard !old.isEmpty, !new.isEmpty else {
            FileHandle.standardError.write(Data("dockbuild: neither the old nor the new name may be empty\n".utf8))
            throw ExitCode(1)
        }
        let m = try ContainerCLI.manager(global)
        do {
            try m.rename(try m.store.lookup(old).id, to: new)
        } catch {
            FileHandle.standardError.write(Data("dockbuild: \(error)\ndockbuild: failed to rename container named \(old)\n".utf8))
            throw ExitCode(1)
        }
    }
}
