import Foundation
import OCI
import Testing
@testable import Containers

/// Health checks as docker runs them, with the container's monitor in the daemon's place
/// (issue #17): `--health-*` and the image's HEALTHCHECK, State.Health in `inspect`, the
/// `ps` status and `--filter health=`. Each test runs the real binary with short intervals.
@Suite(.serialized) struct HealthCheckTests {
    static func scenario(_ tag: Int) throws -> Scenario {
        let s = try Scenario(tag)
        try #require(FileManager.default.isExecutableFile(atPath: s.binary), "\(s.binary) is missing: run `swift build` first")
        try s.makeBusyboxImage()
        return s
    }

    /// State.Health of a container, nil when inspect has none.
    func health(_ s: Scenario, _ name: String) throws -> [String: Any]? {
        (try s.inspect(name)["State"] as? [String: Any])?["Health"] as? [String: Any]
    }

    func status(_ s: Scenario, _ name: String) throws -> String? { try health(s, name)?["Status"] as? String }

    func log(_ s: Scenario, _ name: String) throws -> [[String: Any]] { try health(s, name)?["Log"] as? [[String: Any]] ?? [] }

    func psStatus(_ s: Scenario, _ name: String) throws -> String {
        try s.ok(["ps", "-a", "--filter", "name=^\(name)$", "--format", "{{.Status}}"])
    }

    func filtered(_ s: Scenario, _ health: String) throws -> [String] {
        try s.ok(["ps", "-a", "--filter", "health=\(health)", "--format", "{{.Names}}"]).split(separator: "\n").map(String.init).sorted()
    }

    // MARK: healthy

