import Foundation
import Synchronization
import OCI
import Runtime
import SystemSupport

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
        var fd = open(path, O_RDONLY | O_CLOEXEC)
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
        /// After a rotation (`--log-opt max-size`) the path names a new file, or the same one cut
        /// short: read on from its start.
        func followRotation() -> [String] {
            var here = stat(), there = stat()
            guard fstat(fd, &here) == 0 else { return [] }
            if stat(path, &there) == 0, there.st_ino != here.st_ino {
                let n = open(path, O_RDONLY | O_CLOEXEC)
                guard n >= 0 else { return [] }
                var rest = readAvailable()   // what the old file got before it was renamed
                // rotated twice since the last look: the file between is .1 now, read it whole
                var mid = stat()
                if stat("\(path).1", &mid) == 0, mid.st_ino != here.st_ino, mid.st_ino != there.st_ino,
                   let d = FileManager.default.contents(atPath: "\(path).1") {
                    rest += d.split(separator: 10).map { String(decoding: $0, as: UTF8.self) }
                }
                close(fd)
                fd = n
                return rest
            } else if lseek(fd, 0, SEEK_CUR) > here.st_size {
                lseek(fd, 0, SEEK_SET)
            }
            return []
        }
        // the rotated files first, oldest first (container.log.N ... container.log.1)
        var older: [String] = []
        var n = 1
        while access("\(path).\(n)", R_OK) == 0 { n += 1 }
        while n > 1 {
            n -= 1
            if let d = FileManager.default.contents(atPath: "\(path).\(n)") {
                older += d.split(separator: 10).map { String(decoding: $0, as: UTF8.self) }
            }
        }
        var first = older + readAvailable()
        if let tail { first = Array(first.suffix(max(0, tail))) }
        for l in first { if let e = decode(l), wanted(e) { emit(e) } }
        guard follow else { return }
        while true {
            let running = isRunning()
            for l in followRotation() + readAvailable() { if let e = decode(l), wanted(e) { emit(e) } }
            if !running { return }
            if let until, Date() > until { return }
            usleep(100_000)
        }
    }
}

/// `--log-driver` and `--log-opt`: docker's json-file driver (with `max-size`/`max-file`
/// rotation) or `none`.
public struct LogConfig: Sendable, Equatable {
    public var driver: String
    /// Rotate when the log passes this many bytes (nil: never).
    public var maxSize: Int64?
    /// Files kept in all, the current one included (docker's default 1: the log is cut).
    public var maxFile: Int

    public init(driver: String?, options: [String: String]) throws {
        let d = driver ?? "json-file"
        guard ["json-file", "none"].contains(d) else {
            throw ContainersError.invalidArgument("--log-driver \(d): use json-file or none (the drivers dockbuild has)")
        }
        self.driver = d
        maxFile = 1
        for (k, v) in options.sorted(by: { $0.key < $1.key }) {
            guard d == "json-file" else {
                throw ContainersError.invalidArgument("--log-opt \(k)=\(v): the none log driver takes no options")
            }
            switch k {
            case "max-size":
                let n = try FlagValue.bytes(v, flag: "--log-opt max-size", unlimited: true)
                maxSize = n > 0 ? n : nil
            case "max-file":
                guard let n = Int(v), n >= 1 else {
                    throw ContainersError.invalidArgument("--log-opt max-file=\(v): give a whole number of files, 1 or more")
                }
                maxFile = n
            default:
                throw ContainersError.invalidArgument("--log-opt \(k): unknown log opt '\(k)' for json-file log driver (use max-size=SIZE, max-file=N)")
            }
        }
        if maxFile > 1 && maxSize == nil {
            throw ContainersError.invalidArgument("--log-opt max-file=\(maxFile): max-file needs max-size (e.g. --log-opt max-size=10m)")
        }
    }

    /// The record's configuration; docker's default (json-file, one file, never cut) when what
    /// was recorded no longer parses.
    public init(record r: ContainerRecord) {
        self = (try? LogConfig(driver: r.logDriver, options: r.logOpts ?? [:])) ?? LogConfig(driver: "json-file", maxSize: nil, maxFile: 1)
    }

    private init(driver: String, maxSize: Int64?, maxFile: Int) {
        self.driver = driver
        self.maxSize = maxSize
        self.maxFile = maxFile
    }
}

/// The monitor's writer of `container.log`: appends lines, and rotates as `LogConfig` says
/// (`container.log` → `.1` → `.2` ..., the oldest dropped; with one file the log is cut).
final class RotatingLog: Sendable {
    let path: String
    let config: LogConfig
    /// The open log and its size (-1: not writing).
    private let file: Mutex<(fd: Int32, size: Int64)>

    init(path: String, config: LogConfig) {
        self.path = path
        self.config = config
        var fd: Int32 = -1, size: Int64 = 0
        if config.driver == "json-file" {
            fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
            var st = stat()
            if fd >= 0, fstat(fd, &st) == 0 { size = Int64(st.st_size) }
        }
        file = Mutex((fd, size))
    }

    func write(_ line: String) {
        let data = Data(line.utf8)
        file.withLock { f in
            guard f.fd >= 0 else { return }
            if let max = config.maxSize, f.size > 0, f.size + Int64(data.count) > max { rotate(&f) }
            _ = Sock.writeAll(f.fd, data)
            f.size += Int64(data.count)
        }
    }

    private func rotate(_ f: inout (fd: Int32, size: Int64)) {
        f.size = 0
        if config.maxFile <= 1 {
            _ = ftruncate(f.fd, 0)
            return
        }
        Glibc.close(f.fd)
        unlink("\(path).\(config.maxFile - 1)")
        var i = config.maxFile - 2
        while i >= 1 { rename("\(path).\(i)", "\(path).\(i + 1)"); i -= 1 }
        rename(path, "\(path).1")
        f.fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
    }

    func close() {
        file.withLock { f in
            if f.fd >= 0 { Glibc.close(f.fd); f.fd = -1 }
        }
    }
}
