import ArgumentParser

/// Commands of this area, in the order `dockbuild --help` lists them.
enum RegistryServerCommands {
    static let all: [any ParsableCommand.Type] = [RegistryGroup.self]
}

/// `dockbuild registry ...`: run and maintain the built-in OCI registry.
struct RegistryGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry",
        abstract: "Run and maintain dockbuild's own OCI registry.",
        subcommands: [RegistryServe.self, RegistryGC.self]
    )
}
