import Foundation
import Runtime
import SystemSupport

/// The OCI runtime a container runs under. By default that is dockbuild's own (the Runtime
/// library behind `dockbuild runtime`, run as this very binary, so the runtime always matches
/// the CLI); `$DOCKBUILD_OCI_RUNTIME` picks another binary with runc's command line instead
/// (`runc`, `crun`, a path such as `/usr/local/bin/dockbuild-runc`), or `dockbuild` (or a path
/// to a dockbuild binary) for ours explicitly.
public struct OCIRuntime: Sendable {
    /// The command that takes runc's global flags and verbs: `[runc]`, or `[dockbuild, "runtime"]`.
    public let command: [String]
    /// The runtime's state directory, kept under the store root.
    public let stateRoot: String

    public var binary: String { command[0] }
    /// dockbuild's own runtime as this very binary: the verbs that do not start a process
    /// (kill, delete, state, update, stats, ps) call the Runtime library in this process, and
    /// so does the monitor's `run` of a container without a terminal (one exec less per start).
    var library: Runtime? {
        guard isDockbuild, command[0] == Self.selfPath else { return nil }
        return Runtime(root: stateRoot)
    }
    private static let selfPath = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
    /// True for dockbuild's own runtime (`dockbuild runtime --root R VERB ...`).
    public var isDockbuild: Bool { command.count > 1 }

    /// The runtime new containers get: `$DOCKBUILD_OCI_RUNTIME`, or dockbuild's own.
    public init(storeRoot: String) throws {
        stateRoot = "\(storeRoot)/runtime"
        command = try Self.chosen()
    }

    /// The runtime a container was started with (`ContainerState.ociRuntime`). Nothing
    /// recorded means a dockbuild from before the record, which ran containers under runc
    /// (then crun); a recorded runtime that is no longer installed gives the current choice.
    public init(storeRoot: String, recorded: [String]?) throws {
        stateRoot = "\(storeRoot)/runtime"
        if let recorded, let first = recorded.first, access(first, X_OK) == 0 {
            command = recorded
        } else if recorded == nil, let legacy = ["runc", "crun"].lazy.compactMap({ Shell.which($0) }).first {
            command = [legacy]
        } else {
            command = try Self.chosen()
        }
    }

    /// Set by the dockbuild CLI as it starts: its own executable serves the runtime verbs under
    /// whatever name it was installed (a copy named `docker`, say), not only as `dockbuild`.
    package static let cliServesRuntime = Locked(false)

    static func chosen() throws -> [String] {
        let env = ProcessInfo.processInfo.environment["DOCKBUILD_OCI_RUNTIME"].flatMap { $0.isEmpty ? nil : $0 }
        if env == nil || env == "dockbuild" || env?.hasSuffix("/dockbuild") == true {
            let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
            if let env, env.hasPrefix("/") {
                guard access(env, X_OK) == 0 else { throw ContainersError.missingTool(env) }
                return [env, "runtime"]
            }
            if me.hasSuffix("/dockbuild") || (!me.isEmpty && cliServesRuntime.current) { return [me, "runtime"] }
            if let found = Shell.which("dockbuild") { return [found, "runtime"] }
            // a library user without the dockbuild binary: a system runtime
            if env == nil, let other = ["runc", "crun"].lazy.compactMap({ Shell.which($0) }).first { return [other] }
            throw ContainersError.missingTool("dockbuild")
        }
        guard let env, let b = Shell.which(env) else { throw ContainersError.missingTool(env ?? "runc") }
        return [b]
    }

    /// The command line for one runtime verb (global flags first, as runc wants them).
    func cmd(_ verb: String, _ rest: [String]) -> [String] {
        command + ["--root", stateRoot, verb] + rest
    }

    func runArgs(id: String, bundle: String, pidFile: String) -> [String] {
        cmd("run", ["--bundle", bundle, "--pid-file", pidFile, "--keep", id])
    }

