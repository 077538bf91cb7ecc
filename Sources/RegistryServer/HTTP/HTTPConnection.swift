import Foundation

/// Byte transport under one connection: plain TCP here; TLS can slot in behind the same calls.
protocol HTTPTransport: AnyObject {
    /// The socket, for receive timeouts.
    var fd: Int32 { get }
    /// Reads up to `count` bytes; 0 at end of stream; throws on error or timeout.
    func read(_ buffer: UnsafeMutableRawPointer, _ count: Int) throws -> Int
    /// Writes all bytes; `more` hints that more data follows at once.
    func write(_ buffer: UnsafeRawPointer, _ count: Int, more: Bool) throws
    /// Sends a file region; returns false when the transport cannot (TLS), so the caller copies.
    func sendFile(fd: Int32, offset: Int64, length: Int64) throws -> Bool
    func shutdown()
    /// Bounds how long the next reads may wait.
    func setReadTimeout(microseconds: Int)
    /// Half-closes: no more bytes go out, reading still works.
    func shutdownWrite()
    func close()
}

/// Errors of the HTTP layer; they end the connection, they never reach a handler.
enum HTTPError: Error {
    case closed
    case io(String, Int32)
    /// The request breaks RFC 9112 framing or a limit: answer `status` and close.
    case rejected(status: Int, reason: String)
    /// The client was silent, or too slow with a request head, past its timeout.
    case timeout
    case bodyTooLarge
}

final class PlainTransport: HTTPTransport {
    let fd: Int32
    init(fd: Int32) { self.fd = fd }

    func read(_ buffer: UnsafeMutableRawPointer, _ count: Int) throws -> Int {
        while true {
            let n = recv(fd, buffer, count, 0)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw HTTPError.io("recv", errno)
        }
    }

    func write(_ buffer: UnsafeRawPointer, _ count: Int, more: Bool) throws {
        var done = 0
        let flags = Int32(MSG_NOSIGNAL) | (more ? Int32(MSG_MORE) : 0)
        while done < count {
            let n = send(fd, buffer + done, count - done, flags)
            if n < 0 {
                if errno == EINTR { continue }
                throw HTTPError.io("send", errno)
            }
            done += n
        }
    }

