import ArgumentParser
import Compose
import Containers
import Foundation
import Synchronization

/// `compose`: docker compose's command line over the Compose library. The options before the
/// subcommand (`-f`, `-p`, `--env-file`, ...) are compose's own, so the arguments are taken as
/// they come and split here; each subcommand is then parsed on its own.
struct ComposeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compose", abstract: "Define and run multi-container applications (compose files), daemonless.",
        usage: "dockbuild compose [-f FILE]... [-p NAME] [--env-file FILE] [--project-directory DIR] [--profile P] COMMAND",
        discussion: ComposeCLI.help)
    @Argument(parsing: .captureForPassthrough, help: "Options and a command: up, down, ps, logs, start, stop, restart, rm, exec, config.")
    var arguments: [String] = []

    func run() async throws { try await ComposeCLI.main(arguments) }
}

/// What every compose subcommand gets: the loader's options and the store root.
struct ComposeContext {
    var options = ComposeLoader.Options()
    var root: String?

    /// With `-p` and no compose file, the verbs that only need the containers (`down`, `ps`,
    /// `logs`, `stop`, ...) work on the project's labels alone, as docker compose's do.
    var fileOptional = false

    func project() throws -> ComposeProject {
        var loader = ComposeLoader(options)
        let p: ComposeProject
        do { p = try loader.load() } catch ComposeError.noComposeFile(let why) {
            guard fileOptional, let name = options.projectName else { throw ComposeError.noComposeFile(why) }
            return ComposeProject(name: name, workingDir: options.currentDirectory, files: [], services: [], volumes: [])
        }
        for w in loader.warnings {
            ComposeCLI.err("WARN: the \"\(w)\" variable is not set. Defaulting to a blank string.")
        }
        return p
    }

    /// The engine over the project, after `adjust` (e.g. `up --scale`).
    func engine(_ adjust: (inout ComposeProject) throws -> Void = { _ in }) throws -> ComposeEngine {
        var p = try project()
        try adjust(&p)
        var g = GlobalOptions()
        g.root = root
        return ComposeEngine(project: p, manager: try ContainerCLI.manager(g), monitorCommand: ContainerCLI.monitorCommand(g),
                             progress: { ComposeCLI.err($0) })
    }

    var global: GlobalOptions { var g = GlobalOptions(); g.root = root; return g }
}

protocol ComposeSubcommand: ParsableCommand {
    func run(_ ctx: ComposeContext) async throws
}

enum ComposeCLI {
    static let help = """
        OPTIONS (before the command):
          -f, --file FILE            Compose file (repeatable, merged in order; default: compose.yaml,
                                     compose.yml, docker-compose.yaml, docker-compose.yml here or above)
          -p, --project-name NAME    Project name (default: $COMPOSE_PROJECT_NAME, `name:`, the directory's name)
          --project-directory DIR    Where relative paths and .env are resolved (default: the first file's directory)
          --env-file FILE            Variables for interpolation, in place of .env (repeatable)
          --profile NAME             Enable services of this profile (repeatable)
          --root DIR                 Root of dockbuild's state

        COMMANDS:
          config     Print the normalized compose model (--services, --volumes, -q)
          up         Create and start containers (-d, --build, --force-recreate, --no-deps, --remove-orphans,
                     --scale S=N, --wait, --abort-on-container-exit, --exit-code-from)
          scale      Run N containers of services (SERVICE=N...)
          down       Stop and remove containers (and with -v the project's volumes)
          ps         List containers (-a, -q, --services)
          logs       Show output (-f, -n/--tail, -t, --no-log-prefix)
          start      Start existing containers
          stop       Stop containers (-t)
          restart    Restart containers (-t)
          rm         Remove stopped containers (-f, -s, -v)
          exec       Run a command in a running service container (-T, -e, -u, -w, -d, --index)
          port       Print the public port of a port binding
          run        Run a one-off command in a new container of a service (--rm, -d, -T, -e, --entrypoint, ...)
          kill       Send a signal to the services' containers (-s)
          pause      Pause the services' containers (unpause: resume them)
          top        The processes of the services' containers
          build      Build the images of services with `build:` (--no-cache)
          pull       Pull the images of the other services
          push       Push the images of services with `build:` (--ignore-push-failures)
          create     Create containers without starting them (--build, --force-recreate, --no-deps)
          images     The images of the containers (-q)
          cp         Copy files between a service container and the host (--index, --all)
          ls         List the projects that have containers (-a, -q)
        """

