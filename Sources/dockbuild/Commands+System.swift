import ArgumentParser

/// Commands of this area (docker's `version`, `info` and `system`), in the order `dockbuild --help` lists them.
enum SystemCommands {
    static let all: [any ParsableCommand.Type] = [VersionCommand.self, InfoCommand.self, EventsCommand.self, SystemGroup.self]
}
