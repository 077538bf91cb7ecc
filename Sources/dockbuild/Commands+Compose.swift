import ArgumentParser

/// Commands of this area (`dockbuild compose ...`), in the order `dockbuild --help` lists them.
enum ComposeCommands {
    static let all: [any ParsableCommand.Type] = [ComposeCommand.self]
}
