import ArgumentParser
import Containers
import Foundation
import Runtime

/// Shared pieces of the container commands.
enum ContainerCLI {
    static func manager(_ g: GlobalOptions) throws -> ContainerManager {
        do { return try ContainerManager(root: g.resolvedRoot) } catch { throw cliError(error) }
    }

    /// The monitor is this binary re-executed with a hidden subcommand.
    static func monitorCommand(_ g: GlobalOptions) -> [String] {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return [exe, "container-monitor", "--root", g.resolvedRoot]
    }

    static func cliError(_ e: any Error) -> any Error {
        if e is ExitCode || e is ValidationError { return e }
        return ValidationErrorless(message: "\(e)")
    }

    /// Runs `body`, printing library errors as one line and exiting with `code`: 1 as docker's
    /// commands do, 125 for `run`/`create` (docker's own errors before a container runs).
    /// Usage errors (exit 125) go on to the command line's handler. A command that cannot be
    /// started is 127 (not found) or 126 (not executable), as docker's `run`.
    static func guarded<T>(code: Int32 = 1, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as ExitCode { throw e } catch let e as ValidationError { throw e } catch {
            let message = "\(error)"
            // A malformed flag value is a usage error: 125, as docker (FlagValue names the flag).
            if case ContainersError.invalidArgument = error {
                FileHandle.standardError.write(Data("dockbuild: \(message)\n".utf8))
                throw ExitCode(125)
            }
            FileHandle.standardError.write(Data("dockbuild: \(message)\n".utf8))
            // docker's statuses for a command that cannot be run: 127 not found, 126 not executable
            if code == 125, message.contains("executable file not found") { throw ExitCode(127) }
            if code == 125, message.contains("exec: \""), message.contains("permission denied") { throw ExitCode(126) }
            throw ExitCode(code)
        }
    }

    static func out(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }

    /// docker's prune prompt: the warning, then "Are you sure you want to continue? [y/N] ";
    /// only y or yes (any case) goes on; no input is a no.
    static func confirm(_ warning: String) -> Bool {
        FileHandle.standardOutput.write(Data((warning + "\nAre you sure you want to continue? [y/N] ").utf8))
        let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        return answer == "y" || answer == "yes"
    }

    /// Runs `body` for each named container, as docker's multi-container verbs do: an error for
    /// one (no such container, refused) is printed and the others still run; the exit code is 1
    /// when any failed.
    static func forEach(_ global: GlobalOptions, _ refs: [String],
                        _ body: (ContainerManager, Container, String) throws -> Void) throws {
        try guarded {
            let m = try manager(global)
            var failed = false
            for ref in refs {
                do {
                    try body(m, try m.store.lookup(ref), ref)
                } catch let e as ExitCode {
                    throw e
                } catch {
                    FileHandle.standardError.write(Data("dockbuild: \(error)\n".utf8))
                    failed = true
                }
            }
            if failed { throw ExitCode(1) }
        }
    }

    /// Throws the start failure `message`; when the container's program cannot run, prints it
    /// and exits as docker does: 127 not found, 126 not executable (a directory, no x bit).
    static func execFailure(_ message: String) throws -> Never {
        if let code = RuntimeError.execExitCode(forMessage: message) {
            FileHandle.standardError.write(Data("dockbuild: \(message)\n".utf8))
            throw ExitCode(code)
        }
        throw ContainersError.runtime(message)
    }

    /// `--sig-proxy`: what passes a signal the client gets on to the container's process
    /// (nil when disabled).
    static func signalProxy(_ m: ContainerManager, id: String, enabled: Bool) throws -> (@Sendable (Int32) -> Void)? {
        guard enabled else { return nil }
        let rt = try m.runtime(for: id)
        return { sig in _ = try? rt.kill(id, signal: String(sig)) }
    }

    /// Starts a container; attached, copies its streams (`streams`, docker's `-a`) and, with
    /// `sigProxy`, passes the signals the client gets on to it.
    static func startContainer(_ m: ContainerManager, id: String, global: GlobalOptions, attach: Bool, stdin: Bool,
                               streams: AttachStreams = .all, sigProxy: Bool = true) throws -> Int32? {
        let rec = try m.store.record(id)
        let launch = try m.start(id, monitorCommand: monitorCommand(global), attach: attach)
        guard attach else {
            do { try launch.waitStarted() } catch ContainersError.runtime(let message) { try execFailure(message) }
            return nil
        }
        guard let first = launch.nextLine() else {
            throw ContainersError.runtime("the container's monitor exited early; see \(m.store.directory(id))/monitor.log")
        }
        if first.hasPrefix("error: ") { try execFailure(String(first.dropFirst(7))) }
        let fd = try AttachClient.connect(m, id: id)
        if rec.tty { AttachClient.sendSize(fd) }
        do { try launch.waitStarted() } catch ContainersError.runtime(let message) { try execFailure(message) }
        let code = AttachClient.run(socket: fd, tty: rec.tty, forwardStdin: stdin && streams.stdin && rec.openStdin,
                                    stdout: streams.stdout, stderr: streams.stderr, onSignal: try signalProxy(m, id: id, enabled: sigProxy))
        if let code { return code }
        if m.store.state(id).status == .running { return nil }
        return m.store.state(id).exitCode
    }
}

/// docker's `-a/--attach` streams: STDIN, STDOUT, STDERR (any case); none named means stdout
/// and stderr, and `-i` adds stdin.
struct AttachStreams: Sendable {
    var stdin = true, stdout = true, stderr = true
    static let all = AttachStreams()

    init() {}

    init(_ names: [String], interactive: Bool) throws {
        if names.isEmpty { stdin = interactive; return }
        stdin = interactive
        stdout = false
        stderr = false
        for n in names {
            switch n.lowercased() {
            case "stdin": stdin = true
            case "stdout": stdout = true
            case "stderr": stderr = true
            default:
                throw ValidationError("invalid argument \"\(n)\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR")
            }
        }
    }
}

struct ValidationErrorless: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// `container-monitor` (hidden): the per-container monitor process.
struct ContainerMonitorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "container-monitor", abstract: "Internal: the monitor of one container.", shouldDisplay: false)
    @Option var root: String
    @Flag var attach = false
    @Argument var id: String

    func run() throws {
        let rc = Monitor.main(root: root, id: id, waitAttach: attach, readyFD: 3)
        throw ExitCode(rc)
    }
}
