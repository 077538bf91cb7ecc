import Atomics
import CoreMetrics
import Foundation
import Prometheus
import Synchronization

/// The registry's metrics, kept in one Prometheus collector registry per server (not the
/// process-wide swift-metrics bootstrap, so several servers in one process, as in tests, keep
/// apart) and served as text format 0.0.4 on the debug address's `/metrics`.
///
/// Label values come from fixed sets (method, route name, status code), never from the
/// request's path, so a client cannot grow the number of series.
public final class RegistryMetrics: Sendable {
    /// Where the metrics live; `factory` writes into the same one. The request and byte counters
    /// reach it only at `scrape()` (the connection threads count them in `counts`), so read the
    /// registry's metrics through `scrape()`, not by emitting `collectors` directly.
    public let collectors: PrometheusCollectorRegistry
    private let receivedBytes: Prometheus.Counter
    private let sentBytes: Prometheus.Counter
    private let openConnections: Prometheus.Gauge
    private let uploadSessions: Prometheus.Gauge
    /// The request counters made so far, by method, route and code, as an immutable map that
    /// is replaced whole when a new combination appears: every request reads it without a lock
    /// (a shared lock on each request cost a third of the manifest GET rate under load), and
    /// the collector registry (which builds the name and labels) is asked only for new ones.
    private let requestCounters = ManagedAtomic(CounterMap([:]))
    private let requestCountersWriter = Mutex(())

