import Foundation

/// The OCI runtime binary a container runs under (runc's command line, which crun shares).
/// `$DOCKBUILD_OCI_RUNTIME` chooses one; the default is runc, then crun.
public struct OCIRuntime: Sendable {
    public let binary: String
    /// The runtime's state directory, kept under the store root.
    public let stateRoot: String

    public init(storeRoot: String) throws {
        let env = ProcessInfo.processInfo.environment["DOCKBUILD_OCI_RUNTIME"]
        let candidates = env.map { [$0] } ?? ["runc", "crun"]
        guard let b = candidates.lazy.compactMap({ Shell.which($0) }).first else {
            throw ContainersError.missingTool(candidates.first ?? "runc")
        }
        binary = b
        stateRoot = "\(storeRoot)/runtime"
    }

    var base: [String] { [binary, "--root", stateRoot] }

    func runArgs(id: String, bundle: String, pidFile: String) -> [String] {
        base + ["run", "--bundle", bundle, "--pid-file", pidFile, "--keep", id]
    }

    /// Sends a signal to the container's init (`all`: to every process).
    public func kill(_ id: String, signal: String, all: Bool = false) throws {
        let r = try Shell.run(base + ["kill"] + (all ? ["--all"] : []) + [id, signal])
        if r.status != 0 && !r.stderr.contains("not running") && !r.stderr.contains("does not exist") {
            throw ContainersError.runtime("kill \(signal) failed: \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    public func delete(_ id: String) { _ = try? Shell.run(base + ["delete", "--force", id]) }

    /// The runtime's status for a container (`running`, `stopped`, ...), nil when it does not know it.
    public func status(_ id: String) -> String? {
        guard let r = try? Shell.run(base + ["state", id]), r.status == 0,
              let obj = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] else { return nil }
        return obj["status"] as? String
    }

    func execArgs(id: String, tty: Bool, detach: Bool, env: [String], user: String?, cwd: String?, args: [String]) -> [String] {
        var a = base + ["exec"]
        if tty { a.append("-t") }
        if detach { a.append("-d") }
        for e in env { a += ["--env", e] }
        if let user { a += ["--user", user] }
        if let cwd { a += ["--cwd", cwd] }
        return a + [id] + args
    }

    public func update(_ id: String, memory: Int64?, memorySwap: Int64?, cpuQuota: Int64?, cpuPeriod: Int64?, pids: Int64?) throws {
        var a = base + ["update"]
        if let memory { a += ["--memory", String(memory)] }
        if let memorySwap { a += ["--memory-swap", String(memorySwap)] }
        if let cpuQuota { a += ["--cpu-quota", String(cpuQuota)] }
        if let cpuPeriod { a += ["--cpu-period", String(cpuPeriod)] }
        if let pids { a += ["--pids-limit", String(pids)] }
        try Shell.check(a + [id], what: "updating the container's resources")
    }

    /// One sample of cgroup statistics (`runc events --stats`).
    public func stats(_ id: String) throws -> [String: Any] {
        let out = try Shell.check(base + ["events", "--stats", id], what: "reading statistics")
        guard let obj = try? JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any],
              let data = obj["data"] as? [String: Any] else { throw ContainersError.runtime("unexpected stats output: \(out.prefix(200))") }
        return data
    }

    public func ps(_ id: String, psArgs: [String]) throws -> String {
        try Shell.check(base + ["ps", id] + (psArgs.isEmpty ? [] : ["--"] + psArgs), what: "listing processes")
    }

    public func pids(_ id: String) throws -> [Int32] {
        let out = try Shell.check(base + ["ps", "--format", "json", id], what: "listing processes")
        return ((try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [Any] ?? []).compactMap { ($0 as? NSNumber)?.int32Value }
    }
}