    static func err(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

    static let subcommands: [String: any ComposeSubcommand.Type] = [
        "config": ComposeConfig.self, "up": ComposeUp.self, "down": ComposeDown.self, "ps": ComposePs.self,
        "logs": ComposeLogs.self, "start": ComposeStart.self, "stop": ComposeStop.self, "restart": ComposeRestart.self,
        "rm": ComposeRm.self, "exec": ComposeExec.self, "port": ComposePort.self, "run": ComposeRun.self,
        "kill": ComposeKill.self, "pause": ComposePause.self, "unpause": ComposeUnpause.self, "top": ComposeTop.self,
        "build": ComposeBuild.self, "pull": ComposePull.self, "ls": ComposeLs.self, "scale": ComposeScale.self,
        "create": ComposeCreate.self, "images": ComposeImages.self, "push": ComposePush.self, "cp": ComposeCp.self,
    ]
    static let notYet: Set = ["events", "wait", "watch", "attach",
                              "stats", "version", "commit", "export"]

    static func main(_ args: [String]) async throws {
        var ctx = ComposeContext()
        var i = 0
        func value(_ name: String, _ inline: String?) throws -> String {
            if let inline { return inline }
            i += 1
            guard i < args.count else { throw usage("flag needs an argument: \(name)") }
            return args[i]
        }
        while i < args.count, args[i].hasPrefix("-") {
            var name = args[i], inline: String?
            if name.hasPrefix("--"), let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...]); name = String(name[..<eq])
            }
            switch name {
            case "-f", "--file": ctx.options.files.append(try value(name, inline))
            case "-p", "--project-name": ctx.options.projectName = try value(name, inline)
            case "--project-directory": ctx.options.projectDirectory = try value(name, inline)
            case "--env-file": ctx.options.envFiles.append(try value(name, inline))
            case "--profile": ctx.options.profiles.append(try value(name, inline))
            case "--root": ctx.root = try value(name, inline)
            case "-h", "--help":
                print(ComposeCommand.helpMessage())
                return
            default: throw usage("unknown flag: \(name)")
            }
            i += 1
        }
        guard i < args.count else {
            print(ComposeCommand.helpMessage())
            throw ExitCode(1)
        }
        let verb = args[i]
        let rest = Array(args[(i + 1)...])
        if ctx.options.files.contains("-") {
            ctx.options.stdinText = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        }
        ctx.fileOptional = ["down", "ps", "logs", "stop", "kill", "rm", "top", "pause", "unpause", "ls"].contains(verb)
        guard let type = subcommands[verb] else {
            if notYet.contains(verb) { throw usage("`compose \(verb)` is not supported yet (see docs/compose.md for what is)") }
            throw usage("unknown compose command \"\(verb)\"; see 'dockbuild compose --help'")
        }
        let options = rest.prefix { $0 != "--" && (!["exec", "run"].contains(verb) || $0.hasPrefix("-")) }
        if options.contains("--help") || options.contains("-h") {
            print(type.helpMessage())
            return
        }
        let cmd: any ComposeSubcommand
        do {
            guard let parsed = try type.parseAsRoot(rest) as? any ComposeSubcommand else { throw ExitCode(1) }
            cmd = parsed
        } catch {
            let code = type.exitCode(for: error)
            let text = type.fullMessage(for: error)
            if code == .success { print(text) } else { err("dockbuild compose \(verb): \(text)") }
            throw ExitCode(code.rawValue == 64 ? 1 : code.rawValue)
        }
        do { try await cmd.run(ctx) } catch let e as ExitCode { throw e } catch {
            err("dockbuild compose: \(error)")
            throw ExitCode(1)
        }
    }

    static func usage(_ message: String) -> ExitCode {
        err("dockbuild compose: \(message)")
        return ExitCode(1)
    }
}

