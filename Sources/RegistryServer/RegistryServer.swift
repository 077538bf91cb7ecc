import Foundation
import SystemSupport
import Logging

/// Settings of one registry server.
public struct RegistryServerConfiguration: Sendable {
    public enum LogFormat: String, Sendable { case text, json, none }

    /// `host:port`; port 0 picks a free port.
    public var address = "127.0.0.1:5000"
    /// `host:port` of the debug listener (health probes, metrics); nil serves none.
    public var debugAddress: String?
    /// Storage directory of the filesystem driver.
    public var root: String
    public var readOnly = false
    /// htpasswd file (bcrypt) that turns authentication on.
    public var htpasswd: String?
    /// Issue Docker bearer tokens from `/token` instead of checking Basic credentials on each request.
    public var tokenAuth = false
    /// An external token service instead of htpasswd (distribution's `auth: token`).
    public var externalToken: (realm: String, service: String, issuer: String, rootCertBundle: String)?
    /// A JSON Web Key Set file whose keys may also sign external tokens (then `rootCertBundle`
    /// may be empty).
    public var tokenJWKS: String?
    public var tlsCertificate: String?
    public var tlsKey: String?
    public var logFormat: LogFormat = .text
    /// Connection cap and timeouts of the HTTP layer.
    public var limits = HTTPServerLimits()
    /// Seconds an upload session may sit idle before a restart or `registry gc` removes it.
    public var uploadLifetime: TimeInterval = 3600
    /// Seconds a graceful stop (SIGTERM) lets requests in flight finish before cutting them
    /// (distribution's `http.draintimeout`).
    public var drainTimeout: TimeInterval = 10
    /// Largest manifest a push may send; more is 413 (distribution's limit, 4 MiB).
    public var maxManifestBytes = 4 * 1024 * 1024
    /// Whether DELETE of manifests and blobs is served (distribution's `storage.delete.enabled`).
    public var deleteEnabled = true
    /// Headers added to every registry response (distribution's `http.headers`).
    public var headers: [(name: String, value: String)] = []
    /// Webhooks that receive push, pull, mount and delete events.
    public var notifications: [NotificationEndpoint] = []
    /// Where the server logs what an operator should know (notification failures, ...); the
    /// access log is separate (`logFormat`).
    public var logger = Logger(label: "dockbuild.registry-server")

    /// Store in this S3 bucket instead of under `root` (distribution's `storage.s3`).
    public var s3: S3Config?
    /// Serve as a pull-through cache of this upstream (distribution's `proxy`): misses are
    /// fetched from it, and pushes and deletes are refused.
    public var proxy: ProxyConfig?
    public init(root: String) { self.root = root }
}

/// A running registry: storage, handler and HTTP server tied together.
public final class RegistryServer: @unchecked Sendable {
    public let configuration: RegistryServerConfiguration
    public let store: RegistryStore
    private let server: HTTPServer
    /// The debug listener, when `debugAddress` is set.
    private let debugServer: HTTPServer?
    /// Request counts, durations, bytes and gauges, served on the debug address's `/metrics`;
    /// recorded only when there is a debug address to read them from.
    public let metrics: RegistryMetrics
    /// Writes the access log from a thread of its own; nil with `logFormat` none.
    private let accessLog: AccessLogWriter?
    /// The htpasswd users, when authentication uses them: `reloadAuthentication` re-reads them.
    private let users: Htpasswd?
    /// Delivers events to the configured webhooks; nil without any.
    let notifier: RegistryNotifier?

