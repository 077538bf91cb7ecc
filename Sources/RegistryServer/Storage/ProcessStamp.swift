import Foundation

/// Names the process that wrote a temporary file, so a later process can prove the writer is
/// gone: its pid together with the pid's start time (clock ticks since boot, from
/// `/proc/PID/stat`) and the first 8 characters of the boot id. A pid can be reused; the same
/// pid started at the same tick of the same boot cannot.
///
/// Text form (inside file names): `PID.START.BOOT`, e.g. `4242.1234567.1f2e3d4c`.
struct ProcessStamp: Equatable, Sendable, CustomStringConvertible {
    var pid: Int32
    var startTicks: UInt64
    var boot: String

    /// This process.
    static let current: ProcessStamp = ProcessStamp(pid: getpid(), startTicks: startTicks(of: getpid()) ?? 0, boot: bootID())

    var description: String { "\(pid).\(startTicks).\(boot)" }

    /// Parses `PID.START.BOOT`; nil for anything else.
    init?(_ text: Substring) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let pid = Int32(parts[0]), pid > 0, let start = UInt64(parts[1]),
              parts[2].count == 8, parts[2].utf8.allSatisfy({ HTTPFraming.hexValue($0) != nil }) else { return nil }
        self.init(pid: pid, startTicks: start, boot: String(parts[2]))
    }

    init(pid: Int32, startTicks: UInt64, boot: String) {
        self.pid = pid
        self.startTicks = startTicks
        self.boot = boot
    }

    /// False only when the writer provably exited: same boot, and the pid is free or now
    /// belongs to a process started at another time. A stamp from another boot is dead too.
    var isAlive: Bool {
        guard boot == ProcessStamp.current.boot else { return false }
        guard let now = ProcessStamp.startTicks(of: pid) else { return false }
        return now == startTicks
    }

    /// Field 22 of `/proc/PID/stat` (after the parenthesised command name, which may hold spaces).
    static func startTicks(of pid: Int32) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); field 22 is fields[19].
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    static func bootID() -> String {
        let text = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? ""
        let hex = text.lowercased().filter { $0.isHexDigit }
        return hex.count >= 8 ? String(hex.prefix(8)) : "00000000"
    }
}
