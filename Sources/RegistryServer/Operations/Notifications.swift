import CCurl
import Foundation
import Logging
import OCI
import SystemSupport

/// One webhook that receives the registry's events (distribution's `notifications.endpoints`).
public struct NotificationEndpoint: Sendable, Equatable {
    public var name: String
    /// `http://` or `https://` URL the envelopes are POSTed to.
    public var url: String
    /// Sent with every envelope (an `Authorization` header, say).
    public var headers: [String: [String]] = [:]
    /// Seconds one delivery may take.
    public var timeout: Double = 1
    /// Failed deliveries in a row before the endpoint backs off.
    public var threshold = 10
    /// Seconds to wait after `threshold` failures, and between retries after that.
    public var backoff: Double = 1
    /// Events whose target has one of these media types are not sent.
    public var ignoredMediaTypes: [String] = []
    /// Events with one of these actions (`pull`, `push`, `mount`, `delete`) are not sent.
    public var ignoredActions: [String] = []
    /// Events waiting for delivery at most; beyond it the oldest is dropped (and counted).
    public var queueLimit = 1000

    public init(name: String, url: String) {
        self.name = name
        self.url = url
    }

    /// Whether this endpoint takes `event`.
    func wants(_ event: RegistryEvent) -> Bool {
        !ignoredActions.contains(event.action) && !(event.mediaType.map(ignoredMediaTypes.contains) ?? false)
    }
}

/// One event as distribution's notification envelope carries it
/// (`application/vnd.docker.distribution.events.v1+json`).
struct RegistryEvent: Sendable {
    var action: String
    var repository: String
    var digest: String?
    var mediaType: String?
    var size: Int64?
    var tag: String?
    var fromRepository: String?
    var url: String?
    var requestID: String
    var remote: String
    var host: String
    var method: String
    var userAgent: String
    var user: String?

    /// The JSON object, with distribution's field names.
    func json(source: [String: String]) -> Data {
        var target: [String: Any] = ["repository": repository]
        if let mediaType { target["mediaType"] = mediaType }
        if let digest { target["digest"] = digest }
        if let size { target["size"] = size; target["length"] = size }
        if let tag { target["tag"] = tag }
        if let url { target["url"] = url }
        if let fromRepository { target["fromRepository"] = fromRepository }
        let time = ISO8601DateFormatter.string(from: Date(), timeZone: TimeZone(identifier: "UTC") ?? .current,
                                               formatOptions: [.withInternetDateTime, .withFractionalSeconds])
        let object: [String: Any] = [
            "id": UUID().uuidString.lowercased(),
            "timestamp": time,
            "action": action,
            "target": target,
            "request": ["id": requestID, "addr": remote, "host": host, "method": method, "useragent": userAgent],
            "actor": user.map { ["name": $0] } ?? [String: String](),
            "source": source,
        ]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }

