import ArgumentParser
import Containers
import Foundation

/// `commit`: the container's changes become a new image layer.
struct CommitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "commit", abstract: "Create an image from a container's changes.")
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Author.") var author: String?
    @Option(name: .shortAndLong, help: "Commit message.") var message: String?
    @Option(name: .shortAndLong, help: "Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, SHELL, STOPSIGNAL, USER, VOLUME, WORKDIR); repeatable.")
    var change: [String] = []
    @Option(name: .shortAndLong, help: "Pause the container while it is committed (true by default; --pause=false to not).")
    var pause: Bool = true
    @Argument(help: "The container (name, ID or ID prefix).") var container: String
    @Argument(help: "REPOSITORY[:TAG]") var reference: String?

    func run() throws {
        try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            let c = try m.store.lookup(container)
            let img = try m.commit(c.id, tag: reference, author: author, message: message, changes: change, pause: pause)
            ContainerCLI.out(img.id.description)
        }
    }
}
