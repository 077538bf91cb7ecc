// Image references as docker parses them (distribution/reference grammar plus docker's
// normalisation: docker.io default registry, library/ for official images, latest tag).
//
//   reference  := name [ ":" tag ] [ "@" digest ]
//   name       := [domain "/"] path-component ("/" path-component)*
//   domain     := host [":" port]     host := dns-name | IPv4 | "[" IPv6 "]"
//   path-comp  := [a-z0-9]+ (([._]|__|-+) [a-z0-9]+)*
//   tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
import Foundation

/// A parsed, normalised image reference: `docker.io/library/ubuntu:latest`.
public struct ImageReference: Hashable, Sendable, CustomStringConvertible, Codable {
    /// Registry host, with port when given: `docker.io`, `localhost:5000`, `[::1]:5000`.
    public var domain: String
    /// Repository path in the registry: `library/ubuntu`, `project/a/b/c`.
    public var path: String
    public var tag: String?
    public var digest: Digest?

    public static let defaultDomain = "docker.io"
    public static let legacyDefaultDomain = "index.docker.io"
    public static let officialRepoPrefix = "library/"
    public static let defaultTag = "latest"
    static let maxNameLength = 255

    public init(domain: String, path: String, tag: String? = nil, digest: Digest? = nil) {
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest
    }

    /// Parses like `docker pull`: normalises the name and adds `:latest` when neither a tag
    /// nor a digest is given (`ubuntu` -> `docker.io/library/ubuntu:latest`).
    public init(parsing string: String) throws {
        self = try ImageReference.parseNormalized(string)
        if tag == nil && digest == nil { tag = ImageReference.defaultTag }
    }

