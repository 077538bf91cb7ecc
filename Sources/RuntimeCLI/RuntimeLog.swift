import Foundation
import SystemSupport
import Logging
import Synchronization
import Runtime

/// runc's `--log FILE` and `--log-format text|json`: the runtime's errors go to stderr and,
/// when a log file is given, are appended there too in runc's formats, so that an engine can
/// read why a verb failed (an exec whose program is missing) without parsing the stderr the
/// container's process shares.
public enum RuntimeLog {
    private struct Settings {
        var path: String?
        var json = false
        /// `dockbuild-runc`: runc's own stderr (a logrus line without `--log`; with it, the
        /// line goes to the file and the bare message to stderr), as callers of runc parse it.
        var runcStyle = false
        /// `--debug`: debug records too (runc's logrus at debug level).
        var debug = false
    }
    private static let settings = Mutex(Settings())

    /// Remembers the global flags (the last given wins, as with runc).
    static func configure(path: String?, format: String?, debug: Bool = false) {
        settings.withLock { s in
            if let path, !path.isEmpty { s.path = path }
            if let format { s.json = format == "json" }
            if debug { s.debug = true }
        }
    }

    /// With `--debug`, a `level=debug` record of what the runtime is doing, where errors go
    /// (the log file, else stderr), as runc's debug records.
    static func debug(_ message: @autoclosure () -> String) {
        let (path, json, on) = settings.withLock { ($0.path, $0.json, $0.debug) }
        guard on else { return }
        emit(format(message(), json: json, level: "debug"), to: path)
    }

    /// A record at `level` where errors go, in the log's format, whatever `--debug` says: a
    /// warning (a failing poststart hook), or a debug record the logger's own level already
    /// chose (`DOCKBUILD_RUNTIME_TRACE` turns the runtime's phases on without `--debug`).
    static func record(_ message: String, level: String) {
        let (path, json) = settings.withLock { ($0.path, $0.json) }
        emit(format(message, json: json, level: level), to: path)
    }

    /// The runtime library's logger for this command line: its warnings and errors become
    /// runc's records, its debug output (`trace`) debug records with `--debug`.
    static func logger() -> Logger {
        let debug = settings.withLock { $0.debug }
        var logger = Logger(label: "dockbuild.runtime") { _ in RuntimeLogHandler() }
        logger.logLevel = debug ? .debug : .info
        return logger
    }

    /// Makes the errors read as runc's (the `dockbuild-runc` binary).
    public static func useRuncStyle() { settings.withLock { $0.runcStyle = true } }

    /// Prints `dockbuild runtime: MESSAGE` on stderr and appends it to the log file, if any;
    /// in runc's style, see `Settings.runcStyle`.
    static func error(_ message: String) {
        let (path, json, runc) = settings.withLock { ($0.path, $0.json, $0.runcStyle) }
        let line = format(message, json: json)
        if runc {
            FileHandle.standardError.write(Data((path == nil ? line : message + "\n").utf8))
        } else {
            FileHandle.standardError.write(Data("dockbuild runtime: \(message)\n".utf8))
        }
        guard let path else { return }
        emit(line, to: path)
    }

    /// Appends `line` to the log file, or writes it on stderr without one.
    private static func emit(_ line: String, to path: String?) {
        guard let path else {
            FileHandle.standardError.write(Data(line.utf8))
            return
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = line.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
    }

    /// One error line in runc's (logrus') text or JSON format.
    static func format(_ message: String, json: Bool, level: String = "error") -> String {
        let time = UTCTime.format(UTCTime.now(), .none)
        let line: String
        if json {
            let obj: [String: String] = ["level": level, "msg": message, "time": time]
            let data = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            line = String(decoding: data, as: UTF8.self) + "\n"
        } else {
            let quoted = message.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n")
            line = "time=\"\(time)\" level=\(level) msg=\"\(quoted)\"\n"
        }
        return line
    }
}

/// swift-log's handler for the runtime library under runc's command line: each message goes
/// through `RuntimeLog`, so it lands where runc's records land (`--log FILE`, `--log-format`).
struct RuntimeLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let text = event.message.description
        switch event.level {
        case .trace, .debug: RuntimeLog.record(text, level: "debug")
        case .info, .notice, .warning: RuntimeLog.record(text, level: "warning")
        case .error, .critical: RuntimeLog.error(text)
        }
    }
}
