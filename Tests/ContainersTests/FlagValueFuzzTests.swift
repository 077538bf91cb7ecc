import Foundation
import Testing
@testable import Containers

/// The container flag parsers called directly with a few hundred seeded random and mutated
/// values each (issue #14): every value is either accepted in range or refused with one line
/// naming the flag; none traps. The seed is fixed, so a failure names a value that reproduces.
@Suite struct FlagValueFuzzTests {
    struct RNG {
        var state: UInt64
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

    static let alphabet = Array("0123456789.-+eEkKmMgGtTpPbBiI:/,= xn%\u{0}\u{7f}\u{e9}\u{1F600}")
    static let tokens = ["inf", "nan", "-1", "1e308", "0x1p3", "9223372036854775807", "18446744073709551616", "..", "size=", "mode=", "uid=", ":", ",", "="]

    /// `count` values: mutations of the seeds (a character replaced, dropped or inserted, or a
    /// hostile token spliced in) and fully random strings.
    static func values(_ seeds: [String], count: Int, seed: UInt64) -> [String] {
        var rng = RNG(state: seed)
        var out: [String] = []
        for i in 0..<count {
            if i % 5 == 4 {
                out.append(String((0..<rng.below(24)).map { _ in rng.pick(alphabet) }))
                continue
            }
            var v = Array(rng.pick(seeds))
            for _ in 0..<(1 + rng.below(3)) {
                switch rng.below(4) {
                case 0 where !v.isEmpty: v[rng.below(v.count)] = rng.pick(alphabet)
                case 1 where !v.isEmpty: v.remove(at: rng.below(v.count))
                case 2: v.insert(contentsOf: Array(rng.pick(tokens)), at: rng.below(v.count + 1))
                default: v.insert(rng.pick(alphabet), at: rng.below(v.count + 1))
                }
            }
            out.append(String(v))
        }
        return out
    }

    /// Runs `parse` over the values: an error must be `invalidArgument`, one line, naming `flag`.
    static func check<T>(_ flag: String, _ seeds: [String], seed: UInt64, count: Int = 300,
                         _ parse: (String) throws -> T, valid: (T) -> Bool) -> (ok: Int, refused: Int) {
        var ok = 0, refused = 0
        for v in values(seeds, count: count, seed: seed) {
            do {
                let r = try parse(v)
                #expect(valid(r), "\(flag) \(v.debugDescription) gave an out-of-range \(r)")
                ok += 1
            } catch let e as ContainersError {
                guard case .invalidArgument = e else { Issue.record("\(flag) \(v.debugDescription): \(e)"); continue }
                let m = e.description
                #expect(m.hasPrefix(flag) && !m.contains("\n"), "\(flag) \(v.debugDescription): \(m)")
                refused += 1
            } catch {
                Issue.record("\(flag) \(v.debugDescription): unexpected \(error)")
            }
        }
        return (ok, refused)
    }

    @Test func sizes() {
        let r = Self.check("--memory", ["64m", "1.5g", "1048576", "512KiB", "1 GB", "9223372036854775807", "8388607t"], seed: 1,
                           { try FlagValue.bytes($0, flag: "--memory") }, valid: { $0 >= 0 })
        #expect(r.ok > 0 && r.refused > 0)
        _ = Self.check("--memory-swap", ["-1", "2g"], seed: 2, { try FlagValue.bytes($0, flag: "--memory-swap", unlimited: true) },
                       valid: { $0 >= -1 })
        _ = Self.check("size", ["64M", "-1"], seed: 3, parseBytes, valid: { $0 >= -1 })
    }

