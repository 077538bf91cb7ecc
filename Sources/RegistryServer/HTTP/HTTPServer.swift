import Foundation

/// What a handler sees besides the request.
public struct HTTPRequestContext: Sendable {
    /// The peer's address, `ip:port`.
    public var remoteAddress: String
    /// Whether the connection is TLS, so handlers can build absolute URLs.
    public var isTLS: Bool
}

/// Answers requests. Handlers run on the connection's own thread and may block.
public protocol HTTPHandler: Sendable {
    func handle(_ request: HTTPRequest, context: HTTPRequestContext) -> HTTPResponse
}

/// Called once per finished exchange, for the access log.
public typealias HTTPAccessLogger = @Sendable (_ request: HTTPRequest, _ response: HTTPResponse, _ context: HTTPRequestContext, _ seconds: Double) -> Void

/// Wraps accepted sockets (TLS), finishing any handshake by the deadline (uptime
/// nanoseconds); plain TCP when nil.
typealias TransportFactory = @Sendable (_ fd: Int32, _ deadline: UInt64) throws -> any HTTPTransport

/// What one server lets its clients hold: connections (each one thread) and time.
public struct HTTPServerLimits: Sendable, Equatable {
    /// Connections served at once; one more is answered 503 and closed at once.
    public var maxConnections = 512
    /// Seconds a client has to send a whole request head, counted from its first byte (from
    /// the accept for a connection's first request); past it the server answers 408 and closes.
    public var headerTimeout: Double = 30
    /// Seconds of silence allowed on a read: between keep-alive requests and inside a body.
    public var idleTimeout: Double = 120
    /// Bytes all header fields of one request may take together; more is 431. A single field
    /// line may take at most this too (and at most 16 KiB).
    public var maxHeaderBytes = 64 * 1024

    public init(maxConnections: Int = 512, headerTimeout: Double = 30, idleTimeout: Double = 120, maxHeaderBytes: Int = 64 * 1024) {
        self.maxConnections = maxConnections
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
        self.maxHeaderBytes = maxHeaderBytes
    }

    /// The request-head limits these give.
    var headLimits: HTTPHeadLimits {
        var l = HTTPHeadLimits()
        l.totalBytes = maxHeaderBytes
        l.fieldLine = min(l.fieldLine, maxHeaderBytes)
        return l
    }
}

/// A small HTTP/1.1 server on POSIX sockets: one accept thread and one thread per connection
/// (at most `limits.maxConnections`), keep-alive, chunked and Content-Length bodies,
/// `Expect: 100-continue`, and `sendfile(2)` for file bodies. Chosen over an event-loop
/// framework for build time and for zero-copy blobs. Request heads are parsed strictly
/// (RFC 9112): anything a second parser could read differently is refused and the
/// connection closed, so no request can be smuggled behind another.
public final class HTTPServer: @unchecked Sendable {
    private let handler: any HTTPHandler
    private let logger: HTTPAccessLogger?
    private let transportFactory: TransportFactory?
    private let lock = NSLock()
    private var listenFD: Int32 = -1
    private var connections: [ObjectIdentifier: any HTTPTransport] = [:]
    /// Connections waiting for their next request head: a drain closes these at once.
    private var idle: Set<ObjectIdentifier> = []
    private var stopping = false
    private var acceptThread: Thread?
    /// Whether the accept thread still holds the listening descriptor (it closes it on exit).
    private var accepting = false
    private var active = 0
    private var refusedTotal = 0
    let limits: HTTPServerLimits
    /// The port actually bound (useful with port 0).
    public private(set) var port: Int = 0
    /// The host part the server was bound to.
    public private(set) var host: String = ""

    public init(handler: any HTTPHandler, limits: HTTPServerLimits = HTTPServerLimits(), logger: HTTPAccessLogger? = nil) {
        self.handler = handler
        self.logger = logger
        self.transportFactory = nil
        self.limits = limits
    }