// MARK: - config

struct ComposeConfig: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Print the normalized compose model.")
    @Flag(name: .long, help: "Print the service names, one per line.") var services = false
    @Flag(name: .long, help: "Print the volume names, one per line.") var volumes = false
    @Flag(name: .shortAndLong, help: "Only validate the model.") var quiet = false
    @Option(name: .long, help: "Print the config hash of these services (comma separated, * for all).") var hash: String?

    func run(_ ctx: ComposeContext) async throws {
        let p = try ctx.project()
        if quiet { return }
        if services { for s in p.services { print(s.name) }; return }
        if volumes { for v in p.volumes { print(v.key) }; return }
        if let hash {
            let names = hash == "*" ? p.services.map(\.name) : hash.split(separator: ",").map(String.init)
            for n in names {
                guard let s = p.service(n) else { throw ComposeError.invalidArgument("no such service: \(n)") }
                print("\(n) \(ComposeEngine.configHash(s))")
            }
            return
        }
        FileHandle.standardOutput.write(Data(ConfigWriter.yaml(p).utf8))
    }
}

// MARK: - up, down

struct ComposeUp: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "up", abstract: "Create and start containers.")
    @Flag(name: .shortAndLong, help: "Run in the background.") var detach = false
    @Flag(name: .long, help: "Recreate containers even if their configuration is unchanged.") var forceRecreate = false
    @Flag(name: .long, help: "Do not start the services' dependencies.") var noDeps = false
    @Flag(name: .long, help: "Remove containers of services not in the compose file.") var removeOrphans = false
    @Flag(name: .long, help: "Wait for the services to be running or healthy (implies -d).") var wait = false
    @Flag(name: .long, help: "Build images before starting containers.") var build = false
    @Flag(name: .long, help: "Do not colour the output's prefixes.") var noColor = false
    @Option(name: .long, help: "Seconds --wait waits at most.") var waitTimeout: Int?
    @Flag(name: .long, help: "Stop all containers when one stops (attached).") var abortOnContainerExit = false
    @Option(name: .long, help: "Exit with this service's status (implies --abort-on-container-exit).") var exitCodeFrom: String?
    @Option(name: .long, help: "SERVICE=N: run N containers of the service (its deploy.replicas or scale otherwise).") var scale: [String] = []
    @Argument(help: "Services (all by default).") var services: [String] = []

    /// Applies `SERVICE=N` settings to the project's services.
    static func applyScale(_ settings: [String], to p: inout ComposeProject) throws {
        for setting in settings {
            let kv = setting.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, let n = Int(kv[1]), n >= 0 else {
                throw ComposeError.invalidArgument("--scale \(setting): use SERVICE=N with N 0 or more")
            }
            guard let i = p.services.firstIndex(where: { $0.name == kv[0] }) else {
                throw ComposeError.invalidArgument("--scale \(setting): no such service: \(kv[0])")
            }
            if n > 1, let name = p.services[i].containerName {
                throw ComposeError.invalidArgument("--scale \(setting): service \(kv[0]) has container_name \"\(name)\", one name for one container")
            }
            p.services[i].replicas = n
        }
    }

    func validate() throws {
        if detach && (abortOnContainerExit || exitCodeFrom != nil) {
            throw ValidationError("--abort-on-container-exit and --exit-code-from cannot be combined with -d")
        }
    }

    func run(_ ctx: ComposeContext) async throws {
        let e = try ctx.engine { try Self.applyScale(scale, to: &$0) }
        if let s = exitCodeFrom { try e.checkServices([s]) }
        let began = Date()
        try await e.up(services, forceRecreate: forceRecreate, noDeps: noDeps, removeOrphans: removeOrphans, build: build)
        if wait {
            try e.waitRunningOrHealthy(services, timeout: waitTimeout.map(Double.init))
            return
        }
        if detach { return }
        // attached: the services' output until they all stop; ctrl-c stops them
        ComposeSignals.install()
        // (what this `up` started: a container left running from before shows its new lines only)
        let abort = abortOnContainerExit || exitCodeFrom != nil
        let manager = e.manager
        let ids = e.containers(services).map(\.id)
        // the first container to stop, for --abort-on-container-exit
        let stopped = Mutex<String?>(nil)
        ComposeLogPrinter.run(e, services: services, tail: nil, since: began, follow: true, timestamps: false,
                              prefix: true, color: !noColor, announceExit: true, stopWhen: {
            if ComposeSignals.interrupted { return true }
            guard abort else { return false }
            if stopped.withLock({ $0 != nil }) { return true }
            guard let id = ids.first(where: { manager.store.state($0).status != .running }) else { return false }
            stopped.withLock { if $0 == nil { $0 = id } }
            return true
        })
        if abort, !ComposeSignals.interrupted {
            ComposeCLI.err("Aborting on container exit...")
            try e.stop(services)
            let code: Int32
            if let from = exitCodeFrom {
                code = e.containers([from]).first.map { manager.store.state($0.id).exitCode } ?? 0
            } else {
                code = stopped.withLock { $0 }.map { manager.store.state($0).exitCode } ?? 0
            }
            if code != 0 { throw ExitCode(code) }
            return
        }
        if ComposeSignals.interrupted {
            ComposeCLI.err("Gracefully stopping...")
            signal(SIGINT, SIG_DFL)
            signal(SIGTERM, SIG_DFL)
            try e.stop(services)
            throw ExitCode(130)
        }
    }
}

