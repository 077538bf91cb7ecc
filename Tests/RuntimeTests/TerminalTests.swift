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
}
