import ArgumentParser
import Containers
import Foundation

/// `cp`: copy files between a container and the host (`CONTAINER:PATH HOSTPATH` or the reverse).
struct CpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cp", abstract: "Copy files between a container and the host.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "CONTAINER:SRC or a host path.") var source: String
    @Argument(help: "A host path or CONTAINER:DEST.") var destination: String

    func run() throws {
        try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            func split(_ s: String) -> (String, String)? {
                guard !s.hasPrefix("/"), !s.hasPrefix("."), let i = s.firstIndex(of: ":") else { return nil }
                return (String(s[..<i]), String(s[s.index(after: i)...]))
            }
            if let (ctr, path) = split(source), split(destination) == nil {
                try m.copy(try m.store.lookup(ctr).id, containerPath: path, hostPath: destination, toContainer: false)
            } else if let (ctr, path) = split(destination), split(source) == nil {
                try m.copy(try m.store.lookup(ctr).id, containerPath: path, hostPath: source, toContainer: true)
            } else {
                throw ContainersError.invalidArgument("cp: exactly one of the two paths must be CONTAINER:PATH")
            }
        }
    }
}
