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

    /// Runs the server handshake on an accepted socket.
    func accept(_ fd: Int32) throws -> any HTTPTransport {
        guard let ssl = SSL_new(ctx) else { throw HTTPError.io("SSL_new", ENOMEM) }
        SSL_set_fd(ssl, fd)
        guard SSL_accept(ssl) == 1 else {
            ERR_clear_error()
            SSL_free(ssl)
            throw HTTPError.io("TLS handshake", EPROTO)
        }
        return TLSTransport(ssl: ssl, fd: fd)
    }
}

final class TLSTransport: HTTPTransport {
    private let ssl: OpaquePointer
    let fd: Int32
    private var closed = false

    init(ssl: OpaquePointer, fd: Int32) {
        self.ssl = ssl
        self.fd = fd
    }

    func read(_ buffer: UnsafeMutableRawPointer, _ count: Int) throws -> Int {
        let n = SSL_read(ssl, buffer, Int32(min(count, Int(Int32.max))))
        if n > 0 { return Int(n) }
        let err = SSL_get_error(ssl, n)
        ERR_clear_error()
        if err == SSL_ERROR_ZERO_RETURN { return 0 }
        if err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE { throw HTTPError.timeout }
        throw HTTPError.io("TLS read", EIO)
    }

    func write(_ buffer: UnsafeRawPointer, _ count: Int, more: Bool) throws {
        var done = 0
        while done < count {
            let n = SSL_write(ssl, buffer + done, Int32(min(count - done, 1 << 30)))
            if n <= 0 {
                ERR_clear_error()
                throw HTTPError.io("TLS write", EIO)
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
