import ArgumentParser

/// `dockbuild system ...`: docker's management command for the store as a whole.
struct SystemGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "system",
        abstract: "Manage dockbuild (info).",
        subcommands: [InfoCommand.self])
}
