import ArgumentParser
import Containers
import Foundation

/// `exec`: run another process in a running container (through the OCI runtime's exec).
struct ExecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "exec", abstract: "Run a command in a running container.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Run in the background.") var detach = false
    @Flag(name: .shortAndLong, help: "Keep stdin open.") var interactive = false
    @Flag(name: .shortAndLong, help: "Allocate a pseudo-terminal.") var tty = false
    @Option(name: .shortAndLong, help: "Set an environment variable.") var env: [String] = []
    @Option(name: .shortAndLong, help: "User: name|uid[:group|gid].") var user: String?
    @Option(name: .shortAndLong, help: "Working directory.") var workdir: String?
    @Argument var container: String
    @Argument(parsing: .captureForPassthrough) var command: [String] = []

    func run() throws {
        let code: Int32 = try ContainerCLI.guarded {
            guard !command.isEmpty else { throw ContainersError.invalidArgument("exec needs a command after the container") }
            let m = try ContainerCLI.manager(global)
            let c = try m.store.lookup(container)
            return try m.exec(c.id, command: command, tty: tty && isatty(0) == 1, interactive: interactive, detach: detach,
                              env: env, user: user, workdir: workdir)
        }
        if code != 0 { throw ExitCode(code) }
    }
}
