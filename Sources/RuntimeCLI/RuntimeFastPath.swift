import Foundation
import Runtime

/// The verbs an engine calls once per container (create, start, state, kill, delete, run),
/// parsed by hand, and the one implementation of them (the ArgumentParser commands build a
/// `Call` too). ArgumentParser builds its whole command tree through reflection before it
/// looks at an argument; that was about a quarter of a container's start-to-exit time. Any
/// call this parser is not sure of (help, an unknown flag, a missing value, another verb)
/// returns nil and goes to ArgumentParser, so errors and help read the same either way.
public enum RuntimeFastPath {
    public enum Verb: String { case create, start, state, kill, delete, run }

    public struct Call {
        var verb: Verb
        var root: String?
        var log: String?
        var logFormat: String?
        var debug = false
        var bundle = "."
        var consoleSocket: String?
        var pidFile: String?
        var noPivot = false
        var preserveFDs = 0
        var cdiDevices: [String] = []
        var detach = false
        var keep = false
        var force = false
        var all = false
        var positionals: [String] = []
    }

    /// `args` without the program name (and without `runtime` for the full CLI).
    public static func parse(_ args: [String]) -> Call? {
        var i = 0
        var root: String?, log: String?, logFormat: String?, debug = false
        // runc's global flags, before or after the verb: true when taken, false when not
        // a global flag, nil when malformed.
        func global(_ name: String, _ inline: String?) -> Bool? {
            switch name {
            case "--debug":
                guard inline == nil else { return nil }
                debug = true
                return true
            case "--systemd-cgroup": return inline == nil ? true : nil
            case "--root", "--log", "--log-format", "--rootless":
                let value: String
                if let inline { value = inline } else {
                    guard i + 1 < args.count else { return nil }
                    i += 1
                    value = args[i]
                }
                if name == "--root" { root = value }
                if name == "--log" { log = value }
                if name == "--log-format" { logFormat = value }
                return true
            default: return false
            }
        }
        func split(_ a: String) -> (String, String?) {
            guard a.hasPrefix("--"), let eq = a.firstIndex(of: "=") else { return (a, nil) }
            return (String(a[..<eq]), String(a[a.index(after: eq)...]))
        }
        while i < args.count, args[i].hasPrefix("-") {
            let (name, inline) = split(args[i])
            guard global(name, inline) == true else { return nil }
            i += 1
        }
        guard i < args.count, let verb = Verb(rawValue: args[i]) else { return nil }
        i += 1
        var call = Call(verb: verb)
        let createLike = verb == .create || verb == .run
        while i < args.count {
            let a = args[i]
            if a == "--" {
                call.positionals += args[(i + 1)...]
                break
            }
            guard a.hasPrefix("-"), a != "-" else {
                call.positionals.append(a)
                i += 1
                continue
            }
            let (name, inline) = split(a)
            switch global(name, inline) {
            case .none: return nil
            case .some(true): i += 1; continue
            case .some(false): break
            }
            func value() -> String? {
                if let inline { return inline }
                guard i + 1 < args.count else { return nil }
                i += 1
                return args[i]
            }
            switch (name, createLike) {
            case ("-b", true), ("--bundle", true): guard let v = value() else { return nil }; call.bundle = v
            case ("--console-socket", true): guard let v = value() else { return nil }; call.consoleSocket = v
            case ("--pid-file", true): guard let v = value() else { return nil }; call.pidFile = v
            case ("--preserve-fds", true):
                guard let v = value(), let n = Int(v), n >= 0 else { return nil }
                call.preserveFDs = n
            case ("--cdi-device", true): guard let v = value() else { return nil }; call.cdiDevices.append(v)
            case ("--no-pivot", true) where inline == nil: call.noPivot = true
            case ("--no-new-keyring", true) where inline == nil: break
            case ("-d", true) where verb == .run && inline == nil, ("--detach", true) where verb == .run && inline == nil:
                call.detach = true
            case ("--keep", true) where verb == .run && inline == nil: call.keep = true
            case ("-f", false) where verb == .delete && inline == nil, ("--force", false) where verb == .delete && inline == nil:
                call.force = true
            case ("-a", false) where verb == .kill && inline == nil, ("--all", false) where verb == .kill && inline == nil:
                call.all = true
            default: return nil
            }
            i += 1
        }
        let wanted = verb == .kill ? 1...2 : 1...1
        guard wanted.contains(call.positionals.count), !call.positionals[0].isEmpty else { return nil }
        call.root = root
        call.log = log
        call.logFormat = logFormat
        call.debug = debug
        return call
    }

    /// Runs a parsed call; returns the process's exit code (1 with a message on stderr on error).
    public static func execute(_ call: Call) -> Int32 {
        RuntimeLog.configure(path: call.log, format: call.logFormat, debug: call.debug)
        let runtime = Runtime(root: call.root ?? Runtime.defaultRoot, logger: RuntimeLog.logger())
        let id = call.positionals[0]
        RuntimeLog.debug("\(call.verb.rawValue) container \"\(id)\" (state in \(runtime.root)"
                         + (call.verb == .create || call.verb == .run ? ", bundle \(call.bundle))" : ")"))
        var options = CreateOptions(consoleSocket: call.consoleSocket, pidFile: call.pidFile,
                                    noPivot: call.noPivot, preserveFDs: call.preserveFDs)
        options.cdiDevices = call.cdiDevices
        do {
            switch call.verb {
            case .create: _ = try runtime.create(id: id, bundle: call.bundle, options: options)
            case .start: try runtime.start(id: id)
            case .delete: try runtime.delete(id: id, force: call.force)
            case .run:
                return try runtime.run(id: id, bundle: call.bundle, options: options, detach: call.detach, keep: call.keep)
            case .state:
                FileHandle.standardOutput.write(Data(try runtime.state(id: id).runcJSON.utf8))
            case .kill:
                let name = call.positionals.count > 1 ? call.positionals[1] : "SIGTERM"
                // Signal 0 only checks that the container is alive (runc passes any number on).
                guard let sig = name == "0" ? 0 : Runtime.signalNumber(name) else {
                    RuntimeLog.error("unknown signal \"\(name)\": give a name (TERM, SIGKILL, RTMIN+3) or a number (9)")
                    return 1
                }
                try runtime.kill(id: id, signal: sig, all: call.all)
            }
        } catch let e as RuntimeError {
            RuntimeLog.error(e.message)
            return 1
        } catch {
            RuntimeLog.error("\(error)")
            return 1
        }
        RuntimeLog.debug("\(call.verb.rawValue) container \"\(id)\": done")
        return 0
    }
}
