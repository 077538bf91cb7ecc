import Foundation
import Synchronization

/// One HTTP header field as sent or received.
public struct HTTPHeader: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// What a request sends as its body. Files are read in place so large blobs never sit in memory.
public enum HTTPBody: Sendable {
    case none
    case data(Data)
    /// `length` bytes of the file at `path` starting at `offset`.
    case file(path: String, offset: Int64, length: Int64)

    var length: Int64 {
        switch self {
        case .none: 0
        case let .data(d): Int64(d.count)
        case let .file(_, _, length): length
        }
    }
}

/// One HTTP exchange to perform. Redirects are not followed by the transport: the registry
/// client decides, so that credentials never travel to another host.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: URL
    public var headers: [HTTPHeader]
    public var body: HTTPBody
    /// Called with the bytes uploaded so far, from the transport thread (uploads only).
    public var uploadProgress: (@Sendable (Int64) -> Void)?
    /// False for `--insecure` registries: TLS without checking the certificate (as docker does).
    public var verifyTLS = true

    public init(method: String = "GET", url: URL, headers: [HTTPHeader] = [], body: HTTPBody = .none) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }

    /// Replaces (or adds) a header, case-insensitively.
    public mutating func setHeader(_ name: String, _ value: String?) {
        headers.removeAll { $0.name.lowercased() == name.lowercased() }
        if let value { headers.append(HTTPHeader(name, value)) }
    }
}

/// Status and headers of a response (names lowercased).
public struct HTTPResponseHead: Sendable {
    public var status: Int
    public var headers: [HTTPHeader]

    public init(status: Int, headers: [HTTPHeader]) {
        self.status = status
        self.headers = headers
    }

    /// The first value of a header, case-insensitive.
    public func header(_ name: String) -> String? {
        let n = name.lowercased()
        return headers.first { $0.name == n }?.value
    }

    /// Every value of a header (e.g. several WWW-Authenticate).
    public func headers(_ name: String) -> [String] {
        let n = name.lowercased()
        return headers.filter { $0.name == n }.map(\.value)
    }
}

/// A response: head plus, when no sink took it, the body (bounded; error bodies are small).
public struct HTTPResponse: Sendable {
    public var head: HTTPResponseHead
    public var body: Data
    /// Whether the body went to the request's sink.
    public var streamed: Bool

    public var status: Int { head.status }
    public func header(_ name: String) -> String? { head.header(name) }
}

/// Receives the body of a successful (2xx) response as it arrives, on the transport's thread.
///
/// A sink that can resume reports how many bytes it already holds; the client then asks for
/// the rest with `Range` after a broken connection.
public protocol BodySink: AnyObject, Sendable {
    /// Called once per response, before its first bytes. Return false to treat the body as an
    /// error body instead (collected, not streamed).
    func begin(_ head: HTTPResponseHead) throws -> Bool
    /// Bytes of the body, in order.
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Bytes already received and kept; > 0 makes the next attempt a `Range` request.
    var resumeOffset: Int64 { get }
}

extension BodySink {
    public var resumeOffset: Int64 { 0 }
}

/// Collects a body in memory, up to a limit (manifests, tokens, configs).
public final class DataSink: BodySink, Sendable {
    private let buffer = Mutex(Data())
    private let limit: Int

    public init(limit: Int = 64 << 20) { self.limit = limit }

    public func begin(_ head: HTTPResponseHead) throws -> Bool {
        buffer.withLock { $0.removeAll(keepingCapacity: true) }
        return true
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        let limit = limit
        try buffer.withLock { (buffer: inout Data) throws(RegistryError) in
            guard buffer.count + bytes.count <= limit else {
                throw RegistryError.local("response body exceeds \(limit) bytes")
            }
            buffer.append(contentsOf: bytes)
        }
    }

    public var data: Data { buffer.withLock { $0 } }
}
