import CCurl
import Foundation
import Logging

/// Settings of the HTTP transport.
public struct TransportOptions: Sendable {
    /// Receive buffer per transfer: large buffers are what make curl fast on fast links.
    public var bufferSize: Int = 512 * 1024
    /// Upload buffer per transfer.
    public var uploadBufferSize: Int = 1024 * 1024
    public var connectTimeout: Int = 30
    /// A transfer slower than 1 byte/s for this long is treated as a broken connection.
    public var stallTimeout: Int = 60
    /// Where docker keeps per-registry CAs and client certificates (`HOST[:PORT]/ca.crt`).
    public var certsDirectory: String = "/etc/docker/certs.d"
    public var userAgent: String = "dockbuild/0.1"
    /// Where the transport logs: at debug level, one line per HTTP exchange (see
    /// `RegistryTrace`). `DOCKBUILD_REGISTRY_TRACE` turns debug on for this logger alone.
    public var logger: Logger

    public init(logger: Logger = Logger(label: "dockbuild.registry")) {
        var logger = logger
        if getenv("DOCKBUILD_REGISTRY_TRACE") != nil { logger.logLevel = .debug }
        self.logger = logger
    }
}

/// The one type that owns libcurl. It performs single HTTP exchanges on its own threads
/// (never the cooperative pool) and streams response bodies into a `BodySink`.
///
/// Easy handles are pooled and reset between uses, so connections (and TLS sessions) are
/// reused across requests to the same registry.
public final class Transport: Sendable {
    public let options: TransportOptions
    private let pool = HandlePool()

    public init(options: TransportOptions = TransportOptions()) {
        self.options = options
    }

    /// Performs one exchange. The body of a 2xx response goes to `sink` when one is given and it
    /// accepts it; otherwise it is returned in the response (bounded).
    public func perform(_ request: HTTPRequest, sink: (any BodySink)? = nil) async throws -> HTTPResponse {
        try await onOwnThread(stackSize: 1 << 20) { [self] in try performBlocking(request, sink: sink) }
    }

    /// The synchronous form of `perform`, for callers already on their own thread.
    public func performBlocking(_ request: HTTPRequest, sink: (any BodySink)?) throws -> HTTPResponse {
        let handle = try pool.take()
        defer { pool.give(handle) }
        return try handle.perform(request, sink: sink, options: options)
    }
}

/// Keeps idle easy handles so their connection caches survive between requests.
final class HandlePool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [CurlHandle] = []

    func take() throws -> CurlHandle {
        if let h = lock.withLock({ idle.popLast() }) { return h }
        guard let h = CurlHandle() else {
            // libcurl is loaded on first use (ccurl.h): say why when it is not there.
            let why = String(cString: dockbuild_curl_error())
            throw RegistryError.local(why.isEmpty ? "libcurl could not create a handle (out of memory?)" : why)
        }
        return h
    }

    func give(_ h: CurlHandle) {
        lock.withLock {
            if idle.count < 16 { idle.append(h) }
        }
    }
}

/// State of one transfer, reached from curl's C callbacks through the userdata pointer.
final class TransferState {
    var status = 0
    var headers: [HTTPHeader] = []
    let sink: (any BodySink)?
    var decided = false
    var streaming = false
    var collected = Data()
    var failure: (any Error)?
    // Upload side.
    var uploadData: Data?
    var uploadFD: Int32 = -1
    var uploadBase: Int64 = 0
    var uploadLength: Int64 = 0
    var uploadPos: Int64 = 0
    var uploadProgress: (@Sendable (Int64) -> Void)?
    var lastReported: Int64 = -1

    init(sink: (any BodySink)?) { self.sink = sink }

    var head: HTTPResponseHead { HTTPResponseHead(status: status, headers: headers) }
}

/// An easy handle plus its error buffer.
final class CurlHandle: @unchecked Sendable {
    let easy: UnsafeMutableRawPointer
    let errorBuffer: UnsafeMutablePointer<CChar>

    init?() {
        guard let e = dockbuild_curl_easy_init() else { return nil }
        easy = e
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        dockbuild_curl_easy_cleanup(easy)
        errorBuffer.deallocate()
    }

