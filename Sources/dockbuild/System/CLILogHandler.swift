import Foundation
import Dockerfile
import Logging

/// How the CLI prints what the libraries log (swift-log): on stderr, one line per message in
/// the logrus text format docker's CLI uses when stderr is not a terminal
/// (`time="…" level=debug msg="…" key=value`), at the level of `--log-level` / `--debug`
/// (`DOCKBUILD_LOG_LEVEL`, default info).
struct CLILogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let label: String

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Installs the handler for every logger made from now on; called once, at start.
    static func bootstrap(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let level = level(environment["DOCKBUILD_LOG_LEVEL"] ?? "info")
        LoggingSystem.bootstrap { label in CLILogHandler(logLevel: level, label: label) }
    }

    /// docker's level names as swift-log's.
    static func level(_ name: String) -> Logger.Level {
        switch name {
        case "debug": .debug
        case "warn", "warning": .warning
        case "error": .error
        case "fatal": .critical
        default: .info
        }
    }

    static func name(_ level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: "debug"
        case .info, .notice: "info"
        case .warning: "warning"
        case .error: "error"
        case .critical: "fatal"
        }
    }

    func log(event: LogEvent) {
        let level = event.level, message = event.message, extra = event.metadata
        let time = ISO8601DateFormatter.string(from: Date(), timeZone: TimeZone(identifier: "UTC") ?? .current,
                                               formatOptions: [.withInternetDateTime, .withFractionalSeconds])
        var text = "time=\"\(time)\" level=\(CLILogHandler.name(level)) msg=\(CLILogHandler.quote(message.description))"
        if let error = event.error { text += " error=\(CLILogHandler.quote("\(error)"))" }
        let all = extra.map { metadata.merging($0) { $1 } } ?? metadata
        for key in all.keys.sorted() {
            if let v = all[key] { text += " \(key)=\(CLILogHandler.quote(v.description))" }
        }
        text += "\n"
        // One write per line, so lines from several threads never interleave.
        text.utf8CString.withUnsafeBufferPointer { p in _ = write(2, p.baseAddress, p.count - 1) }
    }

    /// A value as logrus writes it: bare when it is plain, else quoted as Go's strconv.Quote does.
    static func quote(_ s: String) -> String {
        let plain = !s.isEmpty && s.unicodeScalars.allSatisfy { c in
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || "-._/@^+:".unicodeScalars.contains(c)
        }
        // logrus quotes with fmt's %q: Go's strconv.Quote
        return plain ? s : GoString.quote(s)
    }
}
