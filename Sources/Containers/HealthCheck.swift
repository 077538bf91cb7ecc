import Foundation
import OCI
import Runtime
import SystemSupport

/// docker's State.Health: the outcome of the container's health check, kept by its monitor.
public struct HealthState: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable { case starting, healthy, unhealthy }
    public var status: Status
    /// Consecutive failures counted toward Retries (none during the start period).
    public var failingStreak: Int
    /// The last results, oldest first (at most `HealthCheck.maxLogEntries`).
    public var log: [HealthResult]
    public init(status: Status = .starting, failingStreak: Int = 0, log: [HealthResult] = []) {
        self.status = status; self.failingStreak = failingStreak; self.log = log
    }
}

/// One run of a health check (docker's HealthcheckResult).
public struct HealthResult: Codable, Sendable, Equatable {
    public var start: String
    public var end: String
    /// The check's exit status; -1 when it could not run or ran past its timeout.
    public var exitCode: Int
    /// stdout and stderr together, at most `HealthCheck.maxOutput` bytes.
    public var output: String
}

/// docker's health checks with no daemon: the defaults, the merge of flags over the image's
/// HEALTHCHECK, the flag checks, and the probe loop a container's monitor runs.
public enum HealthCheck {
    public static let defaultInterval: Int64 = 30_000_000_000
    public static let defaultTimeout: Int64 = 30_000_000_000
    public static let defaultRetries = 3
    /// docker's MinimumDuration for every non-zero health duration.
    public static let minimumDuration: Int64 = 1_000_000
    public static let maxLogEntries = 5
    public static let maxOutput = 4096

    /// The check a container gets: the flags' config over the image's, field by field where
    /// the flags left one unset (docker's merge); nil when neither has one.
    public static func merge(user: HealthConfig?, image: HealthConfig?) -> HealthConfig? {
        guard var u = user else { return image }
        guard let i = image else { return u }
        if (u.test ?? []).isEmpty { u.test = i.test }
        if (u.interval ?? 0) == 0 { u.interval = i.interval }
        if (u.timeout ?? 0) == 0 { u.timeout = i.timeout }
        if (u.startPeriod ?? 0) == 0 { u.startPeriod = i.startPeriod }
        if (u.startInterval ?? 0) == 0 { u.startInterval = i.startInterval }
        if (u.retries ?? 0) == 0 { u.retries = i.retries }
        return u
    }

    /// The command a check runs in the container, nil for none (`NONE`, or no test at all). A
    /// CMD-SHELL test runs in the image's SHELL, else `/bin/sh -c`, as docker's.
    public static func command(_ c: HealthConfig?, shell: [String]? = nil) -> [String]? {
        guard let test = c?.test, let kind = test.first else { return nil }
        switch kind {
        case "CMD" where test.count > 1: return Array(test.dropFirst())
        case "CMD-SHELL" where test.count > 1: return (shell ?? ["/bin/sh", "-c"]) + [test.dropFirst().joined(separator: " ")]
        default: return nil
        }
    }

    /// The daemon's checks of a config (docker refuses these at create).
    public static func validate(_ c: HealthConfig) throws {
        for (name, flag, v) in [("Interval", "--health-interval", c.interval), ("Timeout", "--health-timeout", c.timeout),
                                ("StartPeriod", "--health-start-period", c.startPeriod),
                                ("StartInterval", "--health-start-interval", c.startInterval)] {
            guard let v, v != 0 else { continue }
            guard v >= minimumDuration else {
                throw ContainersError.invalidArgument("\(flag) (\(name) in Healthcheck) cannot be less than 1ms (0 takes the default)")
            }
        }
        if let r = c.retries, r < 0 { throw ContainersError.invalidArgument("--health-retries (Retries in Healthcheck) cannot be negative") }
        if let kind = c.test?.first, !["NONE", "CMD", "CMD-SHELL"].contains(kind) {
            throw ContainersError.invalidArgument("Healthcheck test \(kind) is unknown: use NONE, CMD or CMD-SHELL")
        }
    }

    /// Applies docker's rules to the stored health, one result at a time: 0 is healthy and
    /// clears the streak; a failure counts unless the container never was healthy and the check
    /// started within the start period; `retries` counted failures make it unhealthy.
    static func record(_ r: HealthResult, startedAt: Date, checkStart: Date, config: HealthConfig, into h: inout HealthState) {
        h.log.append(r)
        if h.log.count > maxLogEntries { h.log.removeFirst(h.log.count - maxLogEntries) }
        if r.exitCode == 0 {
            h.failingStreak = 0
            h.status = .healthy
            return
        }
        let startPeriod = Double(config.startPeriod ?? 0) / 1e9
        if h.status == .starting && checkStart.timeIntervalSince(startedAt) < startPeriod { return }
        h.failingStreak += 1
        let retries = (config.retries ?? 0) > 0 ? config.retries ?? defaultRetries : defaultRetries
        if h.failingStreak >= retries { h.status = .unhealthy }
    }

