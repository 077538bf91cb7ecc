import Foundation
import Testing

/// Attack: hostile flag values (issue #14, crash safety). Each value below used to reach an
/// unchecked conversion (`Int64(inf)`, `Int64(1e30)`, `kv[0]` of an empty split) and killed the
/// CLI with a trap. Now each is a one-line usage error that names the flag, exit 125 as in docker.
@Suite(.serialized) struct CLIValueTests {
    /// `dockbuild create --root R --pull never ARGS nosuch:image`: a value error stops it before
    /// the image lookup; a valid value reaches the lookup, which fails too (exit 125 both ways).
    static func ctrcrashCreate(_ s: SecStore, _ args: [String]) throws -> Sec.Result {
        try s.db(["create", "--pull", "never"] + args + ["ctrcrash-no-such-image:1"])
    }

    /// The result of a usage error: exit 125, one line on stderr naming `flag`.
    static func ctrcrashExpectUsage(_ r: Sec.Result, flag: String, _ what: String,
                                    sourceLocation: SourceLocation = #_sourceLocation) {
        let lines = r.err.split(separator: "\n")
        #expect(r.status == 125, "\(what): exit \(r.status) (\(r.err))", sourceLocation: sourceLocation)
        #expect(lines.count == 1, "\(what): stderr is not one line: \(r.err)", sourceLocation: sourceLocation)
        #expect(r.err.contains(flag), "\(what): the message does not name \(flag): \(r.err)", sourceLocation: sourceLocation)
        #expect(!r.err.contains("Fatal error"), "\(what): \(r.err)", sourceLocation: sourceLocation)
    }

    @Test func hostileCreateValuesAreUsageErrors() throws {
        let s = try SecStore(busybox: false)
        let cases: [(String, String)] = [
            ("--memory", "9223372036854775807g"), ("--memory", "99999999999g"), ("--memory", "inf"), ("--memory", "nan"),
            ("--memory", "1e308"), ("--memory", "-5m"), ("--memory", ""), ("--memory", "12x"),
            ("--memory-swap", "99999999999999g"), ("--memory-swap", "-2"), ("--memory-swap", "inf"),
            ("--cpus", "inf"), ("--cpus", "1e308"), ("--cpus", "nan"), ("--cpus", "-1"), ("--cpus", "99999"),
            ("--cpus", "0x10"), ("--cpus", ""), ("--cpus", "0.001"),
            ("--pids-limit", "99999999999999999999"), ("--pids-limit", "-7"), ("--pids-limit", "ten"),
            ("--tmpfs", ""), ("--tmpfs", ":/x"), ("--tmpfs", "relative"), ("--tmpfs", "/x:size=99999999999999g"),
            ("--tmpfs", "/x:mode=99999"), ("--tmpfs", "/x:uid=-1"), ("--tmpfs", "/x:,,"), ("--tmpfs", "/x:bogus=1"),
            ("--publish", "99999"), ("--publish", "1:2:3:4"), ("--publish", "garbage"), ("--publish", "80:-1"),
            ("--publish", "65536:80"), ("--publish", "80/sctp"), ("--publish", ":"),
            ("--env", ""), ("--env", "=x"), ("--env", "A B=1"),
            ("--label", ""), ("--label", "="), ("--label", "=v"),
            ("--mount", "="), ("--mount", ",="), ("--mount", "type=tmpfs,target=/x,tmpfs-size=inf"),
            ("--mount", "type=volume,target=relative"), ("--volume", ""), ("--volume", "::"), ("--volume", "x:y"),
            ("--volume", "/a:/b/../../etc"),
            ("--hostname", "a\n10.0.0.1 evil"), ("--hostname", String(repeating: "h", count: 65)), ("--hostname", "-x"),
            ("--workdir", "relative"),
        ]
        for (flag, value) in cases {
            // an empty value as its own argument: ArgumentParser reads `--flag=` as a flag without value
            let r = try Self.ctrcrashCreate(s, value.isEmpty ? [flag, value] : ["\(flag)=\(value)"])
            Self.ctrcrashExpectUsage(r, flag: flag == "--volume" ? "-v" : flag == "--publish" ? "-p" : flag == "--env" ? "-e" : flag,
                                     "\(flag)=\(value)")
        }
        // negative values as separate arguments, as docker's documentation writes them
        for (flag, v) in [("--cpus", "-1"), ("--memory", "-5m"), ("--pids-limit", "-9"), ("--memory-swap", "-3")] {
            Self.ctrcrashExpectUsage(try Self.ctrcrashCreate(s, [flag, v]), flag: flag, "\(flag) \(v)")
        }
        // extreme but valid values pass the checks and reach the image lookup (which fails here)
        for args in [["-m", "9223372036854775807"], ["--pids-limit", "9223372036854775807"], ["--cpus", "0"],
                     ["-m", "8388607t"], ["--memory-swap", "-1"], ["--pids-limit", "-1"], ["-p", "65535:65535/udp"]] {
            let r = try Self.ctrcrashCreate(s, args)
            #expect(r.status == 125 && r.err.contains("not in the store"), "\(args): exit \(r.status): \(r.err)")
        }
        #expect(try s.db(["ps", "-a", "-q"]).out.isEmpty)
    }

