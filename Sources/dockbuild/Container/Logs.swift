import ArgumentParser
import Containers
import Foundation

/// `logs`: the container's output from its log file; `-f` follows while it runs.
struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Show a container's output.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Follow the output.") var follow = false
    @Option(name: [.customShort("n"), .customLong("tail")], parsing: .unconditional, help: "Number of lines from the end (all by default).") var tail: String = "all"
    @Flag(name: .shortAndLong, help: "Show timestamps.") var timestamps = false
    @Option(help: "Show logs since a time (2026-01-02T15:04:05Z, a Unix time) or for a duration before now (e.g. 42m).") var since: String?
    @Option(help: "Show logs until a time (2026-01-02T15:04:05Z, a Unix time) or until a duration before now (e.g. 42m).") var until: String?
    @Flag(help: "Show extra details provided to logs (none are recorded: each line gets the separating space).") var details = false
    @Argument(help: "The container (name, ID or ID prefix).") var container: String

    func run() throws {
        try ContainerCLI.guarded {
            let n = try FlagValue.tailLines(tail)
            let now = Date()
            let from = try since.map { try LogReader.parseTime($0, flag: "since", now: now) }
            let to = try until.map { try LogReader.parseTime($0, flag: "until", now: now) }
            let m = try ContainerCLI.manager(global)
            let c = try m.store.lookup(container)
            if c.record.logDriver == "none" {
                throw ContainersError.invalidState("configured logging driver does not support reading (container \(c.name) runs with --log-driver none)")
            }
            let id = c.id
            LogReader.stream(path: "\(c.directory)/container.log", tail: n, since: from, until: to, follow: follow,
                             isRunning: { m.store.state(id).status == .running }) { e in
                // --details: docker prints the log's attributes, then a space; there are none here
                let line = details ? " " + e.text : e.text
                let text = timestamps ? "\(e.time) \(line)" : line
                let fd: Int32 = e.stream == "stderr" ? 2 : 1
                _ = text.withCString { write(fd, $0, strlen($0)) }
            }
        }
    }
}
