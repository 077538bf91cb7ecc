import ArgumentParser

/// Commands of this area, in the order `dockbuild --help` lists them.
enum LayerCommands {
    static let all: [any ParsableCommand.Type] = [Unpack.self, LayerCommand.self]
}
