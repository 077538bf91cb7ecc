import ArgumentParser
import Containers
import Foundation

/// `top`: the container's processes.
struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "top", abstract: "Show a container's processes.")
    @OptionGroup var global: GlobalOptions
    @Argument var container: String
    @Argument(parsing: .captureForPassthrough) var psArgs: [String] = []

    func run() throws {
        try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            ContainerCLI.out(try m.top(try m.store.lookup(container).id, psArgs: psArgs))
        }
    }
}

/// `port`: published ports.
struct PortCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "port", abstract: "List a container's published ports.")
    @OptionGroup var global: GlobalOptions
    @Argument var container: String
    @Argument(help: "PORT[/PROTO] to show only that one.") var port: String?

    func run() throws {
        try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            let c = try m.store.lookup(container)
            var found = false
            for p in c.state.ports {
                let key = "\(p.containerPort)/\(p.proto)"
                if let port, port != key, port != String(p.containerPort) { continue }
                found = true
                let host = "\(p.hostIP.isEmpty ? "0.0.0.0" : p.hostIP):\(p.hostPort)"
                ContainerCLI.out(port == nil ? "\(key) -> \(host)" : host)
            }
            if let port, !found { throw ContainersError.invalidArgument("no public port \(port) published for \(c.name)") }
        }
    }
}

/// `commit`: the container's changes become a new image layer.
struct CommitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "commit", abstract: "Create an image from a container's changes.")
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Author.") var author: String?
    @Option(name: .shortAndLong, help: "Commit message.") var message: String?
    @Option(name: .shortAndLong, help: "Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, SHELL, STOPSIGNAL, USER, VOLUME, WORKDIR); repeatable.")
    var change: [String] = []
    @Option(name: .shortAndLong, help: "Pause the container while it is committed (true by default; --pause=false to not).")
    var pause: Bool = true
    @Argument(help: "The container (name, ID or ID prefix).") var container: String
    @Argument(help: "REPOSITORY[:TAG]") var reference: String?

    func run() throws {
        try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            let c = try m.store.lookup(container)
            let img = try m.commit(c.id, tag: reference, author: author, message: message, changes: change, pause: pause)
            ContainerCLI.out(img.id.description)
        }
    }
}

/// `update`: change resources of containers (running ones at once).
struct UpdateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "update", abstract: "Update the resource limits of containers.")
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, parsing: .unconditional, help: "Memory limit.") var memory: String?
    @Option(name: .customLong("memory-swap"), parsing: .unconditional, help: "Memory plus swap limit (-1 for unlimited).") var memorySwap: String?
    @Option(name: .long, parsing: .unconditional, help: "CPUs.") var cpus: String?
    @Option(name: .customLong("pids-limit"), parsing: .unconditional, help: "Process limit (0 or -1: no limit).") var pidsLimit: String?
    @Option(name: .long, help: "Restart policy: no, always, unless-stopped, on-failure[:MAX-RETRIES].") var restart: String?
    @Argument var containers: [String]

    func run() throws {
        let (mem, swap, nano, pids) = try ContainerCLI.guarded {
            (try memory.map { try FlagValue.bytes($0, flag: "--memory") },
             try memorySwap.map { try FlagValue.bytes($0, flag: "--memory-swap", unlimited: true) },
             try cpus.map { try FlagValue.nanoCPUs($0) },
             // no limit is -1 for the runtimes' update (runc reads 0 as "unchanged")
             try pidsLimit.map { try FlagValue.pidsLimit($0) }.map { $0 == 0 ? -1 : $0 })
        }
        // nil: no --restart; .some(nil): --restart no
        let newPolicy: RestartPolicy?? = try ContainerCLI.guarded { try restart.map { try FlagValue.restartPolicy($0) } }
        let resources = mem != nil || swap != nil || nano != nil || pids != nil
        try ContainerCLI.forEach(global, containers) { m, c, ref in
            if resources || newPolicy == nil { try m.update(c.id, memory: mem, memorySwap: swap, nanoCpus: nano, pidsLimit: pids) }
            if let newPolicy { try m.updateRestartPolicy(c.id, newPolicy) }
            ContainerCLI.out(ref)
        }
    }
}

/// `stats`: cpu, memory and pids from each running container's cgroup.
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Show containers' resource usage.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .customLong("no-stream"), help: "Print one sample and exit.") var noStream = false
    @Flag(name: .shortAndLong, help: "All containers (default: running).") var all = false
    @Argument var containers: [String] = []

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
