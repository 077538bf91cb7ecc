import Foundation

/// The debug listener (`--debug-addr`, distribution's `http.debug.addr`): probes for an
/// orchestrator and operator endpoints, kept off the registry's own address so they are never
/// exposed with it and never need its credentials.
///
/// - `/livez`: 200 while the process serves at all.
/// - `/readyz`: 200 when the storage (root directory or S3 bucket) is reachable and writable, else 503 with the reason;
///   503 while the server drains.
/// - `/debug/health`: distribution's format, `{}` when healthy, else check name → error (503).
/// - `/metrics`: Prometheus text format 0.0.4.
struct DebugHandler: HTTPHandler {
    let storage: StorageHealthCheck
    /// Whether the registry is draining (stopping): not ready, whatever the storage says.
    let draining: @Sendable () -> Bool
    /// The metrics exposition, read at each scrape.
    let scrape: @Sendable () -> [UInt8]

    func handle(_ request: HTTPRequest, context: HTTPRequestContext) -> HTTPResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            return DebugHandler.text(405, "only GET and HEAD are served on the debug address\n", extra: [("Allow", "GET, HEAD")])
        }
        switch request.path {
        case "/livez":
            return DebugHandler.text(200, "ok\n")
        case "/readyz":
            if draining() { return DebugHandler.text(503, "not ready: draining, the server is stopping\n") }
            if let failure = storage.run() { return DebugHandler.text(503, "not ready: \(failure)\n") }
            return DebugHandler.text(200, "ok\n")
        case "/debug/health":
            var failures: [String: String] = [:]
            if let failure = storage.run() { failures[storage.name] = failure }
            let data = (try? JSONSerialization.data(withJSONObject: failures, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
            return HTTPResponse(status: failures.isEmpty ? 200 : 503, headers: [("Content-Type", "application/json; charset=utf-8")], data: data)
        case "/metrics":
            return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8"), ("Cache-Control", "no-store")],
                                body: .bytes(scrape()))
        default:
            return DebugHandler.text(404, "no such debug endpoint: \(request.path) (try /livez, /readyz, /debug/health, /metrics)\n")
        }
    }

    static func text(_ status: Int, _ body: String, extra: [(name: String, value: String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")] + extra,
                     body: .bytes(Array(body.utf8)))
    }
}
