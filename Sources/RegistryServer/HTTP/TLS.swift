import CTLS
import Foundation

/// HTTPS termination with OpenSSL's libssl: one shared context, one `SSL` per connection.
/// TLS 1.2 and later only. Blob bodies are copied through the TLS layer instead of
/// `sendfile(2)`.
final class TLSContext: @unchecked Sendable {
    private let ctx: OpaquePointer

    init(certificate: String, key: String) throws {
        guard let method = TLS_server_method(), let c = SSL_CTX_new(method) else {
            throw RegistryServerError.invalidConfiguration("cannot create a TLS context: \(TLSContext.lastError())")
        }
        ctx = c
        _ = ctls_ctx_min_tls12(c)
        _ = ctls_ctx_set_modes(c)
        guard SSL_CTX_use_certificate_chain_file(c, certificate) == 1 else {
            throw RegistryServerError.invalidConfiguration("cannot load TLS certificate \(certificate) (PEM expected): \(TLSContext.lastError())")
        }
        guard SSL_CTX_use_PrivateKey_file(c, key, ctls_filetype_pem()) == 1 else {
            throw RegistryServerError.invalidConfiguration("cannot load TLS key \(key) (PEM expected): \(TLSContext.lastError())")
        }
        guard SSL_CTX_check_private_key(c) == 1 else {
            throw RegistryServerError.invalidConfiguration("TLS key \(key) does not match certificate \(certificate)")
        }
    }

    deinit { SSL_CTX_free(ctx) }

    static func lastError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "unknown error" }
        var buf = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buf, buf.count)
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Runs the server handshake on an accepted socket, finished by `deadline` (uptime
    /// nanoseconds) however the client paces its bytes: the socket is non-blocking meanwhile
    /// and each wait is a `poll` bounded by what is left.
    func accept(_ fd: Int32, deadline: UInt64) throws -> any HTTPTransport {
        guard let ssl = SSL_new(ctx) else { throw HTTPError.io("SSL_new", ENOMEM) }
        SSL_set_fd(ssl, fd)
        // Non-blocking for the life of the connection: every wait is a poll with a bound.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        while true {
            let r = SSL_accept(ssl)
            if r == 1 { break }
            let err = SSL_get_error(ssl, r)
            ERR_clear_error()
            let now = HTTPConnection.now()
            guard err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE, deadline > now else {
                SSL_free(ssl)
                throw err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ? HTTPError.timeout : HTTPError.io("TLS handshake", EPROTO)
            }
            var pfd = pollfd(fd: fd, events: Int16(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), revents: 0)
            _ = poll(&pfd, 1, Int32(min(Int64(Int32.max), max(1, Int64((deadline - now) / 1_000_000)))))
        }
        return TLSTransport(ssl: ssl, fd: fd)
    }

    /// Waits until `fd` is ready for `events` or `deadline` (uptime nanoseconds) passes.
    static func wait(_ fd: Int32, _ events: Int32, until deadline: UInt64) throws {
        while true {
            let now = HTTPConnection.now()
            guard deadline > now else { throw HTTPError.timeout }
            var pfd = pollfd(fd: fd, events: Int16(events), revents: 0)
            let r = poll(&pfd, 1, Int32(min(Int64(Int32.max), max(1, Int64((deadline - now) / 1_000_000)))))
            if r > 0 { return }
            if r < 0 && errno != EINTR { throw HTTPError.io("poll", errno) }
        }
    }
}

final class TLSTransport: HTTPTransport {
    private let ssl: OpaquePointer
    let fd: Int32
    private var closed = false
    /// Longest wait of one read call: a record trickled byte by byte cannot stretch it,
    /// since the wait is one deadline, not a timeout per `recv`.
    private var readTimeoutNanos: UInt64 = 120_000_000_000
    private let writeTimeoutNanos: UInt64

    /// `fd` is non-blocking; writes wait at most the socket's SO_SNDTIMEO (or 120 s).
    init(ssl: OpaquePointer, fd: Int32) {
        self.ssl = ssl
        self.fd = fd
        var tv = timeval()
        var len = socklen_t(MemoryLayout<timeval>.size)
        getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len)
        let nanos = UInt64(max(0, tv.tv_sec)) * 1_000_000_000 + UInt64(max(0, tv.tv_usec)) * 1000
        writeTimeoutNanos = nanos > 0 ? nanos : 120_000_000_000
    }

    func setReadTimeout(microseconds: Int) {
        readTimeoutNanos = UInt64(max(1, microseconds)) * 1000
    }

    func read(_ buffer: UnsafeMutableRawPointer, _ count: Int) throws -> Int {
        let deadline = HTTPConnection.now() + readTimeoutNanos
        while true {
            let n = SSL_read(ssl, buffer, Int32(min(count, Int(Int32.max))))
            if n > 0 { return Int(n) }
            let err = SSL_get_error(ssl, n)
            ERR_clear_error()
            switch err {
            case SSL_ERROR_ZERO_RETURN: return 0
            case SSL_ERROR_WANT_READ: try TLSContext.wait(fd, Int32(POLLIN), until: deadline)
            case SSL_ERROR_WANT_WRITE: try TLSContext.wait(fd, Int32(POLLOUT), until: deadline)
            default: throw HTTPError.io("TLS read", EIO)
            }
        }
    }

    func write(_ buffer: UnsafeRawPointer, _ count: Int, more: Bool) throws {
        var done = 0
        let deadline = HTTPConnection.now() + writeTimeoutNanos
        while done < count {
            let n = SSL_write(ssl, buffer + done, Int32(min(count - done, 1 << 30)))
            if n <= 0 {
                let err = SSL_get_error(ssl, n)
                ERR_clear_error()
                switch err {
                case SSL_ERROR_WANT_WRITE: try TLSContext.wait(fd, Int32(POLLOUT), until: deadline)
                case SSL_ERROR_WANT_READ: try TLSContext.wait(fd, Int32(POLLIN), until: deadline)
                default: throw HTTPError.io("TLS write", EIO)
                }
                continue
            }
            done += Int(n)
        }
    }

    func sendFile(fd: Int32, offset: Int64, length: Int64) throws -> Bool { false }

    func shutdown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
    func shutdownWrite() { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    func close() {
        guard !closed else { return }
        closed = true
        SSL_shutdown(ssl)
        SSL_free(ssl)
        _ = Glibc.close(fd)
    }
}
