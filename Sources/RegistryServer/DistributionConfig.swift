import Foundation
import SystemSupport
import Yams

/// distribution's `config.yml` (version 0.1), for the parts this server supports: an existing
/// distribution config starts `registry serve` unchanged, or fails naming the key it cannot
/// honour. Every key is checked against the layout: a misspelt key is an error with its path,
/// not silently ignored. `REGISTRY_*` environment variables override the file as in
/// distribution (`REGISTRY_HTTP_ADDR` for `http.addr`); flags override both.
public enum DistributionConfig {
    /// What a key holds.
    indirect enum Kind: Sendable {
        case string, bool, duration, int
        /// A map of header name to a list of values (`http.headers`).
        case headers
        /// `notifications.endpoints`: a list of webhooks.
        case endpoints
        /// Accepted and checked for shape only: it changes nothing here (documented).
        case ignored
        /// A distribution feature this server does not have: naming it is an error.
        case unsupported(String)
        case section([String: Kind])
    }

    /// The layout: distribution's keys, each with what it holds.
    static let layout: [String: Kind] = [
        "version": .string,
        "log": .section([
            "level": .string, "formatter": .string, "fields": .ignored,
            "accesslog": .section(["disabled": .bool]),
            "hooks": .unsupported("log hooks (mail) are not supported; read the access log from standard error"),
        ]),
        "loglevel": .string,
        "storage": .section([
            "filesystem": .section(["rootdirectory": .string, "maxthreads": .int]),
            "delete": .section(["enabled": .bool]),
            "redirect": .section(["disable": .bool]),
            "cache": .section(["blobdescriptor": .string, "blobdescriptorsize": .int]),
            "maintenance": .section([
                "uploadpurging": .section(["enabled": .bool, "age": .duration, "interval": .duration, "dryrun": .bool]),
                "readonly": .section(["enabled": .bool]),
            ]),
            "tag": .section(["concurrencylimit": .int]),
            "inmemory": .unsupported("the inmemory driver is not supported; use storage.filesystem"),
            "s3": .section([
                "region": .string, "regionendpoint": .string, "bucket": .string, "accesskey": .string, "secretkey": .string,
                "rootdirectory": .string, "forcepathstyle": .bool,
                // Tuning knobs of distribution's driver that change nothing here.
                "secure": .ignored, "v4auth": .ignored, "chunksize": .ignored, "multipartcopychunksize": .ignored,
                "multipartcopymaxconcurrency": .ignored, "multipartcopythresholdsize": .ignored, "loglevel": .ignored,
            ]),
            "azure": .unsupported("the azure driver is not supported; use storage.filesystem"),
            "gcs": .unsupported("the gcs driver is not supported; use storage.filesystem"),
            "swift": .unsupported("the swift driver is not supported; use storage.filesystem"),
            "oss": .unsupported("the oss driver is not supported; use storage.filesystem"),
        ]),
        "http": .section([
            "addr": .string, "net": .string, "prefix": .string, "host": .string, "secret": .string,
            "relativeurls": .bool, "draintimeout": .duration,
            "tls": .section([
                "certificate": .string, "key": .string, "minimumtls": .string,
                "clientcas": .unsupported("client certificate authentication (http.tls.clientcas) is not supported"),
                "letsencrypt": .unsupported("Let's Encrypt (http.tls.letsencrypt) is not supported; give http.tls.certificate and key"),
            ]),
            "debug": .section(["addr": .string, "prometheus": .section(["enabled": .bool, "path": .string])]),
            "headers": .headers,
            "http2": .section(["disabled": .bool]),
        ]),
        "auth": .section([
            "htpasswd": .section(["realm": .string, "path": .string]),
            "token": .section(["realm": .string, "service": .string, "issuer": .string, "rootcertbundle": .string,
                               "autoredirect": .bool, "jwks": .string]),
            "silly": .unsupported("silly auth is not supported; use auth.htpasswd"),
        ]),
        "health": .ignored,
        "validation": .ignored,
        "compatibility": .ignored,
        "catalog": .section(["maxentries": .int]),
        "reporting": .ignored,
        "redis": .unsupported("redis is not supported (no blob descriptor cache needed)"),
        "proxy": .section(["remoteurl": .string, "username": .string, "password": .string, "ttl": .duration]),
        "notifications": .section(["events": .ignored, "endpoints": .endpoints]),
        "middleware": .unsupported("storage and registry middleware (CDN redirects) is not supported"),
    ]

