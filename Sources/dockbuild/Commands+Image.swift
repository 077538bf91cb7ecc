import ArgumentParser

/// Commands of this area, in the order `dockbuild --help` lists them.
enum ImageCommands {
    static let all: [any ParsableCommand.Type] = [
        ImagesCommand.self, TagCommand.self, RmiCommand.self, InspectCommand.self,
        SaveCommand.self, LoadCommand.self, ImportCommand.self, HistoryCommand.self, ImageGroup.self,
        ManifestGroup.self,
    ]
}

/// `dockbuild image ...`: the same commands grouped as docker groups them, plus prune and gc.
struct ImageGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Manage images in the local store (ls, rm, tag, inspect, save, load, import, history, prune, gc).",
        subcommands: [ImageLs.self, ImageRm.self, TagCommand.self, InspectCommand.self,
                      SaveCommand.self, LoadCommand.self, ImportCommand.self, HistoryCommand.self,
                      PruneCommand.self, GCCommand.self]
    )
}

/// `image ls` = `images` (the alias lives only under `image`, so it cannot clash with `ls` elsewhere).
struct ImageLs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List images.", aliases: ["list"])
    @OptionGroup var images: ImagesCommand
    func validate() throws { try images.validate() }
    func run() throws { try images.run() }
}

/// `image rm` = `rmi`.
struct ImageRm: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove one or more images.", aliases: ["remove"])
    @OptionGroup var rmi: RmiCommand
    func validate() throws { try rmi.validate() }
    func run() throws { try rmi.run() }
}