    /// Parses and normalises without adding a default tag (`docker.io/library/ubuntu`).
    public static func parseNormalized(_ string: String) throws -> ImageReference {
        func fail(_ reason: String) -> OCIError { OCIError.invalidReference(string, reason: reason) }
        if string.isEmpty { throw fail("it is empty; give a name such as ubuntu or registry.example.com/team/app:1.0") }
        if string.utf8.count == 64, string.utf8.allSatisfy(isLowerHex) {
            throw fail("a 64-character hexadecimal string is an image ID, not a repository name")
        }
        var rest = Substring(string)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            let d = String(rest[rest.index(after: at)...])
            do { digest = try Digest(parsing: d) } catch {
                throw fail("the digest after '@' is not valid (expected sha256:<64 lowercase hex>)")
            }
            rest = rest[..<at]
        }
        // A tag is after the last ':' that follows the last '/', so 'host:5000/app' has no tag.
        var tag: String?
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            let t = String(rest[rest.index(after: colon)...])
            guard isValidTag(t) else {
                if t.isEmpty { throw fail("the tag after ':' is empty") }
                throw fail("tag \"\(t)\" is invalid: use up to 128 of A-Z a-z 0-9 _ . -, not starting with . or -")
            }
            tag = t
            rest = rest[..<colon]
        }
        let name = String(rest)
        if name.isEmpty { throw fail("the repository name is empty") }
        guard name.utf8.count <= maxNameLength else {
            throw fail("the repository name is longer than \(maxNameLength) characters")
        }
        // docker's splitDockerDomain: the first component is a registry only when it looks like
        // a host (has '.' or ':'), is 'localhost', or has upper case (so the error says why).
        var domain = defaultDomain
        var remainder = name
        if let slash = name.firstIndex(of: "/") {
            let first = name[..<slash]
            if first.contains(".") || first.contains(":") || first == "localhost" || first.lowercased() != first {
                domain = String(first)
                remainder = String(name[name.index(after: slash)...])
            }
        }
        if domain == legacyDefaultDomain { domain = defaultDomain }
        if domain != defaultDomain || name.contains("/") {
            guard isValidDomain(domain) else {
                throw fail("registry \"\(domain)\" is not a valid host[:port]")
            }
        }
        if remainder.lowercased() != remainder {
            throw fail("repository name \"\(remainder)\" must be lowercase")
        }
        let components = remainder.split(separator: "/", omittingEmptySubsequences: false)
        for c in components where !isValidPathComponent(c) {
            if c.isEmpty { throw fail("the repository path has an empty component (check for '//' or a trailing '/')") }
            throw fail("repository path component \"\(c)\" is invalid: use a-z 0-9 separated by '.', '_', '__' or '-'")
        }
        if domain == defaultDomain && !remainder.contains("/") {
            remainder = officialRepoPrefix + remainder
        }
        return ImageReference(domain: domain, path: remainder, tag: tag, digest: digest)
    }

    /// `domain/path` without tag or digest.
    public var name: String { "\(domain)/\(path)" }

    /// The full normalised form: `docker.io/library/ubuntu:latest`, `host/app:1@sha256:...`.
    public var description: String {
        var s = name
        if let tag { s += ":\(tag)" }
        if let digest { s += "@\(digest)" }
        return s
    }

    /// The short form docker prints: `ubuntu:latest`, `user/app:1`, `localhost:5000/app:1`.
    public var familiarName: String {
        if domain == ImageReference.defaultDomain {
            if path.hasPrefix(ImageReference.officialRepoPrefix),
               !path.dropFirst(ImageReference.officialRepoPrefix.count).contains("/") {
                return String(path.dropFirst(ImageReference.officialRepoPrefix.count))
            }
            return path
        }
        return name
    }

    /// `familiarName` with `:tag` and `@digest`.
    public var familiarString: String {
        var s = familiarName
        if let tag { s += ":\(tag)" }
        if let digest { s += "@\(digest)" }
        return s
    }

    /// The same reference with a different tag (and no digest).
    public func withTag(_ tag: String) -> ImageReference {
        ImageReference(domain: domain, path: path, tag: tag, digest: nil)
    }

    public init(from decoder: any Decoder) throws {
        self = try ImageReference.parseNormalized(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    // MARK: grammar

    static func isLowerHex(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66) }
    static func isLowerAlnum(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x7A) }
    static func isAlnum(_ b: UInt8) -> Bool { isLowerAlnum(b) || (b >= 0x41 && b <= 0x5A) }

    /// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
    public static func isValidTag(_ t: String) -> Bool {
        let u = Array(t.utf8)
        guard let first = u.first, u.count <= 128, isAlnum(first) || first == 0x5F else { return false }
        return u.dropFirst().allSatisfy { isAlnum($0) || $0 == 0x5F || $0 == 0x2E || $0 == 0x2D }
    }

    /// `[a-z0-9]+ (([._]|__|-+) [a-z0-9]+)*`
    static func isValidPathComponent<S: StringProtocol>(_ c: S) -> Bool {
        let u = Array(c.utf8)
        guard let first = u.first, let last = u.last, isLowerAlnum(first), isLowerAlnum(last) else { return false }
        var i = 0
        while i < u.count {
            if isLowerAlnum(u[i]) { i += 1; continue }
            // A separator run: '.', '_', '__', or one or more '-'.
            var j = i
            while j < u.count, !isLowerAlnum(u[j]) { j += 1 }
            let sep = u[i..<j]
            let ok = sep.elementsEqual([0x2E]) || sep.elementsEqual([0x5F]) || sep.elementsEqual([0x5F, 0x5F])
                || sep.allSatisfy { $0 == 0x2D }
            if !ok { return false }
            i = j
        }
        return true
    }

    /// host[:port], host a DNS name (components of letters/digits/hyphens not at the ends),
    /// an IPv4 address or a bracketed IPv6 address.
    static func isValidDomain(_ d: String) -> Bool {
        var host = Substring(d)
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return false }
            let inner = host[host.index(after: host.startIndex)..<close]
            guard !inner.isEmpty, inner.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }), inner.contains(":") else { return false }
            let after = host[host.index(after: close)...]
            if after.isEmpty { return true }
            guard after.hasPrefix(":") else { return false }
            let port = after.dropFirst()
            return !port.isEmpty && port.allSatisfy(\.isASCII) && port.allSatisfy(\.isNumber)
        }
        if let colon = host.lastIndex(of: ":") {
            let port = host[host.index(after: colon)...]
            guard !port.isEmpty, port.allSatisfy({ $0.isASCII && $0.isNumber }) else { return false }
            host = host[..<colon]
        }
        guard !host.isEmpty else { return false }
        for comp in host.split(separator: ".", omittingEmptySubsequences: false) {
            let u = Array(comp.utf8)
            guard let f = u.first, let l = u.last, isAlnum(f), isAlnum(l),
                  u.allSatisfy({ isAlnum($0) || $0 == 0x2D }) else { return false }
        }
        return true
    }
}
