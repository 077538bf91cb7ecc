import Foundation
import Testing
@testable import RegistryServer

/// `RegistryServeSettings`: a config file's values under the flags', and every check with a
/// message naming what to change (the library gives `registry serve` its whole configuration).
@Suite struct SettingsTests {
    func file(_ json: String) throws -> String {
        let p = FileManager.default.temporaryDirectory.path + "/serve-settings-\(UUID().uuidString).json"
        try Data(json.utf8).write(to: URL(fileURLWithPath: p))
        return p
    }

    @Test func flagsWinOverTheFileAndTheFileOverDefaults() throws {
        let path = try file(#"{"addr": "127.0.0.1:7000", "readOnly": true, "logFormat": "json", "maxConnections": 8, "idleTimeout": 5}"#)
        defer { unlink(path) }
        var flags = RegistryServeSettings()
        flags.maxConnections = 16
        let cfg = try flags.over(try RegistryServeSettings.load(file: path)).configuration(defaultStorage: "/tmp/reg")
        #expect(cfg.address == "127.0.0.1:7000" && cfg.readOnly && cfg.logFormat == .json)
        #expect(cfg.limits.maxConnections == 16 && cfg.limits.idleTimeout == 5)
        #expect(cfg.root == "/tmp/reg")
        #expect(cfg.limits.headerTimeout == HTTPServerLimits().headerTimeout)
    }

    @Test func badValuesAreRefusedWithWhatToChange() throws {
        let notObject = try file("[1]")
        defer { unlink(notObject) }
        #expect(throws: RegistryServerError.invalidConfiguration("config file \(notObject): expected a map of keys at the top level")) {
            try RegistryServeSettings.load(file: notObject)
        }
        let wrongType = try file(#"{"idleTimeout": "soon"}"#)
        defer { unlink(wrongType) }
        #expect(throws: RegistryServerError.invalidConfiguration("config file \(wrongType): idleTimeout must be a number")) {
            try RegistryServeSettings.load(file: wrongType)
        }
        var s = RegistryServeSettings()
        s.maxConnections = 0.5
        #expect(throws: RegistryServerError.self) { try s.configuration(defaultStorage: "/x") }
        s = RegistryServeSettings()
        s.headerTimeout = -1
        #expect(throws: RegistryServerError.invalidConfiguration("--header-timeout must be a number of seconds above 0, not -1.0")) {
            try s.configuration(defaultStorage: "/x")
        }
        s = RegistryServeSettings()
        s.logFormat = "xml"
        #expect(throws: RegistryServerError.invalidConfiguration("--log-format must be text, json or none, not xml")) {
            try s.configuration(defaultStorage: "/x")
        }
        s = RegistryServeSettings()
        s.tokenRealm = "https://auth.example/token"
        #expect(throws: RegistryServerError.self) { try s.configuration(defaultStorage: "/x") }
    }

    /// distribution's own sample config (its layout, as `registry serve /etc/docker/registry/config.yml`
    /// reads it): what this server honours is taken, what changes nothing here is accepted.
    static let distributionSample = """
    version: 0.1
    log:
      level: info
      formatter: json
      fields:
        service: registry
    storage:
      cache:
        blobdescriptor: inmemory
      filesystem:
        rootdirectory: /var/lib/registry
      delete:
        enabled: true
      maintenance:
        uploadpurging:
          enabled: true
          age: 168h
          interval: 24h
          dryrun: false
    http:
      addr: :5000
      draintimeout: 60s
      debug:
        addr: 127.0.0.1:5001
        prometheus:
          enabled: true
          path: /metrics
      headers:
        X-Content-Type-Options: [nosniff]
    auth:
      htpasswd:
        realm: basic-realm
        path: /etc/registry/htpasswd
    health:
      storagedriver:
        enabled: true
        interval: 10s
        threshold: 3
    """

    @Test func distributionConfigYmlIsReadAsDistributionReadsIt() throws {
        let path = try file(Self.distributionSample)
        defer { unlink(path) }
        let cfg = try RegistryServeSettings.load(file: path, environment: [:]).configuration(defaultStorage: "/unused")
        #expect(cfg.address == ":5000")
        #expect(cfg.root == "/var/lib/registry")
        #expect(cfg.logFormat == .json)
        #expect(cfg.debugAddress == "127.0.0.1:5001")
        #expect(cfg.drainTimeout == 60)
        #expect(cfg.uploadLifetime == 168 * 3600)
        #expect(cfg.deleteEnabled)
        #expect(cfg.htpasswd == "/etc/registry/htpasswd")
        #expect(cfg.headers.map { "\($0.name): \($0.value)" } == ["X-Content-Type-Options: nosniff"])
    }

    @Test func registryEnvironmentVariablesOverrideTheFileAndFlagsOverrideBoth() throws {
        let path = try file(Self.distributionSample)
        defer { unlink(path) }
        let env = ["REGISTRY_HTTP_ADDR": "127.0.0.1:6000", "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/srv/reg",
                   "REGISTRY_STORAGE_DELETE_ENABLED": "false", "REGISTRY_HTTP_DRAINTIMEOUT": "5s", "UNRELATED": "x"]
        let file = try RegistryServeSettings.load(file: path, environment: env)
        var flags = RegistryServeSettings()
        flags.storage = "/flag/wins"
        let cfg = try flags.over(file).configuration(defaultStorage: "/unused")
        #expect(cfg.address == "127.0.0.1:6000")
        #expect(cfg.root == "/flag/wins")
        #expect(!cfg.deleteEnabled)
        #expect(cfg.drainTimeout == 5)
        let bad = ["REGISTRY_HTTP_DRAINTIMEOUT": "soon"]
        #expect(throws: RegistryServerError.invalidConfiguration("environment variable REGISTRY_HTTP_DRAINTIMEOUT: http.draintimeout must be a duration such as 30s, 5m or 168h, not soon")) {
            try RegistryServeSettings.load(file: path, environment: bad)
        }
    }

    @Test func distributionConfigErrorsNameTheKeyPath() throws {
        let typo = try file("version: 0.1\nhttp:\n  adress: :5000\n")
        defer { unlink(typo) }
        #expect(throws: RegistryServerError.invalidConfiguration("config file \(typo): unknown key http.adress (known here: addr, debug, draintimeout, headers, host, http2, net, prefix, relativeurls, secret, tls)")) {
            try RegistryServeSettings.load(file: typo, environment: [:])
        }
        let s3 = try file("version: 0.1\nstorage:\n  s3:\n    bucket: images\n")
        defer { unlink(s3) }
        #expect(throws: RegistryServerError.invalidConfiguration("config file \(s3): storage.s3 needs region (and regionendpoint for a service other than AWS)")) {
            try RegistryServeSettings.load(file: s3, environment: [:])
        }
        let s3NoKeys = try file("version: 0.1\nstorage:\n  s3:\n    bucket: images\n    region: eu-west-1\n")
        defer { unlink(s3NoKeys) }
        #expect(throws: RegistryServerError.invalidConfiguration("config file \(s3NoKeys): storage.s3 has no credentials; set accesskey and secretkey, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")) {
            try RegistryServeSettings.load(file: s3NoKeys, environment: [:])
        }
        let both = try file("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /x\n  s3:\n    bucket: b\n    region: r\n    accesskey: a\n    secretkey: s\n")
        defer { unlink(both) }
        #expect(throws: RegistryServerError.invalidConfiguration("config file \(both): storage.filesystem and storage.s3 exclude each other; keep one")) {
            try RegistryServeSettings.load(file: both, environment: [:])
        }
        let proxy = try file("version: 0.1\nproxy:\n  username: someone\n")
        defer { unlink(proxy) }
        #expect(throws: RegistryServerError.invalidConfiguration("config file \(proxy): proxy needs remoteurl, the upstream registry's URL (https://registry-1.docker.io)")) {
            try RegistryServeSettings.load(file: proxy, environment: [:])
        }
        let badYAML = try file("version: 0.1\nhttp: [unclosed\n")
        defer { unlink(badYAML) }
        #expect(throws: RegistryServerError.self) { try RegistryServeSettings.load(file: badYAML, environment: [:]) }
        let legacyTypo = try file(#"{"adr": "127.0.0.1:1"}"#)
        defer { unlink(legacyTypo) }
        #expect(throws: RegistryServerError.self) { try RegistryServeSettings.load(file: legacyTypo, environment: [:]) }
        let version = try file("version: 0.2\n")
        defer { unlink(version) }
        #expect(throws: RegistryServerError.invalidConfiguration("config file \(version): version must be 0.1, not 0.2")) {
            try RegistryServeSettings.load(file: version, environment: [:])
        }
    }

    /// distribution's `storage.s3` keys; the credentials may come from the standard AWS variables.
    @Test func distributionS3StorageKeys() throws {
        let path = try file("""
            version: 0.1
            storage:
              s3:
                region: us-east-1
                regionendpoint: http://127.0.0.1:7480
                bucket: images
                rootdirectory: /registry/v2/
                forcepathstyle: true
                secure: false
            """)
        defer { unlink(path) }
        let env = ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET"]
        let cfg = try RegistryServeSettings.load(file: path, environment: env).configuration(defaultStorage: "/unused")
        #expect(cfg.s3 == S3Config(endpoint: "http://127.0.0.1:7480", region: "us-east-1", bucket: "images", accessKey: "AKID",
                                   secretKey: "SECRET", rootDirectory: "registry/v2", forcePathStyle: true, redirect: true))
        // keys in the file win over the environment; redirect.disable turns presigned redirects off
        let withKeys = try file("version: 0.1\nstorage:\n  s3:\n    bucket: b\n    region: r\n    accesskey: a\n    secretkey: s\n  redirect:\n    disable: true\n")
        defer { unlink(withKeys) }
        let s = try RegistryServeSettings.load(file: withKeys, environment: env)
        #expect(s.s3?.accessKey == "a" && s.s3?.secretKey == "s" && s.s3?.redirect == false)
    }

    /// distribution's `proxy` section: the upstream, its credentials and the tag TTL (a Go
    /// duration, 168h when absent); `REGISTRY_PROXY_*` override it; a URL with a path, a
    /// password without a user, or proxy flags without an upstream are refused.
    @Test func distributionProxyKeys() throws {
        let path = try file("""
            version: 0.1
            proxy:
              remoteurl: https://registry-1.docker.io
              username: mirror
              password: secret
              ttl: 30m
            """)
        defer { unlink(path) }
        let cfg = try RegistryServeSettings.load(file: path, environment: [:]).configuration(defaultStorage: "/unused")
        var want = ProxyConfig(remoteURL: "https://registry-1.docker.io", username: "mirror", password: "secret")
        want.ttl = 1800
        #expect(cfg.proxy == want)
        let env = ["REGISTRY_PROXY_REMOTEURL": "http://127.0.0.1:5000", "REGISTRY_PROXY_TTL": "10s"]
        let overridden = try RegistryServeSettings.load(file: path, environment: env).configuration(defaultStorage: "/unused")
        #expect(overridden.proxy?.remoteURL == "http://127.0.0.1:5000" && overridden.proxy?.ttl == 10)

        let plain = try file("version: 0.1\nproxy:\n  remoteurl: http://127.0.0.1:5000\n")
        defer { unlink(plain) }
        #expect(try RegistryServeSettings.load(file: plain, environment: [:]).configuration(defaultStorage: "/unused").proxy?.ttl == 168 * 3600)

        let withPath = try file("version: 0.1\nproxy:\n  remoteurl: https://example.com/v2\n")
        defer { unlink(withPath) }
        #expect(throws: RegistryServerError.invalidConfiguration("proxy remote URL https://example.com/v2 must be http://HOST[:PORT] or https://HOST[:PORT] (no path, no credentials: give --proxy-username and --proxy-password-file)")) {
            try RegistryServeSettings.load(file: withPath, environment: [:]).configuration(defaultStorage: "/unused")
        }
        var flags = RegistryServeSettings()
        flags.proxyUsername = "someone"
        #expect(throws: RegistryServerError.invalidConfiguration("--proxy-username, --proxy-password-file and --proxy-ttl need --proxy-remote-url (proxy.remoteurl)")) {
            try flags.configuration(defaultStorage: "/unused")
        }
        flags.proxyRemoteURL = "http://127.0.0.1:5000"
        flags.proxyUsername = nil
        flags.proxyPassword = "pw"
        #expect(throws: RegistryServerError.invalidConfiguration("a proxy password needs a proxy username (--proxy-username, proxy.username)")) {
            try flags.configuration(defaultStorage: "/unused")
        }
    }
}
