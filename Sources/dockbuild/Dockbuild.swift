import ArgumentParser
import Foundation
import Containers
import Runtime
import RuntimeCLI
import SystemSupport

/// The `dockbuild` command line. Each area lists its commands in its own
/// `Commands+Area.swift` file, so areas can grow without touching this one.
struct Dockbuild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dockbuild",
        abstract: "A daemonless OCI image toolkit: build, store, pull, push, serve and run images.",
        usage: "dockbuild [OPTIONS] COMMAND",
        discussion: """
            GLOBAL OPTIONS (before the command, as docker's):
              --root DIR             Root of dockbuild's state (also after the command)
              --config DIR           Client config dir with config.json ($DOCKER_CONFIG)
              -D, --debug            Enable debug mode
              -l, --log-level LEVEL  debug, info, warn, error or fatal (default: info)
              -v, --version          Print version information and quit
            """,
        groupedSubcommands: [
            CommandGroup(name: "Management", subcommands: byName(allCommands.filter { !$0.configuration.subcommands.isEmpty })),
            CommandGroup(name: "Common", subcommands: byName(allCommands.filter { $0.configuration.subcommands.isEmpty })),
        ]
    )

    /// Every area's commands; `--help` lists them as docker does: management commands (the
    /// ones with subcommands), then the others, each group in alphabetical order.
    static let allCommands: [any ParsableCommand.Type] = ImageCommands.all + DockerfileCommands.all + LayerCommands.all
        + RegistryCommands.all + RegistryServerCommands.all + RuntimeCommands.all
        + BuildCommands.all + ContainerCommands.all + ComposeCommands.all + SystemCommands.all

    static func byName(_ commands: [any ParsableCommand.Type]) -> [any ParsableCommand.Type] {
        commands.sorted { $0._commandName < $1._commandName }
    }

    /// The version `-v`/`--version` and `dockbuild version` print.
    static let version = "0.1.0"
}

/// `dockbuild runtime <per-container verb>` skips ArgumentParser (see RuntimeFastPath):
/// engines call it once per container, and the parse of the whole tree costs milliseconds.
/// Everything else goes through `GlobalCommandLine` (global options, exit codes as docker's).
@main
enum DockbuildMain {
    static func main() async {
        // An ordinary user's command may have joined its user namespace before main (rootless.c).
        RootlessNamespace.adoptEarlyJoin()
        OCIRuntime.cliServesRuntime.withLock { $0 = true }
        // Start with no signal blocked, whatever the parent left in the mask (it is inherited
        // across exec): SIGTERM/SIGINT must reach `registry serve`, builds and monitors.
        var none = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, nil)
        let args = Array(CommandLine.arguments.dropFirst())
        if args.first == "runtime", let call = RuntimeFastPath.parse(Array(args.dropFirst())) {
            exit(RuntimeFastPath.execute(call))
        }
        let rest: [String]
        do {
            rest = try GlobalCommandLine.apply(args)
        } catch {
            GlobalCommandLine.fail("\(error)", hint: "See 'dockbuild --help'.", code: 125)
        }
        // An ordinary user's commands run in its user namespace (docs/rootless.md).
        if Rootless.needsNamespace(rest) {
            do { try RootlessNamespace.enter(arguments: CommandLine.arguments) } catch {
                FileHandle.standardError.write(Data("dockbuild: \(error)\n".utf8))
                exit(125)
            }
        }
        // What the libraries log is printed at the level --log-level / --debug chose.
        CLILogHandler.bootstrap()
        // runc's command line keeps runc's exit codes.
        if rest.first == "runtime" {
            await Dockbuild.main(["runtime"] + RuntimeGlobals.renamingSpecRootless(Array(rest.dropFirst())))
            exit(0)
        }
        // The command alone when the words name it plainly (see DirectParse), else the tree.
        let leaf = DirectParse.resolve(rest)
        if leaf == nil, let unknown = GlobalCommandLine.unknownCommand(rest) {
            FileHandle.standardError.write(Data(unknown.utf8))
            exit(1)
        }
        do {
            var command: any ParsableCommand
            if let leaf, let parsed = DirectParse.parse(rest, leaf: leaf) {
                command = parsed
            } else {
                command = try Dockbuild.parseAsRoot(rest)
            }
            if let async = command as? any AsyncParsableCommand {
                await runToExit(async)
            } else {
                try command.run()
            }
        } catch {
            GlobalCommandLine.exit(for: error)
        }
        exit(0)
    }

    /// Runs an async command and exits from the thread it finished on. Coming back to the
    /// main actor first cost a thread: once the main thread parks in dispatch_main, the main
    /// queue is served by a new worker (0.3-1 ms at the end of every `run`, 18 ms seen under load).
    nonisolated static func runToExit(_ command: sending any AsyncParsableCommand) async -> Never {
        var command = command
        do {
            try await command.run()
        } catch {
            GlobalCommandLine.exit(for: error)
        }
        exit(0)
    }
}

/// The global options, docker's exit codes and "is not a dockbuild command".
enum GlobalCommandLine {
    static let logLevels = ["debug", "info", "warn", "error", "fatal"]

