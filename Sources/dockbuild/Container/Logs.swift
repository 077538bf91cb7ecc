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
    @Argument var container: String

    func run() throws {
        try ContainerCLI.guarded {
            let n = try FlagValue.tailLines(tail)
            let m = try ContainerCLI.manager(global)
            let c = try m.store.lookup(container)
            let id = c.id
            LogReader.stream(path: "\(c.directory)/container.log", tail: n, follow: follow,
                             isRunning: { m.store.state(id).status == .running }) { e in
                let text = timestamps ? "\(e.time) \(e.text)" : e.text
                let fd: Int32 = e.stream == "stderr" ? 2 : 1
                _ = text.withCString { write(fd, $0, strlen($0)) }
            }
        }
    }
}