/// SIGINT/SIGTERM during an attached `up`: noted, so that the containers are stopped before exiting.
enum ComposeSignals {
    static let flag = Atomic<Bool>(false)
    static var interrupted: Bool { flag.load(ordering: .relaxed) }

    static func install() {
        _ = interrupted  // initialised before a handler can read it
        signal(SIGINT) { _ in ComposeSignals.flag.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in ComposeSignals.flag.store(true, ordering: .relaxed) }
    }
}

struct ComposeDown: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "down", abstract: "Stop and remove containers (and volumes with -v).")
    @Flag(name: .shortAndLong, help: "Remove the project's named volumes and the containers' anonymous volumes.") var volumes = false
    @Flag(name: .long, help: "Remove containers of services not in the compose file (always done).") var removeOrphans = false
    @Option(name: .shortAndLong, help: "Seconds to wait for each container to stop.") var timeout: Int?

    func run(_ ctx: ComposeContext) async throws {
        try ctx.engine().down(volumes: volumes, timeout: timeout)
    }
}

// MARK: - ps

struct ComposePs: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List the project's containers.")
    @Flag(name: .shortAndLong, help: "Show stopped containers too.") var all = false
    @Flag(name: .shortAndLong, help: "Only the ids.") var quiet = false
    @Flag(name: .long, help: "Only the service names.") var services = false
    @Argument(help: "Services (all by default).") var only: [String] = []

    func run(_ ctx: ComposeContext) async throws {
        let e = try ctx.engine()
        try e.checkServices(only)
        let list = e.containers(only).filter { all || $0.isRunning }
        if quiet { for c in list { print(c.id) }; return }
        if services {
            var seen = Set<String>()
            for c in list { let s = c.record.labels[ComposeLabel.service] ?? ""; if seen.insert(s).inserted { print(s) } }
            return
        }
        var rows = [["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]]
        for c in list {
            let f = PsRow(c, noTrunc: false).fields
            rows.append([c.name, c.record.image, f["Command"] ?? "", c.record.labels[ComposeLabel.service] ?? "",
                         f["RunningFor"] ?? "", f["Status"] ?? "", f["Ports"] ?? ""])
        }
        print(ImageCLI.table(rows))
    }
}

// MARK: - logs

struct ComposeLogs: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Show the services' output.")
    @Flag(name: .shortAndLong, help: "Follow the output.") var follow = false
    @Option(name: [.customShort("n"), .customLong("tail")], help: "Lines from the end of each container's log (all by default).") var tail = "all"
    @Flag(name: .shortAndLong, help: "Show timestamps.") var timestamps = false
    @Flag(name: .long, help: "Do not prefix lines with the container's name.") var noLogPrefix = false
    @Flag(name: .long, help: "Do not colour the prefixes.") var noColor = false
    @Argument(help: "Services (all by default).") var services: [String] = []

    func run(_ ctx: ComposeContext) async throws {
        let n = try FlagValue.tailLines(tail)
        let e = try ctx.engine()
        try e.checkServices(services)
        ComposeLogPrinter.run(e, services: services, tail: n, follow: follow, timestamps: timestamps, prefix: !noLogPrefix,
                              color: !noColor, stopWhen: { false })
    }
}

