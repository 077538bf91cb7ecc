import ArgumentParser
import Containers
import Foundation

/// `run`: create a container from an image and start it (attached, or with -d in the background).
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run a command in a new container.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var flags: ContainerCreateFlags
    @Flag(name: .shortAndLong, help: "Run in the background and print the container id.") var detach = false
    @Argument(help: "Image.") var image: String
    @Argument(parsing: .captureForPassthrough, help: "Command and arguments.") var command: [String] = []

    func run() throws {
        let code: Int32? = try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            let rec = try m.create(try flags.options(image: image, command: command), pullPolicy: flags.pull,
                                   pull: ImagePuller.pull(global))
            if detach {
                _ = try ContainerCLI.startContainer(m, id: rec.id, global: global, attach: false, stdin: false)
                ContainerCLI.out(rec.id)
                return nil
            }
            return try ContainerCLI.startContainer(m, id: rec.id, global: global, attach: true, stdin: flags.interactive)
        }
        if let code, code != 0 { throw ExitCode(code) }
    }
}

/// `create`: a container ready to `start`.
struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a new container without starting it.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var flags: ContainerCreateFlags
    @Argument(help: "Image.") var image: String
    @Argument(parsing: .captureForPassthrough, help: "Command and arguments.") var command: [String] = []

    func run() throws {
        try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            let rec = try m.create(try flags.options(image: image, command: command), pullPolicy: flags.pull,
                                   pull: ImagePuller.pull(global))
            ContainerCLI.out(rec.id)
        }
    }
}

/// Pulls an image that `run`/`create` need (the registry client, when this build has it).
enum ImagePuller {
    static func pull(_ g: GlobalOptions) -> ((String) throws -> Void)? {
        nil
    }
}
