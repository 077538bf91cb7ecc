import ArgumentParser
import Foundation
import OCI
import Registry

/// Options shared by pull and push.
struct RegistryTransferOptions: ParsableArguments {
    @Flag(name: .long, help: "HTTPS without checking the certificate, else plain HTTP (localhost and 127.0.0.0/8 get plain HTTP anyway).")
    var insecure = false

    @Flag(name: [.short, .long], help: "No progress output; print only the digest.")
    var quiet = false

    @Option(name: .long, help: "Blobs transferred at once.")
    var maxConcurrent: Int = 4

    func validate() throws {
        guard (1...64).contains(maxConcurrent) else { throw ValidationError("--max-concurrent must be between 1 and 64") }
    }
}

/// Progress on stderr: one line per blob with bytes and speed, redrawn in place on a terminal;
/// a line per finished blob otherwise (CI logs); nothing with --quiet.
final class RegistryProgressPrinter: @unchecked Sendable {
    enum Mode { case terminal, plain, quiet }
    let mode: Mode
    let verb: String
    private let lock = NSLock()
    private var order: [Digest] = []
    private var rows: [Digest: Row] = [:]
    private var drawn = 0
    private var lastDraw = Date.distantPast

    struct Row {
        var kind: TransferEvent.BlobKind
        var total: Int64
        var bytes: Int64 = 0
        var started = Date()
        var status: String
    }

    init(quiet: Bool, verb: String) {
        self.verb = verb
        if quiet { mode = .quiet } else if isatty(2) == 1, ProcessInfo.processInfo.environment["TERM"] != "dumb" { mode = .terminal } else { mode = .plain }
    }

    var handler: TransferProgress? {
        if mode == .quiet { return nil }
        return { @Sendable [self] event in self.handle(event) }
    }

    func message(_ s: String) {
        guard mode != .quiet else { return }
        lock.withLock {
            FileHandle.standardError.write(Data((s + "\n").utf8))
            drawn = 0
        }
    }

    private func handle(_ event: TransferEvent) {
        lock.withLock {
            switch event {
            case let .resolved(what, digest):
                if mode == .plain || mode == .terminal { emit("Resolved \(what) \(digest)\n"); drawn = 0 }
            case let .started(digest, kind, total):
                if rows[digest] == nil { order.append(digest) }
                rows[digest] = Row(kind: kind, total: total, status: verb)
                redraw(force: false)
            case let .progress(digest, bytes):
                rows[digest]?.bytes = bytes
                redraw(force: false)
            case let .finished(digest, kind, outcome, bytes):
                let status: String
                switch outcome {
                case .downloaded: status = "Pull complete"
                case .alreadyExists: status = "Already exists"
                case .pushed: status = "Pushed"
                case let .mounted(from): status = "Mounted from \(from)"
                case .presentInRegistry: status = "Layer already exists"
                }
                if rows[digest] == nil {
                    order.append(digest)
                    rows[digest] = Row(kind: kind, total: bytes, status: status)
                }
                rows[digest]?.bytes = bytes
                rows[digest]?.status = status
                if mode == .plain {
                    if let r = rows[digest] { emit(line(digest, r, done: true) + "\n") }
                } else {
                    redraw(force: true)
                }
            }
        }
    }

    private func line(_ d: Digest, _ r: Row, done: Bool) -> String {
        let id = String(d.encoded.prefix(12))
        let secs = max(Date().timeIntervalSince(r.started), 0.001)
        let speed = Double(r.bytes) / secs
        var s = "\(id): \(r.status)"
        if r.kind == .manifest { return "\(id): \(r.status) manifest" }
        if r.status == verb {
            s += "  \(human(r.bytes))/\(human(r.total))  \(human(Int64(speed)))/s"
        } else if done, r.status == "Pull complete" || r.status == "Pushed" {
            s += "  \(human(r.total)) in \(String(format: "%.1f", secs))s (\(human(Int64(speed)))/s)"
        }
        return s
    }

    private func redraw(force: Bool) {
        guard mode == .terminal else { return }
        let now = Date()
        if !force, now.timeIntervalSince(lastDraw) < 0.1 { return }
        lastDraw = now
        var out = drawn > 0 ? "\u{1B}[\(drawn)A" : ""
        for d in order {
            guard let r = rows[d] else { continue }
            out += "\r\u{1B}[2K" + line(d, r, done: r.status != verb) + "\n"
        }
        drawn = order.count
        emit(out)
    }

    private func emit(_ s: String) {
        FileHandle.standardError.write(Data(s.utf8))
    }
}

/// "12.3MB" in docker's decimal units.
func human(_ n: Int64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"]
    var v = Double(n)
    var i = 0
    while v >= 1000, i < units.count - 1 { v /= 1000; i += 1 }
    return i == 0 ? "\(n)B" : String(format: "%.1f%@", v, units[i])
}

/// Parses a reference given on the command line, with a message that says what to type.
func parseReference(_ s: String) throws -> ImageReference {
    do { return try ImageReference(parsing: s) } catch {
        throw ValidationError("\(error)")
    }
}
