import Foundation

/// What `registry serve` is told, from its flags and from an optional JSON config file (flags
/// win): each setting optional until `configuration(defaultStorage:)` checks them all and builds
/// the server's configuration. A library user embedding the server gets the same file format and
/// the same checks.
public struct RegistryServeSettings: Sendable {
    public var address: String?
    public var debugAddress: String?
    public var storage: String?
    /// An S3 bucket to store in instead of the `storage` directory.
    public var s3: S3Config?
    public var htpasswd: String?
    public var tokenAuth: Bool?
    public var tokenRealm: String?
    public var tokenService: String?
    public var tokenIssuer: String?
    public var tokenRootCert: String?
    /// A JSON Web Key Set file with the external token service's keys.
    public var tokenJWKS: String?
    public var tlsCertificate: String?
    public var tlsKey: String?
    public var readOnly: Bool?
    public var logFormat: String?
    public var maxConnections: Double?
    public var headerTimeout: Double?
    public var idleTimeout: Double?
    public var uploadLifetime: Double?
    public var drainTimeout: Double?
    public var maxHeaderBytes: Double?
    public var maxManifestBytes: Double?
    /// Whether DELETE of manifests and blobs is allowed (distribution's `storage.delete.enabled`,
    /// off by default there; on by default without a distribution config).
    public var deleteEnabled: Bool?
    /// Headers added to every registry response (distribution's `http.headers`).
    public var headers: [(String, String)]?
    /// Webhooks for push, pull, mount and delete events (distribution's `notifications.endpoints`).
    public var notifications: [NotificationEndpoint]?
    /// Pull-through cache mode: the upstream registry's URL (distribution's `proxy.remoteurl`).
    public var proxyRemoteURL: String?
    public var proxyUsername: String?
    public var proxyPassword: String?
    /// Seconds a cached tag is served before it is revalidated (distribution's `proxy.ttl`).
    public var proxyTTL: Double?

    public init() {}

    /// The keys a config file may hold.
    public static let fileKeys = ["addr", "http.debug.addr", "log.formatter", "storage", "htpasswd", "tokenAuth", "tlsCert", "tlsKey", "readOnly", "logFormat",
                                  "maxConnections", "headerTimeout", "idleTimeout", "uploadLifetime", "maxHeaderBytes", "maxManifestBytes", "drainTimeout"]

