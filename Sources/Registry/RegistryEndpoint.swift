import Foundation

/// Where a registry lives: the name users write (`docker.io`, `localhost:5000`) and the URL
/// the client talks to (`https://registry-1.docker.io`).
public struct RegistryEndpoint: Sendable, Equatable {
    /// The registry as named in references and config.json.
    public let name: String
    /// `host[:port]` actually contacted.
    public let host: String
    public private(set) var scheme: String
    /// An `--insecure` registry: HTTPS without checking its certificate, and plain HTTP when
    /// HTTPS does not answer (the client finds out with its first request), as docker does.
    public private(set) var insecure = false
    /// Whether the TLS certificate is checked (false for insecure registries).
    public var verifyTLS: Bool { !insecure }

    /// `localhost`, `127.0.0.0/8` and `::1` get plain HTTP, as with docker; `insecure` tries
    /// HTTPS without verification first, then plain HTTP.
    public init(registry: String, insecure: Bool = false) {
        name = registry
        switch registry {
        case "docker.io", "index.docker.io", "registry-1.docker.io": host = "registry-1.docker.io"
        default: host = registry
        }
        self.insecure = insecure
        scheme = (!insecure && RegistryEndpoint.isLoopback(registry)) ? "http" : "https"
    }

    /// The same registry over plain HTTP (an insecure registry whose HTTPS did not answer).
    func plainHTTP() -> RegistryEndpoint {
        var e = self
        e.scheme = "http"
        return e
    }

    /// An endpoint with an explicit scheme ("https" or "http").
    public init(registry: String, scheme: String) {
        self.init(registry: registry)
        self.scheme = scheme
    }

    /// Whether a `host[:port]` names this machine's loopback.
    public static func isLoopback(_ hostPort: String) -> Bool {
        var host = Substring(hostPort)
        if host.hasPrefix("[") {
            guard let end = host.firstIndex(of: "]") else { return false }
            host = host[host.index(after: host.startIndex)..<end]
            return host == "::1"
        }
        if let colon = host.lastIndex(of: ":") { host = host[..<colon] }
        if host == "localhost" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "127" else { return false }
        return parts.allSatisfy { p in UInt8(p) != nil }
    }

    public var baseURL: URL {
        // Host names from references are validated by the reference grammar; this cannot fail for them.
        URL(string: "\(scheme)://\(host)") ?? URL(fileURLWithPath: "/")
    }

    /// An absolute URL for a path such as `/v2/library/alpine/manifests/latest`.
    public func url(_ path: String) -> URL {
        URL(string: "\(scheme)://\(host)\(path)") ?? baseURL
    }

    /// Whether a URL points at this registry (so it may receive our Authorization header).
    func owns(_ url: URL) -> Bool {
        guard let h = url.host else { return false }
        let hp = url.port.map { "\(h):\($0)" } ?? h
        let mine = baseURL.port.map { "\(baseURL.host ?? ""):\($0)" } ?? (baseURL.host ?? "")
        return hp.lowercased() == mine.lowercased() && url.scheme == scheme
    }
}