/// Prints the logs of a project's containers: `SERVICE-N  | line`, names padded to one width.
/// Without follow the lines of all containers are merged by time; with it, each container's
/// lines are printed as they come, until every container has stopped (or `stopWhen`).
enum ComposeLogPrinter {
    static let output = Mutex(())

    static func write(_ s: String) {
        output.withLock { _ in
            let bytes = Array(s.utf8)
            var off = 0
            while off < bytes.count {
                let n = bytes[off...].withUnsafeBytes { Foundation.write(1, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                off += n
            }
        }
    }

    static func run(_ e: ComposeEngine, services: [String], tail: Int?, since: Date? = nil, follow: Bool, timestamps: Bool, prefix: Bool,
                    color: Bool = true, announceExit: Bool = false, stopWhen: @escaping @Sendable () -> Bool) {
        let list = e.containers(services)
        let width = (list.map { ComposeEngine.shortName($0).count }.max() ?? 0) + 1
        // on a terminal each container's prefix has a colour of its own, as docker compose's
        let colour = color && isatty(1) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        let palette = ["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"]
        let colours = Dictionary(list.enumerated().map { ($0.element.id, palette[$0.offset % palette.count]) }) { a, _ in a }
        @Sendable func line(_ c: Container, _ entry: LogReader.Entry) -> String {
            var p = prefix ? ComposeEngine.shortName(c).padding(toLength: width, withPad: " ", startingAt: 0) + " | " : ""
            if colour, !p.isEmpty, let code = colours[c.id] { p = "\u{1B}[\(code)m" + p + "\u{1B}[0m" }
            var text = entry.text
            if !text.hasSuffix("\n") { text += "\n" }
            return p + (timestamps ? "\(entry.time) " : "") + text
        }
        guard follow else {
            var lines: [(time: String, text: String)] = []
            for c in list {
                LogReader.stream(path: "\(c.directory)/container.log", tail: tail, follow: false, isRunning: { false }) { entry in
                    lines.append((entry.time, line(c, entry)))
                }
            }
            // stable: lines of one time keep their order
            let sorted = lines.enumerated().sorted { a, b in
                a.element.time == b.element.time ? a.offset < b.offset : a.element.time < b.element.time
            }
            for l in sorted { write(l.element.text) }
            return
        }
        let manager = e.manager
        let threads = list.map { c in
            Thread {
                LogReader.stream(path: "\(c.directory)/container.log", tail: tail, since: since, follow: true,
                                 isRunning: { manager.store.state(c.id).status == .running && !stopWhen() }) { entry in
                    write(line(c, entry))
                }
                // attached `up`: docker compose's line for each container that ends
                if announceExit, manager.store.state(c.id).status != .running {
                    write("\(ComposeEngine.shortName(c)) exited with code \(manager.store.state(c.id).exitCode)\n")
                }
            }
        }
        for t in threads { t.start() }
        while threads.contains(where: { !$0.isFinished }) { usleep(50_000) }
    }
}

// MARK: - start, stop, restart, rm

struct ComposeStart: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start the services' existing containers.")
    @Argument(help: "Services (all by default).") var services: [String] = []
    func run(_ ctx: ComposeContext) async throws { try ctx.engine().start(services) }
}

struct ComposeStop: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop the services' containers.")
    @Option(name: .shortAndLong, help: "Seconds to wait before killing.") var timeout: Int?
    @Argument(help: "Services (all by default).") var services: [String] = []
    func run(_ ctx: ComposeContext) async throws { try ctx.engine().stop(services, timeout: timeout) }
}

