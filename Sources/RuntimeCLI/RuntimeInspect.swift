import ArgumentParser
import Foundation
import Runtime
import SystemSupport

struct RuntimeExec: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "exec", abstract: "Run a process in a running container.")
    @OptionGroup var globals: RuntimeVerbGlobals
    @Option(name: .customLong("console-socket"), help: "Unix socket that receives the pty master with --tty.") var consoleSocket: String?
    @Option(name: .long, help: "Working directory in the container.") var cwd: String?
    @Option(name: [.short, .long], help: "Environment variable KEY=VALUE; repeatable.") var env: [String] = []
    @Flag(name: [.short, .long], help: "Allocate a pseudo-terminal.") var tty = false
    @Option(name: [.short, .long], help: "uid[:gid] to run as.") var user: String?
    @Option(name: [.customShort("g"), .customLong("additional-gids")], help: "Additional gid; repeatable.") var additionalGids: [UInt32] = []
    @Option(name: [.short, .long], help: "process.json with the whole process (other flags are ignored).") var process: String?
    @Flag(name: [.short, .long], help: "Do not wait for the process.") var detach = false
    @Option(name: .customLong("pid-file"), help: "Write the process's pid here.") var pidFile: String?
    @Flag(name: .customLong("no-new-privs"), help: "Set no_new_privs.") var noNewPrivs = false
    @Option(name: [.customShort("c"), .customLong("cap")], help: "Add a capability; repeatable.") var caps: [String] = []
    @Option(name: .customLong("preserve-fds"), help: "Pass this many extra fds (from 3).") var preserveFDs: Int = 0
    @Option(name: .customLong("process-label"), help: "Accepted for runc compatibility.") var processLabel: String?
    @Option(name: .long, help: "Accepted for runc compatibility.") var apparmor: String?
    @Flag(name: .customLong("ignore-paused"), help: "Exec into a paused container too (the process starts frozen).") var ignorePaused = false
    @Option(name: .customLong("cgroup"), help: "Join an existing sub-cgroup of the container: [CONTROLLER[,CONTROLLER...]:]PATH; repeatable.") var cgroups: [String] = []
    @Argument(help: "Container id.") var id: String
    @Argument(parsing: .captureForPassthrough, help: "Command and arguments.") var command: [String] = []

    func run() throws {
        var code: Int32 = 0
        // Like runc: an exec that fails (no such program, a bad process.json) exits 255.
        try runtimeFail(code: 255) {
            let rt = globals.runtime
            var proc: RuntimeSpec.Process
            if let path = process {
                // Read to the end through a handle, so that a pipe, /dev/stdin or a FIFO works like a file.
                let data: Data
                if path == "-" { data = FileHandle.standardInput.readDataToEndOfFile() } else {
                    guard let h = FileHandle(forReadingAtPath: path) else {
                        throw RuntimeError(.usage, "cannot read process file \(path): \(String(cString: strerror(errno)))")
                    }
                    defer { try? h.close() }
                    data = h.readDataToEndOfFile()
                }
                do { proc = try JSONDecoder().decode(RuntimeSpec.Process.self, from: data) } catch {
                    throw RuntimeError(.invalidSpec, "\(path) is not a runtime-spec process: \(error)")
                }
            } else {
                var args = command
                if args.first == "--" { args.removeFirst() }
                guard !args.isEmpty else { throw RuntimeError(.usage, "exec needs a command after the container id") }
                let base = try rt.spec(id: id).process ?? RuntimeSpec.Process()
                proc = base
                proc.args = args
                proc.terminal = tty
                proc.env = (base.env ?? []) + env
                if let cwd { proc.cwd = cwd }
                if let user {
                    let p = user.split(separator: ":")
                    guard let u = UInt32(p[0]) else { throw RuntimeError(.usage, "--user takes numeric uid[:gid], got \(user)") }
                    proc.user.uid = u
                    proc.user.gid = p.count > 1 ? (UInt32(p[1]) ?? 0) : 0
                }
                if !additionalGids.isEmpty { proc.user.additionalGids = additionalGids }
                if noNewPrivs { proc.noNewPrivileges = true }
                if !caps.isEmpty {
                    var c = proc.capabilities ?? RuntimeSpec.Capabilities()
                    for cap in caps {
                        for kp in [\RuntimeSpec.Capabilities.bounding, \.effective, \.permitted, \.inheritable, \.ambient] {
                            var list = c[keyPath: kp] ?? []
                            if !list.contains(cap) { list.append(cap) }
                            c[keyPath: kp] = list
                        }
                    }
                    proc.capabilities = c
                }
            }
            var o = ExecOptions(consoleSocket: consoleSocket, pidFile: pidFile, detach: detach)
            o.preserveFDs = preserveFDs
            o.ignorePaused = ignorePaused
            o.subCgroups = try Cgroup.parseSubCgroups(cgroups)
            let r = try rt.exec(id: id, process: proc, options: o)
            code = detach ? 0 : r
        }
        if code != 0 { throw ExitCode(code) }
    }
}