    /// Config.Healthcheck as docker's inspect prints it (zero fields left out, as Go's omitempty).
    static func inspect(_ c: HealthConfig) -> [String: Any] {
        var d: [String: Any] = [:]
        if let t = c.test, !t.isEmpty { d["Test"] = t }
        for (k, v) in [("Interval", c.interval), ("Timeout", c.timeout), ("StartPeriod", c.startPeriod), ("StartInterval", c.startInterval)] {
            if let v, v != 0 { d[k] = v }
        }
        if let r = c.retries, r != 0 { d["Retries"] = r }
        return d
    }

    /// State.Health as docker's inspect prints it.
    static func inspect(_ h: HealthState) -> [String: Any] {
        ["Status": h.status.rawValue, "FailingStreak": h.failingStreak,
         "Log": h.log.map { ["Start": $0.start, "End": $0.end, "ExitCode": $0.exitCode, "Output": $0.output] as [String: Any] }]
    }

    /// Go's `time.Duration.String()`: `1s`, `1m30s`, `500ms`, `1h0m0s`.
    public static func goDuration(_ ns: Int64) -> String {
        if ns == 0 { return "0s" }
        let neg = ns < 0
        let u = ns.magnitude
        func frac(_ v: UInt64, _ unit: UInt64) -> String {
            let whole = v / unit, rest = v % unit
            guard rest > 0 else { return String(whole) }
            var digits = String(rest)
            digits = String(repeating: "0", count: String(unit).count - 1 - digits.count) + digits
            while digits.hasSuffix("0") { digits.removeLast() }
            return "\(whole).\(digits)"
        }
        var s: String
        if u < 1_000 { s = "\(u)ns" }
        else if u < 1_000_000 { s = frac(u, 1_000) + "µs" }
        else if u < 1_000_000_000 { s = frac(u, 1_000_000) + "ms" }
        else {
            let h = u / 3_600_000_000_000, m = (u / 60_000_000_000) % 60
            let secs = frac(u % 60_000_000_000, 1_000_000_000) + "s"
            s = h > 0 ? "\(h)h\(m)m\(secs)" : m > 0 ? "\(m)m\(secs)" : secs
        }
        return neg ? "-" + s : s
    }
}

extension FlagValue {
    /// A Go duration (`time.ParseDuration`): `30s`, `1m30s`, `1.5h`, `500ms`, `0`; units ns, us
    /// (µs), ms, s, m, h. Returned in nanoseconds.
    public static func duration(_ text: String, flag: String) throws -> Int64 {
        func bad(_ why: String) -> ContainersError {
            .invalidArgument("\(flag) \(quote(text)): \(why); give a duration such as 30s, 1m30s or 500ms")
        }
        var s = Substring(text)
        var neg = false
        if let c = s.first, c == "-" || c == "+" { neg = c == "-"; s = s.dropFirst() }
        if s == "0" { return 0 }
        guard !s.isEmpty else { throw bad("time: invalid duration \(quote(text))") }
        let units: [String: Double] = ["ns": 1, "us": 1e3, "µs": 1e3, "μs": 1e3, "ms": 1e6, "s": 1e9, "m": 6e10, "h": 3.6e12]
        func isDigit(_ c: Character) -> Bool { c.isASCII && c.isNumber }
        var total: Double = 0
        while !s.isEmpty {
            let whole = s.prefix(while: isDigit)
            s = s.dropFirst(whole.count)
            var fraction: Substring = ""
            if s.first == "." {
                s = s.dropFirst()
                fraction = s.prefix(while: isDigit)
                s = s.dropFirst(fraction.count)
            }
            guard !whole.isEmpty || !fraction.isEmpty else { throw bad("time: invalid duration \(quote(text))") }
            let unit = s.prefix { !isDigit($0) && $0 != "." }
            s = s.dropFirst(unit.count)
            guard !unit.isEmpty else { throw bad("time: missing unit in duration \(quote(text))") }
            guard let scale = units[String(unit)] else { throw bad("time: unknown unit \(quote(String(unit))) in duration \(quote(text))") }
            let value = Double("\(whole.isEmpty ? "0" : whole).\(fraction.isEmpty ? "0" : fraction)") ?? 0
            total += value * scale
            guard total < 9.2e18 else { throw bad("time: invalid duration \(quote(text))") }
        }
        return Int64((neg ? -total : total).rounded())
    }

