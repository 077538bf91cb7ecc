import ArgumentParser
import Foundation
import Runtime

struct CreateFlags: ParsableArguments {
    @Option(name: [.short, .long], help: "Bundle directory (holds config.json).")
    var bundle: String = "."
    @Option(name: .customLong("console-socket"), help: "Unix socket that receives the pty master for terminal: true.")
    var consoleSocket: String?
    @Option(name: .customLong("pid-file"), help: "Write the container process's pid to this file.")
    var pidFile: String?
    @Flag(name: .customLong("no-pivot"), help: "Use MS_MOVE + chroot instead of pivot_root.")
    var noPivot = false
    @Flag(name: .customLong("no-new-keyring"), help: "Accepted for runc compatibility.")
    var noNewKeyring = false
    @Option(name: .customLong("preserve-fds"), help: "Pass this many extra fds (from 3) to the container.")
    var preserveFDs: Int = 0
    @Option(name: .customLong("cdi-device"), help: "Inject a CDI device (vendor/class=name, e.g. nvidia.com/gpu=all); repeatable.")
    var cdiDevices: [String] = []

    /// These flags on a call of `verb` (the same call the hand-written parser makes).
    func call(_ verb: RuntimeFastPath.Verb, _ globals: RuntimeVerbGlobals, id: String) -> RuntimeFastPath.Call {
        var c = globals.call(verb, id: id)
        c.bundle = bundle
        c.consoleSocket = consoleSocket
        c.pidFile = pidFile
        c.noPivot = noPivot
        c.preserveFDs = preserveFDs
        c.cdiDevices = cdiDevices
        return c
    }
}

extension RuntimeVerbGlobals {
    /// A per-container verb on `id` with these global flags.
    func call(_ verb: RuntimeFastPath.Verb, id: String) -> RuntimeFastPath.Call {
        var c = RuntimeFastPath.Call(verb: verb)
        c.root = root ?? RuntimeGlobals.beforeVerb.root
        c.log = log
        c.logFormat = logFormat
        c.positionals = [id]
        return c
    }
}

/// Runs a per-container verb through the one implementation both parsers share.
func runtimeExecute(_ call: RuntimeFastPath.Call) throws {
    let code = RuntimeFastPath.execute(call)
    if code != 0 { throw ExitCode(code) }
}

struct RuntimeCreate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a container; it waits for `start`.")
    @OptionGroup var globals: RuntimeVerbGlobals
    @OptionGroup var flags: CreateFlags
    @Argument(help: "Container id.") var id: String

    func run() throws {
        try runtimeExecute(flags.call(.create, globals, id: id))
    }
}

struct RuntimeStart: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Run the process of a created container.")
    @OptionGroup var globals: RuntimeVerbGlobals
    @Argument(help: "Container id.") var id: String
    func run() throws { try runtimeExecute(globals.call(.start, id: id)) }
}

struct RuntimeState: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "state", abstract: "Print a container's state as JSON.")
    @OptionGroup var globals: RuntimeVerbGlobals
    @Argument(help: "Container id.") var id: String
    func run() throws { try runtimeExecute(globals.call(.state, id: id)) }
}

struct RuntimeKill: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kill", abstract: "Send a signal (default SIGTERM) to a container.")
    @OptionGroup var globals: RuntimeVerbGlobals
    @Flag(name: [.short, .long], help: "Signal every process in the container.") var all = false
    @Argument(help: "Container id.") var id: String
    @Argument(help: "Signal name or number.") var signal: String = "SIGTERM"
    func run() throws {
        var c = globals.call(.kill, id: id)
        c.positionals.append(signal)
        c.all = all
        try runtimeExecute(c)
    }
}

struct RuntimeDelete: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a stopped container and its cgroup.")
    @OptionGroup var globals: RuntimeVerbGlobals
    @Flag(name: [.short, .long], help: "Kill it first if it is still running.") var force = false
    @Argument(help: "Container id.") var id: String
    func run() throws {
        var c = globals.call(.delete, id: id)
        c.force = force
        try runtimeExecute(c)
    }
}

struct RuntimeRun: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Create and start a container, wait for it, delete it.")
    @OptionGroup var globals: RuntimeVerbGlobals
    @OptionGroup var flags: CreateFlags
    @Flag(name: [.short, .long], help: "Do not wait for the container.") var detach = false
    @Flag(name: .long, help: "Keep the container's state after it exits.") var keep = false
    @Argument(help: "Container id.") var id: String
    func run() throws {
        var c = flags.call(.run, globals, id: id)
        c.detach = detach
        c.keep = keep
        try runtimeExecute(c)
    }
}

struct RuntimePause: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Freeze all processes of a container.")
    @OptionGroup var globals: RuntimeVerbGlobals
    @Argument(help: "Container id.") var id: String
    func run() throws { try runtimeFail { try globals.runtime.pause(id: id) } }
}

struct RuntimeResume: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Thaw a paused container.")
    @OptionGroup var globals: RuntimeVerbGlobals
    @Argument(help: "Container id.") var id: String
    func run() throws { try runtimeFail { try globals.runtime.resume(id: id) } }
}
