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

/// The per-container verbs take the hand-written parser; everything else ArgumentParser.
@main
enum DockbuildRuncMain {
    static func main() {
        RuntimeLog.useRuncStyle()
        // runc's `--version`/`-v` text (callers parse "runc version X" and "spec: Y" lines).
        if CommandLine.arguments.count == 2, ["--version", "-v"].contains(CommandLine.arguments[1]) {
            FileHandle.standardOutput.write(Data(RuntimeVersion.text("dockbuild-runc").utf8))
            exit(0)
        }
        if let call = RuntimeFastPath.parse(Array(CommandLine.arguments.dropFirst())) {
            exit(RuntimeFastPath.execute(call))
        }
        DockbuildRunc.main()
    }
}