    /// The event a finished exchange makes, if any: manifests and blobs pushed, mounted,
    /// pulled (GET) and deleted, as distribution reports them. Failed requests make none.
    static func from(_ request: HTTPRequest, _ response: HTTPResponse, _ context: HTTPRequestContext,
                     route: RegistryHandler.Route?, store: RegistryStore) -> RegistryEvent? {
        guard (200..<300).contains(response.status), let route else { return nil }
        let host = request.header("Host") ?? ""
        var event = RegistryEvent(action: "", repository: "", requestID: response.header("X-Request-Id") ?? "",
                                  remote: context.remoteAddress, host: host, method: request.method,
                                  userAgent: request.header("User-Agent") ?? "", user: response.user)
        let scheme = context.isTLS ? "https" : "http"
        let digestHeader = response.header("Docker-Content-Digest")
        func isDigest(_ ref: String) -> Bool { ref.contains(":") }
        switch (route, request.method) {
        case (.manifest(let name, let ref), "PUT"):
            event.action = "push"
            event.repository = name
            event.digest = digestHeader
            event.mediaType = request.header("Content-Type")
            event.size = request.body.bytesRead
            if !isDigest(ref) { event.tag = ref }
        case (.manifest(let name, let ref), "GET"):
            event.action = "pull"
            event.repository = name
            event.digest = digestHeader
            event.mediaType = response.header("Content-Type")
            event.size = response.contentLengthOverride ?? response.bodyLength
            if !isDigest(ref) { event.tag = ref }
        case (.manifest(let name, let ref), "DELETE"):
            event.action = "delete"
            event.repository = name
            if isDigest(ref) { event.digest = ref } else { event.tag = ref }
        case (.blob(let name, let ref), "GET"):
            event.action = "pull"
            event.repository = name
            event.digest = ref
            event.mediaType = "application/octet-stream"
            event.size = response.contentLengthOverride ?? response.bodyLength
        case (.blob(let name, let ref), "DELETE"):
            event.action = "delete"
            event.repository = name
            event.digest = ref
        case (.upload(let name, _), "PUT"), (.uploads(let name), "POST"):
            // A finished upload (201 with the digest) or a mount; a started session (202) is no event.
            guard response.status == 201, let digest = digestHeader else { return nil }
            event.repository = name
            event.digest = digest
            event.mediaType = "application/octet-stream"
            let query = request.query
            if let from = query["from"], query["mount"] != nil {
                event.action = "mount"
                event.fromRepository = from
            } else {
                event.action = "push"
            }
            event.size = (try? Digest(parsing: digest)).flatMap { store.blobSize(name, $0) }
        default:
            return nil
        }
        if let digest = event.digest, !host.isEmpty {
            let kind = route.isManifest ? "manifests" : "blobs"
            event.url = "\(scheme)://\(host)/v2/\(event.repository)/\(kind)/\(digest)"
        }
        return event
    }
}

private extension RegistryHandler.Route {
    var isManifest: Bool { if case .manifest = self { true } else { false } }
}

/// Delivers events to the configured endpoints: a bounded queue and one sender thread per
/// endpoint, so a slow or dead listener never holds up a request. A failed delivery is
/// retried (after `threshold` failures in a row, every `backoff` seconds) until it succeeds or
/// the server stops; past `queueLimit` the oldest waiting event is dropped and counted.
final class RegistryNotifier: Sendable {
    let senders: [NotificationSender]
    let source: [String: String]

    init(endpoints: [NotificationEndpoint], sourceAddress: String, logger: Logger) {
        senders = endpoints.map { NotificationSender($0, logger: logger) }
        source = ["addr": sourceAddress, "instanceID": UUID().uuidString.lowercased()]
    }

    func publish(_ event: RegistryEvent) {
        var body: Data?
        for s in senders where s.endpoint.wants(event) {
            if body == nil { body = event.json(source: source) }
            if let body { s.enqueue(body) }
        }
    }

    func start() { for s in senders { s.start() } }

    /// Gives waiting events until `deadline` (uptime nanoseconds) to go out, then stops.
    func stop(deadline: UInt64) { for s in senders { s.stop(deadline: deadline) } }
}

/// One endpoint's queue and sender thread.
final class NotificationSender: @unchecked Sendable {
    let endpoint: NotificationEndpoint
    let logger: Logger
    private let condition = NSCondition()
    /// Guarded by `condition`.
    private var queue: [Data] = []
    private var stopping = false
    private var finished = false
    private var deliveredCount = 0
    private var failedCount = 0
    private var droppedCount = 0

    init(_ endpoint: NotificationEndpoint, logger: Logger) {
        self.endpoint = endpoint
        self.logger = logger
    }

    /// Deliveries that succeeded, failed (each retry counts) and events dropped from a full queue.
    var counts: (delivered: Int, failed: Int, dropped: Int, waiting: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (deliveredCount, failedCount, droppedCount, queue.count)
    }

    func enqueue(_ event: Data) {
        condition.lock()
        defer { condition.unlock() }
        if stopping { return }
        if queue.count >= endpoint.queueLimit {
            queue.removeFirst()
            droppedCount += 1
        }
        queue.append(event)
        condition.signal()
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "registry-notify-\(endpoint.name)"
        thread.start()
    }