    @Test(.enabled(if: Scenario.canRun)) func healthyCheck() throws {
        let s = try Self.scenario(90)
        defer { s.cleanup() }
        // ready 3 seconds after each start; the failures before are within the start period
        let check = "test -f /tmp/ok && echo fine && echo err >&2"
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "good", "--health-cmd", check, "--health-interval", "1s",
                      "--health-start-period", "60s", "busybox:test", "sh", "-c", "rm -f /tmp/ok; sleep 3; touch /tmp/ok; exec sleep 60"])
        #expect(try status(s, "good") == "starting")
        #expect(try psStatus(s, "good").hasSuffix(" (health: starting)"))
        #expect(try filtered(s, "starting") == ["good"])
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "plain", "busybox:test", "sleep", "60"])
        #expect(try Scenario.eventually(10) { try status(s, "good") == "healthy" })
        let st = try psStatus(s, "good")
        #expect(st.hasPrefix("Up ") && st.hasSuffix(" (healthy)"), "\(st)")
        #expect(try psStatus(s, "plain").hasPrefix("Up ") && !(try psStatus(s, "plain")).contains("("))
        let h = try #require(try health(s, "good"))
        #expect(h["FailingStreak"] as? Int == 0)
        let last = try #require(try log(s, "good").last)
        #expect(last["ExitCode"] as? Int == 0)
        #expect(last["Output"] as? String == "fine\nerr\n", "stdout and stderr together: \(last)")
        #expect((last["Start"] as? String ?? "") <= (last["End"] as? String ?? ""))
        // the check is recorded as docker's Config.Healthcheck
        let cfg = try #require((try s.inspect("good")["Config"] as? [String: Any])?["Healthcheck"] as? [String: Any])
        #expect(cfg["Test"] as? [String] == ["CMD-SHELL", check])
        #expect(cfg["Interval"] as? Int == 1_000_000_000 && cfg["StartPeriod"] as? Int == 60_000_000_000)
        #expect(cfg["Timeout"] == nil && cfg["Retries"] == nil, "unset fields are left out: \(cfg)")
        #expect((try s.inspect("plain")["Config"] as? [String: Any])?["Healthcheck"] == nil)
        #expect(try health(s, "plain") == nil)
        // the filter
        #expect(try filtered(s, "healthy") == ["good"])
        #expect(try filtered(s, "none") == ["plain"])
        #expect(try filtered(s, "unhealthy").isEmpty)
        #expect(try s.db(["ps", "--filter", "health=sick"]).status != 0)
        // a stopped container is unhealthy, as docker leaves it; a new start begins again
        _ = try s.ok(["stop", "-t", "1", "good"])
        #expect(try status(s, "good") == "unhealthy")
        #expect(try psStatus(s, "good").hasPrefix("Exited"))
        _ = try s.ok(["start", "good"])
        #expect(try status(s, "good") == "starting")
        #expect(try Scenario.eventually(10) { try status(s, "good") == "healthy" })
    }

    // MARK: unhealthy

    @Test(.enabled(if: Scenario.canRun)) func unhealthyAfterRetries() throws {
        let s = try Self.scenario(91)
        defer { s.cleanup() }
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "bad", "--health-cmd", "echo broken; exit 3",
                      "--health-interval", "1s", "--health-retries", "2", "busybox:test", "sleep", "60"])
        // one failure: still starting, streak 1
        #expect(try Scenario.eventually(10) { try log(s, "bad").count >= 1 })
        if try log(s, "bad").count == 1 {
            #expect(try status(s, "bad") == "starting")
            #expect(try health(s, "bad")?["FailingStreak"] as? Int == 1)
        }
        #expect(try Scenario.eventually(10) { try status(s, "bad") == "unhealthy" })
        #expect(try health(s, "bad")?["FailingStreak"] as? Int ?? 0 >= 2)
        let entry = try #require(try log(s, "bad").last)
        #expect(entry["ExitCode"] as? Int == 3 && entry["Output"] as? String == "broken\n", "\(entry)")
        #expect(try psStatus(s, "bad").hasSuffix(" (unhealthy)"))
        #expect(try filtered(s, "unhealthy") == ["bad"])
        // the log keeps the last 5 results, each output cut at 4096 bytes
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "loud", "--health-cmd", "head -c 5000 /dev/zero | tr '\\0' a; exit 1",
                      "--health-interval", "100ms", "busybox:test", "sleep", "60"])
        #expect(try Scenario.eventually(15) { try (health(s, "loud")?["FailingStreak"] as? Int ?? 0) >= 7 })
        let l = try log(s, "loud")
        #expect(l.count == 5)
        #expect(l.allSatisfy { ($0["Output"] as? String)?.utf8.count == 4096 && $0["ExitCode"] as? Int == 1 })
    }

    // MARK: start period

    @Test(.enabled(if: Scenario.canRun)) func startPeriod() throws {
        let s = try Self.scenario(92)
        defer { s.cleanup() }
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "slow", "--health-cmd", "exit 1", "--health-interval", "500ms",
                      "--health-retries", "1", "--health-start-period", "4s", "busybox:test", "sleep", "60"])
        // failures within the start period are logged but do not count
        #expect(try Scenario.eventually(10) { try log(s, "slow").count >= 2 })
        let during = try #require(try health(s, "slow"))
        #expect(during["Status"] as? String == "starting" && during["FailingStreak"] as? Int == 0, "\(during)")
        // after it, one failure (retries 1) is enough
        #expect(try Scenario.eventually(10) { try status(s, "slow") == "unhealthy" })
        // a container that becomes ready within the start period is healthy, with no failure counted
        // (ready after 5 s: under load one exec of the check was seen to take 2.5 s, and the log must
        // still hold a failed check from before the file exists)
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "ready", "--health-cmd", "test -f /tmp/ready",
                      "--health-interval", "500ms", "--health-retries", "1", "--health-start-period", "30s",
                      "busybox:test", "sh", "-c", "sleep 5; touch /tmp/ready; sleep 60"])
        #expect(try Scenario.eventually(15) { try status(s, "ready") == "healthy" })
        let l = try log(s, "ready")
        #expect(l.contains { $0["ExitCode"] as? Int == 1 } && l.last?["ExitCode"] as? Int == 0, "\(l)")
        #expect(try health(s, "ready")?["FailingStreak"] as? Int == 0)
        // docker's config fields in nanoseconds
        let cfg = (try s.inspect("ready")["Config"] as? [String: Any])?["Healthcheck"] as? [String: Any]
        #expect(cfg?["StartPeriod"] as? Int == 30_000_000_000 && cfg?["Retries"] as? Int == 1)
    }

    // MARK: timeout

    @Test(.enabled(if: Scenario.canRun)) func timeout() throws {
        let s = try Self.scenario(93)
        defer { s.cleanup() }
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "stuck", "--health-cmd", "sleep 20", "--health-interval", "1s",
                      "--health-timeout", "500ms", "--health-retries", "1", "busybox:test", "sleep", "60"])
        #expect(try Scenario.eventually(15) { try status(s, "stuck") == "unhealthy" })
        let entry = try #require(try log(s, "stuck").first)
        #expect(entry["ExitCode"] as? Int == -1)
        #expect(entry["Output"] as? String == "Health check exceeded timeout (500ms)", "\(entry)")
        if let a = (entry["Start"] as? String).flatMap(parseTime), let b = (entry["End"] as? String).flatMap(parseTime) {
            #expect(b.timeIntervalSince(a) < 3, "killed at the timeout: \(entry)")
        }
        // the check's process is gone from the container
        #expect(try Scenario.eventually(5) { !(try s.ok(["top", "stuck"])).contains("sleep 20") })
    }

    func parseTime(_ s: String) -> Date? {
        // 2026-01-02T03:04:05.123456789Z: seconds are enough here
        let f = ISO8601DateFormatter()
        return f.date(from: String(s.prefix(19)) + "Z")
    }

    // MARK: the image's HEALTHCHECK and --no-healthcheck

    @Test(.enabled(if: Scenario.canRun)) func imageHealthcheck() throws {
        let s = try Self.scenario(94)
        defer { s.cleanup() }
        // an image with a HEALTHCHECK (docker's config.Healthcheck), made by commit --change
        _ = try s.ok(["create", "--network", "none", "--name", "base", "busybox:test", "sleep", "60"])
        _ = try s.ok(["commit", "--change", "HEALTHCHECK --interval=1s --retries=1 CMD [\"false\"]", "base", "hc:test"])
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "fromimage", "hc:test"])
        let cfg = try #require((try s.inspect("fromimage")["Config"] as? [String: Any])?["Healthcheck"] as? [String: Any])
        #expect(cfg["Test"] as? [String] == ["CMD", "false"] && cfg["Interval"] as? Int == 1_000_000_000, "\(cfg)")
        #expect(try Scenario.eventually(10) { try status(s, "fromimage") == "unhealthy" })
        // flags override field by field
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "override", "--health-cmd", "true", "--health-retries", "4", "hc:test"])
        let o = try #require((try s.inspect("override")["Config"] as? [String: Any])?["Healthcheck"] as? [String: Any])
        #expect(o["Test"] as? [String] == ["CMD-SHELL", "true"] && o["Interval"] as? Int == 1_000_000_000 && o["Retries"] as? Int == 4, "\(o)")
        #expect(try Scenario.eventually(10) { try status(s, "override") == "healthy" })
        // a CMD whose program cannot run: -1 with the runtime's message, as docker
        _ = try s.ok(["commit", "--change", "HEALTHCHECK --interval=1s --retries=1 CMD [\"nosuch\"]", "base", "missing:test"])
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "missing", "missing:test"])
        #expect(try Scenario.eventually(10) { try status(s, "missing") == "unhealthy" })
        let m = try #require(try log(s, "missing").first)
        #expect(m["ExitCode"] as? Int == -1 && (m["Output"] as? String ?? "").contains("nosuch"), "\(m)")
        // --no-healthcheck: no check runs, no State.Health, health=none
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "nocheck", "--no-healthcheck", "hc:test"])
        let n = (try s.inspect("nocheck")["Config"] as? [String: Any])?["Healthcheck"] as? [String: Any]
        #expect(n?["Test"] as? [String] == ["NONE"])
        usleep(2_500_000)
        #expect(try health(s, "nocheck") == nil)
        #expect(try psStatus(s, "nocheck").hasPrefix("Up ") && !(try psStatus(s, "nocheck")).contains("("))
        #expect(try filtered(s, "none") == ["base", "nocheck"])
        // commit keeps the container's check; the image's SHELL runs a CMD-SHELL check
        _ = try s.ok(["commit", "--change", "SHELL [\"/bin/sh\", \"-c\", \"echo via $0\"]", "override", "shell:test"])
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "shelled", "--health-cmd", "mycheck", "shell:test"])
        let sh = try #require(try s.inspect("shelled")["Config"] as? [String: Any])
        #expect(sh["Shell"] as? [String] == ["/bin/sh", "-c", "echo via $0"])
        #expect((sh["Healthcheck"] as? [String: Any])?["Retries"] as? Int == 4, "committed from override: \(sh)")
        #expect(try Scenario.eventually(10) { try status(s, "shelled") == "healthy" })
        #expect(try log(s, "shelled").first?["Output"] as? String == "via mycheck\n")
        // a container whose monitor is gone (Dead) has no checks: unhealthy, as a stopped one
        let st = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath:
            "\(s.root)/containers/\(try s.ok(["inspect", "-f", "{{.Id}}", "shelled"]))/state.json"))) as? [String: Any])
        let monitor = try #require(st["monitorPid"] as? Int)
        #expect(kill(Int32(monitor), SIGKILL) == 0)
        #expect(try Scenario.eventually(5) { try s.ok(["inspect", "-f", "{{.State.Status}}", "shelled"]) == "dead" })
        #expect(try status(s, "shelled") == "unhealthy")
        #expect(try filtered(s, "healthy") == ["override"])
    }

    // MARK: bad values

    @Test(.enabled(if: Scenario.canRun)) func badFlagValues() throws {
        let s = try Self.scenario(95)
        defer { s.cleanup() }
        for (args, words) in [(["--health-interval", "abc"], "--health-interval \"abc\": time: invalid duration"),
                              (["--health-interval", "-1s"], "--health-interval \"-1s\": cannot be negative"),
                              (["--health-timeout", "5"], "--health-timeout \"5\": time: missing unit"),
                              (["--health-timeout", "10us"], "cannot be less than 1ms"),
                              (["--health-start-period", "3x"], "--health-start-period \"3x\": time: unknown unit"),
                              (["--health-start-interval", "-"], "--health-start-interval"),
                              (["--health-retries", "many"], "--health-retries \"many\""),
                              (["--health-retries", "-2"], "--health-retries \"-2\""),
                              (["--health-retries", "99999999999999999999999"], "--health-retries"),
                              (["--health-interval", "99999999999h"], "invalid duration"),
                              (["--no-healthcheck", "--health-cmd", "true"], "--no-healthcheck conflicts with --health-* options")] {
            for verb in ["run", "create"] {
                let r = try s.db([verb, "--network", "none"] + args + ["busybox:test", "true"])
                let lines = r.err.split(separator: "\n")
                #expect(r.status == 125 && lines.count == 1 && r.err.contains(words), "\(verb) \(args): \(r)")
            }
        }
        #expect(try s.ok(["ps", "-aq"]).isEmpty, "nothing was created")
        // good values, Go's forms
        let id = try s.ok(["create", "--network", "none", "--health-cmd", "true", "--health-interval", "1m30s", "--health-timeout", "1.5s",
                           "--health-start-period", "0", "--health-retries", "0", "busybox:test", "true"])
        let cfg = (try s.inspect(id)["Config"] as? [String: Any])?["Healthcheck"] as? [String: Any]
        #expect(cfg?["Interval"] as? Int == 90_000_000_000 && cfg?["Timeout"] as? Int == 1_500_000_000, "\(String(describing: cfg))")
        // a created container has no State.Health yet, and counts as none
        #expect(try health(s, id) == nil)
        #expect(try filtered(s, "none").count == 1)
    }
}

