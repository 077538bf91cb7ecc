import ArgumentParser
import Containers
import Foundation

/// `pause`: freeze every process of running containers (the cgroup freezer).
struct PauseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Pause all processes within one or more containers.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Containers (names, ids or id prefixes).") var containers: [String]


    func run() throws {
        try ContainerCLI.forEach(global, containers) { m, c, ref in
            try m.pause(c.id)
            ContainerCLI.out(ref)
        }
    }
}

/// `unpause`: thaw paused containers.
struct UnpauseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unpause", abstract: "Unpause all processes within one or more containers.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Containers (names, ids or id prefixes).") var containers: [String]


    func run() throws {
        try ContainerCLI.forEach(global, containers) { m, c, ref in
            try m.unpause(c.id)
            ContainerCLI.out(ref)
        }
    }
}