struct RuntimeList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List containers.", aliases: ["ls"])
    @OptionGroup var globals: RuntimeVerbGlobals
    @Option(name: [.short, .long], help: "table or json.") var format: String = "table"
    @Flag(name: [.short, .long], help: "Print only ids.") var quiet = false

    /// runc's JSON for `list --format json`: its containerState fields in their order, `null`
    /// for no containers (Go's nil slice).
    static func json(_ all: [ContainerState]) -> String {
        if all.isEmpty { return "null" }
        return OrderedJSON.array(all.map { s in
            var f: [(String, OrderedJSON)] = [
                ("ociVersion", .string(s.ociVersion)), ("id", .string(s.id)), ("pid", .int(Int64(s.pid))),
                ("status", .string(s.status)), ("bundle", .string(s.bundle)), ("rootfs", .string(s.rootfs)),
                ("created", .string(Runtime.rfc3339Nano(s.created))),
            ]
            if let a = s.annotations, !a.isEmpty {
                f.append(("annotations", .object(a.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
            }
            f.append(("owner", .string(s.owner)))
            return .object(f)
        }).rendered
    }

    /// runc's table: Go's tabwriter with a minimum cell width of 12 and a padding of 3.
    static func table(_ all: [ContainerState]) -> String {
        let rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]] + all.map {
            [$0.id, "\($0.pid)", $0.status, $0.bundle, Runtime.rfc3339Nano($0.created), $0.owner]
        }
        let widths = (0..<5).map { i in max(12, (rows.map { $0[i].count }.max() ?? 0) + 3) }
        return rows.map { r in
            r.enumerated().map { i, s in i == 5 ? s : s.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined()
        }.joined(separator: "\n") + "\n"
    }

    func run() throws {
        try runtimeFail {
            guard format == "table" || format == "json" else { throw RuntimeError(.usage, "invalid format option") }
            let all = globals.runtime.list()
            if quiet { all.forEach { print($0.id) }; return }
            if format == "json" { print(Self.json(all)) } else { print(Self.table(all), terminator: "") }
        }
    }
}

struct RuntimePs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List the processes of a container.")
    @OptionGroup var globals: RuntimeVerbGlobals
    @Option(name: [.short, .long], help: "table or json.") var format: String = "table"
    @Argument(help: "Container id.") var id: String
    @Argument(parsing: .captureForPassthrough, help: "Options for ps(1).") var psArgs: [String] = []
    func run() throws {
        try runtimeFail {
            let pids = try globals.runtime.pids(id: id)
            if format == "json" {
                print("[" + pids.map(String.init).joined(separator: ",") + "]")
                return
            }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/ps")
            p.arguments = psArgs.isEmpty ? ["-ef"] : psArgs.filter { $0 != "--" }
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
            guard let header = lines.first else { return }
            let cols = header.split(separator: " ")
            guard let pidCol = cols.firstIndex(of: "PID") else {
                throw RuntimeError(.usage, "ps output has no PID column; pass options that include it")
            }
            print(header)
            let set = Set(pids)
            for l in lines.dropFirst() {
                let f = l.split(separator: " ")
                if f.count > pidCol, let pid = Int32(f[pidCol]), set.contains(pid) { print(l) }
            }
        }
    }
}

