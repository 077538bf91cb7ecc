import ArgumentParser
import Containers
import Foundation

/// `update`: change resources of containers (running ones at once).
struct UpdateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "update", abstract: "Update the resource limits of containers.")
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, parsing: .unconditional, help: "Memory limit.") var memory: String?
    @Option(name: .customLong("memory-swap"), parsing: .unconditional, help: "Memory plus swap limit (-1 for unlimited).") var memorySwap: String?
    @Option(name: .long, parsing: .unconditional, help: "CPUs.") var cpus: String?
    @Option(name: .customLong("pids-limit"), parsing: .unconditional, help: "Process limit (0 or -1: no limit).") var pidsLimit: String?
    @Option(name: .long, help: "Restart policy: no, always, unless-stopped, on-failure[:MAX-RETRIES].") var restart: String?
    @Argument(help: "Container names or IDs.") var containers: [String]

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