    public init(configuration: RegistryServerConfiguration) throws {
        self.configuration = configuration
        let metrics = RegistryMetrics()
        self.metrics = metrics
        // Metrics are kept only where they can be read: with a debug address.
        let measured = configuration.debugAddress != nil
        let driver: any StorageDriver
        var s3Driver: S3Driver?
        if let s3 = configuration.s3 {
            let d = try S3Driver(config: s3)
            try d.checkBucket()  // wrong keys or a missing bucket fail the start, not the first push
            driver = d
            s3Driver = d
        } else {
            driver = try FilesystemDriver(root: configuration.root)
        }
        let driverName = configuration.s3 == nil ? "filesystem" : "s3"
        store = RegistryStore(driver: measured ? MeasuredDriver(driver, name: driverName, metrics: metrics) : driver)
        var authorizer: (any RegistryAuthorizer)?
        var users: Htpasswd?
        if let t = configuration.externalToken {
            if configuration.htpasswd != nil {
                throw RegistryServerError.invalidConfiguration("--htpasswd and an external token service exclude each other")
            }
            authorizer = try ExternalTokenAuthorizer(realm: t.realm, service: t.service, issuer: t.issuer,
                                                     rootCertBundle: t.rootCertBundle.isEmpty ? nil : t.rootCertBundle,
                                                     jwks: configuration.tokenJWKS)
        } else if let path = configuration.htpasswd {
            let htpasswd = try Htpasswd(path: path)
            users = htpasswd
            authorizer = configuration.tokenAuth ? try TokenAuthorizer(users: htpasswd) : BasicAuthorizer(users: htpasswd)
        }
        self.users = users
        store.maxManifestBytes = configuration.maxManifestBytes
        var handler = RegistryHandler(store: store, readOnly: configuration.readOnly, authorizer: authorizer)
        handler.deleteEnabled = configuration.deleteEnabled
        handler.extraHeaders = configuration.headers
        if let proxy = configuration.proxy {
            handler.proxy = try PullThroughCache(config: proxy, store: store, logger: configuration.logger)
        }
        let format = configuration.logFormat
        let accessLog = format == .none ? nil : AccessLogWriter()
        self.accessLog = accessLog
        let notifier = configuration.notifications.isEmpty ? nil
            : RegistryNotifier(endpoints: configuration.notifications, sourceAddress: configuration.address, logger: configuration.logger)
        self.notifier = notifier
        let eventStore = store
        // Every finished exchange, refusals included, is counted, then logged.
        let logger: HTTPAccessLogger = { @Sendable request, response, context, seconds in
            guard measured || accessLog != nil || notifier != nil else { return }
            // The route the handler parsed (the path is parsed here only for exchanges refused
            // before the handler), for the metrics, the log line and the event.
            let parsed = response.registryRoute ?? RegistryHandler.route(request.path)
            let route = RegistryHandler.routeLabel(parsed)
            if measured {
                metrics.observe(method: request.method, routeIndex: RegistryHandler.routeIndex(parsed), status: response.status,
                                received: request.body.bytesRead, sent: response.bodyLength,
                                nanoseconds: UInt64(max(0, seconds) * 1e9))
            }
            if let accessLog { accessLog.append(RegistryServer.logLine(format, request, response, context, seconds, route: route)) }
            if let notifier, let event = RegistryEvent.from(request, response, context, route: parsed, store: eventStore) {
                notifier.publish(event)
            }
        }
        var factory: TransportFactory?
        if let cert = configuration.tlsCertificate, let key = configuration.tlsKey {
            let tls = try TLSContext(certificate: cert, key: key)
            factory = { fd, deadline in try tls.accept(fd, deadline: deadline) }
        } else if configuration.tlsCertificate != nil || configuration.tlsKey != nil {
            throw RegistryServerError.invalidConfiguration("TLS needs both --tls-cert and --tls-key")
        }
        guard configuration.limits.maxConnections >= 1 else {
            throw RegistryServerError.invalidConfiguration("the connection limit must be at least 1, not \(configuration.limits.maxConnections)")
        }
        guard configuration.limits.headerTimeout > 0, configuration.limits.idleTimeout > 0 else {
            throw RegistryServerError.invalidConfiguration("header and idle timeouts must be more than 0 seconds")
        }
        guard configuration.uploadLifetime > 0 else {
            throw RegistryServerError.invalidConfiguration("the upload lifetime must be more than 0 seconds")
        }
        server = HTTPServer(handler: handler, limits: configuration.limits, logger: logger, transportFactory: factory)
        if configuration.debugAddress != nil {
            // Plain HTTP, no access log: probes and scrapes every few seconds would drown it.
            let store = self.store
            let main = server
            let debug = DebugHandler(storage: StorageHealthCheck(root: configuration.root, s3: s3Driver), draining: { main.isStopping }) {
                let counts = notifier?.senders.map { sender -> (endpoint: String, delivered: Int, failed: Int, dropped: Int, waiting: Int) in
                    let c = sender.counts
                    return (sender.endpoint.name, c.delivered, c.failed, c.dropped, c.waiting)
                } ?? []
                return metrics.scrape(openConnections: main.activeConnections, uploadSessions: store.uploadSessionCount(), notifications: counts)
            }
            debugServer = HTTPServer(handler: debug, limits: HTTPServerLimits(maxConnections: 16, headerTimeout: 10, idleTimeout: 30))
        } else {
            debugServer = nil
        }
    }