struct RuntimeSpecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "spec", abstract: "Write a default config.json into the bundle.")
    @Option(name: [.short, .long], help: "Bundle directory.") var bundle: String = "."
    @Flag(name: [.long, .customLong(RuntimeSpecCommand.rootlessFlag)], help: "A spec for rootless use (user namespace, no cgroup mount).") var rootless = false

    /// What `spec`'s `--rootless` becomes before ArgumentParser sees it: the runtime's global
    /// `--rootless VALUE` (runc's) would otherwise take it, after the verb too, and want a value.
    static let rootlessFlag = "rootless-spec"

    @Flag(name: .long, help: "Docker's defaults (capabilities, seccomp) instead of runc's.") var docker = false
    @Option(name: .long, help: "Command to run (repeat for each argument).") var arg: [String] = []
    func run() throws {
        try runtimeFail {
            let path = bundle + "/config.json"
            if FileManager.default.fileExists(atPath: path) {
                throw RuntimeError(.exists, "\(path) already exists; remove it first")
            }
            let args = arg.isEmpty ? ["sh"] : arg
            let spec = docker ? SpecGenerator.dockerDefault(args: args) : SpecGenerator.runcDefault(args: args, terminal: arg.isEmpty, rootless: rootless)
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            guard FileManager.default.createFile(atPath: path, contents: try enc.encode(spec) + Data("\n".utf8)) else {
                throw RuntimeError(.system, "cannot write \(path)")
            }
        }
    }
}

struct RuntimeUpdate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "update", abstract: "Change the resource limits of a running container.")
    @OptionGroup var globals: RuntimeVerbGlobals
    @Option(name: [.short, .long], help: "JSON file with linux.resources (- for stdin); the other options are then ignored, as runc ignores them.") var resources: String?
    @Option(name: .long, parsing: .unconditional, help: "Memory limit: bytes or a size such as 50M (-1: unlimited).") var memory: String?
    @Option(name: .customLong("memory-reservation"), parsing: .unconditional, help: "Memory soft limit: bytes or a size such as 50M (-1: unlimited).") var memoryReservation: String?
    @Option(name: .customLong("memory-swap"), parsing: .unconditional, help: "Memory+swap limit: bytes or a size (-1: unlimited swap).") var memorySwap: String?
    @Option(name: .customLong("cpu-period"), help: "CFS period in microseconds.") var cpuPeriod: UInt64?
    @Option(name: .customLong("cpu-quota"), parsing: .unconditional, help: "CFS quota in microseconds (-1: no limit).") var cpuQuota: Int64?
    @Option(name: .customLong("cpu-share"), help: "CPU shares.") var cpuShare: UInt64?
    @Option(name: .customLong("cpu-rt-period"), help: "Realtime period in microseconds.") var cpuRtPeriod: UInt64?
    @Option(name: .customLong("cpu-rt-runtime"), parsing: .unconditional, help: "Realtime runtime in microseconds (-1: no limit).") var cpuRtRuntime: Int64?
    @Option(name: .customLong("cpuset-cpus"), help: "CPUs allowed.") var cpusetCpus: String?
    @Option(name: .customLong("cpuset-mems"), help: "Memory nodes allowed.") var cpusetMems: String?
    @Option(name: .customLong("pids-limit"), parsing: .unconditional, help: "Maximum number of tasks (-1: no limit).") var pidsLimit: Int64?
    @Option(name: .customLong("blkio-weight"), help: "Block IO weight (10-1000).") var blkioWeight: UInt16?
    @Option(name: .customLong("l3-cache-schema"), help: "Intel RDT/CAT L3 cache schema (not supported).") var l3CacheSchema: String?
    @Option(name: .customLong("mem-bw-schema"), help: "Intel RDT/MBA memory bandwidth schema (not supported).") var memBwSchema: String?
    @Argument(help: "Container id.") var id: String

    /// A memory flag's value as runc takes it: -1, or bytes with an optional unit (`50M`).
    static func memoryBytes(_ text: String, flag: String) throws -> Int64 {
        do { return try ByteSize.parse(text, unlimited: true) } catch {
            throw RuntimeError(.usage, "invalid value for \(flag): \(text): give bytes or a size such as 50M, 1.5G (-1: unlimited)")
        }
    }

    func run() throws {
        try runtimeFail {
            if l3CacheSchema != nil || memBwSchema != nil {
                throw RuntimeError(.usage, "Intel RDT is not supported by this runtime: drop --l3-cache-schema and --mem-bw-schema")
            }
            var r = RuntimeSpec.Resources()
            if let path = resources {
                let data: Data? = path == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: path)
                guard let data else { throw RuntimeError(.usage, "cannot read \(path)") }
                do { r = try JSONDecoder().decode(RuntimeSpec.Resources.self, from: data) } catch {
                    throw RuntimeError(.invalidSpec, "\(path) is not linux.resources JSON: \(error)")
                }
                try globals.runtime.update(id: id, resources: r)
                return
            }
            if memory != nil || memoryReservation != nil || memorySwap != nil {
                var m = RuntimeSpec.Memory()
                if let memory { m.limit = try Self.memoryBytes(memory, flag: "--memory") }
                if let memoryReservation { m.reservation = try Self.memoryBytes(memoryReservation, flag: "--memory-reservation") }
                if let memorySwap { m.swap = try Self.memoryBytes(memorySwap, flag: "--memory-swap") }
                r.memory = m
            }
            if cpuPeriod != nil || cpuQuota != nil || cpuShare != nil || cpusetCpus != nil || cpusetMems != nil
                || cpuRtPeriod != nil || cpuRtRuntime != nil {
                var c = RuntimeSpec.CPU()
                c.period = cpuPeriod
                c.quota = cpuQuota
                c.shares = cpuShare
                c.cpus = cpusetCpus
                c.mems = cpusetMems
                c.realtimePeriod = cpuRtPeriod
                c.realtimeRuntime = cpuRtRuntime
                r.cpu = c
            }
            if let pidsLimit { r.pids = .init(limit: pidsLimit) }
            if let blkioWeight { var b = RuntimeSpec.BlockIO(); b.weight = blkioWeight; r.blockIO = b }
            try globals.runtime.update(id: id, resources: r)
        }
    }
}