    /// `--health-*` and `--no-healthcheck` as docker's CLI takes them: nil when none is given,
    /// `["NONE"]` for `--no-healthcheck`; durations are Go durations, none negative nor below 1ms.
    public static func healthConfig(cmd: String?, interval: String?, timeout: String?, startPeriod: String?,
                                    startInterval: String?, retries: String?, none: Bool) throws -> HealthConfig? {
        func positive(_ text: String?, _ flag: String) throws -> Int64? {
            guard let text else { return nil }
            let v = try duration(text, flag: flag)
            guard v >= 0 else { throw ContainersError.invalidArgument("\(flag) \(quote(text)): cannot be negative") }
            guard v == 0 || v >= HealthCheck.minimumDuration else {
                throw ContainersError.invalidArgument("\(flag) \(quote(text)): cannot be less than 1ms (0 takes the default)")
            }
            return v
        }
        var h = HealthConfig()
        h.interval = try positive(interval, "--health-interval")
        h.timeout = try positive(timeout, "--health-timeout")
        h.startPeriod = try positive(startPeriod, "--health-start-period")
        h.startInterval = try positive(startInterval, "--health-start-interval")
        if let retries {
            guard let r = Int(retries.trimmingCharacters(in: .whitespaces)), r >= 0 else {
                throw ContainersError.invalidArgument("--health-retries \(quote(retries)): give a whole number, 0 or more (0 takes the default, 3)")
            }
            h.retries = r
        }
        // as docker's CLI: an empty --health-cmd is no command (the image's stays)
        if let cmd, !cmd.isEmpty { h.test = ["CMD-SHELL", cmd] }
        let any = h.test != nil || [h.interval, h.timeout, h.startPeriod, h.startInterval].contains { ($0 ?? 0) != 0 } || (h.retries ?? 0) != 0
        if none {
            guard !any else { throw ContainersError.invalidArgument("--no-healthcheck conflicts with --health-* options") }
            return HealthConfig(test: ["NONE"])
        }
        return any ? h : nil
    }
}

extension Container {
    /// docker's health for `ps --filter health=`: starting, healthy, unhealthy, or none.
    public var healthStatus: String { state.health?.status.rawValue ?? "none" }

    /// What `ps` adds after "Up 5 seconds": `(healthy)`, `(unhealthy)`, `(health: starting)`.
    public var healthSuffix: String {
        guard let h = state.health else { return "" }
        return h.status == .starting ? " (health: starting)" : " (\(h.status.rawValue))"
    }
}

/// The health check of one run of a container, in its monitor: a thread that runs the check
/// through the OCI runtime's exec every interval (the start interval while starting within the
/// start period, when one is set), keeps State.Health, and ends with the container's process.
final class HealthMonitor: Sendable {
    let manager: ContainerManager
    let id: String
    let config: HealthConfig
    let argv: [String]
    let startedAt: Date
    private let stopped = Locked(false)
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    /// The pid of a check in flight (host view), so that `stop` can end it.
    private let probePid = Locked<Int32>(0)

    private init(manager: ContainerManager, id: String, config: HealthConfig, argv: [String]) {
        self.manager = manager; self.id = id; self.config = config; self.argv = argv
        startedAt = Date()
    }

    /// Starts the checks of a container that just started; nil when it has none. As docker,
    /// the health is `starting` with no failures again (earlier results stay in the log).
    static func start(manager: ContainerManager, record: ContainerRecord) -> HealthMonitor? {
        guard let c = record.healthcheck, let argv = HealthCheck.command(c, shell: record.shell) else { return nil }
        let m = HealthMonitor(manager: manager, id: record.id, config: c, argv: argv)
        _ = try? manager.store.updateState(record.id) { s in
            var h = s.health ?? HealthState()
            h.status = .starting; h.failingStreak = 0
            s.health = h
        }
        Thread { m.loop() }.start()
        return m
    }

    /// Ends the checks (a check in flight is killed and its result dropped); the health is
    /// then `unhealthy`, as docker leaves it once a container stops.
    func stop() {
        stopped.withLock { $0 = true }
        wake.signal()
        let p = probePid.current
        if p > 0 { _ = kill(p, SIGKILL) }
        _ = finished.wait(timeout: .now() + 5)
        _ = try? manager.store.updateState(id) { s in s.health?.status = .unhealthy }
    }

    /// Seconds between checks; an image's interval under docker's 1ms minimum counts as 1ms.
    private var interval: Double {
        Double(max((config.interval ?? 0) > 0 ? config.interval ?? 0 : HealthCheck.defaultInterval, HealthCheck.minimumDuration)) / 1e9
    }
    private var timeout: Int64 { (config.timeout ?? 0) > 0 ? config.timeout ?? 0 : HealthCheck.defaultTimeout }