struct ComposeRestart: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "restart", abstract: "Restart the services' containers.")
    @Option(name: .shortAndLong, help: "Seconds to wait before killing.") var timeout: Int?
    @Argument(help: "Services (all by default).") var services: [String] = []
    func run(_ ctx: ComposeContext) async throws {
        let e = try ctx.engine()
        try e.stop(services, timeout: timeout)
        try e.start(services)
    }
}

struct ComposeRm: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove the services' stopped containers.")
    @Flag(name: .shortAndLong, help: "Do not ask for confirmation.") var force = false
    @Flag(name: .shortAndLong, help: "Stop the containers first.") var stop = false
    @Flag(name: .shortAndLong, help: "Remove the containers' anonymous volumes.") var volumes = false
    @Argument(help: "Services (all by default).") var services: [String] = []

    func run(_ ctx: ComposeContext) async throws {
        let e = try ctx.engine()
        try e.checkServices(services)
        let doomed = e.containers(services).filter { stop || !$0.isRunning }
        if doomed.isEmpty { ComposeCLI.err("No stopped containers"); return }
        if !force {
            FileHandle.standardOutput.write(Data("Going to remove \(doomed.map(\.name).joined(separator: ", "))\n? Are you sure? [yN] ".utf8))
            let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
            guard answer == "y" || answer == "yes" else { return }
        }
        _ = try e.remove(services, stopFirst: stop, volumes: volumes)
    }
}

// MARK: - exec, port

struct ComposeExec: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "exec", abstract: "Run a command in a running service container.")
    @Flag(name: .shortAndLong, help: "Run in the background.") var detach = false
    @Flag(name: .customShort("T"), help: "Do not allocate a pseudo-terminal (one is allocated when stdin is a terminal).") var noTTY = false
    @Option(name: .shortAndLong, help: "Set an environment variable (KEY=VALUE).") var env: [String] = []
    @Option(name: .shortAndLong, help: "User: name|uid[:group|gid].") var user: String?
    @Option(name: .shortAndLong, help: "Working directory inside the container.") var workdir: String?
    @Option(name: .long, help: "Which container of the service (1 by default).") var index = 1
    @Flag(help: "Give the command every capability.") var privileged = false
    @Argument(help: "The service.") var service: String
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.") var command: [String] = []

    func run(_ ctx: ComposeContext) async throws {
        let e = try ctx.engine()
        try e.checkServices([service])
        guard !command.isEmpty else { throw ComposeError.invalidArgument("exec needs a command after the service") }
        guard let c = e.containers([service]).first(where: { $0.record.labels[ComposeLabel.number] == String(index) }), c.isRunning else {
            throw ComposeError.service("service \"\(service)\" is not running (container index \(index)): start it with `dockbuild compose up -d \(service)`")
        }
        let code = try ContainerCLI.guarded {
            try e.manager.exec(c.id, command: command, tty: !noTTY && isatty(0) == 1, interactive: !detach, detach: detach,
                               env: env, user: user, workdir: workdir, privileged: privileged)
        }
        if code != 0 { throw ExitCode(code) }
    }
}

