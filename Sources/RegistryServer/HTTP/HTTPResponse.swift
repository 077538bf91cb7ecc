import Foundation

/// A response: status, headers and one of three body kinds. A file body goes out with
/// `sendfile(2)` so blob bytes never pass through user space.
public struct HTTPResponse: Sendable {
    public enum Body: Sendable {
        case empty
        case bytes([UInt8])
        /// `length` bytes of an open file from `offset`; the server closes `fd` when done.
        case file(fd: Int32, offset: Int64, length: Int64)
        /// `length` bytes made while they are sent: `produce` hands them to the sink it is given,
        /// in order (content read from a remote store, a piece at a time).
        case stream(length: Int64, produce: @Sendable ((UnsafeRawBufferPointer) throws -> Void) throws -> Void)
    }

    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: Body
    /// Set when the body is sent elsewhere (HEAD): the Content-Length to announce.
    public var contentLengthOverride: Int64?
    /// The user whose credentials the handler verified, for the access log; never sent.
    public var user: String?

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
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: "Status"
        }
    }
}
