import Foundation
import SystemSupport

/// A username and secret for one registry. `identityToken` (an OAuth2 refresh token) is used
/// instead of the password when present, as docker does.
public struct Credentials: Sendable, Equatable {
    public var username: String
    public var password: String
    public var identityToken: String?

    public init(username: String, password: String, identityToken: String? = nil) {
        self.username = username
        self.password = password
        self.identityToken = identityToken
    }
}

/// docker's `config.json` (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): the
/// `auths` map, `credsStore` and `credHelpers`. Reading and writing keep every other key, so
/// docker and dockbuild share one file and one set of logins.
public struct DockerConfig: Sendable {
    public let path: String
    /// Directories searched for `docker-credential-*` before `PATH`.
    public let helperSearchPath: [String]

    /// The file docker would use for this environment.
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let dir = environment["DOCKER_CONFIG"], !dir.isEmpty { return dir + "/config.json" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.docker/config.json"
    }

    public init(path: String = DockerConfig.defaultPath(), helperSearchPath: [String] = []) {
        self.path = path
        self.helperSearchPath = helperSearchPath
    }

    /// The key docker uses for a registry host in `auths` and with helpers.
    public static func serverKey(for registry: String) -> String {
        switch registry {
        case "docker.io", "index.docker.io", "registry-1.docker.io": "https://index.docker.io/v1/"
        default: registry
        }
    }

    /// Host part of an `auths` key ("https://host:5000/v1/" -> "host:5000").
    static func normalizedHost(_ key: String) -> String {
        var k = Substring(key)
        for p in ["https://", "http://"] where k.hasPrefix(p) { k = k.dropFirst(p.count) }
        if let slash = k.firstIndex(of: "/") { k = k[..<slash] }
        switch k {
        case "index.docker.io", "registry-1.docker.io", "docker.io": return "docker.io"
        default: return String(k)
        }
    }

    func load() throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        if data.isEmpty { return [:] }
        do {
            guard let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw RegistryError.config(path: path, reason: "top level is not a JSON object; fix or remove the file")
            }
            return obj
        } catch let e as RegistryError {
            throw e
        } catch {
            throw RegistryError.config(path: path, reason: "not valid JSON (\(error.localizedDescription)); fix or remove the file")
        }
    }

    /// The helper for a registry, if the file names one (`credHelpers` first, then `credsStore`).
    public func helper(for registry: String) throws -> String? {
        let obj = try load()
        let host = DockerConfig.normalizedHost(registry)
        if let helpers = obj["credHelpers"] as? [String: String] {
            for (k, v) in helpers where DockerConfig.normalizedHost(k) == host && !v.isEmpty { return v }
        }
        if let store = obj["credsStore"] as? String, !store.isEmpty { return store }
        return nil
    }

    /// Credentials for `registry` (a host[:port] or docker.io), or nil when none are stored.
    public func credentials(for registry: String) throws -> Credentials? {
        if let helper = try helper(for: registry) {
            if let c = try CredentialHelper(name: helper, searchPath: helperSearchPath).get(serverURL: DockerConfig.serverKey(for: registry)) { return c }
        }
        let obj = try load()
        guard let auths = obj["auths"] as? [String: Any] else { return nil }
        let host = DockerConfig.normalizedHost(registry)
        let keys = auths.keys.sorted()
        let match = keys.first { $0 == DockerConfig.serverKey(for: registry) } ?? keys.first { DockerConfig.normalizedHost($0) == host }
        guard let key = match, let entry = auths[key] as? [String: Any] else { return nil }
        var username = entry["username"] as? String ?? ""
        var password = entry["password"] as? String ?? ""
        if let auth = entry["auth"] as? String, !auth.isEmpty {
            guard let decoded = Data(base64Encoded: auth), let s = String(data: decoded, encoding: .utf8),
                  let colon = s.firstIndex(of: ":")
            else {
                throw RegistryError.config(path: path, reason: "auths[\"\(key)\"].auth is not base64 of user:password; run `dockbuild login \(registry)` again")
            }
            username = String(s[..<colon])
            password = String(s[s.index(after: colon)...])
        }
        let token = (entry["identitytoken"] as? String).flatMap { $0.isEmpty ? nil : $0 }
        if username.isEmpty && password.isEmpty && token == nil { return nil }
        return Credentials(username: username, password: password, identityToken: token)
    }

    /// Saves a login: through the helper when one is configured, else base64 in `auths`.
    public func store(_ credentials: Credentials, for registry: String) throws {
        let key = DockerConfig.serverKey(for: registry)
        if let helper = try helper(for: registry) {
            let secret = credentials.identityToken ?? credentials.password
            let user = credentials.identityToken != nil ? "<token>" : credentials.username
            try CredentialHelper(name: helper, searchPath: helperSearchPath).store(serverURL: key, username: user, secret: secret)
            try update { obj in
                var auths = obj["auths"] as? [String: Any] ?? [:]
                auths[key] = [String: Any]()
                obj["auths"] = auths
            }
            return
        }
        try update { obj in
            var auths = obj["auths"] as? [String: Any] ?? [:]
            for k in auths.keys where k != key && DockerConfig.normalizedHost(k) == DockerConfig.normalizedHost(registry) {
                auths.removeValue(forKey: k)
            }
            var entry: [String: Any] = [:]
            if let token = credentials.identityToken {
                entry["identitytoken"] = token
                entry["auth"] = Data("\(credentials.username):".utf8).base64EncodedString()
            } else {
                entry["auth"] = Data("\(credentials.username):\(credentials.password)".utf8).base64EncodedString()
            }
            auths[key] = entry
            obj["auths"] = auths
        }
    }

    /// Removes a login; returns false when there was none.
    @discardableResult
    public func erase(for registry: String) throws -> Bool {
        var found = false
        if let helper = try helper(for: registry) {
            found = try CredentialHelper(name: helper, searchPath: helperSearchPath).erase(serverURL: DockerConfig.serverKey(for: registry))
        }
        guard FileManager.default.fileExists(atPath: path) else { return found }
        try update { obj in
            guard var auths = obj["auths"] as? [String: Any] else { return }
            for k in auths.keys where DockerConfig.normalizedHost(k) == DockerConfig.normalizedHost(registry) {
                auths.removeValue(forKey: k)
                found = true
            }
            obj["auths"] = auths
        }
        return found
    }

    /// Read-modify-write under an exclusive lock, replaced atomically (temp, fsync, rename), mode 0600.
    func update(_ change: (inout [String: Any]) throws -> Void) throws {
        let dir = (path as NSString).deletingLastPathComponent
        do {
            try FileSystem.makeDirectories(dir, mode: 0o700)
        } catch {
            throw RegistryError.config(path: path, reason: "cannot create \(dir): \(error.reason)")
        }
        // Best effort, as before: without a lock file (a read-only directory) the update still runs.
        let lock = try? FileLock(path: path + ".lock", mode: 0o600)
        try? lock?.lock()
        defer { lock?.unlock() }
        var obj = try load()
        try change(&obj)
        let data: Data
        do {
            data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        } catch {
            throw RegistryError.config(path: path, reason: "cannot encode: \(error.localizedDescription)")
        }
        do {
            try FileSystem.writeAtomically(data + Data("\n".utf8), to: path, mode: 0o600, durability: .file)
        } catch {
            throw RegistryError.local(error.description)
        }
    }
}