    /// Sends a signal to the container's init (`all`: to every process).
    public func kill(_ id: String, signal: String, all: Bool = false) throws {
        if let rt = library {
            guard let sig = Runtime.signalNumber(signal) else { throw ContainersError.invalidArgument("unknown signal \"\(signal)\"") }
            do { try rt.kill(id: id, signal: sig, all: all) } catch let e as RuntimeError {
                // gone already: nothing to signal
                if e.kind == .notFound || e.kind == .invalidState { return }
                throw ContainersError.runtime("kill \(signal) failed: \(e.message)")
            }
            return
        }
        let r = try Shell.run(cmd("kill", (all ? ["--all"] : []) + [id, signal]))
        if r.status != 0 && !r.stderr.contains("not running") && !r.stderr.contains("does not exist")
            && !r.stderr.contains("is stopped") {
            throw ContainersError.runtime("kill \(signal) failed: \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// Freezes every process of the container (the cgroup freezer).
    public func pause(_ id: String) throws {
        if let rt = library {
            do { try rt.pause(id: id) } catch let e as RuntimeError { throw ContainersError.runtime("pause failed: \(e.message)") }
            return
        }
        try Shell.check(cmd("pause", [id]), what: "pausing the container")
    }

    /// Thaws a paused container.
    public func resume(_ id: String) throws {
        if let rt = library {
            do { try rt.resume(id: id) } catch let e as RuntimeError { throw ContainersError.runtime("unpause failed: \(e.message)") }
            return
        }
        try Shell.check(cmd("resume", [id]), what: "unpausing the container")
    }

    public func delete(_ id: String) {
        if let rt = library {
            // nothing to do for a container the runtime never saw (a fresh start)
            try? rt.delete(id: id, force: true)
            return
        }
        guard FileManager.default.fileExists(atPath: "\(stateRoot)/\(id)") else { return }
        _ = try? Shell.run(cmd("delete", ["--force", id]))
    }

    /// The runtime's status for a container (`running`, `stopped`, ...), nil when it does not know it.
    public func status(_ id: String) -> String? {
        if let rt = library { return try? rt.state(id: id).status }
        guard let r = try? Shell.run(cmd("state", [id])), r.status == 0,
              let obj = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] else { return nil }
        return obj["status"] as? String
    }

    public func update(_ id: String, memory: Int64?, memorySwap: Int64?, cpuQuota: Int64?, cpuPeriod: Int64?, pids: Int64?) throws {
        if let rt = library {
            var r = RuntimeSpec.Resources()
            if memory != nil || memorySwap != nil {
                var m = RuntimeSpec.Memory()
                m.limit = memory
                m.swap = memorySwap
                r.memory = m
            }
            if cpuQuota != nil || cpuPeriod != nil {
                var c = RuntimeSpec.CPU()
                c.quota = cpuQuota
                c.period = cpuPeriod.map { UInt64(max(0, $0)) }
                r.cpu = c
            }
            if let pids { r.pids = .init(limit: pids) }
            do { try rt.update(id: id, resources: r) } catch let e as RuntimeError {
                throw ContainersError.runtime("updating the container's resources: \(e.message)")
            }
            return
        }
        var a: [String] = []
        if let memory { a.append("--memory=\(memory)") }
        if let memorySwap { a.append("--memory-swap=\(memorySwap)") }
        if let cpuQuota { a.append("--cpu-quota=\(cpuQuota)") }
        if let cpuPeriod { a.append("--cpu-period=\(cpuPeriod)") }
        if let pids { a.append("--pids-limit=\(pids)") }
        try Shell.check(cmd("update", a + [id]), what: "updating the container's resources")
    }

    /// One sample of cgroup statistics (`runc events --stats`).
    public func stats(_ id: String) throws -> [String: Any] {
        if let rt = library {
            do { return try rt.runcStats(id: id) } catch let e as RuntimeError {
                throw ContainersError.runtime("reading statistics: \(e.message)")
            }
        }
        let out = try Shell.check(cmd("events", ["--stats", id]), what: "reading statistics")
        guard let obj = try? JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any],
              let data = obj["data"] as? [String: Any] else { throw ContainersError.runtime("unexpected stats output: \(out.prefix(200))") }
        return data
    }

    public func ps(_ id: String, psArgs: [String]) throws -> String {
        try Shell.check(cmd("ps", [id] + (psArgs.isEmpty ? [] : ["--"] + psArgs)), what: "listing processes")
    }

    public func pids(_ id: String) throws -> [Int32] {
        if let rt = library {
            do { return try rt.pids(id: id) } catch let e as RuntimeError {
                throw ContainersError.runtime("listing processes: \(e.message)")
            }
        }
        let out = try Shell.check(cmd("ps", ["--format", "json", id]), what: "listing processes")
        return ((try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [Any] ?? []).compactMap { ($0 as? NSNumber)?.int32Value }
    }
}