struct RuntimeEvents: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Print a container's events as JSON lines: stats every interval, and oom when the OOM killer kills in it.")
    @OptionGroup var globals: RuntimeVerbGlobals
    @Flag(name: .long, help: "Print the statistics once and exit.") var stats = false
    @Option(name: .long, help: "Time between samples, a Go duration such as 1s or 100ms.") var interval: String = "5s"
    @Argument(help: "Container id.") var id: String

    /// One event line in runc's shape: type, id, then data unless there is none.
    static func line(_ type: String, _ id: String, _ data: OrderedJSON? = nil) -> String {
        var f: [(String, OrderedJSON)] = [("type", .string(type)), ("id", .string(id))]
        if let data { f.append(("data", data)) }
        return OrderedJSON.object(f).rendered
    }

    func run() throws {
        try runtimeFail {
            guard let interval = GoDuration.seconds(interval), interval > 0 else {
                throw RuntimeError(.usage, "invalid value \"\(self.interval)\" for flag --interval: give a duration such as 5s, 1s or 100ms")
            }
            let rt = globals.runtime
            // runc refuses a stopped container, with --stats too (its cgroup may be gone).
            guard (try rt.state(id: id).status) != "stopped" else {
                throw RuntimeError(.invalidState, "container \"\(id)\" is not running (it is stopped): no events or stats to show")
            }
            if stats {
                print(Self.line("stats", id, try rt.runcStatsJSON(id: id)))
                return
            }
            // As runc: a stats event every interval, an oom event as soon as the cgroup's OOM-kill
            // count rises (polled a few times a second; memory.events or memory.oom_control).
            let cgroup = try rt.cgroup(id: id)
            var ooms = cgroup?.oomKillCount() ?? 0
            let poll = min(interval, 0.1)
            var nextStats = Date().addingTimeInterval(interval)
            while true {
                Thread.sleep(forTimeInterval: poll)
                let stopped = (try? rt.state(id: id).status) ?? "stopped" == "stopped"
                if let n = cgroup?.oomKillCount(), n > ooms {
                    ooms = n
                    print(Self.line("oom", id))
                    fflush(nil)
                }
                if stopped { return }
                if Date() >= nextStats {
                    nextStats = Date().addingTimeInterval(interval)
                    guard let data = try? rt.runcStatsJSON(id: id) else { return }
                    print(Self.line("stats", id, data))
                    fflush(nil)
                }
            }
        }
    }
}

extension RuntimeGlobals {
    /// `args` (after the program, or after `runtime`) with a bare `--rootless` after the `spec`
    /// verb renamed to `--rootless-spec`; anything else unchanged.
    public static func renamingSpecRootless(_ args: [String]) -> [String] {
        var i = 0
        while i < args.count, args[i].hasPrefix("-") {
            if ["--root", "--log", "--log-format", "--rootless"].contains(args[i]) { i += 1 }
            i += 1
        }
        guard i < args.count, args[i] == "spec" else { return args }
        var out = args
        for j in (i + 1)..<args.count where args[j] == "--rootless" { out[j] = "--" + RuntimeSpecCommand.rootlessFlag }
        return out
    }
}
