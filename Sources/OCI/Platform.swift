// OCI image-spec v1.1 "Image Index" platform object (image-index.md#platform-variants),
// with the normalisation and host matching rules of containerd's `platforms` package,
// which is what docker uses to pick a manifest from an index.
import Foundation

/// The platform an image runs on: `os/architecture[/variant]`.
public struct Platform: Codable, Hashable, Sendable, CustomStringConvertible {
    public var architecture: String
    public var os: String
    public var osVersion: String?
    public var osFeatures: [String]?
    public var variant: String?
    public var features: [String]?

    enum CodingKeys: String, CodingKey {
        case architecture, os, variant, features
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    public init(os: String, architecture: String, variant: String? = nil,
                osVersion: String? = nil, osFeatures: [String]? = nil, features: [String]? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
        self.osVersion = osVersion
        self.osFeatures = osFeatures
        self.features = features
    }

    /// `os/arch[/variant]`, the form `--platform` takes.
    public var description: String {
        var s = "\(os)/\(architecture)"
        if let variant, !variant.isEmpty { s += "/\(variant)" }
        return s
    }

    /// Parses `--platform` values: `linux`, `arm64`, `linux/arm64`, `linux/arm/v7`,
    /// `linux/aarch64` ... and returns the normalised platform. A lone architecture gets the
    /// host's OS; a lone OS gets the host's architecture, as docker does.
    public init(parsing string: String) throws {
        let s = string.trimmingCharacters(in: .whitespaces)
        let parts = s.split(separator: "/", omittingEmptySubsequences: false).map { String($0).lowercased() }
        guard !s.isEmpty, !parts.contains(where: \.isEmpty), parts.count <= 3 else {
            throw OCIError.invalidPlatform(string, reason: "expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8")
        }
        for p in parts where !p.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }) {
            throw OCIError.invalidPlatform(string, reason: "'\(p)' has characters other than letters, digits, '_', '-', '.'")
        }
        let host = Platform.host
        switch parts.count {
        case 1:
            if Platform.knownOS.contains(parts[0]) {
                self = Platform(os: parts[0], architecture: host.architecture, variant: host.variant).normalized()
            } else {
                let arch = Platform.normalizeArch(parts[0], variant: nil)
                guard Platform.knownArch.contains(arch.arch) else {
                    throw OCIError.invalidPlatform(string, reason: "unknown operating system or architecture '\(parts[0])'")
                }
                self = Platform(os: host.os, architecture: arch.arch, variant: arch.variant)
            }
        case 2:
            self = Platform(os: parts[0], architecture: parts[1]).normalized()
        default:
            self = Platform(os: parts[0], architecture: parts[1], variant: parts[2]).normalized()
        }
    }

    static let knownOS: Set<String> = ["aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js",
                                       "linux", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows"]
    static let knownArch: Set<String> = ["386", "amd64", "arm", "arm64", "loong64", "mips", "mipsle", "mips64",
                                         "mips64le", "ppc64", "ppc64le", "riscv64", "s390x", "wasm"]

    /// The same platform with architecture and variant in canonical form
    /// (`aarch64` -> `arm64`, `x86_64` -> `amd64`, `armhf` -> `arm/v7`, `arm64/v8` -> `arm64`).
    public func normalized() -> Platform {
        var p = self
        p.os = os.lowercased() == "macos" ? "darwin" : os.lowercased()
        let a = Platform.normalizeArch(architecture.lowercased(), variant: variant?.lowercased())
        p.architecture = a.arch
        p.variant = a.variant
        return p
    }

    static func normalizeArch(_ arch: String, variant: String?) -> (arch: String, variant: String?) {
        let v = (variant?.isEmpty ?? true) ? nil : variant
        switch arch {
        case "i386", "i486", "i586", "i686", "x86", "386": return ("386", nil)
        case "x86_64", "x86-64", "amd64":
            switch v {
            case nil, "v1", "1": return ("amd64", nil)
            case let v?: return ("amd64", v.hasPrefix("v") ? v : "v" + v)
            }
        case "aarch64", "arm64":
            switch v {
            case nil, "8", "v8", "v8.0": return ("arm64", nil)
            case let v?: return ("arm64", v.hasPrefix("v") ? v : "v" + v)
            }
        case "armhf": return ("arm", "v7")
        case "armel": return ("arm", "v6")
        case "arm":
            switch v {
            case nil, "7": return ("arm", "v7")
            case "5", "6", "8": return ("arm", "v" + (v ?? ""))
            case let v?: return ("arm", v)
            }
        default: return (arch, v)
        }
    }

    /// The platform this process runs on.
    public static let host: Platform = {
        var u = utsname()
        uname(&u)
        let machine = withUnsafeBytes(of: &u.machine) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        let osName = withUnsafeBytes(of: &u.sysname) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }.lowercased()
        var arch = machine
        var variant: String?
        if machine.hasPrefix("armv") {  // armv7l, armv6l
            arch = "arm"
            variant = String(machine.dropFirst(3).prefix(2))
        }
        return Platform(os: osName, architecture: arch, variant: variant).normalized()
    }()

    /// How well an image built for `candidate` suits a host of this platform: nil when it cannot
    /// run, otherwise a rank where 0 is best. Follows containerd's `platforms.Only`: an exact
    /// match first, then older variants of the same architecture (arm/v7 runs v6 and v5;
    /// amd64/v3 runs v2 and v1), then the 32-bit sibling (amd64 runs 386, arm64 runs arm/v7...).
    public func matchRank(_ candidate: Platform) -> Int? {
        let host = normalized()
        let c = candidate.normalized()
        guard host.os == c.os else { return nil }
        if let hv = host.osVersion, let cv = c.osVersion, !hv.isEmpty, !cv.isEmpty, hv != cv, host.os == "windows" {
            return nil
        }
        func level(_ v: String?, default d: Int) -> Int? {
            guard let v else { return d }
            let digits = v.hasPrefix("v") ? v.dropFirst() : Substring(v)
            return Int(digits.split(separator: ".").first ?? "")
        }
        switch (host.architecture, c.architecture) {
        case let (h, x) where h == x:
            if host.variant == c.variant { return 0 }
            switch h {
            case "arm":
                guard let hl = level(host.variant, default: 7), let cl = level(c.variant, default: 7), cl <= hl else { return nil }
                return hl - cl
            case "amd64":
                guard let hl = level(host.variant, default: 1), let cl = level(c.variant, default: 1), cl <= hl else { return nil }
                return hl - cl
            case "arm64":
                guard let hl = level(host.variant, default: 8), let cl = level(c.variant, default: 8), cl <= hl else { return nil }
                return hl - cl
            default:
                return c.variant == nil ? 1 : nil
            }
        case ("amd64", "386"):
            return 10
        case ("arm64", "arm"):
            guard let cl = level(c.variant, default: 7), cl <= 8 else { return nil }
            return 10 + (8 - cl)
        default:
            return nil
        }
    }

    /// True when an image for `candidate` can run on this platform.
    public func matches(_ candidate: Platform) -> Bool { matchRank(candidate) != nil }

    /// The best entry for this platform among `candidates`, in the order docker prefers them;
    /// ties keep the index order.
    public func best<T>(of candidates: [T], platform: (T) -> Platform?) -> T? {
        var best: (Int, T)?
        for item in candidates {
            guard let p = platform(item), let r = matchRank(p) else { continue }
            if let b = best, b.0 <= r { continue }
            best = (r, item)
        }
        return best?.1
    }
}
