import ArgumentParser

/// Commands of this area, in the order `dockbuild --help` lists them.
enum DockerfileCommands {
    static let all: [any ParsableCommand.Type] = [DockerfileCommand.self]
}

/// `dockbuild dockerfile ...`: tools over the Dockerfile library.
struct DockerfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dockerfile",
        abstract: "Read Dockerfiles as BuildKit does.",
        subcommands: [DockerfileParseCommand.self, DockerfileStagesCommand.self]
    )
}