    /// Reads a config file. One with a `version` key is distribution's `config.yml` layout
    /// (`DistributionConfig`), checked key by key, with `REGISTRY_*` variables of `environment`
    /// overriding it. Otherwise it is the older JSON object with any of `fileKeys`; a dotted
    /// key is distribution's nesting (`{"http": {"debug": {"addr": "127.0.0.1:5001"}}}`). A
    /// value of the wrong type is an error naming the file and the key.
    public static func load(file path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> RegistryServeSettings {
        let obj = try DistributionConfig.loadObject(path)
        if DistributionConfig.isDistributionLayout(obj) {
            return try DistributionConfig.settings(DistributionConfig.flatten(obj, file: path, environment: environment), file: path,
                                                   environment: environment)
        }
        for key in obj.keys.sorted() where !fileKeys.contains(key) && key != "log" && key != "http" {
            throw RegistryServerError.invalidConfiguration("config file \(path): unknown key \(key) (known: \(fileKeys.joined(separator: ", ")); or give distribution's config.yml with version: 0.1)")
        }
        func number(_ key: String) throws -> Double? {
            guard let raw = obj[key] else { return nil }
            guard let n = raw as? NSNumber else { throw RegistryServerError.invalidConfiguration("config file \(path): \(key) must be a number") }
            return n.doubleValue
        }
        var s = RegistryServeSettings()
        s.address = obj["addr"] as? String
        s.storage = obj["storage"] as? String
        s.htpasswd = obj["htpasswd"] as? String
        s.tokenAuth = obj["tokenAuth"] as? Bool
        s.tlsCertificate = obj["tlsCert"] as? String
        s.tlsKey = obj["tlsKey"] as? String
        s.readOnly = obj["readOnly"] as? Bool
        s.logFormat = obj["logFormat"] as? String ?? (obj["log"] as? [String: Any])?["formatter"] as? String
        s.debugAddress = ((obj["http"] as? [String: Any])?["debug"] as? [String: Any])?["addr"] as? String
        s.maxConnections = try number("maxConnections")
        s.headerTimeout = try number("headerTimeout")
        s.idleTimeout = try number("idleTimeout")
        s.uploadLifetime = try number("uploadLifetime")
        s.maxHeaderBytes = try number("maxHeaderBytes")
        s.maxManifestBytes = try number("maxManifestBytes")
        s.drainTimeout = try number("drainTimeout")
        return s
    }

    /// These settings, with `base` filling in what they leave unset.
    public func over(_ base: RegistryServeSettings) -> RegistryServeSettings {
        var s = self
        s.address = address ?? base.address
        s.debugAddress = debugAddress ?? base.debugAddress
        s.storage = storage ?? base.storage
        s.s3 = s3 ?? base.s3
        s.htpasswd = htpasswd ?? base.htpasswd
        s.tokenAuth = tokenAuth ?? base.tokenAuth
        s.tokenRealm = tokenRealm ?? base.tokenRealm
        s.tokenService = tokenService ?? base.tokenService
        s.tokenIssuer = tokenIssuer ?? base.tokenIssuer
        s.tokenRootCert = tokenRootCert ?? base.tokenRootCert
        s.tokenJWKS = tokenJWKS ?? base.tokenJWKS
        s.tlsCertificate = tlsCertificate ?? base.tlsCertificate
        s.tlsKey = tlsKey ?? base.tlsKey
        s.readOnly = readOnly ?? base.readOnly
        s.logFormat = logFormat ?? base.logFormat
        s.maxConnections = maxConnections ?? base.maxConnections
        s.headerTimeout = headerTimeout ?? base.headerTimeout
        s.idleTimeout = idleTimeout ?? base.idleTimeout
        s.uploadLifetime = uploadLifetime ?? base.uploadLifetime
        s.drainTimeout = drainTimeout ?? base.drainTimeout
        s.maxHeaderBytes = maxHeaderBytes ?? base.maxHeaderBytes
        s.maxManifestBytes = maxManifestBytes ?? base.maxManifestBytes
        s.deleteEnabled = deleteEnabled ?? base.deleteEnabled
        s.headers = headers ?? base.headers
        s.notifications = notifications ?? base.notifications
        s.proxyRemoteURL = proxyRemoteURL ?? base.proxyRemoteURL
        s.proxyUsername = proxyUsername ?? base.proxyUsername
        s.proxyPassword = proxyPassword ?? base.proxyPassword
        s.proxyTTL = proxyTTL ?? base.proxyTTL
        return s
    }

    /// Checks every setting and builds the configuration; storage defaults to `defaultStorage`.
    /// Errors name the flag to change.
    public func configuration(defaultStorage: String) throws -> RegistryServerConfiguration {
        var cfg = RegistryServerConfiguration(root: storage ?? defaultStorage)
        cfg.s3 = s3
        if let address { cfg.address = address }
        if let debugAddress {
            _ = try HTTPServer.splitAddress(debugAddress)
            cfg.debugAddress = debugAddress
        }
        cfg.htpasswd = htpasswd
        cfg.tokenAuth = tokenAuth ?? false
        let external = [tokenRealm, tokenService, tokenIssuer, tokenRootCert, tokenJWKS]
        if external.contains(where: { $0 != nil }) {
            guard let r = tokenRealm, let s = tokenService, let i = tokenIssuer, tokenRootCert != nil || tokenJWKS != nil else {
                throw RegistryServerError.invalidConfiguration("--token-realm, --token-service, --token-issuer and --token-rootcert (or --token-jwks) go together")
            }
            cfg.externalToken = (r, s, i, tokenRootCert ?? "")
            cfg.tokenJWKS = tokenJWKS
        }
        cfg.tlsCertificate = tlsCertificate
        cfg.tlsKey = tlsKey
        cfg.readOnly = readOnly ?? false
        let format = logFormat ?? "text"
        guard let lf = RegistryServerConfiguration.LogFormat(rawValue: format) else {
            throw RegistryServerError.invalidConfiguration("--log-format must be text, json or none, not \(format)")
        }
        cfg.logFormat = lf
        let maxConn = maxConnections ?? Double(HTTPServerLimits().maxConnections)
        guard maxConn >= 1, maxConn <= 1_000_000, maxConn == maxConn.rounded() else {
            throw RegistryServerError.invalidConfiguration("--max-connections must be a whole number from 1 to 1000000, not \(maxConn)")
        }
        cfg.limits.maxConnections = Int(maxConn)
        cfg.limits.headerTimeout = headerTimeout ?? cfg.limits.headerTimeout
        cfg.limits.idleTimeout = idleTimeout ?? cfg.limits.idleTimeout
        cfg.uploadLifetime = uploadLifetime ?? cfg.uploadLifetime
        cfg.deleteEnabled = deleteEnabled ?? true
        cfg.headers = headers ?? []
        cfg.notifications = notifications ?? []
        for e in cfg.notifications where !(e.url.hasPrefix("http://") || e.url.hasPrefix("https://")) {
            throw RegistryServerError.invalidConfiguration("--notify \(e.url): a notification endpoint must be an http:// or https:// URL")
        }
        cfg.drainTimeout = drainTimeout ?? cfg.drainTimeout
        if let remote = proxyRemoteURL {
            var proxy = ProxyConfig(remoteURL: remote, username: proxyUsername, password: proxyPassword)
            if let ttl = proxyTTL {
                guard ttl >= 0, ttl <= 100 * 365 * 86400 else {
                    throw RegistryServerError.invalidConfiguration("--proxy-ttl must be a number of seconds from 0 up, not \(ttl)")
                }
                proxy.ttl = ttl
            }
            _ = try proxy.endpoint()
            if proxyPassword != nil && (proxyUsername ?? "").isEmpty {
                throw RegistryServerError.invalidConfiguration("a proxy password needs a proxy username (--proxy-username, proxy.username)")
            }
            cfg.proxy = proxy
        } else if proxyUsername != nil || proxyPassword != nil || proxyTTL != nil {
            throw RegistryServerError.invalidConfiguration("--proxy-username, --proxy-password-file and --proxy-ttl need --proxy-remote-url (proxy.remoteurl)")
        }
        if let h = maxHeaderBytes {
            guard h >= 1024, h <= 16 * 1024 * 1024, h == h.rounded() else {
                throw RegistryServerError.invalidConfiguration("--max-header-bytes must be a whole number of bytes from 1024 to 16777216, not \(h)")
            }
            cfg.limits.maxHeaderBytes = Int(h)
        }
        if let m = maxManifestBytes {
            guard m >= 1024, m <= 1024 * 1024 * 1024, m == m.rounded() else {
                throw RegistryServerError.invalidConfiguration("--max-manifest-bytes must be a whole number of bytes from 1024 to 1073741824, not \(m)")
            }
            cfg.maxManifestBytes = Int(m)
        }
        guard cfg.drainTimeout >= 0, cfg.drainTimeout <= 86400 else {
            throw RegistryServerError.invalidConfiguration("--drain-timeout must be a number of seconds from 0 to 86400, not \(cfg.drainTimeout)")
        }
        for (name, v) in [("--header-timeout", cfg.limits.headerTimeout), ("--idle-timeout", cfg.limits.idleTimeout), ("--upload-lifetime", cfg.uploadLifetime)]
        where !(v > 0 && v <= 1e7) {
            throw RegistryServerError.invalidConfiguration("\(name) must be a number of seconds above 0, not \(v)")
        }
        return cfg
    }
}
