import Build
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// BuildKit's live terminal view (`--progress tty`, and `auto` on a terminal): a header with the
/// elapsed time and steps done, one line per step (`=> [stage 2/5] RUN …  1.2s`, `=> CACHED …`),
/// the last lines of output under each running step, redrawn in place; finished steps collapse
/// to their one line, and the final frame stays on screen.
final class TTYProgress: @unchecked Sendable {
    struct Step {
        var title: String
        var started: Date
        var ended: Date?
        var cached = false
        var tail: [String] = []
    }

    private let lock = NSLock()
    private var steps: [(key: String, step: Step)] = []
    private var notes: [String] = []
    private let start = Date()
    private var drawn = 0
    private var finished = false
    private var timer: (any DispatchSourceTimer)?
    private let width: Int
    static let tailLines = 6

    init() {
        var ws = winsize()
        width = ioctl(2, UInt(TIOCGWINSZ), &ws) == 0 && ws.ws_col > 20 ? Int(ws.ws_col) : 80
        let t = DispatchSource.makeTimerSource(queue: DispatchQueue.global())
        t.schedule(deadline: .now() + 0.1, repeating: 0.1)
        t.setEventHandler { [weak self] in self?.redraw() }
        t.resume()
        timer = t
    }

    func handle(_ e: BuildEvent) {
        lock.lock()
        switch e {
        case let .step(stage, number, total, text):
            // A stage's steps run in order: one that starts ends the stage's earlier ones (FROM
            // and metadata steps send no end of their own).
            for i in steps.indices where steps[i].key.hasPrefix(stage + "#") && steps[i].step.ended == nil {
                steps[i].step.ended = Date()
            }
            steps.append(("\(stage)#\(number)", Step(title: "[\(stage) \(number)/\(total)] \(text)", started: Date())))
        case let .cached(stage, number):
            update("\(stage)#\(number)") { $0.cached = true; $0.ended = Date() }
        case let .finished(stage, number, _):
            update("\(stage)#\(number)") { $0.ended = Date() }
        case let .output(stage, number, line):
            update("\(stage)#\(number)") { s in
                s.tail.append(line)
                if s.tail.count > Self.tailLines { s.tail.removeFirst(s.tail.count - Self.tailLines) }
            }
        case let .note(n):
            notes.append(n)
        }
        lock.unlock()
        redraw()
    }

    private func update(_ key: String, _ change: (inout Step) -> Void) {
        guard let i = steps.lastIndex(where: { $0.key == key }) else { return }
        change(&steps[i].step)
    }

    /// Draws the last frame and stops redrawing; `failed` keeps the failing step's output.
    func finish(failed: Bool) {
        timer?.cancel()
        lock.lock()
        if !failed { for i in steps.indices where steps[i].step.ended == nil { steps[i].step.ended = Date() } }
        finished = true
        lock.unlock()
        redraw(final: true, failed: failed)
    }

    private func fit(_ s: String) -> String {
        s.count <= width - 1 ? s : String(s.prefix(max(0, width - 2))) + "…"
    }

    private func redraw(final: Bool = false, failed: Bool = false) {
        lock.lock()
        defer { lock.unlock() }
        if finished && !final { return }
        let now = Date()
        let done = steps.filter { $0.step.ended != nil }.count
        var lines = [String(format: "[+] Building %.1fs (%d/%d)", now.timeIntervalSince(start), done, steps.count)
                     + (final && !failed ? " FINISHED" : "")]
        for n in notes { lines.append(fit(" => " + n)) }
        for (_, s) in steps {
            let secs = (s.ended ?? now).timeIntervalSince(s.started)
            let time = s.cached ? "0.0s" : String(format: "%.1fs", secs)
            let head = " => " + (s.cached ? "CACHED " : "") + s.title
            let room = max(10, width - 1 - time.count - 1)
            let shown = head.count <= room ? head.padding(toLength: room, withPad: " ", startingAt: 0) : String(head.prefix(room - 1)) + "…"
            lines.append(shown + " " + time)
            if s.ended == nil || (final && failed && s.ended == nil) {
                for t in s.tail { lines.append(fit(" => => # " + t)) }
            }
        }
        var out = ""
        if drawn > 0 { out += "\u{1b}[\(drawn)A" }
        for l in lines { out += "\u{1b}[2K" + l + "\n" }
        // Clear what an earlier, longer frame left below.
        if drawn > lines.count { for _ in lines.count..<drawn { out += "\u{1b}[2K\n" }; out += "\u{1b}[\(drawn - lines.count)A" }
        drawn = lines.count
        FileHandle.standardError.write(Data(out.utf8))
    }
}
