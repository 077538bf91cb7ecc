import CRuntime
import Foundation
import Testing
@testable import Runtime

@Suite("terminal", .serialized)
struct TerminalTests {
    @Test("terminal: true sends the pty master over --console-socket; the process sees a tty")
    func consoleSocket() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let path = b.dir + "/console.sock"
        let srv = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        try #require(srv >= 0)
        defer { close(srv) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, c) in path.utf8.enumerated() { raw[i] = c }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(srv, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(rc == 0 && listen(srv, 1) == 0)
        var s = b.spec(["sh", "-c", "tty; echo in-a-terminal"])
        s.process?.terminal = true
        try b.write(s)
        var o = CreateOptions()
        o.consoleSocket = path
        try b.runtime.create(id: "tty", bundle: b.dir, options: o)
        let conn = accept(srv, nil, nil)
        try #require(conn >= 0)
        defer { close(conn) }
        let master = cruntime_recv_fd(conn)
        try #require(master >= 0, "no pty master arrived on the console socket")
        defer { close(master) }
        try b.runtime.start(id: "tty")
        #expect(try b.runtime.wait(id: "tty") == 0)
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(master, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        let text = String(decoding: out, as: UTF8.self)
        #expect(text.hasPrefix("/dev/pts/"))
        #expect(text.contains("in-a-terminal\r\n"))
        try b.runtime.delete(id: "tty")
    }

    /// The caller's terminal: a pty pair made here (master, slave).
    static func callerTerminal(rows: UInt16, cols: UInt16) throws -> (Int32, Int32) {
        let m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        var unlock: Int32 = 0
        var n: UInt32 = 0
        let tiocsptlck: UInt = 0x4004_5431, tiocgptn: UInt = 0x8004_5430
        #expect(m >= 0 && ioctl(m, tiocsptlck, &unlock) == 0 && ioctl(m, tiocgptn, &n) == 0)
        let sl = open("/dev/pts/\(n)", O_RDWR | O_NOCTTY | O_CLOEXEC)
        try #require(sl >= 0)
        var ws = winsize(ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(m, UInt(TIOCSWINSZ), &ws)
        return (m, sl)
    }

    static func drain(_ fd: Int32) -> String {
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 300) > 0 else { break }
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test("run and exec without --console-socket relay the terminal to the caller (raw, with its size), as runc does")
    func foregroundRelay() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let (m, sl) = try Self.callerTerminal(rows: 33, cols: 91)
        defer { close(m); close(sl) }
        var before = termios()
        tcgetattr(sl, &before)
        var s = b.spec(["sh", "-c", "tty; stty size; read x; echo got-$x; exit 5"])
        s.process?.terminal = true
        try b.write(s)
        _ = "hello\r".withCString { write(m, $0, 6) }
        var o = CreateOptions()
        o.stdin = sl; o.stdout = sl; o.stderr = sl
        let code = try b.runtime.run(id: "fg", bundle: b.dir, options: o)
        let text = Self.drain(m)
        #expect(code == 5, "\(text)")
        #expect(text.contains("/dev/pts/0") && text.contains("33 91") && text.contains("got-hello"), "\(text)")
        var after = termios()
        tcgetattr(sl, &after)
        #expect(after.c_lflag == before.c_lflag, "the caller's terminal is restored")
        #expect(!Sys.exists(b.runtime.root + "/fg"))

        // create without a console socket is still refused; exec -t relays too
        #expect(throws: RuntimeError.self) { try b.runtime.create(id: "no-socket", bundle: b.dir) }
        try b.write(b.spec(["sleep", "30"]))
        try b.runtime.create(id: "bg", bundle: b.dir)
        try b.runtime.start(id: "bg")
        var p = RuntimeSpec.Process()
        p.args = ["sh", "-c", "tty; exit 3"]
        p.env = ["PATH=/bin"]
        p.cwd = "/"
        p.terminal = true
        var eo = ExecOptions()
        eo.stdin = sl; eo.stdout = sl; eo.stderr = sl
        #expect(try b.runtime.exec(id: "bg", process: p, options: eo) == 3)
        #expect(Self.drain(m).contains("/dev/pts/"))
        try b.runtime.delete(id: "bg", force: true)
    }
}
