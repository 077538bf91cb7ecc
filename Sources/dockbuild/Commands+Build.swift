import ArgumentParser

/// Commands of this area, in the order `dockbuild --help` lists them.
enum BuildCommands {
    static let all: [any ParsableCommand.Type] = [BuildCommand.self, CacheCommand.self]
}
