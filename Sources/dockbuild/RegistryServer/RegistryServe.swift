import ArgumentParser
import Foundation
import RegistryServer
import SystemSupport

/// Write end of the pipe the SIGINT/SIGTERM/SIGHUP handler of `registry serve` writes to (the
/// signal number, one byte); set once before the handler is installed, read only by the handler.
nonisolated(unsafe) private var registryServeSignalFD: Int32 = -1

/// `dockbuild registry serve`: an OCI distribution-spec v1.1 registry in the foreground.
struct RegistryServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve an OCI registry (distribution-spec v1.1) from a local directory.",
        discussion: """
        Blobs and manifests live under <root>/registry (or --storage).
        With --htpasswd, every request needs a user from that file (bcrypt entries,
        `htpasswd -cB FILE USER`); add --token-auth to hand out Docker bearer tokens
        from /token instead of checking Basic credentials on each request.
        --config takes distribution's config.yml (version 0.1); REGISTRY_* variables
        override it as in distribution, and flags override both.
        --s3-bucket with --s3-endpoint stores in an S3 bucket instead (credentials from
        --s3-access-key and --s3-secret-key-file, else AWS_ACCESS_KEY_ID and
        AWS_SECRET_ACCESS_KEY); with --config, each --s3-* flag overrides its storage.s3 key.
        --proxy-remote-url makes it a pull-through cache of another registry
        (distribution's proxy mode): misses are fetched, verified and stored, tags
        are checked again after --proxy-ttl, pushes and deletes are refused.

        SIGTERM or Ctrl-C stops gracefully: nothing new is accepted, requests in flight
        get --drain-timeout seconds to finish, then the rest are cut (a second signal
        cuts them at once). SIGHUP reads the htpasswd file again.
        """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "Address to listen on, host:port (port 0 picks a free one).")
    var addr = "127.0.0.1:5000"

    @Option(name: .customLong("debug-addr"), help: "Debug address, host:port: /livez, /readyz, /debug/health and /metrics on a separate plain-HTTP listener (port 0 picks a free one).")
    var debugAddr: String?

    @Option(help: "Storage directory (default: <root>/registry).")
    var storage: String?

    @Option(help: "htpasswd file with bcrypt entries; turns authentication on.")
    var htpasswd: String?

    @Flag(help: "With --htpasswd: Docker token auth through this server's /token endpoint.")
    var tokenAuth = false

    @Option(name: .customLong("token-realm"), help: "External token service URL (with --token-service, --token-issuer, --token-rootcert): accept its JWTs instead of htpasswd.")
    var tokenRealm: String?

    @Option(name: .customLong("token-service"), help: "Service name the external tokens are issued for (their aud).")
    var tokenService: String?

    @Option(name: .customLong("token-issuer"), help: "Issuer of the external tokens (their iss).")
    var tokenIssuer: String?

    @Option(name: .customLong("token-rootcert"), help: "PEM bundle with the certificate(s) of the external token signer.")
    var tokenRootcert: String?

    @Option(name: .customLong("token-jwks"), help: "JSON Web Key Set file with the external token signer's keys (instead of or beside --token-rootcert).")
    var tokenJWKS: String?

    @Option(name: .customLong("tls-cert"), help: "PEM certificate for HTTPS.")
    var tlsCert: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key for HTTPS.")
    var tlsKey: String?

    @Flag(help: "Refuse every write (push, delete).")
    var readOnly = false

    @Option(help: "Access log format: text, json or none.")
    var logFormat = "text"

    @Option(help: "Connections served at once (each one thread); more are answered 503 and closed. Default 512.")
    var maxConnections: Int?

    @Option(help: "Seconds a client has to send a request head; slower ones get 408 and are closed. Default 30.")
    var headerTimeout: Double?

    @Option(help: "Seconds of silence allowed between keep-alive requests and inside a body. Default 120.")
    var idleTimeout: Double?

    @Option(help: "Seconds an upload session may sit idle before a restart (or `registry gc`) removes it. Default 3600.")
    var uploadLifetime: Double?

    @Option(help: ArgumentHelp("Webhook URL that receives push, pull, mount and delete events in distribution's notification envelope (repeatable; the config file's notifications.endpoints set more options).", valueName: "url"))
    var notify: [String] = []

    @Option(help: "Bytes all header fields of a request may take together; more is answered 431. Default 65536.")
    var maxHeaderBytes: Int?

    @Option(help: "Bytes a pushed manifest may take; more is answered 413. Default 4194304 (4 MiB, as distribution).")
    var maxManifestBytes: Int?

    @Option(help: "Seconds a graceful stop (SIGTERM) lets requests in flight finish before cutting them. Default 10.")
    var drainTimeout: Double?

    @Option(name: .customLong("proxy-remote-url"), help: ArgumentHelp("Serve as a pull-through cache of this registry (http(s)://HOST[:PORT]): misses are fetched from it, verified and stored; pushes and deletes are refused (config proxy.remoteurl).", valueName: "url"))
    var proxyRemoteURL: String?

    @Option(name: .customLong("proxy-username"), help: "User for the upstream registry of --proxy-remote-url (config proxy.username).")
    var proxyUsername: String?

    @Option(name: .customLong("proxy-password-file"), help: "File holding the password for --proxy-username (config proxy.password).")
    var proxyPasswordFile: String?

    @Option(name: .customLong("proxy-ttl"), help: "How long a cached tag is served before it is checked with the upstream again: seconds, or a Go duration (30s, 5m, 168h). Default 168h (config proxy.ttl).")
    var proxyTTL: String?

    @Option(name: .customLong("s3-endpoint"), help: ArgumentHelp("Store in S3 at this endpoint, http(s)://HOST[:PORT] (with --s3-bucket; config storage.s3.regionendpoint).", valueName: "url"))
    var s3Endpoint: String?

    @Option(name: .customLong("s3-region"), help: ArgumentHelp("S3 region the requests are signed for. Default us-east-1 (config storage.s3.region).", valueName: "region"))
    var s3Region: String?

    @Option(name: .customLong("s3-bucket"), help: ArgumentHelp("S3 bucket to store in (config storage.s3.bucket).", valueName: "bucket"))
    var s3Bucket: String?

    @Option(name: .customLong("s3-root-directory"), help: ArgumentHelp("Key prefix in the bucket under which everything is stored (config storage.s3.rootdirectory).", valueName: "dir"))
    var s3RootDirectory: String?

    @Option(name: .customLong("s3-access-key"), help: ArgumentHelp("S3 access key id. Default: the config's accesskey, else AWS_ACCESS_KEY_ID.", valueName: "key"))
    var s3AccessKey: String?

    @Option(name: .customLong("s3-secret-key-file"), help: ArgumentHelp("File holding the S3 secret key (one line). A file, not the key itself: a command line is readable by every local user (ps, /proc/PID/cmdline). Default: the config's secretkey, else AWS_SECRET_ACCESS_KEY.", valueName: "file"))
    var s3SecretKeyFile: String?

    @Flag(name: .customLong("s3-virtual-host"), help: "Virtual-host addressing (BUCKET.HOST) instead of path style (HOST/BUCKET) (config storage.s3.forcepathstyle: false).")
    var s3VirtualHost = false

    @Option(help: "Config file: distribution's config.yml (version 0.1; unsupported keys are named as errors), or the older JSON object with any of: addr, http.debug.addr, log.formatter, storage, htpasswd, tokenAuth, tlsCert, tlsKey, readOnly, logFormat, maxConnections, headerTimeout, idleTimeout, uploadLifetime. Flags win.")
    var config: String?

    /// The flags as settings: a flag left at its default leaves the config file's value.
    var flagSettings: RegistryServeSettings {
        var s = RegistryServeSettings()
        s.address = addr != "127.0.0.1:5000" ? addr : nil
        s.debugAddress = debugAddr
        s.storage = storage
        s.htpasswd = htpasswd
        s.tokenAuth = tokenAuth ? true : nil
        s.tokenRealm = tokenRealm
        s.tokenService = tokenService
        s.tokenIssuer = tokenIssuer
        s.tokenRootCert = tokenRootcert
        s.tokenJWKS = tokenJWKS
        s.tlsCertificate = tlsCert
        s.tlsKey = tlsKey
        s.readOnly = readOnly ? true : nil
        s.logFormat = logFormat != "text" ? logFormat : nil
        s.maxConnections = maxConnections.map(Double.init)
        s.headerTimeout = headerTimeout
        s.idleTimeout = idleTimeout
        s.uploadLifetime = uploadLifetime
        s.drainTimeout = drainTimeout
        s.maxHeaderBytes = maxHeaderBytes.map(Double.init)
        s.maxManifestBytes = maxManifestBytes.map(Double.init)
        s.proxyRemoteURL = proxyRemoteURL
        s.proxyUsername = proxyUsername
        if !notify.isEmpty {
            s.notifications = notify.enumerated().map { NotificationEndpoint(name: "notify\($0.offset + 1)", url: $0.element) }
        }
        return s
    }

    func run() throws {
        let cfg: RegistryServerConfiguration
        do {
            var s3 = S3Flags(endpoint: s3Endpoint, region: s3Region, bucket: s3Bucket, rootDirectory: s3RootDirectory,
                             accessKey: s3AccessKey, virtualHost: s3VirtualHost ? true : nil)
            if let path = s3SecretKeyFile { s3.secretKey = try Self.oneLine(path, flag: "--s3-secret-key-file") }
            if let storage, !s3.names.isEmpty {
                throw ValidationError("--storage \(storage) and \(s3.names.joined(separator: ", ")) exclude each other: keep --storage for a directory, or the --s3-* flags for a bucket")
            }
            let file = try config.map { try RegistryServeSettings.load(file: $0, s3Flags: s3) } ?? RegistryServeSettings()
            var flags = flagSettings
            if file.s3 == nil { flags.s3 = try RegistryServeSettings.s3(flags: s3) }
            if let path = proxyPasswordFile { flags.proxyPassword = try Self.oneLine(path, flag: "--proxy-password-file") }
            if let ttl = proxyTTL {
                guard let seconds = Double(ttl) ?? GoDuration.seconds(ttl) else {
                    throw ValidationError("--proxy-ttl \(ttl) is neither seconds nor a duration such as 30s, 5m or 168h")
                }
                flags.proxyTTL = seconds
            }
            cfg = try flags.over(file).configuration(defaultStorage: global.resolvedRoot + "/registry")
        } catch let RegistryServerError.invalidConfiguration(message) {
            throw ValidationError(message)
        }
        let storage = cfg.s3.map { "s3://\($0.bucket)/\($0.rootDirectory)" } ?? cfg.root
        // Arm SIGINT/SIGTERM before anyone can learn the port: a signal sent right after the
        // listening line must stop the server. sigaction installs at once (a dispatch source
        // arms asynchronously); the handler only writes a byte to a pipe.
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw ValidationError("cannot create a pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        registryServeSignalFD = fds[1]
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { sig in
            var byte = UInt8(truncatingIfNeeded: sig)
            _ = write(registryServeSignalFD, &byte, 1)
        }
        for sig in [SIGINT, SIGTERM, SIGHUP] { sigaction(sig, &action, nil) }
        // A parent may have started us with these signals blocked (a blocked mask is inherited
        // across exec: Foundation's Process from a dispatch worker does this): unblock them, or
        // SIGTERM would never reach the handler and the server would never stop.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGINT)
        sigaddset(&unblock, SIGTERM)
        sigaddset(&unblock, SIGHUP)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        let server: RegistryServer
        do {
            server = try RegistryServer(configuration: cfg)
            try server.start()
        } catch {
            throw ValidationError("\(error)")
        }
        let scheme = cfg.tlsCertificate == nil ? "http" : "https"
        let host = cfg.address.split(separator: ":").dropLast().joined(separator: ":")
        let line = "dockbuild registry listening on \(scheme)://\(host.isEmpty ? "0.0.0.0" : host):\(server.port) storage=\(storage)\(cfg.readOnly ? " read-only" : "")\(cfg.proxy.map { " proxy=\($0.remoteURL)" } ?? "")\(cfg.htpasswd != nil ? (cfg.tokenAuth ? " auth=token" : " auth=basic") : "")\(debugURL(cfg, server))\n"
        FileHandle.standardError.write(Data(line.utf8))
        let left = server.startupLeftovers
        if !left.isEmpty {
            let text = "removed crash leftovers: \(left.temporaries.count) temporary files, \(left.orphanedUploads.count) interrupted monolithic uploads, \(left.staleUploads.count) upload sessions idle over \(Int(cfg.uploadLifetime)) s\n"
            FileHandle.standardError.write(Data(text.utf8))
        }
        // Serve until SIGINT/SIGTERM; SIGHUP reloads the htpasswd file.
        func nextSignal() -> Int32 {
            var byte: UInt8 = 0
            while true {
                let n = read(fds[0], &byte, 1)
                if n == 1 { return Int32(byte) }
                if n < 0 && errno == EINTR { continue }
                return SIGTERM
            }
        }
        while nextSignal() == SIGHUP {
            do {
                let count = try server.reloadAuthentication()
                RegistryServe.log(count.map { "SIGHUP: reloaded \(cfg.htpasswd ?? "htpasswd"): \($0) users" } ?? "SIGHUP: nothing to reload (no htpasswd file)")
            } catch {
                RegistryServe.log("SIGHUP: kept the users as they were: \(error)")
            }
        }
        RegistryServe.log("stopping: draining connections for up to \(RegistryServe.seconds(cfg.drainTimeout)) (a second signal stops at once)")
        // The drain runs beside this thread, which cuts it short on another SIGINT/SIGTERM.
        let done = Locked(false)
        let wake = fds[1]
        let drainer = Thread {
            let cut = server.drain()
            done.withLock { $0 = true }
            RegistryServe.log(cut == 0 ? "stopped: every request finished" : "stopped: cut \(cut) connections still busy after the drain timeout")
            var byte: UInt8 = 0
            _ = write(wake, &byte, 1)
        }
        drainer.start()
        while true {
            let sig = nextSignal()
            if done.current { break }
            if sig == SIGINT || sig == SIGTERM {
                RegistryServe.log("stopping at once: second signal")
                server.stop()
            }
        }
    }

    /// A secret from a file: one line; the newline an editor or `echo` adds is not part of it.
    static func oneLine(_ path: String, flag: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("\(flag) \(path) cannot be read")
        }
        var text = String(decoding: data, as: UTF8.self)
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        return text
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value))s" : String(format: "%.3fs", value)
    }

    private static func log(_ text: String) {
        FileHandle.standardError.write(Data(("dockbuild registry: " + text + "\n").utf8))
    }

    /// ` debug=http://HOST:PORT` for the startup line, empty without a debug address.
    func debugURL(_ cfg: RegistryServerConfiguration, _ server: RegistryServer) -> String {
        guard let address = cfg.debugAddress, let port = server.debugPort else { return "" }
        let host = address.split(separator: ":").dropLast().joined(separator: ":")
        return " debug=http://\(host.isEmpty ? "0.0.0.0" : host):\(port)"
    }
}