struct ComposePort: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "port", abstract: "Print the public port of a port binding.")
    @Option(name: .long, help: "tcp or udp.") var `protocol` = "tcp"
    @Option(name: .long, help: "Which container of the service (1 by default).") var index = 1
    @Argument(help: "The service.") var service: String
    @Argument(help: "The container port.") var privatePort: Int

    func run(_ ctx: ComposeContext) async throws {
        let e = try ctx.engine()
        try e.checkServices([service])
        guard let c = e.containers([service]).first(where: { $0.record.labels[ComposeLabel.number] == String(index) }) else {
            throw ComposeError.service("service \"\(service)\" has no container \(index)")
        }
        guard let b = c.state.ports.first(where: { $0.containerPort == privatePort && $0.proto == `protocol` }) else {
            throw ComposeError.service("no port \(privatePort)/\(`protocol`) published for service \"\(service)\"")
        }
        print("\(b.hostIP.isEmpty ? "0.0.0.0" : b.hostIP):\(b.hostPort)")
    }
}

// MARK: - run, kill, pause, top

struct ComposeRun: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run a one-off command in a new container of a service.")
    @Flag(name: .shortAndLong, help: "Run in the background and print the container's name.") var detach = false
    @Flag(name: .customLong("rm"), help: "Remove the container when it exits.") var remove = false
    @Flag(name: .customShort("T"), help: "Do not allocate a pseudo-terminal (one is allocated when stdin and stdout are terminals).") var noTTY = false
    @Option(name: .shortAndLong, help: "Set an environment variable (KEY=VALUE).") var env: [String] = []
    @Option(name: .shortAndLong, help: "User: name|uid[:group|gid].") var user: String?
    @Option(name: .shortAndLong, help: "Working directory inside the container.") var workdir: String?
    @Option(name: .long, help: "The container's name.") var name: String?
    @Option(name: .long, help: "Override the image's entrypoint.") var entrypoint: String?
    @Flag(name: .long, help: "Do not start the service's dependencies.") var noDeps = false
    @Flag(name: .long, help: "Publish the service's ports.") var servicePorts = false
    @Argument(help: "The service.") var service: String
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (the service's by default).") var command: [String] = []

    func run(_ ctx: ComposeContext) async throws {
        let e = try ctx.engine()
        var one = OneOff()
        one.name = name
        one.command = command.isEmpty ? nil : command
        if let entrypoint {
            guard let ep = ComposeLoader.splitCommand(entrypoint) else { throw ComposeError.invalidArgument("--entrypoint \(entrypoint): unterminated quote") }
            one.entrypoint = ep
        }
        one.env = try env.map { try FlagValue.env($0) }
        one.user = user
        one.workdir = workdir
        one.servicePorts = servicePorts
        one.remove = remove
        one.detach = detach
        one.interactive = !detach
        one.tty = !detach && !noTTY && isatty(0) == 1 && isatty(1) == 1
        let rec = try await e.createOneOff(service, one, noDeps: noDeps)
        let code: Int32? = try ContainerCLI.guarded(code: 125) {
            do {
                let code = try ContainerCLI.startContainer(e.manager, id: rec.id, global: ctx.global, attach: !detach, stdin: !detach)
                if rec.autoRemove, e.manager.store.state(rec.id).status == .dead { try? e.manager.reapDead(rec.id) }
                return code
            } catch {
                if rec.autoRemove, e.manager.store.state(rec.id).status != .running {
                    try? e.manager.remove(rec.id, force: false, volumes: true)
                }
                throw error
            }
        }
        if detach { print(rec.name); return }
        if let code, code != 0 { throw ExitCode(code) }
    }
}