    func perform(_ request: HTTPRequest, sink: (any BodySink)?, options: TransportOptions) throws -> HTTPResponse {
        dockbuild_curl_easy_reset(easy)
        errorBuffer[0] = 0
        let state = TransferState(sink: sink)
        let userdata = Unmanaged.passUnretained(state).toOpaque()
        let urlString = request.url.absoluteString

        // Strings handed to curl are copied by it (curl >= 7.17), so temporaries are fine.
        _ = dockbuild_curl_setopt_string(easy, CURLOPT_URL, urlString)
        _ = dockbuild_curl_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        _ = dockbuild_curl_setopt_long(easy, CURLOPT_BUFFERSIZE, options.bufferSize)
        _ = dockbuild_curl_setopt_long(easy, CURLOPT_UPLOAD_BUFFERSIZE, options.uploadBufferSize)
        _ = dockbuild_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        _ = dockbuild_curl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT, options.connectTimeout)
        _ = dockbuild_curl_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, 1)
        _ = dockbuild_curl_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, options.stallTimeout)
        _ = dockbuild_curl_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0)
        _ = dockbuild_curl_setopt_long(easy, CURLOPT_TCP_NODELAY, 1)
        _ = dockbuild_curl_setopt_string(easy, CURLOPT_USERAGENT, options.userAgent)
        // Registries compress nothing worth it; ask for identity so digests see the real bytes.
        _ = dockbuild_curl_setopt_pointer(easy, CURLOPT_ACCEPT_ENCODING, nil)

        if !request.verifyTLS {
            _ = dockbuild_curl_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 0)
            _ = dockbuild_curl_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 0)
        }
        if let host = request.url.host, request.url.scheme == "https" {
            let hostPort = request.url.port.map { "\(host):\($0)" } ?? host
            // HOST:PORT before HOST; the first directory that has a file wins.
            let dirs = (hostPort == host ? [host] : [hostPort, host]).map { options.certsDirectory + "/" + $0 }
            if let base = dirs.first(where: { FileManager.default.fileExists(atPath: $0 + "/ca.crt") }) {
                _ = dockbuild_curl_setopt_string(easy, CURLOPT_CAINFO, base + "/ca.crt")
            }
            if let base = dirs.first(where: { FileManager.default.fileExists(atPath: $0 + "/client.cert")
                                              && FileManager.default.fileExists(atPath: $0 + "/client.key") }) {
                _ = dockbuild_curl_setopt_string(easy, CURLOPT_SSLCERT, base + "/client.cert")
                _ = dockbuild_curl_setopt_string(easy, CURLOPT_SSLKEY, base + "/client.key")
            }
        }

        _ = dockbuild_curl_setopt_io(easy, CURLOPT_HEADERFUNCTION, curlHeaderCallback)
        _ = dockbuild_curl_setopt_pointer(easy, CURLOPT_HEADERDATA, userdata)
        _ = dockbuild_curl_setopt_io(easy, CURLOPT_WRITEFUNCTION, curlWriteCallback)
        _ = dockbuild_curl_setopt_pointer(easy, CURLOPT_WRITEDATA, userdata)

        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { if let headerList { dockbuild_curl_slist_free_all(headerList) } }
        for h in request.headers {
            headerList = dockbuild_curl_slist_append(headerList, "\(h.name): \(h.value)")
        }

        var fileToClose: Int32 = -1
        defer { if fileToClose >= 0 { close(fileToClose) } }

        let method = request.method.uppercased()
        switch method {
        case "GET":
            _ = dockbuild_curl_setopt_long(easy, CURLOPT_HTTPGET, 1)
        case "HEAD":
            _ = dockbuild_curl_setopt_long(easy, CURLOPT_NOBODY, 1)
        case "DELETE":
            _ = dockbuild_curl_setopt_string(easy, CURLOPT_CUSTOMREQUEST, "DELETE")
        default:
            // POST, PUT, PATCH: all sent as an upload of a known length (possibly 0).
            _ = dockbuild_curl_setopt_long(easy, CURLOPT_UPLOAD, 1)
            if method != "PUT" { _ = dockbuild_curl_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method) }
            _ = dockbuild_curl_setopt_off(easy, CURLOPT_INFILESIZE_LARGE, curl_off_t(request.body.length))
            headerList = dockbuild_curl_slist_append(headerList, "Expect:")
            switch request.body {
            case .none:
                state.uploadData = Data()
            case let .data(d):
                state.uploadData = d
                state.uploadLength = Int64(d.count)
            case let .file(path, offset, length):
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else {
                    throw RegistryError.local("cannot open \(path) to upload it: \(String(cString: strerror(errno)))")
                }
                fileToClose = fd
                state.uploadFD = fd
                state.uploadBase = offset
                state.uploadLength = length
            }
            _ = dockbuild_curl_setopt_io(easy, CURLOPT_READFUNCTION, curlReadCallback)
            _ = dockbuild_curl_setopt_pointer(easy, CURLOPT_READDATA, userdata)
            _ = dockbuild_curl_setopt_seek(easy, CURLOPT_SEEKFUNCTION, curlSeekCallback)
            _ = dockbuild_curl_setopt_pointer(easy, CURLOPT_SEEKDATA, userdata)
            if let p = request.uploadProgress {
                state.uploadProgress = p
                _ = dockbuild_curl_setopt_long(easy, CURLOPT_NOPROGRESS, 0)
                _ = dockbuild_curl_setopt_xferinfo(easy, curlProgressCallback)
                _ = dockbuild_curl_setopt_pointer(easy, CURLOPT_XFERINFODATA, userdata)
            }
        }
        if let headerList { _ = dockbuild_curl_setopt_slist(easy, CURLOPT_HTTPHEADER, headerList) }

        let tracing = options.logger.logLevel <= .debug
        let traceStart = tracing ? RegistryTrace.elapsedMs() : 0
        let code = dockbuild_curl_easy_perform(easy)
        if tracing { trace(method, request, code, start: traceStart, logger: options.logger) }
        if let failure = state.failure { throw failure }
        if code != CURLE_OK {
            let detail = errorBuffer[0] != 0 ? String(cString: errorBuffer) : String(cString: dockbuild_curl_easy_strerror(code))
            throw RegistryError.transport(url: urlString, message: detail, retryable: CurlHandle.retryable(code))
        }
        var status = 0
        _ = dockbuild_curl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        state.status = status
        // A sink whose response had no body still learns about the response.
        if !state.decided, status / 100 == 2, method != "HEAD", let sink {
            state.streaming = try sink.begin(state.head)
        }
        return HTTPResponse(head: state.head, body: state.collected, streamed: state.streaming)
    }

    /// The trace line of the transfer just performed (see `RegistryTrace`).
    private func trace(_ method: String, _ request: HTTPRequest, _ code: CURLcode, start: Double, logger: Logger) {
        let end = RegistryTrace.elapsedMs()
        var status = 0
        _ = dockbuild_curl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        var connects = 0
        _ = dockbuild_curl_getinfo_long(easy, CURLINFO_NUM_CONNECTS, &connects)
        func off(_ i: CURLINFO) -> Int64 {
            var v: curl_off_t = 0
            _ = dockbuild_curl_getinfo_off(easy, i, &v)
            return Int64(v)
        }
        func ms(_ us: Int64) -> String { String(format: "%.1f", Double(us) / 1000) }
        let up = off(CURLINFO_SIZE_UPLOAD_T), down = off(CURLINFO_SIZE_DOWNLOAD_T)
        let pre = off(CURLINFO_PRETRANSFER_TIME_T), first = off(CURLINFO_STARTTRANSFER_TIME_T), total = off(CURLINFO_TOTAL_TIME_T)
        var path = request.url.path
        if let q = request.url.query { path += "?" + q.prefix(24) }
        logger.debug(Logger.Message(stringLiteral: String(format: "registry-trace %9.1f %9.1f ms", start, end)
            + " \(method) \(path) -> \(code == CURLE_OK ? String(status) : "curl error \(code.rawValue)")"
            + " up=\(up) down=\(down) new-conn=\(connects) pretransfer=\(ms(pre)) first-byte=\(ms(first)) total=\(ms(total))"))
    }

    static func retryable(_ code: CURLcode) -> Bool {
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_URL_MALFORMAT,
             CURLE_UNSUPPORTED_PROTOCOL, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE,
             CURLE_SSL_CERTPROBLEM, CURLE_WRITE_ERROR, CURLE_ABORTED_BY_CALLBACK, CURLE_READ_ERROR:
            return false
        default:
            return true
        }
    }
}

