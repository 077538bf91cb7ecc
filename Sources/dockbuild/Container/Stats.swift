import ArgumentParser
import Containers
import Foundation

/// `stats`: cpu, memory and pids from each running container's cgroup.
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Show containers' resource usage.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .customLong("no-stream"), help: "Print one sample and exit.") var noStream = false
    @Flag(name: .shortAndLong, help: "All containers (default: running).") var all = false
    @Argument(help: "Container names or IDs (default: the running ones).") var containers: [String] = []

    func run() throws {
        try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            func targets() throws -> [Container] {
                if containers.isEmpty { return m.store.list().filter { all || $0.isRunning } }
                return try containers.map { try m.store.lookup($0) }
            }
            var prev: [String: (UInt64, Date)] = [:]
            let cpus = Double(ProcessInfo.processInfo.activeProcessorCount)
            var first = true
            repeat {
                var lines = ["CONTAINER ID   NAME                 CPU %     MEM USAGE / LIMIT       MEM %     PIDS"]
                for c in try targets() {
                    guard c.isRunning, let s = try? m.stats(c.id) else {
                        lines.append("\(c.id.prefix(12))   \(c.name.padding(toLength: 20, withPad: " ", startingAt: 0)) --        -- / --                 --        --")
                        continue
                    }
                    let now = Date()
                    var cpu = 0.0
                    if let (n, t) = prev[c.id], now > t {
                        cpu = Double(s.cpuNanos &- n) / (now.timeIntervalSince(t) * 1e9) * 100
                    } else if first {
                        usleep(200_000)
                        if let s2 = try? m.stats(c.id) { cpu = Double(s2.cpuNanos &- s.cpuNanos) / 0.2e9 * 100 }
                    }
                    _ = cpus
                    prev[c.id] = (s.cpuNanos, now)
                    let memPct = s.memoryLimit > 0 ? Double(s.memoryUsage) / Double(s.memoryLimit) * 100 : 0
                    let mem = "\(Self.size(s.memoryUsage)) / \(Self.size(s.memoryLimit))"
                    lines.append("\(c.id.prefix(12))   \(c.name.padding(toLength: 20, withPad: " ", startingAt: 0)) "
                                 + String(format: "%.2f%%", cpu).padding(toLength: 10, withPad: " ", startingAt: 0)
                                 + mem.padding(toLength: 24, withPad: " ", startingAt: 0)
                                 + String(format: "%.2f%%", memPct).padding(toLength: 10, withPad: " ", startingAt: 0) + "\(s.pids)")
                }
                if !noStream { FileHandle.standardOutput.write(Data("\u{1b}[2J\u{1b}[H".utf8)) }
                for l in lines { ContainerCLI.out(l) }
                first = false
                if !noStream { sleep(1) }
            } while !noStream
        }
    }

    static func size(_ b: UInt64) -> String {
        let d = Double(b)
        if d >= 1_073_741_824 { return String(format: "%.2fGiB", d / 1_073_741_824) }
        if d >= 1_048_576 { return String(format: "%.2fMiB", d / 1_048_576) }
        if d >= 1024 { return String(format: "%.2fKiB", d / 1024) }
        return "\(b)B"
    }
}