/// The rules of the checks without containers: Go durations, docker's merge, the health
/// state machine, Go's duration text.
@Suite struct HealthCheckRuleTests {
    @Test func goDurations() throws {
        let good: [(String, Int64)] = [("0", 0), ("1s", 1_000_000_000), ("1m30s", 90_000_000_000), ("1.5h", 5_400_000_000_000),
                                       ("500ms", 500_000_000), ("10us", 10_000), ("10µs", 10_000), ("7ns", 7), (".5s", 500_000_000),
                                       ("+2s", 2_000_000_000), ("-1s", -1_000_000_000), ("1h2m3s4ms", 3_723_004_000_000)]
        for (text, ns) in good { #expect(try FlagValue.duration(text, flag: "--x") == ns, "\(text)") }
        for text in ["", "s", "5", "1x", "1.s.", "-", ".", "1e3s", "99999999999h", "1 s", "nan", "\u{0}"] {
            #expect(throws: ContainersError.self, "\(text)") { try FlagValue.duration(text, flag: "--x") }
        }
        for (ns, text) in [(Int64(0), "0s"), (1_000_000_000, "1s"), (90_000_000_000, "1m30s"), (500_000_000, "500ms"),
                           (1_500_000_000, "1.5s"), (3_600_000_000_000, "1h0m0s"), (1_500, "1.5µs"), (7, "7ns")] {
            #expect(HealthCheck.goDuration(ns) == text)
        }
    }

    /// Mutated and random values never trap: each is a duration in range or one line naming the flag.
    @Test func fuzzedValues() {
        let d = FlagValueFuzzTests.check("--health-interval", ["30s", "1m30s", "500ms", "1.5h", "0", "10us"], seed: 90,
                                         { try FlagValue.duration($0, flag: "--health-interval") }, valid: { $0.magnitude < 9_300_000_000_000_000_000 as UInt64 })
        #expect(d.ok > 0 && d.refused > 0)
        let h = FlagValueFuzzTests.check("--health-timeout", ["30s", "2ms", "0"], seed: 91, {
            try FlagValue.healthConfig(cmd: nil, interval: nil, timeout: $0, startPeriod: nil, startInterval: nil, retries: nil, none: false)
        }, valid: { ($0?.timeout ?? 0) == 0 || ($0?.timeout ?? 0) >= HealthCheck.minimumDuration })
        #expect(h.ok > 0 && h.refused > 0)
        _ = FlagValueFuzzTests.check("--health-retries", ["3", "0", "10"], seed: 92, {
            try FlagValue.healthConfig(cmd: nil, interval: nil, timeout: nil, startPeriod: nil, startInterval: nil, retries: $0, none: false)
        }, valid: { ($0?.retries ?? 0) >= 0 })
    }

    @Test func flagsAndMerge() throws {
        #expect(try FlagValue.healthConfig(cmd: nil, interval: nil, timeout: nil, startPeriod: nil, startInterval: nil, retries: nil, none: false) == nil)
        #expect(try FlagValue.healthConfig(cmd: "", interval: nil, timeout: nil, startPeriod: nil, startInterval: nil, retries: nil, none: false) == nil)
        #expect(try FlagValue.healthConfig(cmd: nil, interval: nil, timeout: nil, startPeriod: nil, startInterval: nil, retries: nil, none: true)?.test == ["NONE"])
        let user = try #require(try FlagValue.healthConfig(cmd: nil, interval: "2s", timeout: nil, startPeriod: nil, startInterval: nil, retries: "5", none: false))
        let image = HealthConfig(test: ["CMD", "check"], interval: 30_000_000_000, timeout: 3_000_000_000, retries: 2)
        #expect(HealthCheck.merge(user: user, image: image) == HealthConfig(test: ["CMD", "check"], interval: 2_000_000_000, timeout: 3_000_000_000, retries: 5))
        #expect(HealthCheck.merge(user: nil, image: image) == image)
        #expect(HealthCheck.merge(user: HealthConfig(test: ["NONE"]), image: image).flatMap { HealthCheck.command($0) } == nil)
        #expect(HealthCheck.command(HealthConfig(test: ["CMD-SHELL", "a b"])) == ["/bin/sh", "-c", "a b"])
        #expect(HealthCheck.command(HealthConfig(test: ["CMD-SHELL", "a"]), shell: ["bash", "-ec"]) == ["bash", "-ec", "a"])
        #expect(HealthCheck.command(HealthConfig(test: ["CMD"])) == nil)
        #expect(throws: ContainersError.self) { try HealthCheck.validate(HealthConfig(interval: 10)) }
        #expect(throws: ContainersError.self) { try HealthCheck.validate(HealthConfig(retries: -1)) }
        #expect(throws: ContainersError.self) { try HealthCheck.validate(HealthConfig(test: ["SHELL", "x"])) }
    }

    @Test func stateMachine() {
        let started = Date()
        let cfg = HealthConfig(test: ["CMD", "x"], startPeriod: 10_000_000_000, retries: 2)
        func result(_ code: Int) -> HealthResult { HealthResult(start: "s", end: "e", exitCode: code, output: "\(code)") }
        var h = HealthState()
        // within the start period, before any success: logged, not counted
        HealthCheck.record(result(1), startedAt: started, checkStart: started.addingTimeInterval(1), config: cfg, into: &h)
        #expect(h.status == .starting && h.failingStreak == 0 && h.log.count == 1)
        // after it: counted, unhealthy at Retries
        HealthCheck.record(result(1), startedAt: started, checkStart: started.addingTimeInterval(11), config: cfg, into: &h)
        #expect(h.status == .starting && h.failingStreak == 1)
        HealthCheck.record(result(2), startedAt: started, checkStart: started.addingTimeInterval(12), config: cfg, into: &h)
        #expect(h.status == .unhealthy && h.failingStreak == 2)
        // a success: healthy, streak cleared; then failures count even within the start period
        HealthCheck.record(result(0), startedAt: started, checkStart: started.addingTimeInterval(13), config: cfg, into: &h)
        #expect(h.status == .healthy && h.failingStreak == 0)
        var early = HealthState(status: .healthy)
        HealthCheck.record(result(1), startedAt: started, checkStart: started.addingTimeInterval(1), config: cfg, into: &early)
        #expect(early.status == .healthy && early.failingStreak == 1)
        // the log keeps the last five
        for i in 0..<7 { HealthCheck.record(result(i == 6 ? 0 : 9), startedAt: started, checkStart: started, config: cfg, into: &h) }
        #expect(h.log.count == HealthCheck.maxLogEntries && h.log.last?.exitCode == 0 && h.log.first?.exitCode == 9)
        // no Retries: docker's 3
        var d = HealthState()
        for _ in 0..<2 { HealthCheck.record(result(1), startedAt: started, checkStart: started, config: HealthConfig(test: ["CMD", "x"]), into: &d) }
        #expect(d.status == .starting)
        HealthCheck.record(result(1), startedAt: started, checkStart: started, config: HealthConfig(test: ["CMD", "x"]), into: &d)
        #expect(d.status == .unhealthy)
    }
}