/// One line libcurl hands a header callback: a status line (a new response begins: after a
/// 100 Continue or a redirect, for instance), a header (name lower-cased, both sides trimmed),
/// or anything else (the blank line that ends the head). Shared by every curl client of the
/// project (this transport, the registry server's S3 client).
package enum CurlHeaderLine: Equatable {
    case status(Int)
    case header(name: String, value: String)
    case other

    package init(_ bytes: UnsafeRawBufferPointer) {
        let line = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if line.hasPrefix("HTTP/") {
            let parts = line.split(separator: " ", maxSplits: 2)
            self = .status(parts.count > 1 ? Int(parts[1]) ?? 0 : 0)
        } else if let colon = line.firstIndex(of: ":") {
            self = .header(name: line[..<colon].trimmingCharacters(in: .whitespaces).lowercased(),
                           value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        } else {
            self = .other
        }
    }
}

private func curlHeaderCallback(_ ptr: UnsafeMutablePointer<CChar>?, _ size: Int, _ n: Int, _ ud: UnsafeMutableRawPointer?) -> Int {
    let count = size * n
    guard let ptr, let ud else { return count }
    let state = Unmanaged<TransferState>.fromOpaque(ud).takeUnretainedValue()
    switch CurlHeaderLine(UnsafeRawBufferPointer(start: ptr, count: count)) {
    case .status(let code):
        // A new response: start over.
        state.headers.removeAll()
        state.status = code
    case .header(let name, let value):
        state.headers.append(HTTPHeader(name, value))
    case .other:
        break
    }
    return count
}

private func curlWriteCallback(_ ptr: UnsafeMutablePointer<CChar>?, _ size: Int, _ n: Int, _ ud: UnsafeMutableRawPointer?) -> Int {
    let count = size * n
    guard let ptr, let ud else { return count }
    let state = Unmanaged<TransferState>.fromOpaque(ud).takeUnretainedValue()
    let bytes = UnsafeRawBufferPointer(start: ptr, count: count)
    if !state.decided {
        state.decided = true
        if state.status / 100 == 2, let sink = state.sink {
            do { state.streaming = try sink.begin(state.head) } catch {
                state.failure = error
                return 0
            }
        }
    }
    if state.streaming, let sink = state.sink {
        do { try sink.write(bytes) } catch {
            state.failure = error
            return 0
        }
    } else if state.collected.count < 4 << 20 {
        state.collected.append(contentsOf: bytes)
    } else if state.status / 100 != 2 {
        // An error body this large is not worth keeping.
    } else {
        state.failure = RegistryError.local("response body too large to hold in memory")
        return 0
    }
    return count
}

private func curlReadCallback(_ ptr: UnsafeMutablePointer<CChar>?, _ size: Int, _ n: Int, _ ud: UnsafeMutableRawPointer?) -> Int {
    guard let ptr, let ud else { return 0 }
    let state = Unmanaged<TransferState>.fromOpaque(ud).takeUnretainedValue()
    let want = min(Int64(size * n), state.uploadLength - state.uploadPos)
    if want <= 0 { return 0 }
    if let data = state.uploadData {
        let start = data.startIndex + Int(state.uploadPos)
        data.copyBytes(to: UnsafeMutableRawPointer(ptr).assumingMemoryBound(to: UInt8.self), from: start..<(start + Int(want)))
        state.uploadPos += want
        return Int(want)
    }
    let got = pread(state.uploadFD, ptr, Int(want), off_t(state.uploadBase + state.uploadPos))
    if got < 0 {
        state.failure = RegistryError.local("reading the upload failed: \(String(cString: strerror(errno)))")
        return Int(CURL_READFUNC_ABORT)
    }
    if got == 0 {
        state.failure = RegistryError.local("the file being uploaded is shorter than expected (changed while pushing?)")
        return Int(CURL_READFUNC_ABORT)
    }
    state.uploadPos += Int64(got)
    return got
}

private func curlSeekCallback(_ ud: UnsafeMutableRawPointer?, _ offset: curl_off_t, _ origin: Int32) -> Int32 {
    guard let ud, origin == SEEK_SET else { return Int32(CURL_SEEKFUNC_CANTSEEK) }
    let state = Unmanaged<TransferState>.fromOpaque(ud).takeUnretainedValue()
    guard offset >= 0, Int64(offset) <= state.uploadLength else { return Int32(CURL_SEEKFUNC_FAIL) }
    state.uploadPos = Int64(offset)
    return Int32(CURL_SEEKFUNC_OK)
}

private func curlProgressCallback(_ ud: UnsafeMutableRawPointer?, _ dlt: curl_off_t, _ dln: curl_off_t, _ ult: curl_off_t, _ uln: curl_off_t) -> Int32 {
    guard let ud else { return 0 }
    let state = Unmanaged<TransferState>.fromOpaque(ud).takeUnretainedValue()
    if Int64(uln) != state.lastReported {
        state.lastReported = Int64(uln)
        state.uploadProgress?(Int64(uln))
    }
    return 0
}

/// Runs blocking work (a transfer, an fsync, waiting on a writer thread) on a thread of its own
/// instead of one of the cooperative pool's few threads (two on a 2-core machine).
func onOwnThread<T: Sendable>(stackSize: Int = 256 << 10, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, any Error>) in
        let t = Thread { cont.resume(with: Result { try body() }) }
        t.stackSize = stackSize
        t.start()
    }
}
