import ArgumentParser
import Containers
import Foundation
import ImageStore
import OCI
import Registry

/// `run`: create a container from an image and start it (attached, or with -d in the background).
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run a command in a new container.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var flags: ContainerCreateFlags
    @Flag(name: .shortAndLong, help: "Run in the background and print the container id.") var detach = false
    @Argument(help: "Image.") var image: String
    @Argument(parsing: .captureForPassthrough, help: "Command and arguments.") var command: [String] = []

    func run() async throws {
        try await ImagePuller.ensure(image, policy: flags.pull, global)
        let code: Int32? = try ContainerCLI.guarded(code: 125) {
            let m = try ContainerCLI.manager(global)
            try flags.checkCidfile()
            let rec = try m.create(try flags.options(image: image, command: command))
            try flags.writeCidfile(rec.id)
            do {
                if detach {
                    _ = try ContainerCLI.startContainer(m, id: rec.id, global: global, attach: false, stdin: false)
                    ContainerCLI.out(rec.id)
                    return nil
                }
                let code = try ContainerCLI.startContainer(m, id: rec.id, global: global, attach: true, stdin: flags.interactive)
                // --rm whose monitor died under us: nobody else will ever remove it, so kill
                // what is left of it and remove it now
                if rec.autoRemove, m.store.state(rec.id).status == .dead { try? m.reapDead(rec.id) }
                return code
            } catch {
                // --rm: a container that could not start is not kept, even when its monitor died
                // before it could remove it
                if rec.autoRemove, m.store.state(rec.id).status != .running {
                    try? m.remove(rec.id, force: false, volumes: true)
                }
                throw error
            }
        }
        if let code, code != 0 { throw ExitCode(code) }
    }
}

/// `create`: a container ready to `start`.
struct CreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a new container without starting it.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var flags: ContainerCreateFlags
    @Argument(help: "Image.") var image: String
    @Argument(parsing: .captureForPassthrough, help: "Command and arguments.") var command: [String] = []

    func run() async throws {
        try await ImagePuller.ensure(image, policy: flags.pull, global)
        try ContainerCLI.guarded(code: 125) {
            let m = try ContainerCLI.manager(global)
            try flags.checkCidfile()
            let rec = try m.create(try flags.options(image: image, command: command))
            try flags.writeCidfile(rec.id)
            ContainerCLI.out(rec.id)
        }
    }
}

/// `--pull` for `run`/`create`: the library's `ImagePull`, with docker's messages and exit code.
enum ImagePuller {
    static func ensure(_ image: String, policy: String, _ g: GlobalOptions) async throws {
        guard let policy = PullPolicy(rawValue: policy) else {
            FileHandle.standardError.write(Data("dockbuild: --pull \(policy): use missing, always or never\n".utf8))
            throw ExitCode(125)
        }
        do {
            try await ImagePull.ensure(image, policy: policy, store: try ImageStore(root: g.resolvedRoot)) { ref in
                FileHandle.standardError.write(Data("Pulling \(ref.familiarString) ...\n".utf8))
            }
        } catch {
            let why = error is ImagePull.Failure ? "\(error)" : "cannot pull \(image): \(error)"
            FileHandle.standardError.write(Data("dockbuild: \(why)\n".utf8))
            throw ExitCode(125)
        }
    }
}