    @Test func hostileVerbValuesAreUsageErrors() throws {
        let s = try SecStore(busybox: false)
        for t in ["99999999999999999999999", "-2", "soon", "1e9", ""] {
            let v = t.isEmpty ? ["--time", t] : ["--time=\(t)"]
            Self.ctrcrashExpectUsage(try s.db(["stop"] + v + ["ctrcrash-none"]), flag: "--time", "stop -t \(t)")
            Self.ctrcrashExpectUsage(try s.db(["restart"] + v + ["ctrcrash-none"]), flag: "--time", "restart -t \(t)")
        }
        let stopNegative = try s.db(["stop", "-t", "-5", "ctrcrash-none"])
        Self.ctrcrashExpectUsage(stopNegative, flag: "--time", "stop -t -5")
        for t in ["garbage", "99999999999999999999999", "1.5", ""] {
            let v = t.isEmpty ? ["--tail", t] : ["--tail=\(t)"]
            Self.ctrcrashExpectUsage(try s.db(["logs"] + v + ["ctrcrash-none"]), flag: "--tail", "logs --tail \(t)")
        }
        for (flag, v) in [("--cpus", "inf"), ("--cpus", "1e308"), ("--memory", "99999999999g"), ("--pids-limit", "1e99")] {
            Self.ctrcrashExpectUsage(try s.db(["update", "\(flag)=\(v)", "ctrcrash-none"]), flag: flag, "update \(flag) \(v)")
        }
    }

    /// A seeded sample of random and mutated values through the binary: whatever the value, the
    /// CLI ends with 125 and one line (a value error, or the missing image for a valid value).
    @Test func fuzzedValuesThroughTheBinary() throws {
        let s = try SecStore(busybox: false)
        var rng = CtrcrashRNG(seed: 0x14_c0ffee)
        let seeds: [String: [String]] = [
            "--memory": ["64m", "1.5g", "1048576", "512KiB"], "--memory-swap": ["-1", "2g"], "--cpus": ["0.5", "1", "2"],
            "--pids-limit": ["100", "-1"], "--tmpfs": ["/run:size=64m,noexec", "/tmp"], "--publish": ["8080:80", "127.0.0.1::53/udp"],
            "--env": ["A=1", "PATH"], "--label": ["a=b"],
        ]
        // (-v is left out: a valid bind source is created on the host, as docker does)
        let alphabet = Array("0123456789.-+eEkKmMgGtTpPbBiI:/,=x n%\u{7f}\u{e9}")
        for flag in seeds.keys.sorted() {
            for _ in 0..<6 {
                var v = Array(rng.pick(seeds[flag] ?? ["1"]))
                for _ in 0..<(1 + rng.below(3)) {
                    let c = rng.pick(alphabet)
                    switch rng.below(3) {
                    case 0 where !v.isEmpty: v[rng.below(v.count)] = c
                    case 1 where !v.isEmpty: v.remove(at: rng.below(v.count))
                    default: v.insert(c, at: rng.below(v.count + 1))
                    }
                }
                let value = String(v)
                let r = try Self.ctrcrashCreate(s, ["\(flag)=\(value)"])
                #expect(r.status == 125, "\(flag)=\(value): exit \(r.status): \(r.err)")
                #expect(r.err.split(separator: "\n").count == 1 && r.err.hasPrefix("dockbuild: "), "\(flag)=\(value): \(r.err)")
            }
        }
    }
}

/// SplitMix64: the same sequence on every run, so a failure names a value that reproduces.
struct CtrcrashRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
    mutating func pick<T>(_ a: [T]) -> T { a[below(a.count)] }
}
