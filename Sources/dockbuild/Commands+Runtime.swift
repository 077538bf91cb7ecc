import ArgumentParser
import RuntimeCLI

/// Commands of this area, in the order `dockbuild --help` lists them.
enum RuntimeCommands {
    static let all: [any ParsableCommand.Type] = [RuntimeCommand.self, CDICommand.self]
}
