import Foundation
import SystemSupport

/// The client side of a monitor's attach socket: copies the terminal or stdin in, output out,
/// sends window sizes, and detaches on ctrl-p ctrl-q when attached to a terminal.
public enum AttachClient {
    /// Connects to a running (or starting) container's monitor.
    public static func connect(_ manager: ContainerManager, id: String) throws -> Int32 {
        if (try? manager.store.container(id))?.isPaused == true {
            throw ContainersError.invalidState("you cannot attach to a paused container, unpause it first")
        }
        return try Sock.unixConnect("\(manager.store.directory(id))/attach.sock")
    }

    /// Sends the current terminal size of fd 0 (or 24x80).
    public static func sendSize(_ fd: Int32) {
        var ws = winsize()
        if ioctl(0, UInt(TIOCGWINSZ), &ws) != 0 || ws.ws_row == 0 { ws.ws_row = 24; ws.ws_col = 80 }
        let p = Data([UInt8(ws.ws_row >> 8), UInt8(ws.ws_row & 0xff), UInt8(ws.ws_col >> 8), UInt8(ws.ws_col & 0xff)])
        _ = Sock.writeAll(fd, AttachFrame.encode(.resize, p))
    }

    /// The signals `--sig-proxy` passes on to the container (docker's: every signal a
    /// process can catch, less SIGCHLD, SIGPIPE, SIGURG and SIGWINCH, which concern the client,
    /// and the faults a process raises itself).
    public static let proxiedSignals: [Int32] = [SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM, SIGCONT, SIGTSTP,
                                                 SIGTTIN, SIGTTOU, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGIO, SIGPWR]

    /// Runs the session; returns the container's exit code, or nil when the user detached
    /// (or the monitor went away without reporting one). `stdout`/`stderr` false drop that
    /// stream (`run -a`); `onSignal` (the `--sig-proxy`) gets the signals the client receives
    /// when there is no terminal.
    public static func run(socket fd: Int32, tty: Bool, forwardStdin: Bool, stdout: Bool = true, stderr: Bool = true,
                           onSignal: (@Sendable (Int32) -> Void)? = nil) -> Int32? {
        var saved = termios()
        let raw = tty && isatty(0) == 1 && forwardStdin
        if raw {
            tcgetattr(0, &saved)
            var t = saved
            cfmakeraw(&t)
            tcsetattr(0, TCSANOW, &t)
        }
        defer { if raw { var s = saved; tcsetattr(0, TCSANOW, &s) } }
        let detached = Locked(false)
        // Signals reach a handler that writes their number to a pipe, and a thread acts on them.
        // (libdispatch's signal sources on Linux lose a process-directed signal that lands on a
        // thread that does not block it: the async runtime's threads predate the source.)
        var watched: [Int32] = []
        if tty {
            watched = [SIGWINCH]
        } else if onSignal != nil {
            watched = proxiedSignals
        }
        if !watched.isEmpty {
            let pipeFDs = SignalPipe.fds
            for sig in watched { signal(sig, SignalPipe.handler) }
            let t = Thread {
                var b: UInt8 = 0
                while read(pipeFDs.read, &b, 1) == 1 {
                    let sig = Int32(b)
                    if sig == SIGWINCH { sendSize(fd) } else { onSignal?(sig) }
                }
            }
            t.start()
        }
        defer { for sig in watched { signal(sig, SIG_IGN) } }  // a late one must not end the client
        if forwardStdin {
            let t = Thread {
                var buf = [UInt8](repeating: 0, count: 8192)
                var sawCtrlP = false
                while true {
                    let n = read(0, &buf, buf.count)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { _ = Sock.writeAll(fd, AttachFrame.encode(.stdinClose, Data())); return }
                    var chunk = Array(buf[0..<n])
                    if raw {
                        // ctrl-p ctrl-q detaches (the keys are not sent)
                        var out: [UInt8] = []
                        for b in chunk {
                            if sawCtrlP {
                                sawCtrlP = false
                                if b == 0x11 { detached.withLock { $0 = true }; shutdown(fd, Int32(SHUT_RDWR)); return }
                                out.append(0x10)
                            }
                            if b == 0x10 { sawCtrlP = true; continue }
                            out.append(b)
                        }
                        chunk = out
                    }
                    if !chunk.isEmpty, !Sock.writeAll(fd, AttachFrame.encode(.stdin, Data(chunk))) { return }
                }
            }
            t.start()
        }
        var code: Int32?
        while let (kind, payload) = AttachFrame.read(fd) {
            switch kind {
            case .stdout where stdout: _ = payload.withUnsafeBytes { Sock.writeAll(1, $0) }
            case .stderr where stderr: _ = payload.withUnsafeBytes { Sock.writeAll(2, $0) }
            case .exit: code = Int32(String(decoding: payload, as: UTF8.self)) ?? 0
            default: break
            }
            if code != nil { break }
        }
        close(fd)
        if detached.current { return nil }
        return code
    }
}

/// A pipe the attach client's signal handler writes signal numbers to (a write(2) of one byte
/// is all a handler may safely do); made before any handler is installed.
enum SignalPipe {
    static let fds: (read: Int32, write: Int32) = {
        let p = Sys.pipeCloexec() ?? (-1, -1)
        return (p.0, p.1)
    }()

    static let handler: @convention(c) (Int32) -> Void = { sig in
        var b = UInt8(truncatingIfNeeded: sig)
        let saved = errno
        _ = write(SignalPipe.fds.write, &b, 1)
        errno = saved
    }
}
