import ArgumentParser
import Foundation
import Runtime

/// `dockbuild runtime`: an OCI runtime with runc's command line.
struct RuntimeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runtime",
        abstract: "Run OCI bundles like runc (create, start, state, kill, delete, run, exec, ...).",
        discussion: "Other tools can use it as their OCI runtime through a wrapper that runs `dockbuild runtime \"$@\"`.",
        subcommands: [RuntimeCreate.self, RuntimeStart.self, RuntimeState.self, RuntimeKill.self, RuntimeDelete.self,
                      RuntimeRun.self, RuntimeExec.self, RuntimeList.self, RuntimePs.self, RuntimeSpecCommand.self,
                      RuntimeUpdate.self, RuntimePause.self, RuntimeResume.self, RuntimeEvents.self]
    )
    @OptionGroup var globals: RuntimeGlobals
}

/// runc's global flags. Only --root changes anything; the rest are accepted for compatibility.
struct RuntimeGlobals: ParsableArguments {
    @Option(name: .long, help: "Directory for container state (default: /run/dockbuild as root).")
    var root: String?
    @Option(name: .long, help: "Log file (accepted for runc compatibility; errors go to stderr).")
    var log: String?
    @Option(name: .customLong("log-format"), help: "text or json (accepted for runc compatibility).")
    var logFormat: String?
    @Flag(name: .long, help: "Accepted for runc compatibility.")
    var debug = false
    @Flag(name: .customLong("systemd-cgroup"), help: "Accepted for runc compatibility; cgroupfs is used.")
    var systemdCgroup = false
    @Option(name: .long, help: "Accepted for runc compatibility.")
    var rootless: String?

    var runtime: Runtime { Runtime(root: root ?? Runtime.defaultRoot) }
}

/// Wraps library errors so that ArgumentParser prints our message and exits 1.
func runtimeFail(_ body: () throws -> Void) throws {
    do { try body() } catch let e as RuntimeError {
        FileHandle.standardError.write(Data("dockbuild runtime: \(e.message)\n".utf8))
        throw ExitCode(1)
    }
}
