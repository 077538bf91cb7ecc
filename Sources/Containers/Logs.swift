import Foundation
import OCI
import Runtime

/// The container log: one JSON object per line, `{"log":"...","stream":"stdout","time":"..."}`,
/// as docker's json-file driver writes it.
public enum LogReader {
    public struct Entry: Sendable { public var text: String; public var stream: String; public var time: String }

    static func encode(text: String, stream: String, time: String) -> String {
        "{\"log\":\(jsonString(text)),\"stream\":\"\(stream)\",\"time\":\"\(time)\"}\n"
    }

    /// As docker's json-file driver (Go's encoding/json) writes the text.
    static func jsonString(_ s: String) -> String { OrderedJSON.quote(s) }

    public static func decode(_ line: String) -> Entry? {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let t = obj["log"] as? String else { return nil }
        return Entry(text: t, stream: obj["stream"] as? String ?? "stdout", time: obj["time"] as? String ?? "")
    }

    /// Prints the log (last `tail` entries when given) and, with `follow`, keeps printing until
    /// the container stops.
    /// docker's `--since`/`--until` values: an RFC 3339 time (`2026-01-02T15:04:05Z`, fractions
    /// and offsets too), a date and time without a zone (UTC), a date, a Unix time (`1700000000`,
    /// `1700000000.5`), or a Go duration before now (`10m`, `1h30m`, `42s`).
    public static func parseTime(_ text: String, flag: String, now: Date = Date()) throws -> Date {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let d = ImageConfig.parseDate(t) { return d }
        if let d = ImageConfig.parseDate(t + "Z") { return d }                       // 2026-01-02T15:04:05
        if t.count == 10, let d = ImageConfig.parseDate(t + "T00:00:00Z") { return d } // 2026-01-02
        if let secs = Double(t), t.first?.isNumber == true, secs.isFinite { return Date(timeIntervalSince1970: secs) }
        if let d = GoDuration.seconds(t), t.first?.isNumber == true { return now.addingTimeInterval(-d) }
        throw ContainersError.invalidArgument("invalid value for \"\(flag)\": failed to parse value as time or duration: \"\(text)\" (give an RFC 3339 time, a Unix time or a duration like 10m)")
    }

    public static func stream(path: String, tail: Int?, since: Date? = nil, until: Date? = nil, follow: Bool,
                              isRunning: () -> Bool, emit: (Entry) -> Void) {
        // the entries' times, read only when --since or --until asks
        func wanted(_ e: Entry) -> Bool {
            guard since != nil || until != nil else { return true }
            guard let t = ImageConfig.parseDate(e.time) else { return true }
            if let since, t < since { return false }
            if let until, t > until { return false }
            return true
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var pending = Data()
        var buf = [UInt8](repeating: 0, count: 65536)
        func readAvailable() -> [String] {
            var lines: [String] = []
            while true {
                let n = read(fd, &buf, buf.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                pending.append(contentsOf: buf[0..<n])
            }
            while let nl = pending.firstIndex(of: 10) {
                lines.append(String(decoding: pending[pending.startIndex..<nl], as: UTF8.self))
                pending = Data(pending[(nl + 1)...])
            }
            return lines
        }
        var first = readAvailable()
        if let tail { first = Array(first.suffix(max(0, tail))) }
        for l in first { if let e = decode(l), wanted(e) { emit(e) } }
        guard follow else { return }
        while true {
            let running = isRunning()
            for l in readAvailable() { if let e = decode(l), wanted(e) { emit(e) } }
            if !running { return }
            if let until, Date() > until { return }
            usleep(100_000)
        }
    }
}
