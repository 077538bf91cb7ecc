import CRuntime
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// runc's foreground terminal: for `run` and `exec` with `process.terminal` and no
/// `--console-socket`, the runtime receives the container's pty master itself and
/// copies bytes between it and its own stdin/stdout, with its own terminal (when
/// stdin is one) in raw mode and its window size followed.
final class TerminalRelay: @unchecked Sendable {
    /// The runtime's end of the socketpair (receives the master).
    private let ours: Int32
    /// The end handed to the container init as its console connection.
    let theirs: Int32
    private var master: Int32 = -1
    private var saved: termios?
    private let lock = NSLock()
    private var stopping = false
    private let done = DispatchSemaphore(value: 0)
    private var started = false
    private let input: Int32
    private let output: Int32

    /// `input`/`output`: where the user's side is (the runtime's stdin and stdout by default).
    init(input: Int32 = 0, output: Int32 = 1) throws {
        self.input = input
        self.output = output
        var sv: [Int32] = [0, 0]
        guard cruntime_socketpair_cloexec(&sv) == 0 else { throw RuntimeError.sys("socketpair for the terminal") }
        ours = sv[0]
        theirs = sv[1]
    }

    deinit {
        if ours >= 0 { close(ours) }
        if theirs >= 0 { close(theirs) }
        if master >= 0 { close(master) }
    }

    /// Receives the master (sent by the init before READY) and starts relaying.
    func start(consoleSize: RuntimeSpec.ConsoleSize?) throws {
        let m = cruntime_recv_fd(ours)
        guard m >= 0 else { throw RuntimeError(.system, "the container did not send its terminal") }
        master = m
        if let size = consoleSize { Self.setSize(m, rows: UInt16(clamping: size.height), cols: UInt16(clamping: size.width)) }
        if isatty(input) == 1 {
            var t = termios()
            if tcgetattr(input, &t) == 0 {
                saved = t
                var raw = t
                cfmakeraw(&raw)
                _ = tcsetattr(input, TCSANOW, &raw)
            }
        }
        followSize()
        started = true
        let t = Thread { [self] in pump(); done.signal() }
        t.start()
    }

    /// Lets the relay copy what the process wrote last, then restores the terminal.
    func finish() {
        if started {
            lock.lock(); stopping = true; lock.unlock()
            _ = done.wait(timeout: .now() + 5)
        }
        if var t = saved { _ = tcsetattr(input, TCSANOW, &t) }
    }

    private var lastSize: (UInt16, UInt16) = (0, 0)

    private func followSize() {
        guard isatty(input) == 1 else { return }
        var ws = winsize()
        guard ioctl(input, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_row > 0 || ws.ws_col > 0 else { return }
        if (ws.ws_row, ws.ws_col) != lastSize {
            lastSize = (ws.ws_row, ws.ws_col)
            Self.setSize(master, rows: ws.ws_row, cols: ws.ws_col)
        }
    }

    static func setSize(_ fd: Int32, rows: UInt16, cols: UInt16) {
        var ws = winsize(ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(fd, UInt(TIOCSWINSZ), &ws)
    }

    private func pump() {
        var buf = [UInt8](repeating: 0, count: 32768)
        var stdinOpen = true
        while true {
            lock.lock(); let stop = stopping; lock.unlock()
            var fds = [pollfd(fd: master, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: stdinOpen ? input : -1, events: Int16(POLLIN), revents: 0)]
            // once the process is gone, drain what is buffered and stop
            let n = poll(&fds, 2, stop ? 50 : 100)
            if n < 0 && errno != EINTR { return }
            followSize()
            if n <= 0 { if stop { return }; continue }
            if fds[0].revents != 0 {
                let r = buf.withUnsafeMutableBytes { read(master, $0.baseAddress, $0.count) }
                if r < 0 && errno == EINTR { continue }
                if r <= 0 { return }  // EIO: every holder of the slave is gone
                if !Self.writeAll(output, buf, r) { return }
            }
            if stdinOpen && fds[1].revents != 0 {
                let r = buf.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                if r < 0 && errno == EINTR { continue }
                if r <= 0 { stdinOpen = false; continue }
                _ = Self.writeAll(master, buf, r)
            }
        }
    }

    static func writeAll(_ fd: Int32, _ buf: [UInt8], _ count: Int) -> Bool {
        var off = 0
        while off < count {
            let w = buf.withUnsafeBytes { write(fd, $0.baseAddress!.advanced(by: off), count - off) }
            if w < 0 { if errno == EINTR { continue }; return false }
            off += w
        }
        return true
    }
}
