import ArgumentParser
import Containers
import Foundation

/// `start`: start stopped containers (`-a` attaches to the first).
struct StartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start one or more stopped containers.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Attach to the container's output.") var attach = false
    @Flag(name: .shortAndLong, help: "Attach stdin.") var interactive = false
    @Option(name: .customLong("sig-proxy"), help: "With -a, pass the signals the client receives on to the container (true by default).")
    var sigProxy = true
    @Flag(name: .customLong("all"), help: ArgumentHelp("Start every stopped container whose --restart policy wants it running (what a daemon does at boot; for a systemd unit).",
                                                       discussion: "always: any stopped one; unless-stopped: unless stop or kill ended it; on-failure: after a non-zero status or a run cut short."))
    var all = false
    @Argument(help: "Container names or IDs.") var containers: [String] = []

    func validate() throws {
        if all && (!containers.isEmpty || attach || interactive) { throw ValidationError("--all takes no container names, -a or -i") }
        if !all && containers.isEmpty { throw ValidationError("Missing expected argument '<containers> ...'") }
    }

    func run() throws {
        if all { return try startAll() }
        let code: Int32? = try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            var last: Int32?
            for (i, ref) in containers.enumerated() {
                let c = try m.store.lookup(ref)
                // a paused one is refused by the start itself, as docker's
                if c.isRunning && !c.isPaused { if !attach { ContainerCLI.out(ref) }; continue }
                if attach && i == containers.count - 1 {
                    last = try ContainerCLI.startContainer(m, id: c.id, global: global, attach: true, stdin: interactive, sigProxy: sigProxy)
                } else {
                    _ = try ContainerCLI.startContainer(m, id: c.id, global: global, attach: false, stdin: false)
                    ContainerCLI.out(ref)
                }
            }
            return last
        }
        if let code, code != 0 { throw ExitCode(code) }
    }

    /// `--all`: starts what the restart policies want running, printing each name; one that
    /// fails is reported and the others still start (exit 1 at the end).
    func startAll() throws {
        let m = try ContainerCLI.guarded { try ContainerCLI.manager(global) }
        var failed = false
        for c in m.store.list().sorted(by: { $0.record.created < $1.record.created }) {
            guard let policy = c.record.restartPolicy, policy.wantsRunning(c.state) else { continue }
            do {
                _ = try ContainerCLI.startContainer(m, id: c.id, global: global, attach: false, stdin: false)
                ContainerCLI.out(c.name)
            } catch is ExitCode {
                failed = true  // the reason is printed already
            } catch {
                failed = true
                FileHandle.standardError.write(Data("dockbuild: start \(c.name): \(error)\n".utf8))
            }
        }
        if failed { throw ExitCode(1) }
    }
}

/// `stop`: the stop signal, then SIGKILL after the grace period.
struct StopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop one or more running containers.")
    @OptionGroup var global: GlobalOptions
    @Option(name: [.short, .long], parsing: .unconditional, help: "Seconds to wait before killing (-1: no limit; default: the container's --stop-timeout, else 10).") var time: String?
    @Argument(help: "Container names or IDs.") var containers: [String]

    func run() throws {
        let timeout = try ContainerCLI.guarded { try time.map { try FlagValue.timeoutSeconds($0, flag: "--time") } }
        try ContainerCLI.forEach(global, containers) { m, c, ref in
            try m.stop(c.id, timeout: timeout)
            ContainerCLI.out(ref)
        }
    }
}

/// `restart`: stop then start.
struct RestartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restart", abstract: "Restart one or more containers.")
    @OptionGroup var global: GlobalOptions
    @Option(name: [.short, .long], parsing: .unconditional, help: "Seconds to wait before killing (-1: no limit; default: the container's --stop-timeout, else 10).") var time: String?
    @Argument(help: "Container names or IDs.") var containers: [String]

    func run() throws {
        let timeout = try ContainerCLI.guarded { try time.map { try FlagValue.timeoutSeconds($0, flag: "--time") } }
        try ContainerCLI.forEach(global, containers) { m, c, ref in
            try m.stop(c.id, timeout: timeout)
            _ = try ContainerCLI.startContainer(m, id: c.id, global: global, attach: false, stdin: false)
            ContainerCLI.out(ref)
        }
    }
}

/// `kill`: send a signal (SIGKILL by default).
struct KillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kill", abstract: "Send a signal to one or more running containers.")
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Signal (name or number).") var signal = "KILL"
    @Argument(help: "Container names or IDs.") var containers: [String]

    func run() throws {
        let sig = signal.uppercased().hasPrefix("SIG") || Int(signal) != nil ? signal.uppercased() : "SIG\(signal.uppercased())"
        try ContainerCLI.forEach(global, containers) { m, c, ref in
            try m.kill(c.id, signal: sig)
            ContainerCLI.out(ref)
        }
    }
}

/// `rm`: remove containers (`-f` kills running ones, `-v` removes their anonymous volumes).
struct RmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove one or more containers.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Kill and remove a running container.") var force = false
    @Flag(name: .shortAndLong, help: "Remove anonymous volumes too.") var volumes = false
    @Argument(help: "Container names or IDs.") var containers: [String]

    func run() throws {
        // `rm -f` also removes a container whose record is damaged (the lookup cannot read it)
        let damaged: [String] = force ? ((try? ContainerCLI.manager(global))
            .map { m in containers.filter { m.store.damagedID($0) != nil } } ?? []) : []
        if !damaged.isEmpty {
            try ContainerCLI.guarded {
                let m = try ContainerCLI.manager(global)
                for ref in damaged {
                    if let id = m.store.damagedID(ref) { try m.removeDamaged(id) }
                    ContainerCLI.out(ref)
                }
            }
        }
        let rest = containers.filter { !damaged.contains($0) }
        guard !rest.isEmpty || damaged.isEmpty else { return }
        try ContainerCLI.forEach(global, rest) { m, c, ref in
            try m.remove(c.id, force: force, volumes: volumes)
            ContainerCLI.out(ref)
        }
    }
}

/// `wait`: block until containers stop; print their exit codes.
struct WaitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "wait", abstract: "Block until containers stop, then print their exit codes.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Container names or IDs.") var containers: [String]

    func run() throws {
        try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            for ref in containers {
                let c = try m.store.lookup(ref)
                ContainerCLI.out(String(m.wait(c.id)))
            }
        }
    }
}

/// `attach`: connect the terminal to a running container (ctrl-p ctrl-q detaches).
struct AttachCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "attach", abstract: "Attach to a running container's input and output.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .customLong("no-stdin"), help: "Do not attach stdin.") var noStdin = false
    @Option(name: .customLong("sig-proxy"), help: "Pass the signals the client receives on to the container (true by default).")
    var sigProxy = true
    @Argument(help: "Container name or ID.") var container: String

    func run() throws {
        let code: Int32? = try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            let c = try m.store.lookup(container)
            guard c.isRunning else { throw ContainersError.invalidState("container \(c.name) is not running: start it with `dockbuild start -a \(c.name)`") }
            let fd = try AttachClient.connect(m, id: c.id)
            if c.record.tty { AttachClient.sendSize(fd) }
            return AttachClient.run(socket: fd, tty: c.record.tty, forwardStdin: !noStdin && c.record.openStdin,
                                    onSignal: try ContainerCLI.signalProxy(m, id: c.id, enabled: sigProxy))
        }
        if let code, code != 0 { throw ExitCode(code) }
    }
}
