import ArgumentParser
import Foundation

/// The `dockbuild` command line. Each area lists its commands in its own
/// `Commands+Area.swift` file, so areas can grow without touching this one.
struct Dockbuild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dockbuild",
        abstract: "A daemonless OCI image toolkit: build, store, pull, push, serve and run images.",
        version: "0.1.0",
        subcommands: ImageCommands.all + DockerfileCommands.all + LayerCommands.all
            + RegistryCommands.all + RegistryServerCommands.all + RuntimeCommands.all
            + BuildCommands.all + ContainerCommands.all
    )
}

/// `dockbuild runtime <per-container verb>` skips ArgumentParser (see RuntimeFastPath):
/// engines call it once per container, and the parse of the whole tree costs milliseconds.
@main
enum DockbuildMain {
    static func main() async {
        let args = CommandLine.arguments.dropFirst()
        if args.first == "runtime", let call = RuntimeFastPath.parse(Array(args.dropFirst())) {
            exit(RuntimeFastPath.execute(call))
        }
        await Dockbuild.main()
    }
}
