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

    var options: CreateOptions {
        var o = CreateOptions(consoleSocket: consoleSocket, pidFile: pidFile, noPivot: noPivot, preserveFDs: preserveFDs)
        o.cdiDevices = cdiDevices
        return o
    }
}

struct RuntimeCreate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a container; it waits for `start`.")
    @OptionGroup var globals: RuntimeVerbGlobals
    @OptionGroup var flags: CreateFlags
    @Argument(help: "Container id.") var id: String

    func run() throws {
        try runtimeFail { _ = try globals.runtime.create(id: id, bundle: flags.bundle, options: flags.options) }
    }
}

struct RuntimeStart: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Run the process of a created container.")
    @OptionGroup var globals: RuntimeVerbGlobals
    @Argument(help: "Container id.") var id: String
    func run() throws { try runtimeFail { try globals.runtime.start(id: id) } }
}

struct RuntimeState: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "state", abstract: "Print a container's state as JSON.")
    @OptionGroup var globals: RuntimeVerbGlobals
    @Argument(help: "Container id.") var id: String
    func run() throws {
        try runtimeFail {
            let s = try globals.runtime.state(id: id)
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try enc.encode(s), as: UTF8.self))
        }
    }
}

struct RuntimeKill: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kill", abstract: "Send a signal (default SIGTERM) to a container.")
    @OptionGroup var globals: RuntimeVerbGlobals
    @Flag(name: [.short, .long], help: "Signal every process in the container.") var all = false
    @Argument(help: "Container id.") var id: String
    @Argument(help: "Signal name or number.") var signal: String = "SIGTERM"
    func run() throws {
        guard let sig = runtimeSignal(signal) else {
            FileHandle.standardError.write(Data("dockbuild runtime: unknown signal \"\(signal)\"\n".utf8))
            throw ExitCode(1)
        }
        try runtimeFail { try globals.runtime.kill(id: id, signal: sig, all: all) }
    }
}

struct RuntimeDelete: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a stopped container and its cgroup.")
    @OptionGroup var globals: RuntimeVerbGlobals
    @Flag(name: [.short, .long], help: "Kill it first if it is still running.") var force = false
    @Argument(help: "Container id.") var id: String
    func run() throws { try runtimeFail { try globals.runtime.delete(id: id, force: force) } }
}

struct RuntimeRun: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Create and start a container, wait for it, delete it.")
    @OptionGroup var globals: RuntimeVerbGlobals
    @OptionGroup var flags: CreateFlags
    @Flag(name: [.short, .long], help: "Do not wait for the container.") var detach = false
    @Flag(name: .long, help: "Keep the container's state after it exits.") var keep = false
    @Argument(help: "Container id.") var id: String
    func run() throws {
        var code: Int32 = 0
        try runtimeFail {
            code = try globals.runtime.run(id: id, bundle: flags.bundle, options: flags.options, detach: detach, keep: keep)
        }
        if code != 0 { throw ExitCode(code) }
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

func runtimeSignal(_ s: String) -> Int32? {
    if let n = Int32(s), n > 0, n < 65 { return n }
    var name = s.uppercased()
    if name.hasPrefix("SIG") { name.removeFirst(3) }
    let table: [String: Int32] = [
        "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
        "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
        "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
        "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
        "POLL": 29, "PWR": 30, "SYS": 31,
    ]
    return table[name]
}
