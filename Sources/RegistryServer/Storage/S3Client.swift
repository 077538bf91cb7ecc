import CCurl
import Foundation
import Registry
import Synchronization

/// Where and as whom the S3 driver talks to its object store (distribution's `storage.s3` keys).
public struct S3Config: Sendable, Equatable {
    /// `http(s)://host[:port]` of the S3 service (`regionendpoint`); AWS's own when empty.
    public var endpoint: String
    public var region: String
    public var bucket: String
    public var accessKey: String
    public var secretKey: String
    /// Key prefix under which everything is stored (`rootdirectory`), without slashes at the ends.
    public var rootDirectory: String
    /// `https://endpoint/bucket/key` when true, `https://bucket.endpoint/key` when false.
    public var forcePathStyle: Bool
    /// Whether blob GETs are redirected to presigned URLs of the bucket (distribution's
    /// `storage.redirect`, on unless `redirect.disable` is true); clients must then reach the
    /// S3 endpoint themselves.
    public var redirect: Bool

    public init(endpoint: String, region: String, bucket: String, accessKey: String, secretKey: String,
                rootDirectory: String = "", forcePathStyle: Bool = true, redirect: Bool = false) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.region = region
        self.bucket = bucket
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.rootDirectory = rootDirectory.split(separator: "/").joined(separator: "/")
        self.forcePathStyle = forcePathStyle
        self.redirect = redirect
    }
}

/// One S3 answer.
struct S3Response {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
    /// The `<Code>` of an S3 error body, empty when none.
    var errorCode: String { S3XML.values("Code", in: text).first ?? "" }
}

/// Signed HTTP requests to S3 through libcurl (CURLOPT_AWS_SIGV4), with a pool of easy
/// handles so connections are kept alive between calls from any thread.
final class S3Client: Sendable {
    let config: S3Config
    private let handles = Mutex<[CurlHandle]>([])
    /// Body bytes received from S3 so far (answers and object content), for tests and metrics.
    let bytesReceived = Atomic<Int64>(0)
    /// Requests sent to S3 so far (retries included), for tests and metrics.
    let requestsSent = Atomic<Int>(0)

    struct CurlHandle: @unchecked Sendable { let easy: UnsafeMutableRawPointer }

    init(config: S3Config) {
        self.config = config
    }

    deinit {
        handles.withLock { for h in $0 { dockbuild_curl_easy_cleanup(h.easy) } }
    }

    /// The place an error message names: `s3://bucket/key`.
    func location(_ key: String) -> String { "s3://\(config.bucket)/\(key)" }

    var baseURL: String {
        let endpoint = config.endpoint.isEmpty ? "https://s3.\(config.region).amazonaws.com" : config.endpoint
        if config.forcePathStyle { return "\(endpoint)/\(config.bucket)" }
        guard let schemeEnd = endpoint.range(of: "://") else { return "https://\(config.bucket).\(endpoint)" }
        return endpoint[..<schemeEnd.upperBound] + config.bucket + "." + endpoint[schemeEnd.upperBound...]
    }

