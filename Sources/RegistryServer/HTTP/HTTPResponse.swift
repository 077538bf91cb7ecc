import Foundation

/// A body produced while it is sent: `length` bytes that `send` writes through `write`, in
/// order, on the connection's thread. A pull-through cache streams an upstream blob this way.
/// Throwing before all `length` bytes are written cuts the connection, so the client sees a
/// short body, never a wrong one. Exactly one of `send` and `cancel` is called.
public protocol HTTPBodyStream: AnyObject, Sendable {
    func send(_ write: (UnsafeRawBufferPointer) throws -> Void) throws
    /// The body will not be sent (a HEAD request, or the client is gone before its head went out).
    func cancel()
}

/// A streamed body made by a closure that hands its bytes to the sink it is given, in order
/// (content read from a remote store a piece at a time); nothing to release when not sent.
public final class ProducedBody: HTTPBodyStream {
    let produce: @Sendable ((UnsafeRawBufferPointer) throws -> Void) throws -> Void
    public init(_ produce: @escaping @Sendable ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) { self.produce = produce }
    public func send(_ write: (UnsafeRawBufferPointer) throws -> Void) throws { try produce(write) }
    public func cancel() {}
}

/// A response: status, headers and one of four body kinds. A file body goes out with
/// `sendfile(2)` so blob bytes never pass through user space.
public struct HTTPResponse: Sendable {
    public enum Body: Sendable {
        case empty
        case bytes([UInt8])
        /// `length` bytes of an open file from `offset`; the server closes `fd` when done.
        case file(fd: Int32, offset: Int64, length: Int64)
        /// `length` bytes written by `stream` as they are produced.
        case stream(length: Int64, any HTTPBodyStream)
    }

    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: Body
    /// Set when the body is sent elsewhere (HEAD): the Content-Length to announce.
    public var contentLengthOverride: Int64?
    /// The user whose credentials the handler verified, for the access log; never sent.
    public var user: String?
    /// The route the registry handler parsed (`nil` inside: no such endpoint) and the request id
    /// it sent, so the access log, metrics and notifications do not parse the path or search
    /// the headers again; `nil` when no registry handler answered (refused before it). Never sent.
    var registryRoute: RegistryHandler.Route??
    var requestID: String?

    public init(status: Int, headers: [(name: String, value: String)] = [], body: Body = .empty) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public init(status: Int, headers: [(name: String, value: String)] = [], data: Data) {
        self.init(status: status, headers: headers, body: .bytes([UInt8](data)))
    }

    public mutating func setHeader(_ name: String, _ value: String) {
        headers.removeAll { $0.name.equalsHeaderName(name) }
        headers.append((name, value))
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.name.equalsHeaderName(name) }?.value
    }

    var bodyLength: Int64 {
        switch body {
        case .empty: 0
        case .bytes(let b): Int64(b.count)
        case .file(_, _, let length): length
        case .stream(let length, _): length
        }
    }

    /// Drops the body but keeps its length, as HEAD requires; closes a file body's descriptor.
    func headOnly() -> HTTPResponse {
        var r = self
        r.contentLengthOverride = contentLengthOverride ?? bodyLength
        if case .file(let fd, _, _) = body { close(fd) }
        if case .stream(_, let stream) = body { stream.cancel() }
        r.body = .empty
        return r
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 206: "Partial Content"
        case 301: "Moved Permanently"
        case 307: "Temporary Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 411: "Length Required"
        case 413: "Payload Too Large"
        case 415: "Unsupported Media Type"
        case 416: "Range Not Satisfiable"
        case 417: "Expectation Failed"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: "Status"
        }
    }
}
