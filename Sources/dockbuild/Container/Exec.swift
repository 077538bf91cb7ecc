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
    @Option(name: .shortAndLong, help: "Set an environment variable (KEY=VALUE, or KEY to pass this one's).") var env: [String] = []
    @Option(name: .customLong("env-file"), help: "Read environment variables from a file (KEY=VALUE lines; # comments).") var envFile: [String] = []
    @Option(name: .shortAndLong, help: "User: name|uid[:group|gid].") var user: String?
    @Option(name: .shortAndLong, help: "Working directory inside the container.") var workdir: String?
    @Flag(help: "Give the command every capability.") var privileged = false
    @Argument(help: "The container (name, ID or ID prefix).") var container: String
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.") var command: [String] = []

    func run() throws {
        let code: Int32 = try ContainerCLI.guarded {
            guard !command.isEmpty else { throw ContainersError.invalidArgument("exec needs a command after the container") }
            var vars: [String] = []
            for f in envFile { vars += try FlagValue.envFile(f) }
            let m = try ContainerCLI.manager(global)
            let c = try m.store.lookup(container)
            return try m.exec(c.id, command: command, tty: tty && isatty(0) == 1, interactive: interactive, detach: detach,
                              env: vars + env, user: user, workdir: workdir, privileged: privileged)
        }
        if code != 0 { throw ExitCode(code) }
    }
}
