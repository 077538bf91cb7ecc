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
    /// Where the metrics live; `factory` writes into the same one.
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
    /// One duration histogram per route, made up front (the routes are a fixed set).
    private let durations: [String: DurationHistogram]

    struct RequestKey: Hashable {
        var method: String
        var route: String
        var status: Int
    }

    /// Routes of the distribution API as metric and log labels; `other` for anything else.
    public static let routes = ["base", "blob", "blob_upload", "catalog", "manifest", "referrers", "tags", "token", "other"]
    static let methods: Set<String> = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"]

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
        var d: [String: DurationHistogram] = [:]
        for route in RegistryMetrics.routes {
            d[route] = collectors.makeDurationHistogram(descriptor: RegistryMetrics.durationDescriptor(), labels: [("route", route)],
                                                        buckets: RegistryMetrics.durationBuckets)
        }
        durations = d
    }

    /// A swift-metrics factory over the same collectors, for code that records through the
    /// swift-metrics API (`Counter(label:dimensions:factory:)`) into this server's `/metrics`.
    public var factory: any CoreMetrics.MetricsFactory { PrometheusMetricsFactory(registry: collectors) }

    static func requestsDescriptor() -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "registry", subsystem: "http", metricName: "requests", unitName: "total",
                             helpText: "Requests answered, by method, route and status code.")
    }

    static func durationDescriptor() -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "registry", subsystem: "http", metricName: "request_duration", unitName: "seconds",
                             helpText: "Time from the first byte of a request to the last byte of its answer, by route.")
    }

    /// Counts one finished exchange.
    func observe(method: String, route: String, status: Int, received: Int64, sent: Int64, nanoseconds: UInt64) {
        let m = RegistryMetrics.methods.contains(method) ? method : "other"
        let key = RequestKey(method: m, route: route, status: status)
        if let counter = requestCounters.load(ordering: .acquiring).counters[key] {
            counter.increment()
        } else {
            requestCountersWriter.withLock { _ in
                let map = requestCounters.load(ordering: .acquiring)
                if let c = map.counters[key] { c.increment(); return }
                let c = collectors.makeCounter(descriptor: RegistryMetrics.requestsDescriptor(),
                                               labels: [("method", m), ("route", route), ("code", String(status))])
                c.increment()
                requestCounters.store(CounterMap(map.counters.merging([key: c]) { $1 }), ordering: .releasing)
            }
        }
        (durations[route] ?? durations["other"])?.record(.nanoseconds(Int64(clamping: nanoseconds)))
        if received > 0 { receivedBytes.increment(by: received) }
        if sent > 0 { sentBytes.increment(by: sent) }
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
        return out
    }
}
