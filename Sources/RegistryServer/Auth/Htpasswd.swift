import CXCrypt
import Foundation
import SystemSupport

/// Users from an Apache htpasswd file. Only bcrypt entries (`htpasswd -B`) are accepted, as in
/// distribution: the older formats are too weak to guard a registry. Copies share their
/// entries, so `reload()` (SIGHUP) reaches every authorizer holding one.
public struct Htpasswd: Sendable {
    public let path: String
    private let entries: Locked<[String: String]>

    public init(path: String) throws {
        self.path = path
        entries = Locked(try Htpasswd.read(path))
    }

    public init(contents: String, path: String = "<memory>") throws {
        self.path = path
        entries = Locked(try Htpasswd.parse(contents, path: path))
    }

    /// Reads the file at `path` again and, when it parses, serves its users from now on; on an
    /// error the users stay as they were and the error says why.
    public func reload() throws {
        let fresh = try Htpasswd.read(path)
        entries.withLock { $0 = fresh }
    }

    private static func read(_ path: String) throws -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RegistryServerError.auth("cannot read htpasswd file \(path); create one with `htpasswd -cB \(path) USER`")
        }
        return try parse(String(decoding: data, as: UTF8.self), path: path)
    }

    static func parse(_ text: String, path: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else {
                throw RegistryServerError.auth("\(path):\(i + 1): expected user:hash")
            }
            let user = String(line[..<colon])
            let hash = String(line[line.index(after: colon)...])
            guard hash.hasPrefix("$2y$") || hash.hasPrefix("$2b$") || hash.hasPrefix("$2a$") else {
                throw RegistryServerError.auth("\(path):\(i + 1): user \(user) has no bcrypt hash; recreate it with `htpasswd -B \(path) \(user)`")
            }
            out[user] = hash
        }
        return out
    }

    public var users: [String] { entries.current.keys.sorted() }

    /// Checks a password with bcrypt (constant-time comparison of the hashes).
    public func verify(user: String, password: String) -> Bool {
        guard let hash = entries.withLock({ $0[user] }) else {
            // Spend the same time as a real check so user names cannot be probed.
            _ = Htpasswd.crypt(password, setting: "$2y$05$abcdefghijklmnopqrstuu5sNbGfKVyTw6EEb0h2N1LuhVTP7IuRC")
            return false
        }
        guard let computed = Htpasswd.crypt(password, setting: hash) else { return false }
        let a = Array(computed.utf8), b = Array(hash.utf8)
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    static func crypt(_ phrase: String, setting: String) -> String? {
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer { data.deallocate() }
        memset(data, 0, MemoryLayout<crypt_data>.size)
        guard let out = crypt_r(phrase, setting, data) else { return nil }
        let s = String(cString: out)
        return s.hasPrefix("*") ? nil : s
    }
}

/// Decodes `Authorization: Basic base64(user:password)`.
func basicCredentials(_ request: HTTPRequest) -> (user: String, password: String)? {
    guard let h = request.header("Authorization"), h.lowercased().hasPrefix("basic ") else { return nil }
    guard let data = Data(base64Encoded: String(h.dropFirst(6)).trimmingCharacters(in: .whitespaces)) else { return nil }
    let s = String(decoding: data, as: UTF8.self)
    guard let colon = s.firstIndex(of: ":") else { return nil }
    return (String(s[..<colon]), String(s[s.index(after: colon)...]))
}

/// HTTP Basic against htpasswd on every request; anything without valid credentials gets 401.
public struct BasicAuthorizer: RegistryAuthorizer {
    public let users: Htpasswd
    public var realm = "dockbuild registry"

    public init(users: Htpasswd) { self.users = users }

    public func authorize(_ request: HTTPRequest, context: HTTPRequestContext, scope: AccessScope?) -> HTTPResponse? {
        if let c = basicCredentials(request), users.verify(user: c.user, password: c.password) { return nil }
        var r = RegistryHandler.error(DistributionError(401, .unauthorized, "authentication required",
                                                        detail: "log in with a user of the registry's htpasswd file"))
        r.headers.append(("WWW-Authenticate", "Basic realm=\"\(realm)\""))
        return r
    }

    public func tokenResponse(_ request: HTTPRequest, context: HTTPRequestContext) -> HTTPResponse? { nil }

    /// Every user of the file may read every repository, and the request was already checked.
    public func mayPull(_ repository: String, request: HTTPRequest, context: HTTPRequestContext) -> Bool { true }
}