    private func loop() {
        defer { finished.signal() }
        while true {
            var next = interval
            if let si = config.startInterval, si > 0, Date().timeIntervalSince(startedAt) < Double(config.startPeriod ?? 0) / 1e9,
               manager.store.rawState(id).health?.status == .starting {
                next = Double(max(si, HealthCheck.minimumDuration)) / 1e9
            }
            if wake.wait(timeout: .now() + next) == .success || stopped.current { return }
            // a frozen container cannot run the check: wait for it to thaw
            if ContainerStore.isFrozen(manager.store.rawState(id).cgroupPaths) { continue }
            let checkStart = Date()
            let result = probe()
            if stopped.current { return }
            _ = try? manager.store.updateState(id) { s in
                var h = s.health ?? HealthState()
                HealthCheck.record(result, startedAt: startedAt, checkStart: checkStart, config: config, into: &h)
                s.health = h
            }
        }
    }

    /// Runs the check once in the container, as `exec` would with no terminal and no stdin,
    /// stdout and stderr captured together; killed when it runs past the timeout.
    private func probe() -> HealthResult {
        let start = Time.now()
        func failed(_ message: String) -> HealthResult {
            HealthResult(start: start, end: Time.now(), exitCode: -1, output: message)
        }
        let dir = manager.store.directory(id)
        guard let data = FileManager.default.contents(atPath: "\(dir)/bundle/config.json"),
              let spec = try? JSONDecoder().decode(RuntimeSpec.self, from: data), var proc = spec.process,
              let rt = try? manager.runtime(for: id) else {
            return failed("the container's runtime spec is unreadable: the check cannot run")
        }
        proc.args = argv
        proc.terminal = false
        proc.consoleSize = nil
        let tag = "health-\(UUID().uuidString.lowercased())"
        let processFile = "\(dir)/\(tag).json", pidFile = "\(dir)/\(tag).pid", logFile = "\(dir)/\(tag).log"
        defer { unlink(processFile); unlink(pidFile); unlink(logFile) }
        guard (try? FS.writeJSON(proc, to: processFile, durable: false)) != nil, let pipe = Sys.pipeCloexec() else {
            return failed("cannot prepare the check: \(String(cString: strerror(errno)))")
        }
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        let args = ExecFailure.withLog(rt.cmd("exec", ["--process", processFile, "--pid-file", pidFile, id]), logFile)
        let spawned = try? Shell.spawn(args, Shell.SpawnOptions(fds: [devnull, pipe.1, pipe.1]))
        close(devnull); close(pipe.1)
        defer { close(pipe.0) }
        guard let pid = spawned else { return failed("cannot run the OCI runtime's exec for the check") }
        probePid.withLock { $0 = pid }
        defer { probePid.withLock { $0 = 0 } }

        var output = Data()
        var buf = [UInt8](repeating: 0, count: 8192)
        var status: Int32?
        var timedOut = false
        var eof = false
        let t0 = Time.monotonic(), limit = Double(timeout) / 1e9
        var exitedAt = 0.0
        // read until the check exits and its output ends (a process it left behind may keep
        // the pipe open: half a second more at most), or the timeout
        while !(status != nil && (eof || Time.monotonic() - exitedAt > 0.5)) {
            var pfd = pollfd(fd: pipe.0, events: Int16(POLLIN), revents: 0)
            if !eof, poll(&pfd, 1, 20) > 0 {
                let n = read(pipe.0, &buf, buf.count)
                if n > 0 {
                    if output.count < HealthCheck.maxOutput { output.append(contentsOf: buf[0..<min(n, HealthCheck.maxOutput - output.count)]) }
                } else if n == 0 || errno != EINTR { eof = true }
            } else if eof { usleep(20_000) }
            if status == nil {
                var st: Int32 = 0
                let w = waitpid(pid, &st, WNOHANG)
                if w == pid || (w < 0 && errno == ECHILD) {
                    status = w < 0 ? -1 : st & 0x7f == 0 ? (st >> 8) & 0xff : 128 + (st & 0x7f)
                    exitedAt = Time.monotonic()
                } else if !timedOut && Time.monotonic() - t0 > limit {
                    // the process in the container, then the runtime that waits for it
                    if let s = try? String(contentsOfFile: pidFile, encoding: .utf8), let p = Int32(s.trimmingCharacters(in: .whitespacesAndNewlines)), p > 0 {
                        _ = kill(p, SIGKILL)
                    }
                    _ = kill(pid, SIGKILL)
                    timedOut = true
                }
            }
        }
        if timedOut { return failed("Health check exceeded timeout (\(HealthCheck.goDuration(timeout)))") }
        if status != 0, let log = try? String(contentsOfFile: logFile, encoding: .utf8), ExecFailure.exitCode(log) != nil {
            // as docker: a check that cannot start is -1 with the runtime's message
            return failed(log.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return HealthResult(start: start, end: Time.now(), exitCode: Int(status ?? -1), output: String(decoding: output, as: UTF8.self))
    }
}