    init(handler: any HTTPHandler, limits: HTTPServerLimits, logger: HTTPAccessLogger?, transportFactory: TransportFactory?) {
        self.handler = handler
        self.logger = logger
        self.transportFactory = transportFactory
        self.limits = limits
    }

    /// Connections being served now.
    public var activeConnections: Int { lock.lock(); defer { lock.unlock() }; return active }

    /// Connections refused with 503 since start because `maxConnections` were open.
    public var refusedConnections: Int { lock.lock(); defer { lock.unlock() }; return refusedTotal }

    /// Splits `host:port`, `[v6]:port` or `:port`.
    static func splitAddress(_ address: String) throws -> (String, Int) {
        var host = ""
        var portText = ""
        if address.hasPrefix("[") {
            guard let close = address.firstIndex(of: "]") else { throw RegistryServerError.invalidConfiguration("address \"\(address)\": missing ']'") }
            host = String(address[address.index(after: address.startIndex)..<close])
            let rest = address[address.index(after: close)...]
            guard rest.hasPrefix(":") else { throw RegistryServerError.invalidConfiguration("address \"\(address)\": expected [host]:port") }
            portText = String(rest.dropFirst())
        } else if let colon = address.lastIndex(of: ":") {
            host = String(address[..<colon])
            portText = String(address[address.index(after: colon)...])
        } else {
            throw RegistryServerError.invalidConfiguration("address \"\(address)\": expected host:port, e.g. 127.0.0.1:5000")
        }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw RegistryServerError.invalidConfiguration("address \"\(address)\": port must be a number from 0 to 65535")
        }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }

    /// Binds and starts accepting in the background. `address` is `host:port`; port 0 picks a free one.
    public func start(address: String) throws {
        signal(SIGPIPE, SIG_IGN)
        let (host, port) = try HTTPServer.splitAddress(address)
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &res)
        guard rc == 0, let first = res else {
            throw RegistryServerError.invalidConfiguration("cannot resolve listen address \"\(address)\": \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(res) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw RegistryServerError.io("socket", errno: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw RegistryServerError.invalidConfiguration("cannot listen on \(address): \(String(cString: strerror(e))) (is another server using the port?)")
        }
        guard listen(fd, 1024) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw RegistryServerError.io("listen", errno: e)
        }
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutablePointer(to: &ss) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &len) }
        }
        self.port = HTTPServer.port(of: ss)
        self.host = host
        lock.lock()
        listenFD = fd
        stopping = false
        accepting = true
        lock.unlock()
        let thread = Thread { [self] in acceptLoop(fd) }
        thread.name = "http-accept"
        acceptThread = thread
        thread.start()
    }

    static func port(of ss: sockaddr_storage) -> Int {
        var ss = ss
        let family = Int32(ss.ss_family)
        return withUnsafePointer(to: &ss) { p in
            if family == AF_INET6 {
                return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
            return p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }

    static func describe(_ ss: sockaddr_storage) -> String {
        var ss = ss
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let port = HTTPServer.port(of: ss)
        let family = Int32(ss.ss_family)
        withUnsafePointer(to: &ss) { p in
            if family == AF_INET6 {
                p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { a in
                    var addr = a.pointee.sin6_addr
                    _ = inet_ntop(AF_INET6, &addr, &buf, socklen_t(buf.count))
                }
            } else {
                p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { a in
                    var addr = a.pointee.sin_addr
                    _ = inet_ntop(AF_INET, &addr, &buf, socklen_t(buf.count))
                }
            }
        }
        let ip = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return Int32(ss.ss_family) == AF_INET6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    /// Stops gracefully: no new connections; connections waiting for a request are closed at
    /// once; a request in flight is finished and its connection then closed (its response says
    /// `Connection: close`). After `timeout` seconds whatever is still open is cut, as by `stop`.
    /// Returns how many connections had to be cut.
    @discardableResult
    public func drain(timeout: Double) -> Int {
        lock.lock()
        stopping = true
        let fd = listenFD
        listenFD = -1
        // Under the lock: a connection closes its descriptor only after taking itself out of
        // `connections` under this lock, so no shutdown can reach a number reused since.
        for key in idle { connections[key]?.shutdown() }
        lock.unlock()
        if fd >= 0 { stopAccepting(fd) }
        let deadline = HTTPConnection.now() + UInt64(max(0, timeout) * 1e9)
        while activeConnections > 0 && HTTPConnection.now() < deadline { usleep(5_000) }
        let cut = activeConnections
        stop()
        return cut
    }

    /// Whether `drain` or `stop` has begun.
    public var isStopping: Bool { lock.lock(); defer { lock.unlock() }; return stopping }

    /// Stops accepting and closes every open connection.
    public func stop() {
        lock.lock()
        stopping = true
        let fd = listenFD
        listenFD = -1
        // Under the lock, so a connection that has just finished cannot have closed its
        // descriptor yet (it leaves `connections` under this lock first): shutting down a
        // closed number could cut whatever socket reused it, another server's connection
        // in the same process (a test saw its fresh connection closed this way).
        for t in connections.values { t.shutdown() }
        lock.unlock()
        if fd >= 0 { stopAccepting(fd) }
    }

    /// Wakes the accept thread (a shut-down listening socket fails `accept`) and waits for it to
    /// close the descriptor itself: closed here, its number could be reused by another socket
    /// before the thread's next `accept`, which would then take that socket's clients.
    private func stopAccepting(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
        for _ in 0..<400 {
            lock.lock()
            let running = accepting
            lock.unlock()
            if !running { return }
            usleep(5_000)
        }
    }

    private func acceptLoop(_ fd: Int32) {
        defer {
            Glibc.close(fd)
            lock.lock()
            accepting = false
            lock.unlock()
        }
        while true {
            var ss = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &ss) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(fd, $0, &len) }
            }
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                if errno == EMFILE || errno == ENFILE { usleep(10_000); continue }
                return
            }
            lock.lock()
            let stop = stopping
            let full = active >= limits.maxConnections
            if full { refusedTotal += 1 } else if !stop { active += 1 }
            lock.unlock()
            if stop { Glibc.close(client); return }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            if full {
                refuseBusy(client)
                let context = HTTPRequestContext(remoteAddress: HTTPServer.describe(ss), isTLS: transportFactory != nil)
                logRefusal(nil, HTTPResponse(status: 503), context, started: HTTPConnection.now())
                continue
            }
            var one: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let idle = max(1, limits.idleTimeout)
            var stv = timeval(tv_sec: Int(idle), tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &stv, socklen_t(MemoryLayout<timeval>.size))
            let remote = HTTPServer.describe(ss)
            let accepted = HTTPConnection.now()
            let thread = Thread { [self] in
                serve(client, remote: remote, accepted: accepted)
                lock.lock()
                active -= 1
                lock.unlock()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Over the connection cap: a 503 with Retry-After, without a thread and without reading,
    /// then close. Plain HTTP only; a TLS client just sees the connection close.
    private func refuseBusy(_ fd: Int32) {
        if transportFactory == nil {
            let body = "too many connections (limit \(limits.maxConnections)); retry later\n"
            let text = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
            _ = Array(text.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            _ = Glibc.shutdown(fd, Int32(SHUT_WR))
            // Drop what already arrived, so the close does not turn into a reset before the
            // client has read the answer.
            var scratch = [UInt8](repeating: 0, count: 4096)
            for _ in 0..<16 {
                let n = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n <= 0 { break }
            }
        }
        Glibc.close(fd)
    }

    private func serve(_ fd: Int32, remote: String, accepted: UInt64) {
        let transport: any HTTPTransport
        do {
            // The TLS handshake is part of the first request head: same deadline.
            let deadline = accepted + UInt64(max(0, limits.headerTimeout) * 1e9)
            transport = try transportFactory?(fd, deadline) ?? PlainTransport(fd: fd)
        } catch {
            Glibc.close(fd)
            return
        }
        let key = ObjectIdentifier(transport)
        lock.lock()
        connections[key] = transport
        let stop = stopping
        lock.unlock()
        defer {
            lock.lock()
            connections[key] = nil
            lock.unlock()
            transport.close()
        }
        if stop { return }
        let connection = HTTPConnection(transport: transport, limits: limits.headLimits, idleTimeout: max(0.001, limits.idleTimeout))
        let context = HTTPRequestContext(remoteAddress: remote, isTLS: transportFactory != nil)
        // The first request must arrive within the header timeout of the accept.
        connection.deadline = accepted + UInt64(max(0, limits.headerTimeout) * 1e9)
        while true {
            var head: HTTPRequestHead?
            let request: HTTPRequest
            // Between requests the connection is idle: a drain may close it now.
            lock.lock()
            let draining = stopping
            if !draining { idle.insert(key) }
            lock.unlock()
            if draining { return }
            let headResult = Result { try connection.readRequestHead(headerTimeout: limits.headerTimeout) }
            lock.lock()
            idle.remove(key)
            lock.unlock()
            let started = HTTPConnection.now()
            do {
                guard let h = try headResult.get() else { return }
                head = h
                request = try makeRequest(h, connection: connection)
            } catch HTTPError.rejected(let status, let reason) {
                refuse(status, reason, head: head, on: connection, context: context, started: started)
                return
            } catch HTTPError.timeout {
                refuse(408, "the request head did not arrive within \(limits.headerTimeout) seconds", head: head,
                       on: connection, context: context, started: started)
                return
            } catch {
                return
            }
            var response = handler.handle(request, context: context)
            let isHead = request.method == "HEAD"
            if isHead { response = response.headOnly() }
            // A body left unread must be consumed before the next request can be parsed.
            var keepAlive = request.keepAlive && !isStopping
            if !request.body.drain(limit: 1 << 20) { keepAlive = false }
            let ok = (try? send(response, on: connection, keepAlive: keepAlive, isHead: isHead,
                                http10: request.version == "HTTP/1.0")) != nil
            if let logger {
                logger(request, response, context, Double(HTTPConnection.now() - started) / 1e9)
            }
            if !ok { return }
            if !keepAlive {
                // Input may remain (a refused or broken body): drop it before closing.
                if !request.body.finished { connection.lingeringClose() }
                return
            }
        }
    }

    /// Answers a request the server will not parse further, then closes the connection: after
    /// a framing error nothing that follows on it can be trusted to start a request.
    private func refuse(_ status: Int, _ reason: String, head: HTTPRequestHead?, on connection: HTTPConnection,
                        context: HTTPRequestContext, started: UInt64) {
        let body = Array("\(HTTPResponse.reason(status)): \(reason)\n".utf8)
        let response = HTTPResponse(status: status, headers: [("Content-Type", "text/plain; charset=utf-8")], body: .bytes(body))
        _ = try? send(response, on: connection, keepAlive: false, isHead: false)
        logRefusal(head, response, context, started: started)
        connection.lingeringClose()
    }

    /// An access-log line for a request no handler saw ("-" for what was never parsed).
    private func logRefusal(_ head: HTTPRequestHead?, _ response: HTTPResponse, _ context: HTTPRequestContext, started: UInt64) {
        guard let logger else { return }
        let request = HTTPRequest(method: head?.method ?? "-", path: head?.target ?? "-", rawQuery: "",
                                  version: head?.version ?? "-", headers: head?.headers ?? [], body: .empty)
        logger(request, response, context, Double(HTTPConnection.now() - started) / 1e9)
    }

    private func makeRequest(_ head: HTTPRequestHead, connection: HTTPConnection) throws -> HTTPRequest {
        var target = head.target
        // Absolute-form targets (proxies) carry scheme and authority; keep the path.
        if target.lowercased().hasPrefix("http://") || target.lowercased().hasPrefix("https://") {
            if let r = target.range(of: "://"), let slash = target[r.upperBound...].firstIndex(of: "/") {
                target = String(target[slash...])
            } else { target = "/" }
        }
        var rawPath = target
        var query = ""
        if let q = target.firstIndex(of: "?") {
            rawPath = String(target[..<q])
            query = String(target[target.index(after: q)...])
        }
        guard let path = rawPath.removingPercentEncoding else {
            throw HTTPError.rejected(status: 400, reason: "the request path has a malformed percent-escape")
        }
        let framing = try HTTPFraming.bodyFraming(head.headers, version: head.version)
        var expect = false
        for h in head.headers where h.name.equalsHeaderName("Expect") {
            guard h.value.lowercased() == "100-continue" else {
                throw HTTPError.rejected(status: 417, reason: "only Expect: 100-continue is understood")
            }
            expect = true
        }
        let body = HTTPRequestBody(connection: connection, contentLength: framing.contentLength, chunked: framing.chunked,
                                   expectContinue: expect && head.version != "HTTP/1.0")
        return HTTPRequest(method: head.method, path: path, rawQuery: query, version: head.version,
                           headers: head.headers, body: body)
    }

    /// Writes the response. An HTTP/1.0 connection stays open only when the answer says
    /// `Connection: keep-alive` (such a client otherwise waits for the close to end the response).
    private func send(_ response: HTTPResponse, on connection: HTTPConnection, keepAlive: Bool, isHead: Bool,
                      http10: Bool = false) throws {
        var head = "HTTP/1.1 \(response.status) \(HTTPResponse.reason(response.status))\r\n"
        var hasLength = false
        for h in response.headers {
            if h.name.equalsHeaderName("Content-Length") { hasLength = true }
            head += "\(h.name): \(h.value)\r\n"
        }
        if !hasLength && response.status != 204 && response.status != 304 && !(100..<200).contains(response.status) {
            head += "Content-Length: \(response.contentLengthOverride ?? response.bodyLength)\r\n"
        }
        if !keepAlive { head += "Connection: close\r\n" } else if http10 { head += "Connection: keep-alive\r\n" }
        head += "\r\n"
        var bytes = Array(head.utf8)
        if case .stream(let length, let stream) = response.body {
            do {
                try connection.write(bytes, more: length > 0)
            } catch {
                stream.cancel()
                throw error
            }
            var left = length
            try stream.send { chunk in
                guard Int64(chunk.count) <= left else { throw HTTPError.io("streamed body longer than announced", EIO) }
                guard let base = chunk.baseAddress, !chunk.isEmpty else { return }
                try connection.transport.write(base, chunk.count, more: Int64(chunk.count) < left)
                left -= Int64(chunk.count)
            }
            if left != 0 { throw HTTPError.io("streamed body shorter than announced", EIO) }
            return
        }
        switch response.body {
        case .empty:
            try connection.write(bytes)
        case .bytes(let b):
            bytes.append(contentsOf: b)
            try connection.write(bytes)
        case .file(let fd, let offset, let length):
            defer { Glibc.close(fd) }
            try connection.write(bytes, more: length > 0)
            if length > 0, try !connection.transport.sendFile(fd: fd, offset: offset, length: length) {
                try HTTPServer.copyFile(fd: fd, offset: offset, length: length, to: connection)
            }
        case .stream:
            break
        }
    }

    static func copyFile(fd: Int32, offset: Int64, length: Int64, to connection: HTTPConnection) throws {
        let size = 256 * 1024
        let buf = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { buf.deallocate() }
        var off = offset
        var left = length
        while left > 0 {
            let n = pread(fd, buf, Int(min(Int64(size), left)), off_t(off))
            if n < 0 { if errno == EINTR { continue }; throw HTTPError.io("pread", errno) }
            if n == 0 { throw HTTPError.io("file shorter than announced", EIO) }
            try connection.transport.write(buf, n, more: Int64(n) < left)
            off += Int64(n)
            left -= Int64(n)
        }
    }
}