    /// Percent-encodes everything but RFC 3986's unreserved characters (and `/` in keys), as
    /// SigV4's canonical form wants.
    static func encode(_ s: String, keepSlash: Bool) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, 0x2D, 0x2E, 0x5F, 0x7E: out.unicodeScalars.append(Unicode.Scalar(b))
            case 0x2F where keepSlash: out.append("/")
            default: out += String(format: "%%%02X", b)
            }
        }
        return out
    }

    private func checkout() throws -> CurlHandle {
        if let h = handles.withLock({ $0.popLast() }) {
            dockbuild_curl_easy_reset(h.easy)
            return h
        }
        guard let easy = dockbuild_curl_easy_init() else {
            throw RegistryServerError.storage(path: location(""), reason: "libcurl cannot be loaded (\(String(cString: dockbuild_curl_error()))); install libcurl4")
        }
        return CurlHandle(easy: easy)
    }

    private func checkin(_ h: CurlHandle) {
        let keep = handles.withLock { list -> Bool in
            if list.count < 32 { list.append(h); return true }
            return false
        }
        if !keep { dockbuild_curl_easy_cleanup(h.easy) }
    }

    /// The URL of `key` with `query` sorted and encoded (curl signs the query as given).
    func url(_ key: String?, query: [(String, String)]) -> String {
        var url = baseURL
        if let key { url += "/" + S3Client.encode(key, keepSlash: true) }
        if !query.isEmpty {
            url += "?" + query.sorted { $0.0 < $1.0 }
                .map { S3Client.encode($0.0, keepSlash: false) + "=" + S3Client.encode($0.1, keepSlash: false) }
                .joined(separator: "&")
        }
        return url
    }

    /// One signed request. Server errors (5xx, throttling) and failed connections are retried
    /// with backoff. With `sink`, a 2xx answer's body goes to it as it arrives instead of into
    /// the response (error bodies are still kept); then a transfer that failed after some of
    /// the body was handed over is not retried here (the caller knows where to resume), and an
    /// error the sink throws ends the transfer and is rethrown as it is.
    func send(_ method: String, key: String?, query: [(String, String)] = [], headers: [String] = [],
              body: [UInt8]? = nil, sink: (UnsafeRawBufferPointer) throws -> Void) throws -> S3Response {
        try withoutActuallyEscaping(sink) { sink in
            try send(method, key: key, query: query, headers: headers, body: body, streamingTo: sink)
        }
    }

    /// `send` without a sink: the answer's body is kept in the response.
    func send(_ method: String, key: String?, query: [(String, String)] = [], headers: [String] = [],
              body: [UInt8]? = nil) throws -> S3Response {
        try send(method, key: key, query: query, headers: headers, body: body, streamingTo: nil)
    }

    private func send(_ method: String, key: String?, query: [(String, String)], headers: [String],
                      body: [UInt8]?, streamingTo sink: ((UnsafeRawBufferPointer) throws -> Void)?) throws -> S3Response {
        let url = url(key, query: query)
        var attempt = 0
        while true {
            var delivered = false
            do {
                let r = try perform(method, url: url, headers: headers, body: body, sink: sink, delivered: &delivered)
                if (r.status >= 500 || r.errorCode == "SlowDown") && attempt < 3 {
                    attempt += 1
                    usleep(UInt32(100_000 << (2 * attempt)))
                    continue
                }
                return r
            } catch let e as TransportFailure {
                if attempt < 2 && e.retryable && !delivered {
                    attempt += 1
                    usleep(UInt32(100_000 << (2 * attempt)))
                    continue
                }
                throw RegistryServerError.storage(
                    path: location(key ?? ""),
                    reason: "cannot reach the S3 endpoint \(config.endpoint) (\(e.message)); check storage.s3.regionendpoint and that the service is running")
            }
        }
    }

    struct TransportFailure: Error {
        var message: String
        var retryable: Bool
    }

    final class Exchange {
        var status = 0
        var headers: [String: String] = [:]
        var body: [UInt8] = []
        var sink: ((UnsafeRawBufferPointer) throws -> Void)?
        var sinkError: (any Error)?
        var delivered = false
        var received: Int64 = 0
    }

    private func perform(_ method: String, url: String, headers: [String], body: [UInt8]?,
                         sink: ((UnsafeRawBufferPointer) throws -> Void)?, delivered: inout Bool) throws -> S3Response {
        let exchange = Exchange()
        exchange.sink = sink
        defer { delivered = exchange.delivered; exchange.sink = nil }
        return try perform(method, url: url, headers: headers, body: body, exchange: exchange)
    }

    private func perform(_ method: String, url: String, headers: [String], body: [UInt8]?, exchange: Exchange) throws -> S3Response {
        let h = try checkout()
        let easy = h.easy
        var reusable = true
        defer { if reusable { checkin(h) } else { dockbuild_curl_easy_cleanup(easy) } }
        defer { bytesReceived.add(exchange.received, ordering: .relaxed) }
        requestsSent.add(1, ordering: .relaxed)
        let ud = Unmanaged.passUnretained(exchange).toOpaque()
        var list: UnsafeMutablePointer<curl_slist>?
        // curl 7.88 signs the body's hash only for POSTFIELDS it can see; unsigned payloads are
        // what S3 and radosgw accept over any transport, and TLS protects them on the wire.
        for line in ["x-amz-content-sha256: UNSIGNED-PAYLOAD"] + headers {
            list = dockbuild_curl_slist_append(list, line)
        }
        defer { dockbuild_curl_slist_free_all(list) }
        _ = dockbuild_curl_setopt_string(easy, CURLOPT_URL, url)
        _ = dockbuild_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        _ = dockbuild_curl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, 5000)
        // A stalled transfer (under 1 byte/s for 60 s) fails rather than hanging a request.
        _ = dockbuild_curl_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, 1)
        _ = dockbuild_curl_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, 60)
        _ = dockbuild_curl_setopt_string(easy, CURLOPT_AWS_SIGV4, "aws:amz:\(config.region):s3")
        _ = dockbuild_curl_setopt_string(easy, CURLOPT_USERNAME, config.accessKey)
        _ = dockbuild_curl_setopt_string(easy, CURLOPT_PASSWORD, config.secretKey)
        _ = dockbuild_curl_setopt_string(easy, CURLOPT_USERAGENT, "dockbuild-registry")
        _ = dockbuild_curl_setopt_slist(easy, CURLOPT_HTTPHEADER, list)
        _ = dockbuild_curl_setopt_io(easy, CURLOPT_HEADERFUNCTION) { ptr, size, n, ud in
            let count = size * n
            guard let ptr, let ud else { return count }
            let ex = Unmanaged<S3Client.Exchange>.fromOpaque(ud).takeUnretainedValue()
            switch CurlHeaderLine(UnsafeRawBufferPointer(start: ptr, count: count)) {
            case .status(let code): ex.headers.removeAll(); ex.status = code
            case .header(let name, let value): ex.headers[name] = value
            case .other: break
            }
            return count
        }
        _ = dockbuild_curl_setopt_pointer(easy, CURLOPT_HEADERDATA, ud)
        _ = dockbuild_curl_setopt_io(easy, CURLOPT_WRITEFUNCTION) { ptr, size, n, ud in
            let count = size * n
            guard let ptr, let ud else { return count }
            let ex = Unmanaged<S3Client.Exchange>.fromOpaque(ud).takeUnretainedValue()
            let bytes = UnsafeRawBufferPointer(start: ptr, count: count)
            ex.received += Int64(count)
            if let sink = ex.sink, (200..<300).contains(ex.status) {
                do {
                    try sink(bytes)
                    ex.delivered = true
                } catch {
                    ex.sinkError = error
                    return 0  // curl stops the transfer (CURLE_WRITE_ERROR)
                }
            } else {
                ex.body.append(contentsOf: bytes)
            }
            return count
        }
        _ = dockbuild_curl_setopt_pointer(easy, CURLOPT_WRITEDATA, ud)
        // Streamed content goes to the client in larger writes than curl's 16 KiB default.
        if exchange.sink != nil { _ = dockbuild_curl_setopt_long(easy, CURLOPT_BUFFERSIZE, 1 << 20) }
        if method == "HEAD" {
            _ = dockbuild_curl_setopt_long(easy, CURLOPT_NOBODY, 1)
        } else if method != "GET" {
            _ = dockbuild_curl_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method)
        }
        let payload = body ?? (method == "PUT" || method == "POST" ? [] : nil)
        let code: CURLcode
        if let payload {
            code = payload.withUnsafeBytes { raw in
                _ = dockbuild_curl_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(raw.count))
                _ = dockbuild_curl_setopt_pointer(easy, CURLOPT_POSTFIELDS,
                                                  UnsafeMutableRawPointer(mutating: raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1)))
                return dockbuild_curl_easy_perform(easy)
            }
        } else {
            code = dockbuild_curl_easy_perform(easy)
        }
        guard code == CURLE_OK else {
            reusable = false
            if let own = exchange.sinkError { throw own }
            let retryable = code == CURLE_COULDNT_CONNECT || code == CURLE_SEND_ERROR || code == CURLE_RECV_ERROR
                || code == CURLE_GOT_NOTHING || code == CURLE_OPERATION_TIMEDOUT
            throw TransportFailure(message: String(cString: dockbuild_curl_easy_strerror(code)), retryable: retryable)
        }
        return S3Response(status: exchange.status, headers: exchange.headers, body: exchange.body)
    }

    /// The error for an unexpected answer, saying what to do about the common causes.
    func failure(_ r: S3Response, _ what: String, key: String) -> RegistryServerError {
        let code = r.errorCode
        let place = location(key)
        switch (r.status, code) {
        case (403, _) where ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", ""].contains(code):
            return .storage(path: place, reason: "S3 refused \(what) (HTTP 403 \(code.isEmpty ? "Forbidden" : code)); check the access key and secret (storage.s3.accesskey/secretkey or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and that they may use bucket \(config.bucket)")
        case (404, "NoSuchBucket"):
            return .storage(path: place, reason: "bucket \(config.bucket) does not exist at \(config.endpoint); create it (for example `s3cmd mb s3://\(config.bucket)`) or fix storage.s3.bucket")
        default:
            let message = S3XML.values("Message", in: r.text).first ?? ""
            return .storage(path: place, reason: "S3 answered \(what) with HTTP \(r.status) \(code)\(message.isEmpty ? "" : ": " + message)")
        }
    }
}

/// Just enough XML for S3's answers: the text of each `<tag>` element, entities decoded.
enum S3XML {
    static func values(_ tag: String, in xml: String) -> [String] {
        var out: [String] = []
        var rest = xml[...]
        let open = "<\(tag)>", close = "</\(tag)>"
        while let start = rest.range(of: open), let end = rest.range(of: close, range: start.upperBound..<rest.endIndex) {
            out.append(decode(String(rest[start.upperBound..<end.lowerBound])))
            rest = rest[end.upperBound...]
        }
        return out
    }

    static func decode(_ s: String) -> String {
        guard s.contains("&") else { return s }
        return s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&#39;", with: "'").replacingOccurrences(of: "&amp;", with: "&")
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
