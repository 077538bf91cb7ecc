import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Minimal blocking TCP helpers for the test servers (token issuer, flaky proxy).
enum Sock {
    /// A listening socket on 127.0.0.1 with a kernel-chosen port.
    static func listen() throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestError("socket: \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0, Glibc.listen(fd, 64) == 0 else { close(fd); throw TestError("bind/listen: \(errno)") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        var bound = sockaddr_in()
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return (fd, UInt16(bigEndian: bound.sin_port))
    }

    /// A port that was free a moment ago (for servers we cannot hand a socket to).
    static func freePort() throws -> UInt16 {
        let (fd, port) = try listen()
        close(fd)
        return port
    }

    static func connect(port: UInt16) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if ok != 0 { close(fd); return nil }
        return fd
    }

    static func writeAll(_ fd: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { buf in
            var off = 0
            while off < buf.count {
                let n = send(fd, buf.baseAddress! + off, buf.count - off, Int32(MSG_NOSIGNAL))
                if n <= 0 { return false }
                off += n
            }
            return true
        }
    }

    /// Reads one HTTP message head (up to CRLFCRLF) plus `Content-Length` body bytes.
    /// Returns nil at EOF before any byte.
    static func readMessage(_ fd: Int32, untilEOF: Bool = false) -> (head: String, body: Data)? {
        var buffer = Data()
        var chunk = [UInt8](repeating: 0, count: 65536)
        let sep = Data("\r\n\r\n".utf8)
        var headEnd: Range<Data.Index>?
        while headEnd == nil {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { return buffer.isEmpty ? nil : (String(decoding: buffer, as: UTF8.self), Data()) }
            buffer.append(contentsOf: chunk[0..<n])
            headEnd = buffer.range(of: sep)
        }
        guard let headEnd else { return nil }
        let head = String(decoding: buffer[buffer.startIndex..<headEnd.lowerBound], as: UTF8.self)
        var body = Data(buffer[headEnd.upperBound...])
        if untilEOF {
            while true {
                let n = recv(fd, &chunk, chunk.count, 0)
                if n <= 0 { break }
                body.append(contentsOf: chunk[0..<n])
            }
            return (head, body)
        }
        var length = 0
        for line in head.split(separator: "\r\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "content-length" {
                length = Int(parts[1].trimmingCharacters(in: .whitespaces)) ?? 0
            }
        }
        while body.count < length {
            let n = recv(fd, &chunk, min(chunk.count, length - body.count), 0)
            if n <= 0 { break }
            body.append(contentsOf: chunk[0..<n])
        }
        return (head, body)
    }
}

struct TestError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A tiny threaded HTTP/1.1 server: one request per connection, a handler per request.
final class TinyHTTPServer: @unchecked Sendable {
    struct Request {
        var method: String
        var target: String
        var headers: [String: String]
        var body: Data
    }
    struct Response {
        var status: Int
        var headers: [(String, String)] = []
        var body: Data = Data()
    }

    let fd: Int32
    let port: UInt16
    private let handler: @Sendable (Request) -> Response
    private let stopped = NSLock()
    private var isStopped = false

    init(handler: @escaping @Sendable (Request) -> Response) throws {
        (fd, port) = try Sock.listen()
        self.handler = handler
        let t = Thread { [self] in acceptLoop() }
        t.start()
    }

    private func acceptLoop() {
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 { if stopped.withLock({ isStopped }) { return } else { continue } }
            let t = Thread { [self] in serve(c) }
            t.start()
        }
    }

    private func serve(_ c: Int32) {
        defer { close(c) }
        guard let (head, body) = Sock.readMessage(c) else { return }
        let lines = head.split(separator: "\r\n")
        guard let first = lines.first else { return }
        let parts = first.split(separator: " ")
        guard parts.count >= 2 else { return }
        var headers: [String: String] = [:]
        for l in lines.dropFirst() {
            let kv = l.split(separator: ":", maxSplits: 1)
            if kv.count == 2 { headers[kv[0].lowercased()] = kv[1].trimmingCharacters(in: .whitespaces) }
        }
        let r = handler(Request(method: String(parts[0]), target: String(parts[1]), headers: headers, body: body))
        var out = "HTTP/1.1 \(r.status) X\r\nContent-Length: \(r.body.count)\r\nConnection: close\r\n"
        for (k, v) in r.headers { out += "\(k): \(v)\r\n" }
        out += "\r\n"
        _ = Sock.writeAll(c, Data(out.utf8) + r.body)
    }

    func stop() {
        stopped.withLock { isStopped = true }
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}
