import ArgumentParser
import Foundation
import Synchronization
import Runtime

/// `dockbuild runtime`: an OCI runtime with runc's command line.
public struct RuntimeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "runtime",
        abstract: "Run OCI bundles like runc (create, start, state, kill, delete, run, exec, ...).",
        discussion: "Other tools can use it as their OCI runtime through a wrapper that runs `dockbuild runtime \"$@\"`.",
        subcommands: [RuntimeCreate.self, RuntimeStart.self, RuntimeState.self, RuntimeKill.self, RuntimeDelete.self,
                      RuntimeRun.self, RuntimeExec.self, RuntimeList.self, RuntimePs.self, RuntimeSpecCommand.self,
                      RuntimeUpdate.self, RuntimePause.self, RuntimeResume.self, RuntimeEvents.self,
                      RuntimeFeaturesCommand.self]
    )
    @OptionGroup var globals: RuntimeGlobals

    public init() {}

    public func validate() throws { RuntimeGlobals.beforeVerb.set(globals) }
}

/// runc's global flags, given before the verb. --root, --log and --log-format take effect;
/// the rest are accepted for compatibility. The parent command records them (`beforeVerb`) for the verb.
public struct RuntimeGlobals: ParsableArguments {
    @Option(name: .long, help: "Directory for container state (default: /run/dockbuild as root).")
    var root: String?
    @Option(name: .long, help: "Log file: errors are appended there in runc's format (stderr keeps the bare message).")
    var log: String?
    @Option(name: .customLong("log-format"), help: "Format of the log records: text (default) or json, as runc writes them.")
    var logFormat: String?
    @Flag(name: .long, help: "Write debug records (what each call does) where errors go, as runc's --debug.")
    var debug = false
    @Flag(name: .customLong("systemd-cgroup"), help: "Accepted for runc compatibility; cgroupfs is used.")
    var systemdCgroup = false
    @Option(name: .long, help: "Accepted for runc compatibility.")
    var rootless: String?

    public init() {}

    /// The values the parent command parsed; a verb falls back to them.
    public static let beforeVerb = Recorded()

    public final class Recorded: Sendable {
        private let recordedRoot = Mutex<String?>(nil)
        public func set(_ v: RuntimeGlobals) {
            let root = v.root
            recordedRoot.withLock { $0 = root }
            RuntimeLog.configure(path: v.log, format: v.logFormat, debug: v.debug)
        }
        var root: String? { recordedRoot.withLock { $0 } }
    }
}

/// The global flags again, on every verb, so that they may also follow it
/// (`runtime exec --root R ID CMD`), as runc accepts. (A verb cannot reuse
/// `RuntimeGlobals` itself: ArgumentParser would hand it the parent's values and
/// leave the flags after a pass-through verb such as `exec` unparsed.)
struct RuntimeVerbGlobals: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Directory for container state (also accepted before the verb).", visibility: .hidden))
    var root: String?
    @Option(name: .long, help: .hidden) var log: String?
    @Option(name: .customLong("log-format"), help: .hidden) var logFormat: String?
    @Flag(name: .long, help: .hidden) var debug = false
    @Flag(name: .customLong("systemd-cgroup"), help: .hidden) var systemdCgroup = false
    @Option(name: .long, help: .hidden) var rootless: String?

    var runtime: Runtime {
        RuntimeLog.configure(path: log, format: logFormat, debug: debug)
        let rt = Runtime(root: root ?? RuntimeGlobals.beforeVerb.root ?? Runtime.defaultRoot, logger: RuntimeLog.logger())
        RuntimeLog.debug("container state in \(rt.root)")
        return rt
    }
}

/// Wraps library errors so that ArgumentParser prints our message (and logs it with --log)
/// and exits `code` (1; runc's exec exits 255).
func runtimeFail(code: Int32 = 1, _ body: () throws -> Void) throws {
    do { try body() } catch let e as RuntimeError {
        RuntimeLog.error(e.message)
        throw ExitCode(code)
    }
}
