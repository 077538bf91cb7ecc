import Foundation

/// Byte transport under one connection: plain TCP here; TLS can slot in behind the same calls.
protocol HTTPTransport: AnyObject {
    /// Reads up to `count` bytes; 0 at end of stream; throws on error or timeout.
    func read(_ buffer: UnsafeMutableRawPointer, _ count: Int) throws -> Int
    /// Writes all bytes; `more` hints that more data follows at once.
    func write(_ buffer: UnsafeRawPointer, _ count: Int, more: Bool) throws
    /// Sends a file region; returns false when the transport cannot (TLS), so the caller copies.
    func sendFile(fd: Int32, offset: Int64, length: Int64) throws -> Bool
    func shutdown()
    func close()
}

/// Errors of the HTTP layer; they end the connection, they never reach a handler.
enum HTTPError: Error {
    case closed
    case io(String, Int32)
    case malformed(String)
    case headersTooLarge
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

    func sendFile(fd file: Int32, offset: Int64, length: Int64) throws -> Bool {
        var off = off_t(offset)
        var left = length
        while left > 0 {
            let n = Glibc.sendfile(fd, file, &off, Int(min(left, 1 << 30)))
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw HTTPError.io("sendfile", errno)
            }
            if n == 0 { throw HTTPError.io("sendfile: file shorter than announced", EIO) }
            left -= Int64(n)
        }
        return true
    }

    func shutdown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
    func close() { _ = Glibc.close(fd) }
}

/// Buffered reading of one connection: request heads, then bodies (Content-Length or chunked).
final class HTTPConnection {
    let transport: any HTTPTransport
    private var buffer: UnsafeMutableRawPointer
    private let capacity = 64 * 1024
    private var start = 0
    private var end = 0
    static let maxHeaderBytes = 64 * 1024

    init(transport: any HTTPTransport) {
        self.transport = transport
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit { buffer.deallocate() }

    private func fill() throws -> Int {
        if start == end { start = 0; end = 0 }
        if end == capacity {
            if start == 0 { throw HTTPError.headersTooLarge }
            memmove(buffer, buffer + start, end - start)
            end -= start
            start = 0
        }
        let n = try transport.read(buffer + end, capacity - end)
        end += n
        return n
    }

    /// Reads one CRLF-terminated line (LF alone is accepted), without the terminator.
    func readLine(limit: Int = 16 * 1024) throws -> String {
        var scanned = 0
        while true {
            let bytes = buffer.assumingMemoryBound(to: UInt8.self)
            var i = start + scanned
            while i < end {
                if bytes[i] == 0x0A {
                    var lineEnd = i
                    if lineEnd > start && bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                    let line = String(decoding: UnsafeBufferPointer(start: bytes + start, count: lineEnd - start), as: UTF8.self)
                    start = i + 1
                    return line
                }
                i += 1
            }
            scanned = end - start
            if scanned > limit { throw HTTPError.headersTooLarge }
            if try fill() == 0 { throw HTTPError.closed }
        }
    }

    /// Reads the next request head; nil when the peer closed cleanly between requests.
    func readRequestHead() throws -> (method: String, target: String, version: String, headers: [(name: String, value: String)])? {
        var line = ""
        // Tolerate blank lines before a request (RFC 9112 section 2.2).
        repeat {
            do { line = try readLine() } catch HTTPError.closed { return nil }
        } while line.isEmpty
        let parts = line.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else { throw HTTPError.malformed("bad request line") }
        var headers: [(name: String, value: String)] = []
        var total = line.utf8.count
        while true {
            let h = try readLine()
            if h.isEmpty { break }
            total += h.utf8.count
            if total > HTTPConnection.maxHeaderBytes || headers.count > 200 { throw HTTPError.headersTooLarge }
            guard let colon = h.firstIndex(of: ":") else { throw HTTPError.malformed("header line without ':'") }
            let name = String(h[..<colon])
            let value = h[h.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers.append((name, value))
        }
        return (String(parts[0]), String(parts[1]), String(parts[2]), headers)
    }

    /// Copies buffered bytes first, then reads straight from the socket into `dst`.
    func readRaw(_ dst: UnsafeMutableRawPointer, _ count: Int) throws -> Int {
        if start < end {
            let n = min(count, end - start)
            memcpy(dst, buffer + start, n)
            start += n
            return n
        }
        if count >= 16 * 1024 { return try transport.read(dst, count) }
        if try fill() == 0 { return 0 }
        return try readRaw(dst, count)
    }

    func write(_ bytes: [UInt8], more: Bool = false) throws {
        try bytes.withUnsafeBytes { p in
            guard let base = p.baseAddress, p.count > 0 else { return }
            try transport.write(base, p.count, more: more)
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

    /// Reads up to `count` bytes; returns 0 at the end of the body.
    public func read(into dst: UnsafeMutableRawPointer, count: Int) throws -> Int {
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
            let line = try connection.readLine()
            let sizeText = line.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            guard let size = Int64(sizeText, radix: 16), size >= 0 else { throw HTTPError.malformed("bad chunk size") }
            if size == 0 {
                // Trailer fields, then the empty line.
                while try !connection.readLine().isEmpty {}
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
            guard try connection.readLine().isEmpty else { throw HTTPError.malformed("chunk not followed by CRLF") }
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
        if awaitingContinue { return false }
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