    /// Takes the global options off the front of `args` and applies them (environment
    /// variables the libraries and child processes read); returns the command and its arguments.
    static func apply(_ args: [String]) throws -> [String] {
        var i = 0
        func value(_ name: String, _ inline: String?) throws -> String {
            if let inline { return inline }
            i += 1
            guard i < args.count else { throw ValidationError("flag needs an argument: \(name)") }
            return args[i]
        }
        while i < args.count, args[i].hasPrefix("-"), args[i] != "-" {
            let a = args[i]
            if a == "--" { i += 1; break }
            // what completion scripts call back with (`---completion ...`) goes to ArgumentParser
            if a.hasPrefix("---") { return Array(args[i...]) }
            var name = a, inline: String?
            if a.hasPrefix("--"), let eq = a.firstIndex(of: "=") {
                name = String(a[..<eq])
                inline = String(a[a.index(after: eq)...])
            }
            switch name {
            case "--root":
                let v = try value(name, inline)
                guard !v.isEmpty else { throw ValidationError("--root needs a directory") }
                setenv("DOCKBUILD_ROOT", v, 1)
            case "--config":
                let v = try value(name, inline)
                guard !v.isEmpty else { throw ValidationError("--config needs a directory") }
                setenv("DOCKER_CONFIG", v, 1)
            case "-D", "--debug":
                setenv("DOCKBUILD_LOG_LEVEL", "debug", 1)
                setenv("DOCKBUILD_DEBUG", "1", 1)
            case "-l", "--log-level":
                let v = try value(name, inline)
                guard logLevels.contains(v) else {
                    throw ValidationError("invalid --log-level \(TemplateValue.quote(v)): use debug, info, warn, error or fatal")
                }
                // -D wins over a level given with it, as in docker.
                if getenv("DOCKBUILD_DEBUG") == nil { setenv("DOCKBUILD_LOG_LEVEL", v, 1) }
            case "-v", "--version":
                FileHandle.standardOutput.write(Data("dockbuild version \(Dockbuild.version)\n".utf8))
                Foundation.exit(0)
            case "-h", "--help", "--help-hidden", "--generate-completion-script", "--experimental-dump-help":
                // ArgumentParser's own: help, shell completion scripts, the help dump
                return Array(args[i...])
            case "-H", "--host", "-c", "--context", "--tls", "--tlsverify", "--tlscacert", "--tlscert", "--tlskey":
                throw ValidationError("\(name): dockbuild has no daemon to connect to; it works on the store under --root")
            default:
                throw ValidationError("unknown flag: \(name)")
            }
            i += 1
        }
        return Array(args[i...])
    }

    /// docker's message for a mistyped command, with the nearest commands; nil when the
    /// command path is known (or cannot be checked before parsing).
    static func unknownCommand(_ args: [String]) -> String? {
        var node: any ParsableCommand.Type = Dockbuild.self
        var path = ["dockbuild"]
        for a in args {
            if a.hasPrefix("-") { return nil }
            let config = node.configuration
            if config.subcommands.isEmpty || config.defaultSubcommand != nil { return nil }
            var names: [String: any ParsableCommand.Type] = [:]
            for s in config.subcommands {
                // the name ArgumentParser uses: the configured one, else derived from the type
                names[s._commandName] = s
                for alias in s.configuration.aliases { names[alias] = s }
            }
            if path.count == 1 { names["help"] = Dockbuild.self }
            guard let next = names[a] else {
                let visible = config.subcommands.filter { $0.configuration.shouldDisplay }.map { $0._commandName }
                let near = visible.filter { $0.hasPrefix(a) || distance($0, a) <= 2 }.sorted()
                var msg = "\(path.joined(separator: " ")): '\(a)' is not a \(path.joined(separator: " ")) command.\n"
                if !near.isEmpty { msg += "\nDid you mean this?\n" + near.map { "\t\($0)\n" }.joined() + "\n" }
                return msg + "See '\(path.joined(separator: " ")) --help'.\n"
            }
            if next == Dockbuild.self { return nil }
            node = next
            path.append(a)
        }
        return nil
    }

    /// Levenshtein distance, as cobra suggests commands.
    static func distance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        var prev = Array(0...y.count)
        for i in 1...max(1, x.count) where !x.isEmpty {
            var cur = [i] + [Int](repeating: 0, count: y.count)
            for j in 1...max(1, y.count) where !y.isEmpty {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return x.isEmpty ? y.count : prev[y.count]
    }

    /// Exits as docker does: the status a command chose (a container's own for `run`), 0 for
    /// help, 125 for a usage error (bad flag, bad value, missing argument), 1 for anything else.
    static func exit(for error: any Error) -> Never {
        if let e = error as? ExitCode { Foundation.exit(e.rawValue) }
        let code = Dockbuild.exitCode(for: error)
        if code == .success { Dockbuild.exit(withError: error) }
        var message = Dockbuild.fullMessage(for: error)
        if !message.hasSuffix("\n") { message += "\n" }
        if !message.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            FileHandle.standardError.write(Data(message.utf8))
        }
        // An ExitCode thrown from a `validate()` arrives wrapped: keep the status it chose.
        let raw = code.rawValue
        Foundation.exit(code == .validationFailure ? 125 : (raw == 0 || raw == 1 ? 1 : raw))
    }

    static func fail(_ message: String, hint: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("dockbuild: \(message)\n\(hint)\n".utf8))
        Foundation.exit(code)
    }
}