    /// What `start` removed from an earlier, crashed process before it began to listen.
    public private(set) var startupLeftovers = LeftoverReport()
    private let sweeper = NSCondition()
    private var stopped = false

    /// Removes what a crashed predecessor left in the storage (`RegistryStore.removeLeftovers`),
    /// then starts listening; returns at once, requests are served on background threads.
    /// While it runs, upload sessions idle past `uploadLifetime` are removed every half
    /// lifetime (at least every second, at most every hour).
    public func start() throws {
        startupLeftovers = store.removeLeftovers(dryRun: false, uploadLifetime: configuration.uploadLifetime)
        let left = startupLeftovers
        metrics.observeSweep(kind: "startup", removed: left.temporaries.count + left.orphanedUploads.count + left.staleUploads.count,
                             reclaimedBytes: left.reclaimedBytes)
        try server.start(address: configuration.address)
        notifier?.start()
        if let debugServer, let debugAddress = configuration.debugAddress {
            do {
                try debugServer.start(address: debugAddress)
            } catch {
                server.stop()
                throw error
            }
        }
        let interval = min(3600, max(1, configuration.uploadLifetime / 2))
        let thread = Thread { [self] in
            sweeper.lock()
            defer { sweeper.unlock() }
            while !stopped {
                if sweeper.wait(until: Date().addingTimeInterval(interval)) || stopped { continue }
                sweeper.unlock()
                let swept = store.removeDeadUploads(dryRun: false, uploadLifetime: configuration.uploadLifetime)
                metrics.observeSweep(kind: "uploads", removed: swept.orphanedUploads.count + swept.staleUploads.count,
                                     reclaimedBytes: swept.reclaimedBytes)
                sweeper.lock()
            }
        }
        thread.name = "registry-upload-sweeper"
        thread.start()
    }

    /// Connections being served now.
    public var activeConnections: Int { server.activeConnections }

    /// The bound port (after `start`).
    public var port: Int { server.port }

    /// The debug listener's bound port (after `start`); nil without `debugAddress`.
    public var debugPort: Int? { debugServer?.port }

    public func stop() {
        stopSweeper()
        server.stop()
        debugServer?.stop()
        notifier?.stop(deadline: HTTPConnection.now() + 1_000_000_000)
        accessLog?.stop()
    }

    /// Stops gracefully (SIGTERM): accepts nothing new, lets requests in flight finish for up
    /// to `configuration.drainTimeout` seconds, then cuts what is left and stops. `/readyz`
    /// answers 503 from the start, so a load balancer stops sending. Returns how many
    /// connections were cut.
    @discardableResult
    public func drain() -> Int {
        stopSweeper()
        let cut = server.drain(timeout: configuration.drainTimeout)
        debugServer?.stop()
        // Events of the last requests still go out, for a moment.
        notifier?.stop(deadline: HTTPConnection.now() + 2_000_000_000)
        accessLog?.stop()
        return cut
    }

    /// Reads the authentication files again (SIGHUP): the htpasswd users. On an error the
    /// users stay as they were and the error says why. Returns the number of users now known,
    /// nil when authentication does not use an htpasswd file.
    @discardableResult
    public func reloadAuthentication() throws -> Int? {
        guard let users else { return nil }
        try users.reload()
        return users.users.count
    }

    private func stopSweeper() {
        sweeper.lock()
        stopped = true
        sweeper.broadcast()
        sweeper.unlock()
    }

