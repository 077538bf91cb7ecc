import ArgumentParser
import ImageStore
import OCI

/// `dockbuild tag SOURCE TARGET`: another name for an image (stored once).
struct TagCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tag",
        abstract: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "Name, ID or digest of an image in the store.") var source: String
    @Argument(help: "New name, e.g. registry.example.com/team/app:1.0.") var target: String

    func run() throws {
        try ImageCLI.run {
            let store = try ImageCLI.openStore(global)
            let desc = try store.resolve(source)
            let ref = try ImageReference(parsing: target)
            guard ref.digest == nil else {
                throw UserError("refusing to create a tag with a digest reference (\(target)); give name:tag")
            }
            try store.tag(ref, descriptor: desc)
        }
    }
}
