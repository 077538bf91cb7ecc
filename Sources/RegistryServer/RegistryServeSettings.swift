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
    /// `s3Flags` (`registry serve`'s `--s3-*` flags) override their keys of a distribution
    /// config after the file and the environment, and replace its `storage.filesystem`.
    public static func load(file path: String, environment: [String: String] = ProcessInfo.processInfo.environment,
                            s3Flags: S3Flags = S3Flags()) throws -> RegistryServeSettings {
        let obj = try DistributionConfig.loadObject(path)
        if DistributionConfig.isDistributionLayout(obj) {
            var flat = try DistributionConfig.flatten(obj, file: path, environment: environment)
            let overrides = s3Flags.keys
            if !overrides.isEmpty {
                for key in flat.keys where key.hasPrefix("storage.filesystem.") { flat[key] = nil }
                flat.merge(overrides) { _, flag in flag }
            }
            return try DistributionConfig.settings(flat, file: path, environment: environment)
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

    /// S3 storage from `--s3-*` flags alone (no config file, or one without `storage.s3`):
    /// `bucket` and `endpoint` are required, the keys default to `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY` of `environment`. Nil when no S3 flag is given.
    public static func s3(flags: S3Flags, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> S3Config? {
        guard !flags.keys.isEmpty else { return nil }
        guard let bucket = flags.bucket, !bucket.isEmpty, let endpoint = flags.endpoint, !endpoint.isEmpty else {
            throw RegistryServerError.invalidConfiguration("S3 storage without a config file needs --s3-bucket and --s3-endpoint (http(s)://HOST[:PORT]); or give --config with storage.s3")
        }
        guard endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://") else {
            throw RegistryServerError.invalidConfiguration("--s3-endpoint \(endpoint) must be an http:// or https:// URL")
        }
        let access = flags.accessKey ?? environment["AWS_ACCESS_KEY_ID"] ?? ""
        let secret = flags.secretKey ?? environment["AWS_SECRET_ACCESS_KEY"] ?? ""
        guard !access.isEmpty, !secret.isEmpty else {
            throw RegistryServerError.invalidConfiguration("S3 storage has no credentials; give --s3-access-key and --s3-secret-key-file, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        }
        return S3Config(endpoint: endpoint, region: flags.region ?? "us-east-1", bucket: bucket, accessKey: access, secretKey: secret,
                        rootDirectory: flags.rootDirectory ?? "", forcePathStyle: flags.virtualHost != true, redirect: true)
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

/// `registry serve`'s `--s3-*` flags: each one given overrides its `storage.s3` key.
public struct S3Flags: Sendable, Equatable {
    public var endpoint: String?
    public var region: String?
    public var bucket: String?
    public var rootDirectory: String?
    public var accessKey: String?
    public var secretKey: String?
    /// True for virtual-host addressing (`forcepathstyle: false`); nil leaves the config's.
    public var virtualHost: Bool?

    public init(endpoint: String? = nil, region: String? = nil, bucket: String? = nil, rootDirectory: String? = nil,
                accessKey: String? = nil, secretKey: String? = nil, virtualHost: Bool? = nil) {
        self.endpoint = endpoint
        self.region = region
        self.bucket = bucket
        self.rootDirectory = rootDirectory
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.virtualHost = virtualHost
    }

    /// The flags given, as flattened distribution config keys.
    var keys: [String: Any] {
        var k: [String: Any] = [:]
        for (key, value) in [("regionendpoint", endpoint), ("region", region), ("bucket", bucket), ("rootdirectory", rootDirectory),
                             ("accesskey", accessKey), ("secretkey", secretKey)] {
            if let value { k["storage.s3." + key] = value }
        }
        if let virtualHost { k["storage.s3.forcepathstyle"] = !virtualHost }
        return k
    }

    /// The flags given, by name, for errors.
    public var names: [String] {
        [("--s3-endpoint", endpoint != nil), ("--s3-region", region != nil), ("--s3-bucket", bucket != nil),
         ("--s3-root-directory", rootDirectory != nil), ("--s3-access-key", accessKey != nil),
         ("--s3-secret-key-file", secretKey != nil), ("--s3-virtual-host", virtualHost != nil)].filter(\.1).map(\.0)
    }
}
