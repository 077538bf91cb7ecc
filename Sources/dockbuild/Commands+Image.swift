import ArgumentParser

/// Commands of this area, in the order `dockbuild --help` lists them.
enum ImageCommands {
    static let all: [any ParsableCommand.Type] = []
}