struct ComposeKill: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "kill", abstract: "Send a signal to the services' containers.")
    @Option(name: .shortAndLong, help: "The signal (SIGKILL by default).") var signal = "SIGKILL"
    @Argument(help: "Services (all by default).") var services: [String] = []
    func run(_ ctx: ComposeContext) async throws { try ctx.engine().kill(services, signal: signal) }
}

struct ComposePause: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Pause the services' containers.")
    @Argument(help: "Services (all by default).") var services: [String] = []
    func run(_ ctx: ComposeContext) async throws { try ctx.engine().pause(services, true) }
}

struct ComposeUnpause: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "unpause", abstract: "Resume the services' paused containers.")
    @Argument(help: "Services (all by default).") var services: [String] = []
    func run(_ ctx: ComposeContext) async throws { try ctx.engine().pause(services, false) }
}

struct ComposeTop: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "top", abstract: "Show the processes of the services' containers.")
    @Argument(help: "Services (all by default).") var services: [String] = []
    func run(_ ctx: ComposeContext) async throws {
        let e = try ctx.engine()
        try e.checkServices(services)
        for c in e.containers(services) where c.isRunning {
            print(c.name)
            print(try ContainerCLI.guarded { try e.manager.top(c.id, psArgs: []) })
            print("")
        }
    }
}

struct ComposeBuild: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "build", abstract: "Build the images of services with `build:`.")
    @Flag(name: .long, help: "Do not use the build cache.") var noCache = false
    @Argument(help: "Services (all by default).") var services: [String] = []
    func run(_ ctx: ComposeContext) async throws {
        let e = try ctx.engine()
        try e.checkServices(services)
        let chosen = e.project.services.filter { services.isEmpty || services.contains($0.name) }
        try e.buildImages(chosen, always: true, noCache: noCache)
    }
}

struct ComposePull: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "pull", abstract: "Pull the services' images (not those built here).")
    @Argument(help: "Services (all by default).") var services: [String] = []
    func run(_ ctx: ComposeContext) async throws { try await ctx.engine().pull(services) }
}

struct ComposeScale: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "scale", abstract: "Run N containers of services (SERVICE=N...).")
    @Flag(name: .long, help: "Do not start the services' dependencies.") var noDeps = false
    @Argument(help: "SERVICE=N settings.") var settings: [String]
    func run(_ ctx: ComposeContext) async throws {
        let e = try ctx.engine { try ComposeUp.applyScale(settings, to: &$0) }
        let names = settings.map { String($0.split(separator: "=").first ?? "") }
        try await e.up(names, noDeps: noDeps)
    }
}

struct ComposeLs: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the projects that have containers.")
    @Flag(name: .shortAndLong, help: "Show projects whose containers are all stopped too.") var all = false
    @Flag(name: .shortAndLong, help: "Only the names.") var quiet = false

    func run(_ ctx: ComposeContext) async throws {
        let m = try ContainerCLI.manager(ctx.global)
        var projects: [String: (states: [String: Int], files: String)] = [:]
        for c in m.store.list() {
            guard let p = c.record.labels[ComposeLabel.project] else { continue }
            var entry = projects[p] ?? ([:], c.record.labels[ComposeLabel.configFiles] ?? "")
            let state = c.isPaused ? "paused" : c.state.status.rawValue
            entry.states[state, default: 0] += 1
            projects[p] = entry
        }
        let shown = projects.keys.sorted().filter { all || projects[$0]?.states["running"] != nil }
        if quiet { for p in shown { print(p) }; return }
        var rows = [["NAME", "STATUS", "CONFIG FILES"]]
        for p in shown {
            guard let e = projects[p] else { continue }
            rows.append([p, e.states.keys.sorted().map { "\($0)(\(e.states[$0] ?? 0))" }.joined(separator: ", "), e.files])
        }
        print(ImageCLI.table(rows))
    }
}
