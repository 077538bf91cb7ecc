import Foundation
import Synchronization
import Runtime

/// runc's `--log FILE` and `--log-format text|json`: the runtime's errors go to stderr and,
/// when a log file is given, are appended there too in runc's formats, so that an engine can
/// read why a verb failed (an exec whose program is missing) without parsing the stderr the
/// container's process shares.
enum RuntimeLog {
    private struct Settings {
        var path: String?
        var json = false
    }
    private static let settings = Mutex(Settings())

    /// Remembers the global flags (the last given wins, as with runc).
    static func configure(path: String?, format: String?) {
        settings.withLock { s in
            if let path, !path.isEmpty { s.path = path }
            if let format { s.json = format == "json" }
        }
    }

    /// Prints `dockbuild runtime: MESSAGE` on stderr and appends it to the log file, if any.
    static func error(_ message: String) {
        FileHandle.standardError.write(Data("dockbuild runtime: \(message)\n".utf8))
        let (path, json) = settings.withLock { ($0.path, $0.json) }
        guard let path else { return }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'"
        let time = f.string(from: Date())
        let line: String
        if json {
            let obj: [String: String] = ["level": "error", "msg": message, "time": time]
            let data = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            line = String(decoding: data, as: UTF8.self) + "\n"
        } else {
            let quoted = message.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n")
            line = "time=\"\(time)\" level=error msg=\"\(quoted)\"\n"
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = line.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
    }
}