    /// Whether `text` is in distribution's layout (it has `version:`), not the older JSON keys.
    static func isDistributionLayout(_ object: [String: Any]) -> Bool { object["version"] != nil }

    /// Reads a file as YAML (JSON is YAML too) into a map of string keys.
    static func loadObject(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RegistryServerError.invalidConfiguration("cannot read config file \(path)")
        }
        let text = String(decoding: data, as: UTF8.self)
        let loaded: Any?
        do {
            loaded = try Yams.load(yaml: text)
        } catch {
            throw RegistryServerError.invalidConfiguration("config file \(path) is not valid YAML: \(error)")
        }
        guard let object = loaded as? [String: Any] else {
            throw RegistryServerError.invalidConfiguration("config file \(path): expected a map of keys at the top level")
        }
        return object
    }

    /// Checks `object` against the layout and flattens it to dotted paths (`http.addr`); then
    /// applies `REGISTRY_*` overrides from `environment`.
    static func flatten(_ object: [String: Any], file: String, environment: [String: String]) throws -> [String: Any] {
        var out: [String: Any] = [:]
        try walk(object, layout, prefix: "", place: "config file \(file)", into: &out)
        for (path, kind) in leaves(layout, prefix: "") {
            let name = "REGISTRY_" + path.uppercased().replacingOccurrences(of: ".", with: "_")
            guard let raw = environment[name] else { continue }
            out[path] = try value(raw, kind, path: path, where: "environment variable \(name)")
        }
        return out
    }

    /// `place` says where the keys come from in errors (`config file PATH`).
    private static func walk(_ object: [String: Any], _ layout: [String: Kind], prefix: String, place: String, into out: inout [String: Any]) throws {
        for key in object.keys.sorted() {
            let path = prefix.isEmpty ? key : prefix + "." + key
            guard let kind = layout[key] else {
                let known = layout.keys.sorted().joined(separator: ", ")
                throw RegistryServerError.invalidConfiguration("\(place): unknown key \(path) (known here: \(known))")
            }
            let raw = object[key] ?? NSNull()
            switch kind {
            case .section(let inner):
                if raw is NSNull { continue }
                guard let map = raw as? [String: Any] else {
                    throw RegistryServerError.invalidConfiguration("\(place): \(path) must be a map of keys")
                }
                try walk(map, inner, prefix: path, place: place, into: &out)
            case .unsupported(let why):
                // A disabled feature is no feature: `proxy:` with nothing under it, or
                // `storage.s3` left empty, is accepted.
                if raw is NSNull { continue }
                throw RegistryServerError.invalidConfiguration("\(place): \(path): \(why)")
            default:
                out[path] = try value(raw, kind, path: path, where: place)
            }
        }
    }

    /// Every leaf path of the layout with its kind.
    private static func leaves(_ layout: [String: Kind], prefix: String) -> [(String, Kind)] {
        layout.flatMap { key, kind -> [(String, Kind)] in
            let path = prefix.isEmpty ? key : prefix + "." + key
            switch kind {
            case .section(let inner): return leaves(inner, prefix: path)
            case .unsupported, .ignored, .headers, .endpoints: return []
            default: return [(path, kind)]
            }
        }
    }

    /// A value of `kind` from YAML (or an environment variable's text).
    private static func value(_ raw: Any, _ kind: Kind, path: String, where place: String) throws -> Any {
        func fail(_ want: String) -> RegistryServerError {
            .invalidConfiguration("\(place): \(path) must be \(want), not \(String(describing: raw))")
        }
        switch kind {
        case .string:
            if let s = raw as? String { return s }
            if let n = raw as? NSNumber { return n.stringValue }
            throw fail("a string")
        case .bool:
            if let b = raw as? Bool { return b }
            if let s = raw as? String, let b = Bool(s.lowercased()) { return b }
            throw fail("true or false")
        case .int:
            if let i = raw as? Int { return i }
            if let s = raw as? String, let i = Int(s) { return i }
            throw fail("a whole number")
        case .duration:
            // Go durations as distribution reads them (`60s`, `168h`); a bare number is
            // nanoseconds there, which nobody means: refused.
            if let s = raw as? String, let d = GoDuration.seconds(s), d >= 0 { return d }
            throw fail("a duration such as 30s, 5m or 168h")
        case .headers:
            guard let map = raw as? [String: Any] else { throw fail("a map of header names to lists of values") }
            var headers: [(String, String)] = []
            for name in map.keys.sorted() {
                let values: [String]
                if let list = map[name] as? [Any] { values = list.map { "\($0)" } } else if let one = map[name] { values = ["\(one)"] } else { values = [] }
                for v in values { headers.append((name, v)) }
            }
            return headers
        case .endpoints:
            guard let list = raw as? [Any] else { throw fail("a list of endpoints") }
            return try list.enumerated().compactMap { i, item in try endpoint(item, path: "\(path)[\(i)]", where: place) }
        case .ignored:
            return raw
        case .section, .unsupported:
            return raw
        }
    }

    /// The keys of one `notifications.endpoints` entry.
    static let endpointLayout: [String: Kind] = [
        "name": .string, "disabled": .bool, "url": .string, "headers": .ignored, "timeout": .duration,
        "threshold": .int, "backoff": .duration, "ignoredmediatypes": .ignored,
        "ignore": .section(["mediatypes": .ignored, "actions": .ignored]), "queuelimit": .int,
    ]

    /// One endpoint of `notifications.endpoints`; nil when it is disabled.
    private static func endpoint(_ raw: Any, path: String, where place: String) throws -> NotificationEndpoint? {
        guard let map = raw as? [String: Any] else {
            throw RegistryServerError.invalidConfiguration("\(place): \(path) must be a map with name and url")
        }
        var flat: [String: Any] = [:]
        try walk(map, endpointLayout, prefix: "", place: place, into: &flat)
        if flat["disabled"] as? Bool == true { return nil }
        guard let name = flat["name"] as? String, let url = flat["url"] as? String else {
            throw RegistryServerError.invalidConfiguration("\(place): \(path) needs a name and a url")
        }
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw RegistryServerError.invalidConfiguration("\(place): \(path).url must be an http:// or https:// URL, not \(url)")
        }
        func strings(_ any: Any?) -> [String] { (any as? [Any])?.map { "\($0)" } ?? [] }
        var e = NotificationEndpoint(name: name, url: url)
        if let headers = map["headers"] as? [String: Any] {
            for (k, v) in headers { e.headers[k] = (v as? [Any])?.map { "\($0)" } ?? ["\(v)"] }
        }
        if let t = flat["timeout"] as? Double, t > 0 { e.timeout = t }
        if let t = flat["threshold"] as? Int, t > 0 { e.threshold = t }
        if let b = flat["backoff"] as? Double, b > 0 { e.backoff = b }
        if let q = flat["queuelimit"] as? Int, q > 0 { e.queueLimit = q }
        e.ignoredMediaTypes = strings(map["ignoredmediatypes"]) + strings((map["ignore"] as? [String: Any])?["mediatypes"])
        e.ignoredActions = strings((map["ignore"] as? [String: Any])?["actions"])
        return e
    }

    /// Settings from a distribution-layout object (already checked by `flatten`).
    static func settings(_ flat: [String: Any], file: String, environment: [String: String] = [:]) throws -> RegistryServeSettings {
        func string(_ k: String) -> String? { flat[k] as? String }
        func bool(_ k: String) -> Bool? { flat[k] as? Bool }
        func seconds(_ k: String) -> Double? { flat[k] as? Double }
        if let v = string("version"), v != "0.1" {
            throw RegistryServerError.invalidConfiguration("config file \(file): version must be 0.1, not \(v)")
        }
        if let net = string("http.net"), net != "tcp" {
            throw RegistryServerError.invalidConfiguration("config file \(file): http.net \(net) is not supported; only tcp")
        }
        if let prefix = string("http.prefix"), prefix != "/", !prefix.isEmpty {
            throw RegistryServerError.invalidConfiguration("config file \(file): http.prefix \(prefix) is not supported; serve at / (a reverse proxy can add a prefix)")
        }
        if let level = string("log.level") ?? string("loglevel"), !["error", "warn", "info", "debug"].contains(level) {
            throw RegistryServerError.invalidConfiguration("config file \(file): log.level must be error, warn, info or debug, not \(level)")
        }
        if let tls = string("http.tls.minimumtls"), !["tls1.2", "tls1.3"].contains(tls) {
            throw RegistryServerError.invalidConfiguration("config file \(file): http.tls.minimumtls must be tls1.2 or tls1.3 (older versions are refused), not \(tls)")
        }
        if bool("http.debug.prometheus.enabled") == true, let path = string("http.debug.prometheus.path"), path != "/metrics" {
            throw RegistryServerError.invalidConfiguration("config file \(file): http.debug.prometheus.path must be /metrics, not \(path)")
        }
        var s = RegistryServeSettings()
        s.address = string("http.addr")
        s.debugAddress = string("http.debug.addr")
        s.storage = string("storage.filesystem.rootdirectory")
        if flat.keys.contains(where: { $0.hasPrefix("storage.s3.") }) {
            s.s3 = try s3Config(flat, file: file, environment: environment)
            if s.storage != nil {
                throw RegistryServerError.invalidConfiguration("config file \(file): storage.filesystem and storage.s3 exclude each other; keep one")
            }
        }
        s.htpasswd = string("auth.htpasswd.path")
        s.tokenRealm = string("auth.token.realm")
        s.tokenService = string("auth.token.service")
        s.tokenIssuer = string("auth.token.issuer")
        s.tokenRootCert = string("auth.token.rootcertbundle")
        s.tokenJWKS = string("auth.token.jwks")
        s.tlsCertificate = string("http.tls.certificate")
        s.tlsKey = string("http.tls.key")
        s.readOnly = bool("storage.maintenance.readonly.enabled")
        s.deleteEnabled = bool("storage.delete.enabled") ?? false
        if let formatter = string("log.formatter") {
            guard ["text", "json"].contains(formatter) else {
                throw RegistryServerError.invalidConfiguration("config file \(file): log.formatter must be text or json, not \(formatter)")
            }
            s.logFormat = formatter
        }
        if bool("log.accesslog.disabled") == true { s.logFormat = "none" }
        if bool("storage.maintenance.uploadpurging.enabled") != false, let age = seconds("storage.maintenance.uploadpurging.age"), age > 0 {
            s.uploadLifetime = age
        }
        s.drainTimeout = seconds("http.draintimeout")
        if let remote = string("proxy.remoteurl"), !remote.isEmpty {
            s.proxyRemoteURL = remote
            s.proxyUsername = string("proxy.username")
            s.proxyPassword = string("proxy.password")
            s.proxyTTL = seconds("proxy.ttl")
        } else if flat.keys.contains(where: { $0.hasPrefix("proxy.") }) {
            throw RegistryServerError.invalidConfiguration("config file \(file): proxy needs remoteurl, the upstream registry's URL (https://registry-1.docker.io)")
        }
        s.headers = flat["http.headers"] as? [(String, String)]
        s.notifications = flat["notifications.endpoints"] as? [NotificationEndpoint]
        return s
    }

    /// `storage.s3`, with the credentials from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`
    /// where the file has none (as distribution's driver does).
    static func s3Config(_ flat: [String: Any], file: String, environment: [String: String]) throws -> S3Config {
        func string(_ k: String) -> String? { flat["storage.s3." + k] as? String }
        guard let bucket = string("bucket"), !bucket.isEmpty else {
            throw RegistryServerError.invalidConfiguration("config file \(file): storage.s3.bucket is missing; name the bucket to store into")
        }
        let region = string("region") ?? ""
        let endpoint = string("regionendpoint") ?? ""
        guard !region.isEmpty || !endpoint.isEmpty else {
            throw RegistryServerError.invalidConfiguration("config file \(file): storage.s3 needs region (and regionendpoint for a service other than AWS)")
        }
        let access = string("accesskey") ?? environment["AWS_ACCESS_KEY_ID"] ?? ""
        let secret = string("secretkey") ?? environment["AWS_SECRET_ACCESS_KEY"] ?? ""
        guard !access.isEmpty, !secret.isEmpty else {
            throw RegistryServerError.invalidConfiguration("config file \(file): storage.s3 has no credentials; set accesskey and secretkey, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        }
        return S3Config(endpoint: endpoint, region: region.isEmpty ? "us-east-1" : region, bucket: bucket, accessKey: access,
                        secretKey: secret, rootDirectory: string("rootdirectory") ?? "",
                        forcePathStyle: flat["storage.s3.forcepathstyle"] as? Bool ?? true,
                        redirect: flat["storage.redirect.disable"] as? Bool != true)
    }
}
