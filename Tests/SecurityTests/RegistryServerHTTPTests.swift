import Foundation
import Testing

// Attacks on `dockbuild registry serve`'s own HTTP/1.1 layer (issue #14): request smuggling
// and malformed framing, connection exhaustion and slowloris, and what a crash leaves on disk.
// Every test drives the real binary on a loopback port with raw sockets.

/// `dockbuild registry serve` as a child process on 127.0.0.1 with a free port.
final class RSHServer: @unchecked Sendable {
    let process = Process()
    let port: Int
    let storage: String
    private let stderr = Pipe()
    private let log = RSHLog()

    init(storage: String, _ extra: [String] = [], logFormat: String = "none") throws {
        self.storage = storage
        process.executableURL = URL(fileURLWithPath: Sec.binary)
        process.arguments = ["registry", "serve", "--addr", "127.0.0.1:0", "--storage", storage, "--log-format", logFormat] + extra
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let fh = stderr.fileHandleForReading
        var first = Data()
        while !first.contains(UInt8(ascii: "\n")) {
            let chunk = fh.availableData
            if chunk.isEmpty { break }
            first.append(chunk)
        }
        let text = String(decoding: first, as: UTF8.self)
        log.append(text)
        guard let r = text.range(of: "127.0.0.1:"), let p = Int(text[r.upperBound...].prefix { $0.isNumber }) else {
            process.terminate()
            throw RSHFailure("registry serve did not report its port: \(text)")
        }
        port = p
        let log = self.log
        Thread {
            while true {
                let d = fh.availableData
                if d.isEmpty { break }
                log.append(String(decoding: d, as: UTF8.self))
            }
        }.start()
    }

    deinit { stop() }

    /// Everything the server wrote to stderr so far.
    var stderrText: String { log.text }

    /// Threads of the server process (from /proc).
    var threads: Int {
        let status = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("Threads:") } ?? ""
        return Int(line.split(separator: "\t").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "") ?? -1
    }

    func kill9() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}

struct RSHFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

final class RSHLog: @unchecked Sendable {
    private let lock = NSLock()
    private var buffer = ""
    func append(_ s: String) { lock.lock(); buffer += s; lock.unlock() }
    var text: String { lock.lock(); defer { lock.unlock() }; return buffer }
}

/// A raw client socket.
final class RSHConn {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw RSHFailure("connect to 127.0.0.1:\(port): \(String(cString: strerror(e)))")
        }
    }

    deinit { close(fd) }

    /// Sends all bytes; false when the server already closed or reset.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            done += n
        }
        return true
    }

    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// What a read up to end of stream found.
    struct Reply {
        var text: String
        /// The server closed (FIN or reset) before `timeout`.
        var closed: Bool
        /// Status lines in `text`: how many responses the server sent.
        var responses: Int {
            text.components(separatedBy: "HTTP/1.1 ").dropFirst().filter { $0.prefix(4).dropLast().allSatisfy(\.isNumber) && $0.count >= 4 }.count
        }
        var status: Int? { text.hasPrefix("HTTP/1.1 ") ? Int(text.dropFirst(9).prefix(3)) : nil }
    }

    /// Reads until the server closes the connection or `timeout` seconds pass.
    func readToEnd(timeout: Double = 5) -> Reply {
        let end = Date().addingTimeInterval(timeout)
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let left = end.timeIntervalSinceNow
            if left <= 0 { return Reply(text: String(decoding: out, as: UTF8.self), closed: false) }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&pfd, 1, Int32(max(1, left * 1000)))
            if r <= 0 { continue }
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return Reply(text: String(decoding: out, as: UTF8.self), closed: true) }
            out += buf[0..<n]
        }
    }

    /// Reads until `marker` arrived (or the server closed, or `timeout` passed).
    func readUntil(_ marker: String, timeout: Double = 5) -> String {
        let end = Date().addingTimeInterval(timeout)
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while !String(decoding: out, as: UTF8.self).contains(marker) {
            let left = end.timeIntervalSinceNow
            if left <= 0 { break }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, Int32(max(1, left * 1000))) <= 0 { continue }
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

enum RSH {
    static var binaryBuilt: Bool { FileManager.default.isExecutableFile(atPath: Sec.binary) }

    /// A fresh storage directory under /var/tmp, unique to this process and test.
    static func storage(_ tag: String) throws -> String {
        let dir = "/var/tmp/dbsec-rsh-\(tag)-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The request that must never be answered when smuggled behind a refused one.
    static let smuggled = "GET /v2/_catalog HTTP/1.1\r\nHost: x\r\n\r\n"

    static func sha256(_ bytes: [UInt8]) throws -> String {
        let p = FileManager.default.temporaryDirectory.appendingPathComponent("rsh-\(UUID().uuidString)")
        try Data(bytes).write(to: p)
        defer { try? FileManager.default.removeItem(at: p) }
        let out = try Sec.run(["sha256sum", p.path]).out
        return "sha256:" + (out.split(separator: " ").first.map(String.init) ?? "")
    }

    /// Upload session directories on disk.
    static func uploads(_ storage: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: storage + "/_uploads")) ?? []).filter { !$0.contains(".tmp-") }.sorted()
    }

    /// Every path under `dir` whose name holds `.tmp-`.
    static func temporaries(_ dir: String) -> [String] {
        ((try? FileManager.default.subpathsOfDirectory(atPath: dir)) ?? [])
            .filter { ($0.split(separator: "/").last ?? "").contains(".tmp-") }.sorted()
    }

    /// The stamp (`PID.START.BOOT`) the server writes into temporary names, for a process.
    static func stamp(of pid: Int32) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19 else { return nil }
        let boot = ((try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? "").filter { $0.isHexDigit }
        return "\(pid).\(fields[19]).\(boot.prefix(8))"
    }

    /// The stamp of a process that has exited by the time this returns.
    static func deadStamp() throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sleep")
        p.arguments = ["30"]
        try p.run()
        let s = stamp(of: p.processIdentifier)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        guard let s else { throw RSHFailure("could not read /proc/\(p.processIdentifier)/stat") }
        return s
    }
}