    @Test func cpusPidsTimesTail() {
        let c = Self.check("--cpus", ["0.5", "1", "2", "0.01", "1.25"], seed: 4, { try FlagValue.nanoCPUs($0, available: 4) },
                           valid: { $0 == 0 || (10_000_000...4_000_000_000).contains($0) })
        #expect(c.ok > 0 && c.refused > 0)
        _ = Self.check("--pids-limit", ["100", "-1", "0"], seed: 5, { try FlagValue.pidsLimit($0) }, valid: { $0 >= 0 })
        _ = Self.check("--time", ["10", "-1", "0"], seed: 6, { try FlagValue.timeoutSeconds($0, flag: "--time") },
                       valid: { (0...FlagValue.maxTimeoutSeconds).contains($0) })
        _ = Self.check("--tail", ["all", "10", "-1"], seed: 7, { try FlagValue.tailLines($0) }, valid: { ($0 ?? 0) >= 0 })
    }

    @Test func portsEnvLabels() {
        _ = Self.check("-p", ["8080:80", "127.0.0.1::53/udp", "80", "0:443/tcp"], seed: 8, { try PortBinding(parsing: $0) },
                       valid: { (1...65535).contains($0.containerPort) && (0...65535).contains($0.hostPort) })
        _ = Self.check("-e", ["A=1", "PATH", "X="], seed: 9, { try FlagValue.env($0) },
                       valid: { !$0.isEmpty && !$0.hasPrefix("=") })
        _ = Self.check("--label", ["a=b", "k"], seed: 10, { try FlagValue.label($0) }, valid: { !$0.key.isEmpty })
        _ = Self.check("--hostname", ["web", "db-1.local"], seed: 12, { try FlagValue.hostname($0) },
                       valid: { !$0.contains(where: { $0.isWhitespace }) && $0.utf8.count <= 64 })
    }

    @Test func tmpfs() {
        let r = Self.check("--tmpfs", ["/run:size=64m,noexec", "/tmp", "/x:mode=1777,uid=1000", "/y:size=50%"], seed: 11,
                           { try FlagValue.tmpfs($0) },
                           valid: { m in m.destination.hasPrefix("/") && !m.destination.split(separator: "/").contains("..")
                               && m.options.allSatisfy { !$0.isEmpty && !$0.contains(",") } })
        #expect(r.ok > 0 && r.refused > 0)
    }

    /// The exact values of the issue, and what valid ones turn into.
    @Test func knownValues() throws {
        #expect(try FlagValue.bytes("64m", flag: "-m") == 64 << 20)
        #expect(try FlagValue.bytes("1.5g", flag: "-m") == 3 << 29)
        #expect(try FlagValue.bytes("512KiB", flag: "-m") == 512 << 10)
        #expect(try FlagValue.bytes("9223372036854775807", flag: "-m") == Int64.max)
        #expect(try FlagValue.bytes("-1", flag: "--memory-swap", unlimited: true) == -1)
        for bad in ["99999999999g", "9223372036854775808", "8388608t", "inf", "nan", "1e308", "-1", "", "1.", ".5", "5ib"] {
            #expect(throws: ContainersError.self, "\(bad)") { try FlagValue.bytes(bad, flag: "-m") }
        }
        #expect(try FlagValue.nanoCPUs("0.5", available: 2) == 500_000_000)
        #expect(try FlagValue.nanoCPUs("0", available: 2) == 0)
        for bad in ["inf", "1e308", "nan", "-1", "3", "0.001", "0x1", "1e0", "+1", " "] {
            #expect(throws: ContainersError.self, "\(bad)") { try FlagValue.nanoCPUs(bad, available: 2) }
        }
        #expect(try FlagValue.tmpfs("/run:size=1m,mode=755,noexec").options == ["size=1048576", "mode=755", "noexec"])
        for bad in ["", ":/x", "x", "/x:", "/x:size=inf", "/x:mode=8", "/x:uid=-1", "/../x", "/x:rw,,ro"] {
            #expect(throws: ContainersError.self, "\(bad)") { try FlagValue.tmpfs(bad) }
        }
        #expect(try FlagValue.timeoutSeconds("-1", flag: "-t") == FlagValue.maxTimeoutSeconds)
        #expect(throws: ContainersError.self) { try FlagValue.timeoutSeconds("99999999999999999999", flag: "-t") }
        #expect(try FlagValue.tailLines("all") == nil)
        #expect(try FlagValue.tailLines("5") == 5)
    }
}