    /// One access-log line: what distribution's request log carries (request id, method,
    /// target, route, repository, status, bytes, duration, client address, authenticated user),
    /// as `key=value` text or one JSON object. Text fields are escaped, so a path cannot
    /// forge a line.
    static func logLine(_ format: RegistryServerConfiguration.LogFormat, _ request: HTTPRequest, _ response: HTTPResponse,
                    _ context: HTTPRequestContext, _ seconds: Double,
                    route: (name: String, repository: String?)? = nil) -> [UInt8] {
        // Written through a pointer into memory sized up front (`LogLineWriter`): a formatter
        // or JSONSerialization per line cost most of a manifest GET, appending to an array a
        // piece at a time most of what was left (bench/registry-server.sh measures the cost).
        let bytes = response.contentLengthOverride ?? response.bodyLength
        let micros = Int64((max(0, seconds) * 1_000_000).rounded())
        // The id the handler generated (a UUID) needs no escape; one from elsewhere is escaped.
        let generatedID = response.requestID
        let id = generatedID ?? response.header("X-Request-Id") ?? UUID().uuidString.lowercased()
        let route = route ?? RegistryHandler.routeLabel(request.path)
        let repository = route.repository.flatMap { Names.isValidRepository($0) ? $0 : nil }
        let agent = format == .json ? request.header("User-Agent") ?? "" : ""
        // Room for the keys, numbers and time, and for every text field escaped at its longest
        // (six bytes a byte in JSON, three in text).
        var text = request.method.utf8.count + request.path.utf8.count + request.rawQuery.utf8.count + request.version.utf8.count
        text += context.remoteAddress.utf8.count + id.utf8.count + route.name.utf8.count + agent.utf8.count
        text += (repository?.utf8.count ?? 0) + (response.user?.utf8.count ?? 0)
        let capacity = 400 + 6 * text
        return [UInt8](unsafeUninitializedCapacity: capacity) { buffer, initialized in
            guard let base = buffer.baseAddress else { return }
            var w = LogLineWriter(base, count: buffer.count)
            if format == .json {
                // Keys in sorted order, as before.
                w.bytes("{\"bytes\":"); w.decimal(bytes)
                w.bytes(",\"bytes_received\":"); w.decimal(request.body.bytesRead)
                w.bytes(",\"duration_ms\":"); w.millis(micros)
                w.bytes(",\"method\":"); w.jsonString(request.method)
                w.bytes(",\"path\":\""); w.jsonEscaped(request.path)
                if !request.rawQuery.isEmpty { w.byte(UInt8(ascii: "?")); w.jsonEscaped(request.rawQuery) }
                w.bytes("\",\"remote\":"); w.jsonPlain(context.remoteAddress)
                if let repository { w.bytes(",\"repository\":"); w.jsonPlain(repository) }
                w.bytes(",\"request_id\":")
                if generatedID != nil { w.jsonPlain(id) } else { w.jsonString(id) }
                w.bytes(",\"route\":"); w.jsonPlain(route.name)
                w.bytes(",\"status\":"); w.decimal(Int64(response.status))
                w.bytes(",\"time\":\""); w.time(UTCTime.now()); w.byte(UInt8(ascii: "\""))
                if let user = response.user { w.bytes(",\"user\":"); w.jsonString(user) }
                w.bytes(",\"user_agent\":"); w.jsonString(agent)
                w.byte(UInt8(ascii: "}"))
            } else {
                w.time(UTCTime.now()); w.byte(UInt8(ascii: " "))
                w.raw(context.remoteAddress); w.bytes(" \"")
                w.percentEscaped(request.method); w.byte(UInt8(ascii: " "))
                w.percentEscaped(request.path)
                if !request.rawQuery.isEmpty { w.byte(UInt8(ascii: "?")); w.percentEscaped(request.rawQuery) }
                w.byte(UInt8(ascii: " ")); w.percentEscaped(request.version); w.bytes("\" ")
                w.decimal(Int64(response.status)); w.byte(UInt8(ascii: " "))
                w.decimal(bytes); w.byte(UInt8(ascii: " "))
                w.millis(micros); w.bytes("ms id="); w.raw(id)
                w.bytes(" route="); w.raw(route.name)
                w.bytes(" repo="); w.raw(repository ?? "-")
                w.bytes(" user=")
                if let user = response.user { w.percentEscaped(user) } else { w.byte(UInt8(ascii: "-")) }
                w.bytes(" in="); w.decimal(request.body.bytesRead)
            }
            w.byte(UInt8(ascii: "\n"))
            initialized = w.count
        }
    }

    /// Microseconds as milliseconds with up to three decimals, the shortest form (`0.042`,
    /// `1.5`, `12.0`), as the access log writes a duration.
    static func appendMillis(_ micros: Int64, to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { buffer in
            guard let base = buffer.baseAddress else { return }
            var w = LogLineWriter(base, count: buffer.count)
            w.millis(micros)
            out.append(contentsOf: UnsafeBufferPointer(start: base, count: w.count))
        }
    }
}
