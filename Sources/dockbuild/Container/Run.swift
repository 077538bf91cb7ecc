import ArgumentParser
import Containers
import Foundation
import ImageStore
import OCI
import Registry
import Runtime

/// `run`: create a container from an image and start it (attached, or with -d in the background).
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run a command in a new container.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var flags: ContainerCreateFlags
    @Flag(name: .shortAndLong, help: "Run in the background and print the container id.") var detach = false
    @Option(name: .shortAndLong, help: "Attach to STDIN, STDOUT or STDERR (repeatable; default: STDOUT and STDERR, and STDIN with -i).")
    var attach: [String] = []
    @Option(name: .customLong("sig-proxy"), help: "Pass the signals the client receives on to the container (true by default; not with -t).")
    var sigProxy = true
    @Argument(help: "Image.") var image: String

    func validate() throws {
        _ = try AttachStreams(attach, interactive: flags.interactive)
    }
    @Argument(parsing: .captureForPassthrough, help: "Command and arguments.") var command: [String] = []

    func run() async throws {
        if detach && !attach.isEmpty {
            FileHandle.standardError.write(Data("dockbuild: conflicting options: cannot specify both --attach and --detach\n".utf8))
            throw ExitCode(1)
        }
        let streams = try AttachStreams(attach, interactive: flags.interactive)
        try await ImagePuller.ensure(image, policy: flags.pull, platform: flags.platform, global)
        let code: Int32? = try ContainerCLI.guarded(code: 125) {
            let m = try ContainerCLI.manager(global)
            try flags.checkCidfile()
            var options = try flags.options(image: image, command: command)
            options.attach = detach ? [] : ["stdin", "stdout", "stderr"].filter {
                $0 == "stdin" ? streams.stdin : $0 == "stdout" ? streams.stdout : streams.stderr
            }
            let rec = try m.create(options)
            ImagePuller.warnPlatform(rec, requested: flags.platform)
            Rootless.warnLimits(rec)
            try flags.writeCidfile(rec.id)
            do {
                if detach {
                    _ = try ContainerCLI.startContainer(m, id: rec.id, global: global, attach: false, stdin: false)
                    ContainerCLI.out(rec.id)
                    return nil
                }
                let code = try ContainerCLI.startContainer(m, id: rec.id, global: global, attach: true, stdin: flags.interactive,
                                                            streams: streams, sigProxy: sigProxy)
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
        try await ImagePuller.ensure(image, policy: flags.pull, platform: flags.platform, global)
        try ContainerCLI.guarded(code: 125) {
            let m = try ContainerCLI.manager(global)
            try flags.checkCidfile()
            let rec = try m.create(try flags.options(image: image, command: command))
            ImagePuller.warnPlatform(rec, requested: flags.platform)
            Rootless.warnLimits(rec)
            try flags.writeCidfile(rec.id)
            ContainerCLI.out(rec.id)
        }
    }
}

/// `--pull` for `run`/`create`: the library's `ImagePull`, with docker's messages and exit code.
enum ImagePuller {
    /// docker's warning for an image of another platform than the host's when none was asked
    /// for, and a warning when that architecture cannot execute here (no QEMU binfmt handler).
    static func warnPlatform(_ rec: ContainerRecord, requested: String?) {
        guard let text = rec.platform, let p = try? Platform(parsing: text) else { return }
        let host = Platform.host
        if requested == nil, !host.matches(p) {
            FileHandle.standardError.write(Data("WARNING: The requested image's platform (\(p)) does not match the detected host platform (\(host)) and no specific platform was requested\n".utf8))
        }
        if case let .unavailable(reason) = Emulation.support(architecture: p.architecture) {
            FileHandle.standardError.write(Data("WARNING: \(p) binaries cannot execute on this machine: \(reason)\n".utf8))
        }
    }

    static func ensure(_ image: String, policy: String, platform: String? = nil, _ g: GlobalOptions) async throws {
        guard let policy = PullPolicy(rawValue: policy) else {
            FileHandle.standardError.write(Data("dockbuild: --pull \(policy): use missing, always or never\n".utf8))
            throw ExitCode(125)
        }
        do {
            let wanted = try platform.map { try Platform(parsing: $0) }
            try await ImagePull.ensure(image, policy: policy, store: try ImageStore(root: g.resolvedRoot), platform: wanted) { ref in
                FileHandle.standardError.write(Data("Pulling \(ref.familiarString) ...\n".utf8))
            }
        } catch {
            let why = error is ImagePull.Failure ? "\(error)" : "cannot pull \(image): \(error)"
            FileHandle.standardError.write(Data("dockbuild: \(why)\n".utf8))
            throw ExitCode(125)
        }
    }
}