/// Malformed and smuggling request heads: each must be refused with the RFC 9112 status, the
/// connection closed, and the request sent behind it on the same connection never answered.
@Suite("registry server: HTTP framing and smuggling", .serialized, .enabled(if: RSH.binaryBuilt))
struct RegistryServerHTTPFramingTests {
    static let digest0 = "sha256:" + String(repeating: "0", count: 64)

    /// (name, raw request head and body, expected status)
    static let cases: [(String, String, Int)] = [
        ("Content-Length and Transfer-Encoding",
         "POST /v2/smug/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 39\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("Transfer-Encoding then Content-Length",
         "POST /v2/smug/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
        ("whitespace before the colon",
         "POST /v2/smug/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
        ("negative Content-Length", "POST /v2/smug/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        ("non-numeric Content-Length", "POST /v2/smug/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n", 400),
        ("signed Content-Length", "POST /v2/smug/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd", 400),
        ("Content-Length list", "POST /v2/smug/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 0\r\n\r\nabcd", 400),
        ("duplicated different Content-Length",
         "POST /v2/smug/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 4\r\n\r\nabcd", 400),
        ("Content-Length past Int64", "POST /v2/smug/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
        ("chunked not the final coding",
         "POST /v2/smug/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400),
        ("an unknown coding alone", "POST /v2/smug/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400),
        ("chunked twice",
         "POST /v2/smug/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("an unimplemented coding before chunked",
         "POST /v2/smug/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
        ("Transfer-Encoding in HTTP/1.0", "POST /v2/smug/blobs/uploads/ HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("obs-fold continuation line",
         "POST /v2/smug/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("whitespace between the request line and the first header",
         "GET /v2/ HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: x\r\n\r\n0\r\n\r\n", 400),
        ("bare LF line endings", "GET /v2/ HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n0\n\n", 400),
        ("bare CR inside the head", "GET /v2/ HTTP/1.1\r\nHost: x\rTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("NUL in a header value", "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-A: a\u{0}b\r\n\r\n", 400),
        ("double space in the request line", "GET  /v2/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("missing Host", "GET /v2/ HTTP/1.1\r\nAccept: */*\r\n\r\n", 400),
        ("two Host headers", "GET /v2/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("HTTP/2.0 in the request line", "GET /v2/ HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        ("request line too long", "GET /v2/\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        ("too many header fields",
         "GET /v2/ HTTP/1.1\r\nHost: x\r\n" + (0..<150).map { "X-H\($0): v\r\n" }.joined() + "\r\n", 431),
        ("one header field too large", "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "b", count: 20_000))\r\n\r\n", 431),
        ("overflowing chunk size",
         "POST /v2/smug/blobs/uploads/?digest=\(digest0) HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n", 400),
        ("chunk size with a sign",
         "POST /v2/smug/blobs/uploads/?digest=\(digest0) HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n", 400),
        ("chunk data not followed by CRLF",
         "POST /v2/smug/blobs/uploads/?digest=\(digest0) HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", 400),
    ]

    @Test func eachMalformedRequestIsRefusedAndTheSmuggledOneNeverAnswered() throws {
        let dir = try RSH.storage("framing")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try RSHServer(storage: dir)
        defer { server.stop() }
        #expect(Self.cases.count >= 12)
        for (name, request, status) in Self.cases {
            let c = try RSHConn(port: server.port)
            c.send(request + RSH.smuggled)
            let reply = c.readToEnd(timeout: 5)
            #expect(reply.status == status, "\(name): expected \(status), got \(reply.text.prefix(200))")
            #expect(reply.closed, "\(name): the connection stayed open")
            #expect(reply.responses == 1, "\(name): the request smuggled behind it was answered: \(reply.text.prefix(600))")
            #expect(!reply.text.contains("\"repositories\""), "\(name): the smuggled catalog request was served")
        }
        // The server still serves well-formed clients.
        let ok = try RSHConn(port: server.port)
        ok.send("GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(ok.readToEnd().status == 200)
    }

    /// The control: the same pipelined pair, well formed, gets two answers, so the counting
    /// above would see a smuggled request that got through.
    @Test func wellFormedPipelinedRequestsAreBothAnswered() throws {
        let dir = try RSH.storage("pipeline")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try RSHServer(storage: dir)
        defer { server.stop() }
        let c = try RSHConn(port: server.port)
        c.send("POST /v2/smug/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
               + "GET /v2/_catalog HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let reply = c.readToEnd()
        #expect(reply.responses == 2 && reply.status == 202)
        #expect(reply.text.contains("\"repositories\""))
        // Chunked, with an extension and a trailer, is still accepted.
        let body = "hello"
        let d = try RSH.sha256(Array(body.utf8))
        let c2 = try RSHConn(port: server.port)
        c2.send("POST /v2/smug/blobs/uploads/?digest=\(d) HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                + "3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nX-Trailer: t\r\n\r\n")
        #expect(c2.readToEnd().status == 201)
    }
}

/// Connection exhaustion: a cap on connections (and so threads) and timeouts for slow heads.
@Suite("registry server: connection limits and timeouts", .serialized, .enabled(if: RSH.binaryBuilt))
struct RegistryServerLimitTests {
    @Test func connectionsOverTheCapGet503AndThreadsStayBounded() throws {
        let dir = try RSH.storage("cap")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try RSHServer(storage: dir, ["--max-connections", "3", "--header-timeout", "20", "--idle-timeout", "30"])
        defer { server.stop() }
        _ = Sec.eventually(2) { server.threads > 0 }
        let baseline = server.threads
        // Three clients in keep-alive hold every slot.
        var held: [RSHConn] = []
        for _ in 0..<3 {
            let c = try RSHConn(port: server.port)
            c.send("GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(c.readUntil("{}").hasPrefix("HTTP/1.1 200"))
            held.append(c)
        }
        // The fourth is refused at once, without a thread of its own.
        let start = Date()
        let fourth = try RSHConn(port: server.port)
        let refused = fourth.readToEnd(timeout: 5)
        #expect(refused.status == 503 && refused.closed, "over the cap: \(refused.text.prefix(200))")
        #expect(refused.text.contains("Retry-After:"))
        #expect(Date().timeIntervalSince(start) < 3)
        // Fifty silent connections do not add fifty threads.
        var flood: [RSHConn] = []
        for _ in 0..<50 { flood.append(try RSHConn(port: server.port)) }
        usleep(300_000)
        let threads = server.threads
        #expect(threads >= 0 && threads <= baseline + 3 + 5, "threads grew from \(baseline) to \(threads) with 53 connections and a cap of 3")
        for c in flood { #expect(c.readToEnd(timeout: 5).status == 503) }
        flood.removeAll()
        // A slot freed is a slot served.
        held.removeFirst()
        #expect(Sec.eventually(5) {
            guard let c = try? RSHConn(port: server.port) else { return false }
            c.send("GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return c.readToEnd(timeout: 3).status == 200
        })
    }

    @Test func slowlorisIsClosedAfterTheHeaderTimeout() throws {
        let dir = try RSH.storage("slowloris")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try RSHServer(storage: dir, ["--header-timeout", "2", "--idle-timeout", "60"])
        defer { server.stop() }
        let c = try RSHConn(port: server.port)
        let start = Date()
        c.send("GET /v2/ HTTP/1.1\r\nHost: x\r\n")
        // One byte every 0.25 s: each read is far below the idle timeout, the head never ends.
        var closedAfter: Double?
        for _ in 0..<60 {
            if !c.send("X") { closedAfter = Date().timeIntervalSince(start); break }
            var pfd = pollfd(fd: c.fd, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 250) > 0 { closedAfter = Date().timeIntervalSince(start); break }
        }
        let reply = c.readToEnd(timeout: 3)
        let elapsed = try #require(closedAfter, "a client trickling bytes kept the connection for 15 s")
        #expect(elapsed >= 1.5 && elapsed < 8, "closed after \(elapsed) s with a 2 s header timeout")
        #expect(reply.status == 408 || reply.text.isEmpty)
        #expect(reply.closed)
    }

    /// The same trickle during the TLS handshake: one deadline for the whole handshake, not
    /// a timeout per `recv` that every byte restarts.
    @Test(.enabled(if: Sec.which("openssl") != nil)) func tlsHandshakeTrickleIsClosedAfterTheHeaderTimeout() throws {
        let dir = try RSH.storage("tls")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cert = dir + "/cert.pem", key = dir + "/key.pem"
        let gen = try Sec.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                               "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"])
        #expect(gen.status == 0, "openssl: \(gen.err)")
        let server = try RSHServer(storage: dir + "/storage", ["--tls-cert", cert, "--tls-key", key,
                                                             "--header-timeout", "2", "--idle-timeout", "60"])
        defer { server.stop() }
        let c = try RSHConn(port: server.port)
        let start = Date()
        // A TLS record of 512 bytes holding a ClientHello of 508 (OpenSSL waits for all of
        // it before parsing), then its body one byte at a time.
        c.send([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03])
        var closedAfter: Double?
        for _ in 0..<60 {
            if !c.send([0x00]) { closedAfter = Date().timeIntervalSince(start); break }
            var pfd = pollfd(fd: c.fd, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 250) > 0 { closedAfter = Date().timeIntervalSince(start); break }
        }
        #expect(c.readToEnd(timeout: 3).closed)
        let elapsed = try #require(closedAfter, "a handshake trickled byte by byte held the connection for 15 s")
        #expect(elapsed >= 1.5 && elapsed < 8, "closed after \(elapsed) s with a 2 s header timeout")
    }

    /// Slow read: a client that asks for a large blob and stops reading is dropped after the
    /// idle timeout instead of holding its thread for as long as it likes.
    @Test func aClientThatStopsReadingIsDropped() throws {
        let dir = try RSH.storage("slowread")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try RSHServer(storage: dir, ["--idle-timeout", "2"])
        defer { server.stop() }
        let blob = [UInt8](repeating: 0x5A, count: 64 << 20)
        let d = try RSH.sha256(blob)
        let push = try RSHConn(port: server.port)
        push.send("POST /v2/slow/blobs/uploads/?digest=\(d) HTTP/1.1\r\nHost: x\r\nContent-Length: \(blob.count)\r\nConnection: close\r\n\r\n")
        push.send(blob)
        #expect(push.readToEnd(timeout: 20).status == 201)
        let c = try RSHConn(port: server.port)
        var small: Int32 = 16 * 1024
        setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        c.send("GET /v2/slow/blobs/\(d) HTTP/1.1\r\nHost: x\r\n\r\n")
        // Read nothing for longer than the idle timeout, then everything that is left.
        sleep(6)
        let reply = c.readToEnd(timeout: 10)
        #expect(reply.closed, "the server still held the connection of a client that stopped reading")
        #expect(reply.text.utf8.count < blob.count, "the whole blob arrived after a 6 s stall with a 2 s idle timeout")
    }

    @Test func silentAndIdleConnectionsAreClosed() throws {
        let dir = try RSH.storage("idle")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Limits from a config file, as an operator would set them.
        let config = dir + "/serve.json"
        try Data(#"{"maxConnections": 8, "headerTimeout": 1, "idleTimeout": 2}"#.utf8).write(to: URL(fileURLWithPath: config))
        let server = try RSHServer(storage: dir + "/storage", ["--config", config])
        defer { server.stop() }
        // The cap from the file: eight keep-alive clients hold every slot, the ninth gets 503.
        var conns: [RSHConn] = []
        for _ in 0..<8 {
            let c = try RSHConn(port: server.port)
            c.send("GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(c.readUntil("{}").hasPrefix("HTTP/1.1 200"))
            conns.append(c)
        }
        let ninth = try RSHConn(port: server.port)
        #expect(ninth.readToEnd(timeout: 3).status == 503)
        conns.removeAll()
        // Connected but silent: gone after the header timeout.
        let silent = try RSHConn(port: server.port)
        var start = Date()
        let r1 = silent.readToEnd(timeout: 5)
        #expect(r1.closed && Date().timeIntervalSince(start) < 4)
        // Keep-alive, then silence: gone after the idle timeout, not before.
        let idle = try RSHConn(port: server.port)
        idle.send("GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(idle.readUntil("{}").hasPrefix("HTTP/1.1 200"))
        start = Date()
        let r2 = idle.readToEnd(timeout: 8)
        let t = Date().timeIntervalSince(start)
        #expect(r2.closed && t > 1.5 && t < 5, "idle connection closed after \(t) s with a 2 s idle timeout")
    }

    /// Refusals reach the access log, so an operator sees the attack.
    @Test func refusalsAreLogged() throws {
        let dir = try RSH.storage("log")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try RSHServer(storage: dir, ["--max-connections", "1"], logFormat: "json")
        defer { server.stop() }
        let bad = try RSHConn(port: server.port)
        bad.send("POST /v2/smug/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        #expect(bad.readToEnd().status == 400)
        let holder = try RSHConn(port: server.port)
        usleep(200_000)
        let over = try RSHConn(port: server.port)
        #expect(over.readToEnd().status == 503)
        _ = holder
        #expect(Sec.eventually(3) {
            let lines = server.stderrText.split(separator: "\n").filter { $0.hasPrefix("{") }
            return lines.contains { $0.contains(#""status":400"#) && $0.contains(#""method":"POST""#) }
                && lines.contains { $0.contains(#""status":503"#) }
        }, "\(server.stderrText)")
    }

    @Test func invalidLimitsAreRefusedAtStart() throws {
        let dir = try RSH.storage("badlimits")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for args in [["--max-connections", "0"], ["--header-timeout", "0"], ["--idle-timeout", "-1"], ["--upload-lifetime", "0"]] {
            let r = try Sec.run([Sec.binary, "registry", "serve", "--addr", "127.0.0.1:0", "--storage", dir] + args)
            #expect(r.status != 0 && r.err.contains(args[0]), "\(args): \(r.err)")
        }
    }
}

/// What a killed server leaves behind is removed on the next start and by `registry gc`,
/// while upload sessions a client still holds stay resumable.
@Suite("registry server: crash leftovers", .serialized, .enabled(if: RSH.binaryBuilt))
struct RegistryServerLeftoverTests {
    /// Starts a monolithic upload (client never learns the session) and a resumable one, sends
    /// part of each, and kills the server with SIGKILL mid-body. Returns the resumable
    /// session's location, the blob and the bytes the server had taken.
    static func crashMidUploads(_ server: RSHServer) throws -> (location: String, blob: [UInt8], digest: String) {
        let blob = (0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let d = try RSH.sha256(blob)
        let post = try RSHConn(port: server.port)
        post.send("POST /v2/crash/repo/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        let head = post.readUntil("\r\n\r\n")
        guard let line = head.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("location:") }) else {
            throw RSHFailure("POST gave no Location: \(head)")
        }
        let location = line.dropFirst("location:".count).trimmingCharacters(in: .whitespaces)
        let patch = try RSHConn(port: server.port)
        patch.send("PATCH \(location) HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: \(blob.count)\r\n\r\n")
        patch.send(Array(blob[0..<(1 << 20)]))
        let mono = try RSHConn(port: server.port)
        mono.send("POST /v2/crash/repo/blobs/uploads/?digest=\(d) HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: \(blob.count)\r\n\r\n")
        mono.send(Array(blob[0..<(1 << 20)]))
        // Both sessions hold bytes on disk before the kill.
        let both = Sec.eventually(5) {
            RSH.uploads(server.storage).count == 2 && RSH.uploads(server.storage).allSatisfy { id in
                ((try? FileManager.default.attributesOfItem(atPath: "\(server.storage)/_uploads/\(id)/data")[.size] as? Int) ?? 0) > 0
            }
        }
        guard both else { throw RSHFailure("uploads never reached the disk: \(RSH.uploads(server.storage))") }
        server.kill9()
        return (location, blob, d)
    }

    /// Resumes the session at `location` from where the server stopped and finishes it.
    static func resume(_ server: RSHServer, _ location: String, _ blob: [UInt8], _ d: String) throws -> Int? {
        let s = try RSHConn(port: server.port)
        s.send("GET \(location) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let status = s.readToEnd()
        guard status.status == 204, let range = status.text.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("range:") }),
              let have = Int(range.split(separator: "-").last ?? "").map({ $0 + 1 }) else { return status.status }
        let put = try RSHConn(port: server.port)
        put.send("PUT \(location)?digest=\(d) HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Range: \(have)-\(blob.count - 1)\r\nContent-Length: \(blob.count - have)\r\nConnection: close\r\n\r\n")
        put.send(Array(blob[have...]))
        return put.readToEnd(timeout: 10).status
    }

    @Test func restartRemovesTheOrphanedUploadAndKeepsTheResumableOne() throws {
        let dir = try RSH.storage("restart")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var server = try RSHServer(storage: dir)
        defer { server.stop() }
        let (location, blob, d) = try Self.crashMidUploads(server)
        #expect(RSH.uploads(dir).count == 2, "the crash left both sessions")
        server = try RSHServer(storage: dir)
        let resumableID = String(location.split(separator: "/").last ?? "")
        #expect(RSH.uploads(dir) == [resumableID], "after the restart: \(RSH.uploads(dir))")
        #expect(RSH.temporaries(dir).isEmpty)
        #expect(Sec.eventually(3) { server.stderrText.contains("removed crash leftovers: 0 temporary files, 1 interrupted monolithic uploads") },
                "\(server.stderrText)")
        #expect(try Self.resume(server, location, blob, d) == 201)
        #expect(RSH.uploads(dir).isEmpty)
    }

    @Test func gcRemovesTheOrphanedUploadAndKeepsTheResumableOne() throws {
        let dir = try RSH.storage("gc")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var server = try RSHServer(storage: dir)
        defer { server.stop() }
        let (location, blob, d) = try Self.crashMidUploads(server)
        let resumableID = String(location.split(separator: "/").last ?? "")
        let orphan = RSH.uploads(dir).filter { $0 != resumableID }
        #expect(orphan.count == 1)
        let dry = try Sec.run([Sec.binary, "registry", "gc", "--storage", dir, "--dry-run"])
        #expect(dry.status == 0 && dry.out.contains("would remove upload \(orphan.first ?? "?")"))
        #expect(RSH.uploads(dir).count == 2)
        let gc = try Sec.run([Sec.binary, "registry", "gc", "--storage", dir])
        #expect(gc.status == 0 && gc.out.contains("removed upload \(orphan.first ?? "?")"), "\(gc.out)\(gc.err)")
        #expect(RSH.uploads(dir) == [resumableID])
        server = try RSHServer(storage: dir)
        #expect(try Self.resume(server, location, blob, d) == 201)
    }

    @Test func temporariesOfDeadWritersGoAndLiveOnesStay() throws {
        let dir = try RSH.storage("temps")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tags = dir + "/repositories/t/_manifests/tags"
        try FileManager.default.createDirectory(atPath: tags, withIntermediateDirectories: true)
        let dead = try RSH.deadStamp()
        let live = try #require(RSH.stamp(of: getpid()))
        let fm = FileManager.default
        // A file and a directory left by a writer that exited, one by a writer still running
        // (this test), an unstamped one from long ago and an unstamped fresh one.
        try Data("x".utf8).write(to: URL(fileURLWithPath: "\(tags)/v1.tmp-\(dead)-0badf00d"))
        try fm.createDirectory(atPath: "\(tags)/v2.tmp-del-\(dead)-0badf00d/current", withIntermediateDirectories: true)
        try Data("y".utf8).write(to: URL(fileURLWithPath: "\(tags)/v2.tmp-del-\(dead)-0badf00d/current/link"))
        try Data("z".utf8).write(to: URL(fileURLWithPath: "\(tags)/v3.tmp-\(live)-1234abcd"))
        try Data().write(to: URL(fileURLWithPath: "\(tags)/v4.tmp-0B5E7E1E-0000-4000-8000-000000000000"))
        try fm.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -7200)], ofItemAtPath: "\(tags)/v4.tmp-0B5E7E1E-0000-4000-8000-000000000000")
        try Data().write(to: URL(fileURLWithPath: "\(tags)/v5.tmp-5EC0DD00-0000-4000-8000-000000000000"))
        #expect(RSH.temporaries(dir).count == 5)
        let gc = try Sec.run([Sec.binary, "registry", "gc", "--storage", dir])
        #expect(gc.status == 0 && gc.out.contains("3 temporaries"), "\(gc.out)\(gc.err)")
        let left = RSH.temporaries(dir).map { String($0.split(separator: "/").last ?? "") }
        #expect(left == ["v3.tmp-\(live)-1234abcd", "v5.tmp-5EC0DD00-0000-4000-8000-000000000000"])
        // And on start: a dead writer's file planted again is gone once the server listens.
        try Data().write(to: URL(fileURLWithPath: "\(tags)/v6.tmp-\(dead)-feedf00d"))
        let server = try RSHServer(storage: dir)
        defer { server.stop() }
        #expect(!fm.fileExists(atPath: "\(tags)/v6.tmp-\(dead)-feedf00d"))
        #expect(fm.fileExists(atPath: "\(tags)/v3.tmp-\(live)-1234abcd"))
    }

    /// A running server drops sessions left idle past their lifetime, and keeps one in use.
    @Test func idleSessionsGoWhileTheServerRuns() throws {
        let dir = try RSH.storage("sweep")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try RSHServer(storage: dir, ["--upload-lifetime", "2"])
        defer { server.stop() }
        var locations: [String] = []
        for _ in 0..<2 {
            let c = try RSHConn(port: server.port)
            c.send("POST /v2/s/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            let reply = c.readToEnd()
            let line = reply.text.split(separator: "\r\n").first { $0.lowercased().hasPrefix("location:") } ?? ""
            locations.append(line.dropFirst("location:".count).trimmingCharacters(in: .whitespaces))
        }
        #expect(RSH.uploads(dir).count == 2)
        // Keep the second one busy with a byte every half second for five seconds.
        let busy = try RSHConn(port: server.port)
        for i in 0..<10 {
            busy.send("PATCH \(locations[1]) HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Range: \(i)-\(i)\r\nContent-Length: 1\r\n\r\nx")
            #expect(busy.readUntil("\r\n\r\n").hasPrefix("HTTP/1.1 202"))
            usleep(500_000)
        }
        let kept = String(locations[1].split(separator: "/").last ?? "")
        #expect(RSH.uploads(dir) == [kept], "after 5 s with a 2 s lifetime: \(RSH.uploads(dir))")
    }

    @Test func sessionsIdlePastTheirLifetimeGoOnStart() throws {
        let dir = try RSH.storage("stale")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var server = try RSHServer(storage: dir)
        defer { server.stop() }
        var ids: [String] = []
        for _ in 0..<2 {
            let c = try RSHConn(port: server.port)
            c.send("POST /v2/s/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            #expect(c.readToEnd().status == 202)
        }
        ids = RSH.uploads(dir)
        #expect(ids.count == 2)
        server.stop()
        let old = ids[0]
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -600)], ofItemAtPath: "\(dir)/_uploads/\(old)/data")
        server = try RSHServer(storage: dir, ["--upload-lifetime", "300"])
        #expect(RSH.uploads(dir) == [ids[1]])
    }
}
