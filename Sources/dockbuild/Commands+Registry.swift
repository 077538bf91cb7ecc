import ArgumentParser

/// Commands of this area, in the order `dockbuild --help` lists them.
enum RegistryCommands {
    static let all: [any ParsableCommand.Type] = [PullCommand.self, PushCommand.self, LoginCommand.self, LogoutCommand.self]
}
