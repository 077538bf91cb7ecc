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

/// Wraps accepted sockets (TLS); plain TCP when nil.
typealias TransportFactory = @Sendable (Int32) throws -> any HTTPTransport

/// A small HTTP/1.1 server on POSIX sockets: one accept thread and one thread per connection,
/// keep-alive, chunked and Content-Length bodies, `Expect: 100-continue`, and `sendfile(2)`
/// for file bodies. Chosen over an event-loop framework for build time and for zero-copy blobs.
public final class HTTPServer: @unchecked Sendable {
    private let handler: any HTTPHandler
    private let logger: HTTPAccessLogger?
    private let transportFactory: TransportFactory?
    private let lock = NSLock()
    private var listenFD: Int32 = -1
    private var connections: [ObjectIdentifier: any HTTPTransport] = [:]
    private var stopping = false
    private var acceptThread: Thread?
    private let idleTimeoutSeconds: Int
    /// The port actually bound (useful with port 0).
    public private(set) var port: Int = 0
    /// The host part the server was bound to.
    public private(set) var host: String = ""

    public init(handler: any HTTPHandler, idleTimeoutSeconds: Int = 120, logger: HTTPAccessLogger? = nil) {
        self.handler = handler
        self.logger = logger
        self.transportFactory = nil
        self.idleTimeoutSeconds = idleTimeoutSeconds
    }

    init(handler: any HTTPHandler, idleTimeoutSeconds: Int, logger: HTTPAccessLogger?, transportFactory: TransportFactory?) {
        self.handler = handler
        self.logger = logger
        self.transportFactory = transportFactory
        self.idleTimeoutSeconds = idleTimeoutSeconds
    }

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

    /// Stops accepting and closes every open connection.
    public func stop() {
        lock.lock()
        stopping = true
        let fd = listenFD
        listenFD = -1
        let open = Array(connections.values)
        lock.unlock()
        if fd >= 0 {
            _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
            Glibc.close(fd)
        }
        for t in open { t.shutdown() }
    }

    private func acceptLoop(_ fd: Int32) {
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
            lock.unlock()
            if stop { Glibc.close(client); return }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            var one: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            var tv = timeval(tv_sec: idleTimeoutSeconds, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let remote = HTTPServer.describe(ss)
            let thread = Thread { [self] in serve(client, remote: remote) }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    private func serve(_ fd: Int32, remote: String) {
        let transport: any HTTPTransport
        do {
            transport = try transportFactory?(fd) ?? PlainTransport(fd: fd)
        } catch {
            Glibc.close(fd)
            return
        }
        let key = ObjectIdentifier(transport)
        lock.lock()
        connections[key] = transport
        lock.unlock()
        defer {
            lock.lock()
            connections[key] = nil
            lock.unlock()
            transport.close()
        }
        let connection = HTTPConnection(transport: transport)
        let context = HTTPRequestContext(remoteAddress: remote, isTLS: transportFactory != nil)
        while true {
            let head: (method: String, target: String, version: String, headers: [(name: String, value: String)])
            do {
                guard let h = try connection.readRequestHead() else { return }
                head = h
            } catch HTTPError.headersTooLarge {
                _ = try? send(HTTPResponse(status: 431), on: connection, keepAlive: false, isHead: false)
                return
            } catch HTTPError.malformed {
                _ = try? send(HTTPResponse(status: 400), on: connection, keepAlive: false, isHead: false)
                return
            } catch {
                return
            }
            let started = DispatchTime.now().uptimeNanoseconds
            let request: HTTPRequest
            switch makeRequest(head, connection: connection) {
            case .success(let r): request = r
            case .failure(let status):
                _ = try? send(HTTPResponse(status: status), on: connection, keepAlive: false, isHead: false)
                return
            }
            var response = handler.handle(request, context: context)
            let isHead = request.method == "HEAD"
            if isHead { response = response.headOnly() }
            // A body left unread must be consumed before the next request can be parsed.
            var keepAlive = request.keepAlive
            if !request.body.drain(limit: 1 << 20) { keepAlive = false }
            let ok = (try? send(response, on: connection, keepAlive: keepAlive, isHead: isHead)) != nil
            if let logger {
                logger(request, response, context, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
            }
            if !ok || !keepAlive { return }
        }
    }

    private enum RequestResult { case success(HTTPRequest), failure(Int) }

    private func makeRequest(_ head: (method: String, target: String, version: String, headers: [(name: String, value: String)]), connection: HTTPConnection) -> RequestResult {
        var target = head.target
        // Absolute-form targets (proxies) carry scheme and authority; keep the path.
        if target.hasPrefix("http://") || target.hasPrefix("https://") {
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
        guard let path = rawPath.removingPercentEncoding else { return .failure(400) }
        var contentLength: Int64?
        var chunked = false
        var expect = false
        for h in head.headers {
            if h.name.caseInsensitiveCompare("Content-Length") == .orderedSame {
                guard let n = Int64(h.value), n >= 0 else { return .failure(400) }
                if let c = contentLength, c != n { return .failure(400) }
                contentLength = n
            } else if h.name.caseInsensitiveCompare("Transfer-Encoding") == .orderedSame {
                let codings = h.value.lowercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                if codings.last == "chunked" { chunked = true } else { return .failure(501) }
            } else if h.name.caseInsensitiveCompare("Expect") == .orderedSame {
                if h.value.lowercased() == "100-continue" { expect = true } else { return .failure(417) }
            }
        }
        let body = HTTPRequestBody(connection: connection, contentLength: contentLength, chunked: chunked,
                                   expectContinue: expect && head.version != "HTTP/1.0")
        return .success(HTTPRequest(method: head.method, path: path, rawQuery: query, version: head.version,
                                    headers: head.headers, body: body))
    }

    private func send(_ response: HTTPResponse, on connection: HTTPConnection, keepAlive: Bool, isHead: Bool) throws {
        var head = "HTTP/1.1 \(response.status) \(HTTPResponse.reason(response.status))\r\n"
        var hasLength = false
        for h in response.headers {
            if h.name.caseInsensitiveCompare("Content-Length") == .orderedSame { hasLength = true }
            head += "\(h.name): \(h.value)\r\n"
        }
        if !hasLength && response.status != 204 && response.status != 304 && !(100..<200).contains(response.status) {
            head += "Content-Length: \(response.contentLengthOverride ?? response.bodyLength)\r\n"
        }
        if !keepAlive { head += "Connection: close\r\n" }
        head += "\r\n"
        var bytes = Array(head.utf8)
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