    /// `sendfile(2)` does not honour SO_SNDTIMEO, so the socket is non-blocking meanwhile and
    /// each wait for room is a `poll` of at most the send timeout: a client that stops reading
    /// gets its connection closed instead of holding the thread.
    func sendFile(fd file: Int32, offset: Int64, length: Int64) throws -> Bool {
        var tv = timeval()
        var len = socklen_t(MemoryLayout<timeval>.size)
        getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len)
        let waitMillis = tv.tv_sec > 0 || tv.tv_usec > 0 ? Int32(min(Int(Int32.max), tv.tv_sec * 1000 + tv.tv_usec / 1000)) : Int32(-1)
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(fd, F_SETFL, flags) }
        var off = off_t(offset)
        var left = length
        while left > 0 {
            let n = Glibc.sendfile(fd, file, &off, Int(min(left, 1 << 30)))
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    let r = poll(&pfd, 1, waitMillis)
                    if r == 0 { throw HTTPError.timeout }
                    if r < 0 && errno != EINTR { throw HTTPError.io("poll", errno) }
                    continue
                }
                throw HTTPError.io("sendfile", errno)
            }
            if n == 0 { throw HTTPError.io("sendfile: file shorter than announced", EIO) }
            left -= Int64(n)
        }
        return true
    }

    /// SO_RCVTIMEO: each `recv` returns what arrived, so the caller re-arms with what is left.
    func setReadTimeout(microseconds: Int) {
        var tv = timeval(tv_sec: microseconds / 1_000_000, tv_usec: microseconds % 1_000_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    func shutdown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
    func shutdownWrite() { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }
    func close() { _ = Glibc.close(fd) }
}

/// Buffered reading of one connection: request heads, then bodies (Content-Length or chunked).
/// Reads wait at most `idleTimeout` each; while a head is read they also stop at `deadline`,
/// so a client trickling bytes (slowloris) cannot hold the connection past the header timeout.
final class HTTPConnection {
    let transport: any HTTPTransport
    private var buffer: UnsafeMutableRawPointer
    private let capacity = 80 * 1024
    private var start = 0
    private var end = 0
    let limits: HTTPHeadLimits
    /// Longest silence on a read (also the keep-alive idle time between requests).
    let idleTimeout: Double
    /// When set, reads fail with `HTTPError.timeout` past this uptime (nanoseconds).
    var deadline: UInt64?
    private var armedMicros = -1

    init(transport: any HTTPTransport, limits: HTTPHeadLimits = HTTPHeadLimits(), idleTimeout: Double = 120) {
        self.transport = transport
        self.limits = limits
        self.idleTimeout = idleTimeout
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit { buffer.deallocate() }

    /// The monotonic clock in nanoseconds: request durations, deadlines and storage timings.
    /// Read directly (a vDSO call): `DispatchTime.now()` costs several times as much, and the
    /// server reads the clock a few times per request.
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Bytes received but not consumed yet.
    var buffered: Int { end - start }

    /// Sets the socket's receive timeout to what is left until the deadline (or the idle time).
    private func arm() throws {
        var seconds = idleTimeout
        if let deadline {
            let now = HTTPConnection.now()
            guard deadline > now else { throw HTTPError.timeout }
            seconds = min(seconds, Double(deadline - now) / 1e9)
        }
        let micros = max(1000, Int(seconds * 1e6))
        guard micros != armedMicros else { return }
        transport.setReadTimeout(microseconds: micros)
        armedMicros = micros
    }

    private func transportRead(_ dst: UnsafeMutableRawPointer, _ count: Int) throws -> Int {
        try arm()
        do {
            return try transport.read(dst, count)
        } catch HTTPError.io(_, let e) where e == EAGAIN || e == EWOULDBLOCK {
            throw HTTPError.timeout
        }
    }

    /// Reads more bytes into the buffer; returns 0 at end of stream.
    @discardableResult
    func fill() throws -> Int {
        if start == end { start = 0; end = 0 }
        if end == capacity {
            if start == 0 { throw HTTPError.rejected(status: 431, reason: "request head too large") }
            memmove(buffer, buffer + start, end - start)
            end -= start
            start = 0
        }
        let n = try transportRead(buffer + end, capacity - end)
        end += n
        return n
    }

    /// Reads one line ending in CRLF and returns it without the terminator. A bare LF, a CR
    /// not followed by LF, or more than `limit` bytes refuse the request (`tooLong` status).
    func readLine(limit: Int, tooLong: Int = 431) throws -> [UInt8] {
        var scanned = 0
        while true {
            let bytes = buffer.assumingMemoryBound(to: UInt8.self)
            var i = start + scanned
            while i < end {
                let b = bytes[i]
                if b == 0x0A {
                    guard i > start, bytes[i - 1] == 0x0D else {
                        throw HTTPError.rejected(status: 400, reason: "a line ends in a bare LF; lines must end in CRLF")
                    }
                    let line = Array(UnsafeBufferPointer(start: bytes + start, count: i - 1 - start))
                    start = i + 1
                    return line
                }
                if b == 0x0D, i + 1 < end, bytes[i + 1] != 0x0A {
                    throw HTTPError.rejected(status: 400, reason: "a bare CR inside a line")
                }
                if i - start >= limit + 1 {
                    throw HTTPError.rejected(status: tooLong, reason: tooLong == 414 ? "request line too long" : "header line too long")
                }
                i += 1
            }
            // Rescan a trailing CR once the next byte is in.
            scanned = max(0, end - start - 1)
            if try fill() == 0 { throw HTTPError.closed }
        }
    }

    /// Consumes exactly CR LF (the end of a chunk's data) or refuses the request.
    func expectCRLF() throws {
        while buffered < 2 {
            if try fill() == 0 { throw HTTPError.closed }
        }
        let bytes = buffer.assumingMemoryBound(to: UInt8.self)
        guard bytes[start] == 0x0D, bytes[start + 1] == 0x0A else {
            throw HTTPError.rejected(status: 400, reason: "chunk data not followed by CRLF")
        }
        start += 2
    }

    /// Reads the next request head; nil when the peer closed, or stayed silent past the
    /// deadline, before its first byte. `headerTimeout` counts from that first byte; the
    /// caller's `deadline` (if any) bounds the wait for it.
    func readRequestHead(headerTimeout: Double) throws -> HTTPRequestHead? {
        if buffered == 0 {
            do {
                if try fill() == 0 { return nil }
            } catch HTTPError.timeout {
                return nil
            }
        }
        let headDeadline = HTTPConnection.now() + UInt64(max(0, headerTimeout) * 1e9)
        deadline = min(deadline ?? headDeadline, headDeadline)
        var line: [UInt8] = []
        var empties = 0
        repeat {
            do { line = try readLine(limit: limits.requestLine, tooLong: 414) } catch HTTPError.closed { return nil }
            if line.isEmpty {
                empties += 1
                if empties > limits.leadingEmptyLines { throw HTTPError.rejected(status: 400, reason: "too many empty lines before the request") }
            }
        } while line.isEmpty
        let (method, target, version) = try HTTPFraming.parseRequestLine(line)
        var headers: [(name: String, value: String)] = []
        var total = 0
        while true {
            let h = try readLine(limit: limits.fieldLine)
            if h.isEmpty { break }
            total += h.count + 2
            if total > limits.totalBytes { throw HTTPError.rejected(status: 431, reason: "header fields larger than \(limits.totalBytes) bytes") }
            if headers.count >= limits.fieldCount { throw HTTPError.rejected(status: 431, reason: "more than \(limits.fieldCount) header fields") }
            headers.append(try HTTPFraming.parseFieldLine(h))
        }
        deadline = nil
        return HTTPRequestHead(method: method, target: target, version: version, headers: headers)
    }

    /// Copies buffered bytes first, then reads straight from the socket into `dst`.
    func readRaw(_ dst: UnsafeMutableRawPointer, _ count: Int) throws -> Int {
        if start < end {
            let n = min(count, end - start)
            memcpy(dst, buffer + start, n)
            start += n
            return n
        }
        if count >= 16 * 1024 { return try transportRead(dst, count) }
        if try fill() == 0 { return 0 }
        return try readRaw(dst, count)
    }

    func write(_ bytes: [UInt8], more: Bool = false) throws {
        try bytes.withUnsafeBytes { p in
            guard let base = p.baseAddress, p.count > 0 else { return }
            try transport.write(base, p.count, more: more)
        }
    }

    /// After a refusal: stop sending, then read and drop what the client still sends for up to
    /// a second, so closing does not reset the connection before the client reads the answer.
    func lingeringClose() {
        transport.shutdownWrite()
        deadline = HTTPConnection.now() + 1_000_000_000
        start = 0
        end = 0
        var dropped = 0
        while dropped < 1 << 20, let n = try? fill(), n > 0 {
            dropped += n
            start = 0
            end = 0
        }
    }
}

/// The body of one request, read on demand. `Expect: 100-continue` is answered on the first
/// read, so a handler that refuses a request never makes the client send its body.
public final class HTTPRequestBody: @unchecked Sendable {
    private let connection: HTTPConnection?
    /// The declared length; nil for chunked bodies.
    public let contentLength: Int64?
    let chunked: Bool
    private let expectContinue: Bool
    private(set) var continueSent = false
    private var remaining: Int64
    private var chunkRemaining: Int64 = 0
    private(set) var finished: Bool
    /// A read failed; the framing of the rest of the connection is unknown.
    private(set) var broken = false
    /// Bytes read so far.
    public private(set) var bytesRead: Int64 = 0

    init(connection: HTTPConnection?, contentLength: Int64?, chunked: Bool, expectContinue: Bool) {
        self.connection = connection
        self.contentLength = chunked ? nil : contentLength
        self.chunked = chunked
        self.expectContinue = expectContinue
        remaining = contentLength ?? 0
        finished = !chunked && (contentLength ?? 0) == 0
    }

    /// A body that is empty (used for requests built in tests and for bodiless requests).
    public static var empty: HTTPRequestBody { HTTPRequestBody(connection: nil, contentLength: 0, chunked: false, expectContinue: false) }

    /// Whether the request announced a body at all.
    public var isPresent: Bool { chunked || (contentLength ?? 0) > 0 }

    /// True when the client is still waiting for `100 Continue` and was never sent it.
    var awaitingContinue: Bool { expectContinue && !continueSent && !finished }

    /// Reads up to `count` bytes; returns 0 at the end of the body. After an error the body
    /// stays broken: every later read fails, so the connection is never reused.
    public func read(into dst: UnsafeMutableRawPointer, count: Int) throws -> Int {
        guard !broken else { throw HTTPError.closed }
        do {
            return try readBody(into: dst, count: count)
        } catch {
            broken = true
            throw error
        }
    }

    private func readBody(into dst: UnsafeMutableRawPointer, count: Int) throws -> Int {
        guard !finished, let connection, count > 0 else { return 0 }
        if expectContinue && !continueSent {
            continueSent = true
            try connection.write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
        }
        if !chunked {
            let n = try connection.readRaw(dst, Int(min(Int64(count), remaining)))
            if n == 0 { throw HTTPError.closed }
            remaining -= Int64(n)
            bytesRead += Int64(n)
            if remaining == 0 { finished = true }
            return n
        }
        if chunkRemaining == 0 {
            let size = try HTTPFraming.chunkSize(connection.readLine(limit: 4096))
            if size == 0 {
                // Trailer fields (checked, then dropped), then the empty line.
                var total = 0
                while true {
                    let t = try connection.readLine(limit: connection.limits.fieldLine)
                    if t.isEmpty { break }
                    total += t.count + 2
                    if total > connection.limits.totalBytes { throw HTTPError.rejected(status: 431, reason: "trailer fields too large") }
                    _ = try HTTPFraming.parseFieldLine(t)
                }
                finished = true
                return 0
            }
            chunkRemaining = size
        }
        let n = try connection.readRaw(dst, Int(min(Int64(count), chunkRemaining)))
        if n == 0 { throw HTTPError.closed }
        chunkRemaining -= Int64(n)
        bytesRead += Int64(n)
        if chunkRemaining == 0 {
            try connection.expectCRLF()
        }
        return n
    }

    /// Reads the whole body into memory; throws `bodyTooLarge` past `limit` bytes.
    public func readAll(limit: Int) throws -> [UInt8] {
        var out = [UInt8]()
        if let contentLength {
            guard contentLength <= Int64(limit) else { throw HTTPError.bodyTooLarge }
            out.reserveCapacity(Int(contentLength))
        }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try read(into: $0.baseAddress!, count: $0.count) }
            if n == 0 { break }
            if out.count + n > limit { throw HTTPError.bodyTooLarge }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    /// Reads and discards what is left, up to `limit` bytes; false when more remained.
    func drain(limit: Int64) -> Bool {
        if finished { return true }
        if awaitingContinue || broken { return false }
        var scratch = [UInt8](repeating: 0, count: 64 * 1024)
        var total: Int64 = 0
        do {
            while total <= limit {
                let n = try scratch.withUnsafeMutableBytes { try read(into: $0.baseAddress!, count: $0.count) }
                if n == 0 { return true }
                total += Int64(n)
            }
        } catch { return false }
        return false
    }
}
