import ArgumentParser
import Foundation
import RegistryServer

/// Write end of the pipe the SIGINT/SIGTERM handler of `registry serve` writes to; set once
/// before the handler is installed, read only by the handler.
nonisolated(unsafe) private var registryServeStopFD: Int32 = -1

/// `dockbuild registry serve`: an OCI distribution-spec v1.1 registry in the foreground.
struct RegistryServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve an OCI registry (distribution-spec v1.1) from a local directory.",
        discussion: """
        Blobs and manifests live under <root>/registry (or --storage). Stop with Ctrl-C.
        With --htpasswd, every request needs a user from that file (bcrypt entries,
        `htpasswd -cB FILE USER`); add --token-auth to hand out Docker bearer tokens
        from /token instead of checking Basic credentials on each request.
        """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "Address to listen on, host:port (port 0 picks a free one).")
    var addr = "127.0.0.1:5000"

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

    @Option(help: "Optional JSON config file with any of: addr, storage, htpasswd, tokenAuth, tlsCert, tlsKey, readOnly, logFormat, maxConnections, headerTimeout, idleTimeout, uploadLifetime. Flags win.")
    var config: String?

    /// A number from a flag, else from the config file, else the default; refuses wrong types.
    private func number(_ flag: Double?, _ key: String, _ file: [String: Any], default value: Double) throws -> Double {
        if let flag { return flag }
        guard let raw = file[key] else { return value }
        guard let n = raw as? NSNumber else {
            throw ValidationError("config file \(config ?? ""): \(key) must be a number")
        }
        return n.doubleValue
    }

    func run() throws {
        var file: [String: Any] = [:]
        if let config {
            guard let data = FileManager.default.contents(atPath: config),
                  let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ValidationError("cannot read config file \(config): expected a JSON object")
            }
            file = obj
        }
        let storage = storage ?? file["storage"] as? String ?? global.resolvedRoot + "/registry"
        var cfg = RegistryServerConfiguration(root: storage)
        cfg.address = addr != "127.0.0.1:5000" ? addr : (file["addr"] as? String ?? addr)
        cfg.htpasswd = htpasswd ?? file["htpasswd"] as? String
        cfg.tokenAuth = tokenAuth || (file["tokenAuth"] as? Bool ?? false)
        let external = [tokenRealm, tokenService, tokenIssuer, tokenRootcert]
        if external.contains(where: { $0 != nil }) {
            guard let r = tokenRealm, let s = tokenService, let i = tokenIssuer, let c = tokenRootcert else {
                throw ValidationError("--token-realm, --token-service, --token-issuer and --token-rootcert go together")
            }
            cfg.externalToken = (r, s, i, c)
        }
        cfg.tlsCertificate = tlsCert ?? file["tlsCert"] as? String
        cfg.tlsKey = tlsKey ?? file["tlsKey"] as? String
        cfg.readOnly = readOnly || (file["readOnly"] as? Bool ?? false)
        let format = logFormat != "text" ? logFormat : (file["logFormat"] as? String ?? logFormat)
        guard let lf = RegistryServerConfiguration.LogFormat(rawValue: format) else {
            throw ValidationError("--log-format must be text, json or none, not \(format)")
        }
        cfg.logFormat = lf
        let maxConn = try number(maxConnections.map(Double.init), "maxConnections", file, default: Double(HTTPServerLimits().maxConnections))
        guard maxConn >= 1, maxConn <= 1_000_000, maxConn == maxConn.rounded() else {
            throw ValidationError("--max-connections must be a whole number from 1 to 1000000, not \(maxConn)")
        }
        cfg.limits.maxConnections = Int(maxConn)
        cfg.limits.headerTimeout = try number(headerTimeout, "headerTimeout", file, default: cfg.limits.headerTimeout)
        cfg.limits.idleTimeout = try number(idleTimeout, "idleTimeout", file, default: cfg.limits.idleTimeout)
        cfg.uploadLifetime = try number(uploadLifetime, "uploadLifetime", file, default: cfg.uploadLifetime)
        for (name, v) in [("--header-timeout", cfg.limits.headerTimeout), ("--idle-timeout", cfg.limits.idleTimeout), ("--upload-lifetime", cfg.uploadLifetime)]
        where !(v > 0 && v <= 1e7) {
            throw ValidationError("\(name) must be a number of seconds above 0, not \(v)")
        }
        // Arm SIGINT/SIGTERM before anyone can learn the port: a signal sent right after the
        // listening line must stop the server. sigaction installs at once (a dispatch source
        // arms asynchronously); the handler only writes a byte to a pipe.
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw ValidationError("cannot create a pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        registryServeStopFD = fds[1]
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            var byte: UInt8 = 1
            _ = write(registryServeStopFD, &byte, 1)
        }
        for sig in [SIGINT, SIGTERM] { sigaction(sig, &action, nil) }
        // A parent may have started us with these signals blocked (a blocked mask is inherited
        // across exec: Foundation's Process from a dispatch worker does this): unblock them, or
        // SIGTERM would never reach the handler and the server would never stop.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGINT)
        sigaddset(&unblock, SIGTERM)
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
        let line = "dockbuild registry listening on \(scheme)://\(host.isEmpty ? "0.0.0.0" : host):\(server.port) storage=\(storage)\(cfg.readOnly ? " read-only" : "")\(cfg.htpasswd != nil ? (cfg.tokenAuth ? " auth=token" : " auth=basic") : "")\n"
        FileHandle.standardError.write(Data(line.utf8))
        let left = server.startupLeftovers
        if !left.isEmpty {
            let text = "removed crash leftovers: \(left.temporaries.count) temporary files, \(left.orphanedUploads.count) interrupted monolithic uploads, \(left.staleUploads.count) upload sessions idle over \(Int(cfg.uploadLifetime)) s\n"
            FileHandle.standardError.write(Data(text.utf8))
        }
        // Serve until SIGINT/SIGTERM.
        var byte: UInt8 = 0
        while read(fds[0], &byte, 1) < 0 && errno == EINTR {}
        server.stop()
    }
}
