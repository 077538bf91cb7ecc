import ArgumentParser

/// The `dockbuild` command line. Each area lists its commands in its own
/// `Commands+Area.swift` file, so areas can grow without touching this one.
@main
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
