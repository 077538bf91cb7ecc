import ArgumentParser
import Foundation
import RuntimeCLI

/// `dockbuild-runc`: the runtime commands alone, as a runc-compatible binary
/// (`dockbuild-runc --root DIR run --bundle B ID`). It links only the Runtime
/// library, so it starts in a fraction of the full CLI's time; the verbs are
/// the RuntimeCLI library, which `dockbuild runtime` uses too.
struct DockbuildRunc: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dockbuild-runc",
        abstract: "dockbuild's OCI runtime with runc's command line.",
        subcommands: RuntimeCommand.configuration.subcommands + [CDICommand.self]
    )
    @OptionGroup var globals: RuntimeGlobals

    func validate() throws { RuntimeGlobals.beforeVerb.set(globals) }
}

/// The per-container verbs take the hand-written parser; everything else ArgumentParser,
/// with runc's exit code for usage errors.
@main
enum DockbuildRuncMain {
    static func main() {
        RuntimeLog.useRuncStyle()
        // runc's `--version`/`-v` text (callers parse "runc version X" and "spec: Y" lines).
        if CommandLine.arguments.count == 2, ["--version", "-v"].contains(CommandLine.arguments[1]) {
            FileHandle.standardOutput.write(Data(RuntimeVersion.text("dockbuild-runc").utf8))
            exit(0)
        }
        let args = Array(CommandLine.arguments.dropFirst())
        // runc's top-level help layout.
        if args.count == 1, ["-h", "--help", "help", "h"].contains(args[0]) {
            FileHandle.standardOutput.write(Data(RuntimeHelp.runcText(
                name: "dockbuild-runc", about: DockbuildRunc.configuration.abstract,
                commands: DockbuildRunc.configuration.subcommands).utf8))
            exit(0)
        }
        // A verb's help (`kill -h`, `help kill`) in runc's layout too.
        if args.count == 2, let verb = ["-h", "--help"].contains(args[1]) ? args[0] : (["help", "h"].contains(args[0]) ? args[1] : nil),
           let command = DockbuildRunc.configuration.subcommands.first(where: {
               $0.configuration.commandName == verb || $0.configuration.aliases.contains(verb) }) {
            FileHandle.standardOutput.write(Data(RuntimeHelp.runcVerbText(
                name: "dockbuild-runc", verb: verb, abstract: command.configuration.abstract,
                helpText: DockbuildRunc.helpMessage(for: command, columns: 10_000)).utf8))
            exit(0)
        }
        if let call = RuntimeFastPath.parse(args) {
            exit(RuntimeFastPath.execute(call))
        }
        do {
            var command = try DockbuildRunc.parseAsRoot(RuntimeGlobals.renamingSpecRootless(args))
            try command.run()
        } catch {
            // A usage error (missing id, unknown flag, bad value) exits 1, as runc's does;
            // ArgumentParser's own code for it is 64.
            if DockbuildRunc.exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((DockbuildRunc.fullMessage(for: error) + "\n").utf8))
                exit(1)
            }
            DockbuildRunc.exit(withError: error)
        }
    }
}
