import CRuntime
import Foundation
import SystemSupport
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The state of a container as runtime-spec runtime.md#state defines it,
/// plus the fields runc prints (`rootfs`, `created`, `owner`).
public struct ContainerState: Codable, Sendable, Equatable {
    public var ociVersion: String
    public var id: String
    public var status: String
    public var pid: Int32
    public var bundle: String
    public var rootfs: String
    public var created: String
    public var owner: String
    public var annotations: [String: String]?

    /// As `runc state` prints it: runc's key order, two-space indent (Go's MarshalIndent), no
    /// trailing newline; annotations only when there are some.
    public var runcJSON: String {
        var fields: [(String, OrderedJSON)] = [("ociVersion", .string(ociVersion)), ("id", .string(id)), ("pid", .int(Int64(pid))),
                                               ("status", .string(status)), ("bundle", .string(bundle)), ("rootfs", .string(rootfs)),
                                               ("created", .string(created)), ("owner", .string(owner))]
        if let annotations, !annotations.isEmpty {
            fields.append(("annotations", .object(annotations.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
        }
        return OrderedJSON.object(fields).indented("  ")
    }
}

/// What the runtime keeps on disk per container (`<root>/<id>/state.json`).
struct ContainerRecord: Codable, Sendable {
    var id: String
    var bundle: String
    var rootfs: String
    var pid: Int32
    var startTime: UInt64
    var created: String
    var spec: RuntimeSpec
    var cgroup: Cgroup?
    /// The bytes `spec` was decoded from, while they still describe it: saved as they are
    /// instead of encoding the spec again (a millisecond of every container start).
    var specJSON: Data?

    enum CodingKeys: String, CodingKey { case id, bundle, rootfs, pid, startTime, created, spec, cgroup }
}

/// A record without its spec, for writing the spec's own bytes beside it.
private struct RecordHead: Encodable {
    var id: String
    var bundle: String
    var rootfs: String
    var pid: Int32
    var startTime: UInt64
    var created: String
    var cgroup: Cgroup?
}

/// Options of `create` that are not part of config.json (runc's flags).
public struct CreateOptions: Sendable {
    /// Unix socket that receives the pty master when `process.terminal` is true.
    public var consoleSocket: String?
    /// File that receives the container process's pid.
    public var pidFile: String?
    /// Use MS_MOVE + chroot instead of pivot_root (for ramfs roots).
    public var noPivot: Bool = false
    /// Extra fds (3, 4, ...) passed to the container process.
    public var preserveFDs: Int = 0
    /// CDI devices to inject ("vendor/class=name"), resolved from the CDI spec dirs.
    public var cdiDevices: [String] = []
    /// File descriptors that become the container's stdin/stdout/stderr (nil: this process's).
    public var stdin: Int32?
    public var stdout: Int32?
    public var stderr: Int32?
    /// A connected socket that receives the pty master (the foreground terminal relay).
    var consoleConnection: Int32?
    public init(consoleSocket: String? = nil, pidFile: String? = nil, noPivot: Bool = false, preserveFDs: Int = 0) {
        self.consoleSocket = consoleSocket
        self.pidFile = pidFile
        self.noPivot = noPivot
        self.preserveFDs = preserveFDs
    }
}

/// An OCI runtime over a state directory, with runc's lifecycle:
/// create -> start -> (kill) -> delete. Calls block; run them off the
/// cooperative pool (they fork, wait and write cgroup files).
public struct Runtime: Sendable {
    /// Directory that holds one sub-directory of state per container.
    public let root: String
    /// Binary re-executed as the container init (it must link CRuntime); nil
    /// forks the init straight from this process, which saves an exec.
    public var initPath: String?
    /// Where the runtime logs: warnings (a failing poststart/poststop hook) and, at debug
    /// level, the phases of a start (`trace`). `DOCKBUILD_RUNTIME_TRACE` turns debug on for it.
    public var logger: Logger

    public init(root: String, initPath: String? = nil, logger: Logger = Logger(label: "dockbuild.runtime")) {
        self.root = root
        self.initPath = initPath
        var logger = logger
        if getenv("DOCKBUILD_RUNTIME_TRACE") != nil { logger.logLevel = .debug }
        self.logger = logger
    }

    /// The default state directory: /run/dockbuild as root, $XDG_RUNTIME_DIR/dockbuild otherwise
    /// (`StatePaths.runtimeDir`).
    public static var defaultRoot: String { StatePaths.runtimeDir() }

    func dir(_ id: String) -> String { root + "/" + id }

    static func validate(id: String) throws {
        guard !id.isEmpty else { throw RuntimeError(.usage, "container id must not be empty") }
        let ok = id.utf8.allSatisfy { c in
            (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95 || c == 43 || c == 45 || c == 46
        }
        guard ok, id != ".", id != ".." else {
            throw RuntimeError(.usage, "invalid container id \"\(id)\": use letters, digits, '_', '+', '-' and '.'")
        }
    }

    static func loadSpec(bundle: String) throws -> RuntimeSpec {
        try loadSpecAndBytes(bundle: bundle).spec
    }

    static func loadSpecAndBytes(bundle: String) throws -> (spec: RuntimeSpec, bytes: Data) {
        let path = bundle + "/config.json"
        guard let data = Sys.readData(path) else {
            throw RuntimeError(.invalidSpec, "cannot read \(path): is --bundle the directory that holds config.json?")
        }
        // Codable costs a millisecond and more of every start; JSONDecoder stays the judge
        // (and the author of the error messages) of anything the fast decoder refuses.
        if let spec = try? RuntimeSpec.fastDecode(data) { return (spec, data) }
        do {
            return (try JSONDecoder().decode(RuntimeSpec.self, from: data), data)
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw RuntimeError(.invalidSpec, "\(path): missing \(ctx.codingPath.map(\.stringValue).joined(separator: ".")).\(key.stringValue)")
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw RuntimeError(.invalidSpec, "\(path): wrong type at \(ctx.codingPath.map(\.stringValue).joined(separator: ".")): \(ctx.debugDescription)")
        } catch {
            throw RuntimeError(.invalidSpec, "\(path) is not a valid runtime spec: \(error)")
        }
    }

    func loadRecord(_ id: String) throws -> ContainerRecord {
        try Runtime.validate(id: id)
        guard let data = Sys.readData(dir(id) + "/state.json") else {
            throw RuntimeError(.notFound, "container \"\(id)\" does not exist in \(root)")
        }
        // The hand-written decoder first (no Codable on every start/state/kill/delete);
        // JSONDecoder for anything it refuses.
        if let record = try? ContainerRecord.fastDecode(data) { return record }
        do { return try JSONDecoder().decode(ContainerRecord.self, from: data) } catch {
            throw RuntimeError(.invalidState, "state of container \"\(id)\" is damaged (\(dir(id))/state.json); delete it with --force")
        }
    }

    func saveRecord(_ r: ContainerRecord) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let bytes: Data
        if let raw = r.specJSON, raw.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) == UInt8(ascii: "{") {
            let head = try enc.encode(RecordHead(id: r.id, bundle: r.bundle, rootfs: r.rootfs, pid: r.pid,
                                                 startTime: r.startTime, created: r.created, cgroup: r.cgroup))
            var out = Data("{\"spec\":".utf8)
            out.append(raw)
            out.append(UInt8(ascii: ","))
            out.append(head.dropFirst())
            bytes = out
        } else {
            bytes = try enc.encode(r)
        }
        try Sys.writeAtomic(dir(r.id) + "/state.json", bytes, mode: 0o600)
    }

    // MARK: status

    func status(of r: ContainerRecord) -> String {
        guard r.pid > 0 else {
            return r.spec.process == nil && Sys.exists(dir(r.id) + "/exec.fifo") ? "created" : "stopped"
        }
        _ = waitpid(r.pid, nil, WNOHANG)  // reap it if it is our child
        guard let st = Sys.processStat(r.pid), st.startTime == r.startTime, st.state != "Z", st.state != "X" else {
            return "stopped"
        }
        if let cg = r.cgroup, cg.isFrozen { return "paused" }
        return Sys.exists(dir(r.id) + "/exec.fifo") ? "created" : "running"
    }

    func publicState(_ r: ContainerRecord, status: String? = nil) -> ContainerState {
        let s = status ?? self.status(of: r)
        return ContainerState(ociVersion: r.spec.ociVersion, id: r.id, status: s, pid: s == "stopped" ? 0 : r.pid,
                              bundle: r.bundle, rootfs: r.rootfs, created: r.created,
                              owner: "", annotations: r.spec.annotations)
    }

    static func stateJSON(_ s: ContainerState) -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return (try? enc.encode(s)) ?? Data()
    }

    /// The state of container `id`.
    public func state(id: String) throws -> ContainerState {
        publicState(try loadRecord(id))
    }

    /// All containers under `root`, sorted by id, each with its owner: the user that owns
    /// its state directory (runc's `list` column; `#uid` for a uid without a passwd entry).
    public func list() -> [ContainerState] {
        Sys.listDir(root).sorted().compactMap { id in
            guard var s = try? state(id: id) else { return nil }
            var st = stat()
            if stat(dir(id), &st) == 0 { s.owner = Runtime.userName(st.st_uid) }
            return s
        }
    }

    /// The login name of `uid` from the passwd database, or `#uid`.
    static func userName(_ uid: uid_t) -> String {
        var pw = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buf = [CChar](repeating: 0, count: 4096)
        let rc = buf.withUnsafeMutableBufferPointer { getpwuid_r(uid, &pw, $0.baseAddress!, $0.count, &result) }
        if rc == 0, result != nil, pw.pw_name != nil { return String(cString: pw.pw_name) }
        return "#\(uid)"
    }

    /// A `created` time as Go's RFC3339Nano prints it: trailing zeros of the fraction
    /// dropped (and the dot with them), so `…:05.120000000Z` reads `…:05.12Z`.
    public static func rfc3339Nano(_ t: String) -> String {
        guard t.hasSuffix("Z"), let dot = t.lastIndex(of: ".") else { return t }
        var frac = t[t.index(after: dot)..<t.index(before: t.endIndex)]
        guard frac.allSatisfy(\.isNumber) else { return t }
        while frac.last == "0" { frac = frac.dropLast() }
        return String(t[..<dot]) + (frac.isEmpty ? "" : "." + frac) + "Z"
    }

    // MARK: start, kill, delete

    /// Lets a created container run its process.
    public func start(id: String) throws {
        try start(record: try loadRecord(id))
    }

    func start(record r: ContainerRecord) throws {
        let id = r.id
        let st = status(of: r)
        guard st == "created" else {
            throw RuntimeError(.invalidState, "cannot start container \"\(id)\": it is \(st), not created")
        }
        let fifo = dir(id) + "/exec.fifo"
        guard r.spec.process != nil, r.pid > 0 else {
            unlink(fifo)
            throw RuntimeError(.invalidSpec, "container \"\(id)\" has no process in its config.json; nothing to start")
        }
        let fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        if fd < 0 { throw RuntimeError.sys("container \"\(id)\" is not waiting to start (open \(fifo))") }
        var fst = stat()
        fstat(fd, &fst)
        var b: UInt8 = 0
        let n = write(fd, &b, 1)
        close(fd)
        unlink(fifo)
        if n != 1 { throw RuntimeError.sys("signal container \"\(id)\" to start") }
        if let hooks = r.spec.hooks?.poststart, !hooks.isEmpty {
            // poststart runs after the process is executed: the init holds the
            // fifo open (close-on-exec) until its execve.
            Runtime.waitForExec(pid: r.pid, fifo: fst)
            // A failing poststart hook is a warning; the others and the container go on (runtime-spec).
            try? Hooks.run(hooks, state: Runtime.stateJSON(publicState(r, status: "running")), kind: "poststart", warnOnly: true, logger: logger)
        }
    }

    /// Sends `signal` to the container process (or every process in its cgroup with `all`).
    public func kill(id: String, signal: Int32, all: Bool = false) throws {
        let r = try loadRecord(id)
        let st = status(of: r)
        // `--all` also reaches what is left in a stopped container's cgroup (runc does the same).
        guard st == "created" || st == "running" || st == "paused" || (all && st == "stopped") else {
            // "container not running" is runc's phrase: containerd's shim looks for it to tell
            // "already finished" from a failed kill.
            throw RuntimeError(.invalidState, "cannot kill container \"\(id)\": container not running (it is \(st)); kill --all reaches what is left in its cgroup")
        }
        if all && st == "stopped" {
            for p in r.cgroup?.pids() ?? [] { Glibc.kill(p, signal) }
            return
        }
        if all, let cg = r.cgroup {
            for p in cg.pids() { Glibc.kill(p, signal) }
            if st == "paused" { try? cg.setFrozen(false) }
            return
        }
        if r.pid <= 0 {
            if signal == SIGKILL || signal == SIGTERM { unlink(dir(id) + "/exec.fifo") }
            return
        }
        if Glibc.kill(r.pid, signal) != 0 { throw RuntimeError.sys("kill container \"\(id)\" (pid \(r.pid))") }
        // A frozen process does not die until thawed: SIGKILL of a paused container thaws it
        // so that it stops now, as runc does (other signals wait for `resume`).
        if st == "paused" && signal == SIGKILL { try? r.cgroup?.setFrozen(false) }
    }

    /// Removes a stopped (or, with `force`, any) container: processes, cgroup, state; runs poststop hooks.
    public func delete(id: String, force: Bool = false) throws {
        let r: ContainerRecord
        do { r = try loadRecord(id) } catch let e as RuntimeError where (e.kind == .invalidState || e.kind == .notFound) && force {
            // Gone already (or never fully created): with --force that is success, as with runc.
            Sys.removeAll(dir(id))
            return
        }
        try delete(record: r, force: force)
    }

    func delete(record r: ContainerRecord, force: Bool) throws {
        let id = r.id
        let st = status(of: r)
        if st == "running" || st == "paused" || st == "created" {
            guard force else {
                throw RuntimeError(.invalidState, "cannot delete container \"\(id)\" that is \(st); kill it first or use --force")
            }
        }
        if st != "stopped" && r.pid > 0 {
            Glibc.kill(r.pid, SIGKILL)
            for _ in 0..<500 {
                _ = waitpid(r.pid, nil, WNOHANG)
                if status(of: r) == "stopped" { break }
                usleep(1000)
            }
        }
        if r.pid > 0 { _ = waitpid(r.pid, nil, WNOHANG) }
        r.cgroup?.destroy()
        Sys.removeAll(dir(id))
        if let hooks = r.spec.hooks?.poststop, !hooks.isEmpty {
            // A failing poststop hook is a warning; the others still run and the delete succeeds.
            try? Hooks.run(hooks, state: Runtime.stateJSON(publicState(r, status: "stopped")), kind: "poststop", warnOnly: true, logger: logger)
        }
    }

    /// Freezes every process of the container.
    public func pause(id: String) throws {
        let r = try loadRecord(id)
        // A created container may be paused too (its init waits frozen), as with runc.
        let st = status(of: r)
        guard st == "running" || st == "created" else {
            throw RuntimeError(.invalidState, "cannot pause container \"\(id)\": container not running (it is \(st))")
        }
        guard let cg = r.cgroup else { throw RuntimeError(.cgroup, "container \"\(id)\" has no cgroup") }
        try cg.setFrozen(true)
    }

    public func resume(id: String) throws {
        let r = try loadRecord(id)
        guard status(of: r) == "paused" else { throw RuntimeError(.invalidState, "container \"\(id)\" is not paused") }
        try r.cgroup?.setFrozen(false)
    }

    /// Changes cgroup limits of a live container and remembers them.
    public func update(id: String, resources: RuntimeSpec.Resources) throws {
        var r = try loadRecord(id)
        let st = status(of: r)
        guard st != "stopped" else { throw RuntimeError(.invalidState, "cannot update container \"\(id)\": container not running (it is stopped)") }
        guard let cg = r.cgroup else { throw RuntimeError(.cgroup, "container \"\(id)\" has no cgroup") }
        try cg.apply(resources, initial: false)
        var linux = r.spec.linux ?? RuntimeSpec.Linux()
        var cur = linux.resources ?? RuntimeSpec.Resources()
        if let m = resources.memory { cur.memory = m }
        if let c = resources.cpu { cur.cpu = c }
        if let p = resources.pids { cur.pids = p }
        if let b = resources.blockIO { cur.blockIO = b }
        if let d = resources.devices { cur.devices = d }
        linux.resources = cur
        r.spec.linux = linux
        try saveRecord(r)
    }

    /// Resource usage read from the cgroup (`events --stats`).
    public func stats(id: String) throws -> [String: [String: UInt64]] {
        let r = try loadRecord(id)
        return r.cgroup?.stats() ?? [:]
    }

    /// Pids of every process in the container's cgroup.
    public func pids(id: String) throws -> [Int32] {
        let r = try loadRecord(id)
        return r.cgroup?.pids() ?? (status(of: r) == "stopped" ? [] : [r.pid])
    }

    /// Waits for the container process, which must be a child of this process
    /// (true for containers created by this process). Returns a shell-style exit code.
    public func wait(id: String) throws -> Int32 {
        let r = try loadRecord(id)
        guard r.pid > 0 else { throw RuntimeError(.invalidState, "container \"\(id)\" has no process to wait for") }
        var status: Int32 = 0
        while true {
            let w = waitpid(r.pid, &status, 0)
            if w == r.pid { return Sys.waitStatusCode(status) }
            if w < 0 && errno == EINTR { continue }
            throw RuntimeError.sys("wait for container \"\(id)\" (pid \(r.pid))")
        }
    }

    static func waitForExec(pid: Int32, fifo: stat) {
        let fdDir = "/proc/\(pid)/fd"
        for _ in 0..<10_000 {
            var holds = false
            for name in Sys.listDir(fdDir) {
                var st = stat()
                if stat(fdDir + "/" + name, &st) == 0 && st.st_ino == fifo.st_ino && st.st_dev == fifo.st_dev { holds = true; break }
            }
            if !holds { return }
            usleep(200)
        }
    }

    /// RFC 3339 UTC time with nanoseconds as Go's RFC3339Nano writes runc's `created`: no
    /// trailing zeros in the fraction (no ICU on the start path).
    static func now() -> String { UTCTime.format(UTCTime.now(), .trimmedNanos) }
}

extension Runtime {
    /// A signal given as a number, NAME or SIGNAME (`15`, `TERM`, `SIGTERM`, `RTMIN+3`); nil if unknown.
    public static func signalNumber(_ name: String) -> Int32? { Sys.signal(name) }

    /// `stats` in runc's `events --stats` layout (libcontainer's types.Stats), as Foundation
    /// values (dictionaries, arrays, NSNumber) for tools that pick fields out of it.
    public func runcStats(id: String) throws -> [String: Any] {
        (try runcStatsJSON(id: id).foundationValue as? [String: Any]) ?? [:]
    }

    /// `stats` in runc's `events --stats` layout, keys in runc's order (see `Cgroup.runcStats`).
    public func runcStatsJSON(id: String) throws -> OrderedJSON {
        let r = try loadRecord(id)
        guard let cg = r.cgroup else { return .object([]) }
        return cg.runcStats()
    }

    /// The container's cgroup (nil for one created without).
    public func cgroup(id: String) throws -> Cgroup? { try loadRecord(id).cgroup }

    /// The spec a container was created with (defaults for `exec`).
    public func spec(id: String) throws -> RuntimeSpec { try loadRecord(id).spec }
}
