import ArgumentParser
import Containers
import Foundation

/// `stats`: cpu, memory, network and block I/O and pids from each container's cgroup, in
/// docker's columns and units; `--format` as docker's (table, json, Go template).
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Show containers' resource usage.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .customLong("no-stream"), help: "Print one sample and exit.") var noStream = false
    @Flag(name: .shortAndLong, help: "All containers (default: running).") var all = false
    @Flag(name: .customLong("no-trunc"), help: "Do not truncate output.") var noTrunc = false
    @Option(name: .long, help: "Format: table (default), json, or a Go template (e.g. '{{.Name}} {{.CPUPerc}}').") var format: String?
    @Argument(help: "Container names or IDs (default: the running ones).") var containers: [String] = []

    static let defaultFormat = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
    static let headers = ["ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
                          "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"]

    func run() throws {
        try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            func targets() throws -> [(Container, String)] {
                if containers.isEmpty { return m.store.list().filter { all || $0.isRunning }.map { ($0, String($0.id.prefix(12))) } }
                return try containers.map { (try m.store.lookup($0), $0) }
            }
            let fmt = OutputFormat.isDefaultTable(format) ? Self.defaultFormat : format ?? Self.defaultFormat
            _ = try OutputFormat.list(fmt, rows: [], headers: Self.headers, typeName: "*formatter.statsContext")  // a bad template fails now
            // docker's CPU %: the use between two samples; the first one is taken 0.5 s before
            var prev: [String: (UInt64, Double)] = [:]
            for (c, _) in try targets() where c.isRunning {
                if let s = try? m.stats(c.id) { prev[c.id] = (s.cpuNanos, Self.now()) }
            }
            usleep(500_000)
            while true {
                var rows: [TemplateValue] = []
                for (c, given) in try targets() {
                    rows.append(row(c, given: given, sample: c.isRunning ? try? m.stats(c.id) : nil, prev: &prev))
                }
                let out = try OutputFormat.list(fmt, rows: rows, headers: Self.headers, typeName: "*formatter.statsContext") ?? ""
                if !noStream { FileHandle.standardOutput.write(Data("\u{1b}[2J\u{1b}[H".utf8)) }
                if !out.isEmpty { ContainerCLI.out(out) }
                if noStream { return }
                sleep(1)
            }
        }
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// One container's fields, as docker's stats formatter names them.
    func row(_ c: Container, given: String, sample: ContainerManager.Stats?, prev: inout [String: (UInt64, Double)]) -> TemplateValue {
        let id = noTrunc ? c.id : String(c.id.prefix(12))
        guard let s = sample else {
            return .object([("BlockIO", .string("--")), ("CPUPerc", .string("0.00%")), ("Container", .string(given)), ("ID", .string(id)),
                            ("MemPerc", .string("0.00%")), ("MemUsage", .string("0B / 0B")), ("Name", .string(c.name)),
                            ("NetIO", .string("--")), ("PIDs", .string("0"))])
        }
        let t = Self.now()
        var cpu = 0.0
        if let (n, t0) = prev[c.id], t > t0 { cpu = Double(s.cpuNanos &- n) / ((t - t0) * 1e9) * 100 }
        prev[c.id] = (s.cpuNanos, t)
        let memPct = s.memoryLimit > 0 ? Double(s.memoryUsage) / Double(s.memoryLimit) * 100 : 0
        return .object([
            ("BlockIO", .string("\(ImageCLI.humanSize(Int64(clamping: s.blockRead))) / \(ImageCLI.humanSize(Int64(clamping: s.blockWrite)))")),
            ("CPUPerc", .string(String(format: "%.2f%%", cpu))),
            ("Container", .string(given)),
            ("ID", .string(id)),
            ("MemPerc", .string(String(format: "%.2f%%", memPct))),
            ("MemUsage", .string("\(ImageCLI.binarySize(s.memoryUsage)) / \(ImageCLI.binarySize(s.memoryLimit))")),
            ("Name", .string(c.name)),
            ("NetIO", .string("\(ImageCLI.humanSize(Int64(clamping: s.netReceived))) / \(ImageCLI.humanSize(Int64(clamping: s.netSent)))")),
            ("PIDs", .string(String(s.pids))),
        ])
    }
}
