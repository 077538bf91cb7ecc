import ArgumentParser
import Containers
import Foundation

/// `export`: a container's file system as a tar, to a file or to stdout (never to a terminal).
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Export a container's filesystem as a tar archive.")
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Write to a file, instead of STDOUT.") var output: String?
    @Argument(help: "The container (name, id or id prefix).") var container: String

    func run() throws {
        let file = output.flatMap { $0.isEmpty ? nil : $0 }
        if file == nil && isatty(1) == 1 {
            FileHandle.standardError.write(Data("dockbuild: cowardly refusing to save to a terminal. Use the -o flag or redirect\n".utf8))
            throw ExitCode(1)
        }
        try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            let id = try m.store.lookup(container).id
            if let file { try m.export(id, toFile: file) } else { try m.export(id, to: 1) }
        }
    }
}