    final class CounterMap: AtomicReference, Sendable {
        let counters: [RequestKey: Prometheus.Counter]
        init(_ counters: [RequestKey: Prometheus.Counter]) { self.counters = counters }
    }
    /// One duration histogram per route, in the order of `routes`, made up front (the routes
    /// are a fixed set); lock-free, emitted by `scrape` beside the collector registry's metrics.
    private let durations: [AtomicHistogram]
    /// Storage action histograms (`MeasuredDriver`), by driver and action, in the order made.
    private let storageHistograms = Mutex<[(labels: String, histogram: AtomicHistogram)]>([])
    /// What the connection threads count on every request, without a lock or a shared cache
    /// line: the requests of the usual statuses by method, route and status slot, then the bytes
    /// received and sent. A scrape adds them to the collector registry's counters (`syncCounts`).
    private let counts: ShardedCounters
    /// Under the scrape's lock: each slot's total as last added to its counter, and the counters
    /// of the usual statuses, made at the first scrape that finds requests in their slot.
    private let synced: Mutex<(totals: [Int], counters: [Prometheus.Counter?])>
    static let fastSlots = methodOrder.count * routes.count * commonStatuses.count
    static let receivedSlot = fastSlots
    static let sentSlot = fastSlots + 1
    static let commonStatuses = [200, 201, 202, 204, 206, 301, 302, 304, 307, 308, 400, 401, 403, 404, 405, 408,
                                 409, 412, 413, 414, 415, 416, 417, 429, 431, 500, 501, 502, 503, 504]
    static let methodOrder = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "other"]

    struct RequestKey: Hashable {
        var method: String
        var route: String
        var status: Int
    }

    /// Routes of the distribution API as metric and log labels; `other` for anything else.
    public static let routes = ["base", "blob", "blob_upload", "catalog", "manifest", "referrers", "tags", "token", "other"]

    /// Request durations; the Prometheus defaults stop at 10 s, blobs take longer.
    static let durationBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
        .seconds(10), .seconds(30), .seconds(60), .seconds(300),
    ]

    public init() {
        collectors = PrometheusCollectorRegistry()
        receivedBytes = collectors.makeCounter(descriptor: MetricNameDescriptor(
            namespace: "registry", subsystem: "http", metricName: "received_bytes", unitName: "total",
            helpText: "Request body bytes read from clients."))
        sentBytes = collectors.makeCounter(descriptor: MetricNameDescriptor(
            namespace: "registry", subsystem: "http", metricName: "sent_bytes", unitName: "total",
            helpText: "Response body bytes sent to clients (HEAD sends none)."))
        openConnections = collectors.makeGauge(descriptor: MetricNameDescriptor(
            namespace: "registry", subsystem: "http", metricName: "open_connections", unitName: "",
            helpText: "Client connections open on the registry address."))
        uploadSessions = collectors.makeGauge(descriptor: MetricNameDescriptor(
            namespace: "registry", subsystem: "storage", metricName: "upload_sessions", unitName: "",
            helpText: "Blob upload sessions started and not yet finished or cancelled."))
        durations = RegistryMetrics.routes.map { _ in AtomicHistogram(bounds: RegistryMetrics.durationBuckets) }
        counts = ShardedCounters(slots: RegistryMetrics.fastSlots + 2)
        synced = Mutex(([Int](repeating: 0, count: RegistryMetrics.fastSlots + 2),
                        [Prometheus.Counter?](repeating: nil, count: RegistryMetrics.fastSlots)))
    }

    /// A swift-metrics factory over the same collectors, for code that records through the
    /// swift-metrics API (`Counter(label:dimensions:factory:)`) into this server's `/metrics`.
    public var factory: any CoreMetrics.MetricsFactory { PrometheusMetricsFactory(registry: collectors) }

    static func requestsDescriptor() -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "registry", subsystem: "http", metricName: "requests", unitName: "total",
                             helpText: "Requests answered, by method, route and status code.")
    }

    /// The index of `method` in `methodOrder` (`other` for the rest), by a switch rather than
    /// a set or array search: this runs for every request.
    static func methodIndex(_ method: String) -> Int {
        switch method {
        case "GET": 0
        case "HEAD": 1
        case "PUT": 2
        case "POST": 3
        case "PATCH": 4
        case "DELETE": 5
        case "OPTIONS": 6
        default: 7
        }
    }

    /// The slot of each status in `commonStatuses` (-1 for the others), by status code, so the
    /// look-up on every request is one array index.
    private static let statusSlots: [Int] = {
        var slots = [Int](repeating: -1, count: 600)
        for (i, status) in commonStatuses.enumerated() { slots[status] = i }
        return slots
    }()

    /// The slot of `status` in `commonStatuses`, if it is one of them.
    static func statusIndex(_ status: Int) -> Int? {
        guard status >= 0, status < statusSlots.count, statusSlots[status] >= 0 else { return nil }
        return statusSlots[status]
    }

    /// Counts one finished exchange; `routeIndex` is the route's index in `routes`.
    func observe(method: String, routeIndex: Int, status: Int, received: Int64, sent: Int64, nanoseconds: UInt64) {
        let mi = RegistryMetrics.methodIndex(method)
        let ri = routeIndex >= 0 && routeIndex < RegistryMetrics.routes.count ? routeIndex : RegistryMetrics.routes.count - 1
        if let si = RegistryMetrics.statusIndex(status) {
            counts.add((mi * RegistryMetrics.routes.count + ri) * RegistryMetrics.commonStatuses.count + si)
        } else {
            slowCounter(RequestKey(method: RegistryMetrics.methodOrder[mi], route: RegistryMetrics.routes[ri], status: status)).increment()
        }
        durations[ri].record(nanoseconds: Int(clamping: nanoseconds))
        if received > 0 { counts.add(RegistryMetrics.receivedSlot, Int(clamping: received)) }
        if sent > 0 { counts.add(RegistryMetrics.sentSlot, Int(clamping: sent)) }
    }

    /// Adds what the connection threads counted since the last scrape to the collector
    /// registry's counters, making the counter of a usual status the first time it has requests.
    private func syncCounts() {
        synced.withLock { state in
            for slot in 0..<counts.slots {
                let total = counts.total(slot)
                guard total > state.totals[slot] else { continue }
                let delta = Int64(total - state.totals[slot])
                state.totals[slot] = total
                switch slot {
                case RegistryMetrics.receivedSlot: receivedBytes.increment(by: delta)
                case RegistryMetrics.sentSlot: sentBytes.increment(by: delta)
                default:
                    if state.counters[slot] == nil {
                        let si = slot % RegistryMetrics.commonStatuses.count
                        let ri = slot / RegistryMetrics.commonStatuses.count % RegistryMetrics.routes.count
                        let mi = slot / RegistryMetrics.commonStatuses.count / RegistryMetrics.routes.count
                        state.counters[slot] = collectors.makeCounter(
                            descriptor: RegistryMetrics.requestsDescriptor(),
                            labels: [("method", RegistryMetrics.methodOrder[mi]), ("route", RegistryMetrics.routes[ri]),
                                     ("code", String(RegistryMetrics.commonStatuses[si]))])
                    }
                    state.counters[slot]?.increment(by: delta)
                }
            }
        }
    }

    /// The counter of an unusual status, from the copy-on-write map.
    private func slowCounter(_ key: RequestKey) -> Prometheus.Counter {
        if let c = requestCounters.load(ordering: .acquiring).counters[key] { return c }
        return requestCountersWriter.withLock { _ in
            let map = requestCounters.load(ordering: .acquiring)
            if let c = map.counters[key] { return c }
            let c = collectors.makeCounter(descriptor: RegistryMetrics.requestsDescriptor(),
                                           labels: [("method", key.method), ("route", key.route), ("code", String(key.status))])
            requestCounters.store(CounterMap(map.counters.merging([key: c]) { $1 }), ordering: .releasing)
            return c
        }
    }

    /// A lock-free histogram for one storage driver action, emitted at each scrape.
    func storageHistogram(driver: String, action: String) -> AtomicHistogram {
        let h = AtomicHistogram(bounds: MeasuredDriver.buckets)
        storageHistograms.withLock { $0.append(("driver=\"\(driver)\",action=\"\(action)\"", h)) }
        return h
    }

    /// Counts one sweep of the storage (`kind`: `uploads` for the running server's purge of idle
    /// upload sessions, `startup` for the leftovers of a crashed predecessor).
    func observeSweep(kind: String, removed: Int, reclaimedBytes: Int64) {
        let labels = [("kind", kind)]
        collectors.makeCounter(descriptor: MetricNameDescriptor(namespace: "registry", subsystem: "gc", metricName: "runs", unitName: "total",
                                                                helpText: "Sweeps of the storage by the running server, by kind."), labels: labels).increment()
        collectors.makeCounter(descriptor: MetricNameDescriptor(namespace: "registry", subsystem: "gc", metricName: "removed", unitName: "total",
                                                                helpText: "Upload sessions and temporary files removed by sweeps, by kind."), labels: labels)
            .increment(by: Int64(removed))
        collectors.makeCounter(descriptor: MetricNameDescriptor(namespace: "registry", subsystem: "gc", metricName: "reclaimed_bytes", unitName: "total",
                                                                helpText: "Bytes the sweeps freed, by kind."), labels: labels)
            .increment(by: reclaimedBytes)
    }

    /// The text exposition, with the gauges read now; `notifications` are each endpoint's
    /// delivery counts (`NotificationSender.counts`).
    func scrape(openConnections connections: Int, uploadSessions uploads: Int,
                notifications: [(endpoint: String, delivered: Int, failed: Int, dropped: Int, waiting: Int)] = []) -> [UInt8] {
        syncCounts()
        openConnections.set(to: Double(connections))
        uploadSessions.set(to: Double(uploads))
        let events = MetricNameDescriptor(namespace: "registry", subsystem: "notifications", metricName: "events", unitName: "",
                                          helpText: "Notification events by endpoint and state: delivered, failed deliveries, dropped from a full queue, waiting.")
        for n in notifications {
            for (state, value) in [("delivered", n.delivered), ("failed", n.failed), ("dropped", n.dropped), ("waiting", n.waiting)] {
                collectors.makeGauge(descriptor: events, labels: [("endpoint", n.endpoint), ("state", state)]).set(to: Double(value))
            }
        }
        var out: [UInt8] = []
        collectors.emit(into: &out)
        var text = "# HELP registry_http_request_duration_seconds Time from the first byte of a request to the last byte of its answer, by route.\n"
            + "# TYPE registry_http_request_duration_seconds histogram\n"
        for (route, histogram) in zip(RegistryMetrics.routes, durations) {
            histogram.emit(name: "registry_http_request_duration_seconds", labels: "route=\"\(route)\"", into: &text)
        }
        let storage = storageHistograms.withLock { $0 }
        if !storage.isEmpty {
            text += "# HELP registry_storage_action_seconds Time of each storage driver action, by driver and action.\n"
                + "# TYPE registry_storage_action_seconds histogram\n"
            for (labels, h) in storage { h.emit(name: "registry_storage_action_seconds", labels: labels, into: &text) }
        }
        out += Array(text.utf8)
        return out
    }
}