    func stop(deadline: UInt64) {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !finished {
            let left = deadline > HTTPConnection.now() ? Double(deadline - HTTPConnection.now()) / 1e9 : 0
            if left <= 0 || !condition.wait(until: Date().addingTimeInterval(left)) { break }
        }
        let lost = queue.count
        queue.removeAll()
        finished = true
        condition.broadcast()
        condition.unlock()
        if lost > 0 {
            logger.warning("notifications: events not delivered before the stop", metadata: ["endpoint": "\(endpoint.name)", "events": "\(lost)"])
        }
    }

    /// At most this many events go in one envelope.
    static let batch = 16

    private func run() {
        var failuresInARow = 0
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty || finished {
                finished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let events = Array(queue.prefix(NotificationSender.batch))
            condition.unlock()
            var envelope = Data(#"{"events":["#.utf8)
            for (i, e) in events.enumerated() {
                if i > 0 { envelope.append(UInt8(ascii: ",")) }
                envelope.append(e)
            }
            envelope.append(contentsOf: Array("]}".utf8))
            let failure = NotificationSender.post(endpoint, body: envelope)
            condition.lock()
            if failure == nil {
                // The queue only grows at its end (or loses its head when full): drop what was sent.
                queue.removeFirst(min(events.count, queue.count))
                deliveredCount += events.count
                failuresInARow = 0
                condition.unlock()
                continue
            }
            failedCount += 1
            failuresInARow += 1
            if failuresInARow == endpoint.threshold {
                logger.warning("notifications: endpoint failing, backing off", metadata: [
                    "endpoint": "\(endpoint.name)", "failures": "\(failuresInARow)", "error": "\(failure ?? "")",
                    "backoff": "\(endpoint.backoff)s", "waiting": "\(queue.count)"])
            } else {
                logger.debug("notifications: delivery failed", metadata: ["endpoint": "\(endpoint.name)", "error": "\(failure ?? "")"])
            }
            let wait = failuresInARow >= endpoint.threshold ? endpoint.backoff : min(endpoint.backoff, 0.05 * Double(failuresInARow))
            _ = condition.wait(until: Date().addingTimeInterval(wait))
            let done = finished
            condition.unlock()
            if done { return }
        }
    }

    /// One POST of an envelope: nil on a 2xx or 3xx answer (as distribution counts it), else why not.
    static func post(_ endpoint: NotificationEndpoint, body: Data) -> String? {
        guard let easy = dockbuild_curl_easy_init() else { return "libcurl cannot be loaded: \(String(cString: dockbuild_curl_error()))" }
        defer { dockbuild_curl_easy_cleanup(easy) }
        var headers: UnsafeMutablePointer<curl_slist>?
        headers = dockbuild_curl_slist_append(headers, "Content-Type: application/vnd.docker.distribution.events.v1+json")
        for (name, values) in endpoint.headers.sorted(by: { $0.key < $1.key }) {
            for v in values { headers = dockbuild_curl_slist_append(headers, "\(name): \(v)") }
        }
        defer { dockbuild_curl_slist_free_all(headers) }
        _ = dockbuild_curl_setopt_string(easy, CURLOPT_URL, endpoint.url)
        _ = dockbuild_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        _ = dockbuild_curl_setopt_long(easy, CURLOPT_TIMEOUT_MS, Int(max(1, endpoint.timeout * 1000)))
        _ = dockbuild_curl_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0)
        _ = dockbuild_curl_setopt_slist(easy, CURLOPT_HTTPHEADER, headers)
        _ = dockbuild_curl_setopt_string(easy, CURLOPT_USERAGENT, "dockbuild-registry-notifications")
        // The answer's body is not needed: a write callback that takes and drops it.
        _ = dockbuild_curl_setopt_io(easy, CURLOPT_WRITEFUNCTION) { _, size, count, _ in size * count }
        let code: CURLcode = body.withUnsafeBytes { raw in
            _ = dockbuild_curl_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(raw.count))
            _ = dockbuild_curl_setopt_pointer(easy, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress))
            return dockbuild_curl_easy_perform(easy)
        }
        guard code == CURLE_OK else { return String(cString: dockbuild_curl_easy_strerror(code)) }
        var status = 0
        _ = dockbuild_curl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        return (200..<400).contains(status) ? nil : "HTTP \(status)"
    }
}
