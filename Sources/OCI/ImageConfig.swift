// OCI image-spec v1.1 "Image Configuration" (config.md), with the Docker fields that docker
// writes and reads there (Healthcheck, OnBuild, Shell, ...): the whole config, so that
// `inspect` shows what docker shows and a config we rewrite keeps what it had.
import Foundation
import SystemSupport
#if canImport(Glibc)
import Glibc
#endif

/// JSON `{}`: the value of each entry in `ExposedPorts` and `Volumes`.
public struct EmptyObject: Codable, Hashable, Sendable {
    public init() {}
    public init(from decoder: any Decoder) throws { _ = try decoder.container(keyedBy: AnyKey.self) }
    public func encode(to encoder: any Encoder) throws { _ = encoder.container(keyedBy: AnyKey.self) }
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// The image configuration blob: how to run the image, and how its root filesystem was made.
public struct ImageConfig: Codable, Hashable, Sendable {
    /// RFC 3339 creation time, kept as written so a config round-trips byte for byte.
    public var created: String?
    public var author: String?
    public var architecture: String
    public var os: String
    public var osVersion: String?
    public var osFeatures: [String]?
    public var variant: String?
    public var config: ContainerConfig?
    public var rootfs: RootFS
    public var history: [History]?
    /// Docker writes these; OCI tools ignore them.
    public var dockerVersion: String?
    /// Fields this model does not name (`container_config`, `container`, ...), kept as they were.
    public var extra: [String: JSONValue]?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case created, author, architecture, os, variant, config, rootfs, history
        case osVersion = "os.version"
        case osFeatures = "os.features"
        case dockerVersion = "docker_version"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        created = try c.decodeIfPresent(String.self, forKey: .created)
        author = try c.decodeIfPresent(String.self, forKey: .author)
        architecture = try c.decode(String.self, forKey: .architecture)
        os = try c.decode(String.self, forKey: .os)
        osVersion = try c.decodeIfPresent(String.self, forKey: .osVersion)
        osFeatures = try c.decodeIfPresent([String].self, forKey: .osFeatures)
        variant = try c.decodeIfPresent(String.self, forKey: .variant)
        config = try c.decodeIfPresent(ContainerConfig.self, forKey: .config)
        rootfs = try c.decode(RootFS.self, forKey: .rootfs)
        history = try c.decodeIfPresent([History].self, forKey: .history)
        dockerVersion = try c.decodeIfPresent(String.self, forKey: .dockerVersion)
        extra = try decoder.unknownFields(known: Set(CodingKeys.allCases.map(\.rawValue)))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(created, forKey: .created)
        try c.encodeIfPresent(author, forKey: .author)
        try c.encode(architecture, forKey: .architecture)
        try c.encode(os, forKey: .os)
        try c.encodeIfPresent(osVersion, forKey: .osVersion)
        try c.encodeIfPresent(osFeatures, forKey: .osFeatures)
        try c.encodeIfPresent(variant, forKey: .variant)
        try c.encodeIfPresent(config, forKey: .config)
        try c.encode(rootfs, forKey: .rootfs)
        try c.encodeIfPresent(history, forKey: .history)
        try c.encodeIfPresent(dockerVersion, forKey: .dockerVersion)
        try encoder.encodeExtra(extra)
    }

    public init(created: String? = nil, author: String? = nil, platform: Platform = .host,
                config: ContainerConfig? = nil, rootfs: RootFS = RootFS(diffIDs: []), history: [History]? = nil) {
        self.created = created
        self.author = author
        architecture = platform.architecture
        os = platform.os
        osVersion = platform.osVersion
        osFeatures = platform.osFeatures
        variant = platform.variant
        self.config = config
        self.rootfs = rootfs
        self.history = history
    }

    /// The platform this config declares.
    public var platform: Platform {
        Platform(os: os, architecture: architecture, variant: variant, osVersion: osVersion, osFeatures: osFeatures)
    }

    public static func decode(_ data: Data) throws -> ImageConfig {
        try CanonicalJSON.decode(ImageConfig.self, from: data, what: "image config")
    }

    /// The config's `created` as a date, when it parses as RFC 3339.
    public var createdDate: Date? { created.flatMap(ImageConfig.parseDate) }

    /// Parses RFC 3339 (`2024-01-02T03:04:05Z`, fractional seconds and `±hh:mm` offsets too) by
    /// hand: no formatter, so listing many images does not load ICU or build one per call.
    public static func parseDate(_ s: String) -> Date? {
        let b = Array(s.utf8)
        func num(_ i: Int, _ n: Int) -> Int? {
            guard i + n <= b.count else { return nil }
            var v = 0
            for c in b[i..<(i + n)] {
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        guard b.count >= 20, let y = num(0, 4), b[4] == 45, let mo = num(5, 2), b[7] == 45, let d = num(8, 2),
              b[10] == 84 || b[10] == 116 || b[10] == 32, let h = num(11, 2), b[13] == 58, let mi = num(14, 2),
              b[16] == 58, let sec = num(17, 2),
              (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, sec < 61 else { return nil }
        var i = 19
        var frac = 0.0
        if i < b.count, b[i] == 46 {
            i += 1
            var scale = 0.1
            let start = i
            while i < b.count, b[i] >= 48, b[i] <= 57 { frac += Double(b[i] - 48) * scale; scale /= 10; i += 1 }
            if i == start { return nil }
        }
        guard i < b.count else { return nil }
        var offset = 0
        if b[i] == 90 || b[i] == 122 { i += 1 } else if b[i] == 43 || b[i] == 45, let oh = num(i + 1, 2), b.count > i + 3, b[i + 3] == 58,
                                                     let om = num(i + 4, 2) {
            offset = (oh * 60 + om) * 60 * (b[i] == 43 ? 1 : -1)
            i += 6
        } else { return nil }
        guard i == b.count else { return nil }
        // Days from 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's days_from_civil).
        let yy = mo <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146097 + doe - 719468
        let t = Double(days * 86400 + h * 3600 + mi * 60 + sec - offset) + frac
        return Date(timeIntervalSince1970: t)
    }

    /// RFC 3339 in UTC, seconds precision: the form dockbuild writes.
    public static func formatDate(_ d: Date) -> String {
        UTCTime.format(seconds: Int(d.timeIntervalSince1970.rounded(.down)), .none)
    }

    /// `n` in decimal, zero-padded to `width` digits.
    public static func pad(_ n: Int, _ width: Int) -> String { UTCTime.pad(n, width) }

    /// The chain ID of the layers (image-spec config.md#layer-chainid): the key of the
    /// unpacked filesystem, equal for any image with the same layer stack.
    public var chainID: Digest? { ImageConfig.chainID(rootfs.diffIDs) }

    public static func chainID(_ diffIDs: [Digest]) -> Digest? {
        guard var chain = diffIDs.first else { return nil }
        for d in diffIDs.dropFirst() {
            chain = Digest.compute(Data("\(chain) \(d)".utf8))
        }
        return chain
    }
}

/// The `config` object: defaults for a container run from the image.
public struct ContainerConfig: Codable, Hashable, Sendable {
    public var user: String?
    public var exposedPorts: [String: EmptyObject]?
    public var env: [String]?
    public var entrypoint: [String]?
    public var cmd: [String]?
    public var volumes: [String: EmptyObject]?
    public var workingDir: String?
    public var labels: [String: String]?
    public var stopSignal: String?
    public var argsEscaped: Bool?
    public var memory: Int64?
    public var memorySwap: Int64?
    public var cpuShares: Int64?
    public var healthcheck: HealthConfig?
    public var onBuild: [String]?
    public var shell: [String]?
    public var stopTimeout: Int?
    public var hostname: String?
    public var domainname: String?
    /// Fields this model does not name (`AttachStdin`, `Image`, ...), kept as they were.
    public var extra: [String: JSONValue]?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case user = "User", exposedPorts = "ExposedPorts", env = "Env", entrypoint = "Entrypoint", cmd = "Cmd"
        case volumes = "Volumes", workingDir = "WorkingDir", labels = "Labels", stopSignal = "StopSignal"
        case argsEscaped = "ArgsEscaped", memory = "Memory", memorySwap = "MemorySwap", cpuShares = "CpuShares"
        case healthcheck = "Healthcheck", onBuild = "OnBuild", shell = "Shell", stopTimeout = "StopTimeout"
        case hostname = "Hostname", domainname = "Domainname"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        user = try c.decodeIfPresent(String.self, forKey: .user)
        exposedPorts = try c.decodeIfPresent([String: EmptyObject].self, forKey: .exposedPorts)
        env = try c.decodeIfPresent([String].self, forKey: .env)
        for e in env ?? [] where e.firstIndex(of: "=").map({ $0 == e.startIndex }) ?? true {
            throw OCIError.invalidDocument("config Env entry \"\(e)\" is not NAME=value")
        }
        entrypoint = try c.decodeIfPresent([String].self, forKey: .entrypoint)
        cmd = try c.decodeIfPresent([String].self, forKey: .cmd)
        volumes = try c.decodeIfPresent([String: EmptyObject].self, forKey: .volumes)
        workingDir = try c.decodeIfPresent(String.self, forKey: .workingDir)
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels)
        stopSignal = try c.decodeIfPresent(String.self, forKey: .stopSignal)
        argsEscaped = try c.decodeIfPresent(Bool.self, forKey: .argsEscaped)
        memory = try c.decodeIfPresent(Int64.self, forKey: .memory)
        memorySwap = try c.decodeIfPresent(Int64.self, forKey: .memorySwap)
        cpuShares = try c.decodeIfPresent(Int64.self, forKey: .cpuShares)
        healthcheck = try c.decodeIfPresent(HealthConfig.self, forKey: .healthcheck)
        onBuild = try c.decodeIfPresent([String].self, forKey: .onBuild)
        shell = try c.decodeIfPresent([String].self, forKey: .shell)
        stopTimeout = try c.decodeIfPresent(Int.self, forKey: .stopTimeout)
        hostname = try c.decodeIfPresent(String.self, forKey: .hostname)
        domainname = try c.decodeIfPresent(String.self, forKey: .domainname)
        extra = try decoder.unknownFields(known: Set(CodingKeys.allCases.map(\.rawValue)))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(user, forKey: .user)
        try c.encodeIfPresent(exposedPorts, forKey: .exposedPorts)
        try c.encodeIfPresent(env, forKey: .env)
        try c.encodeIfPresent(entrypoint, forKey: .entrypoint)
        try c.encodeIfPresent(cmd, forKey: .cmd)
        try c.encodeIfPresent(volumes, forKey: .volumes)
        try c.encodeIfPresent(workingDir, forKey: .workingDir)
        try c.encodeIfPresent(labels, forKey: .labels)
        try c.encodeIfPresent(stopSignal, forKey: .stopSignal)
        try c.encodeIfPresent(argsEscaped, forKey: .argsEscaped)
        try c.encodeIfPresent(memory, forKey: .memory)
        try c.encodeIfPresent(memorySwap, forKey: .memorySwap)
        try c.encodeIfPresent(cpuShares, forKey: .cpuShares)
        try c.encodeIfPresent(healthcheck, forKey: .healthcheck)
        try c.encodeIfPresent(onBuild, forKey: .onBuild)
        try c.encodeIfPresent(shell, forKey: .shell)
        try c.encodeIfPresent(stopTimeout, forKey: .stopTimeout)
        try c.encodeIfPresent(hostname, forKey: .hostname)
        try c.encodeIfPresent(domainname, forKey: .domainname)
        try encoder.encodeExtra(extra)
    }

    public init(user: String? = nil, exposedPorts: [String: EmptyObject]? = nil, env: [String]? = nil,
                entrypoint: [String]? = nil, cmd: [String]? = nil, volumes: [String: EmptyObject]? = nil,
                workingDir: String? = nil, labels: [String: String]? = nil, stopSignal: String? = nil,
                healthcheck: HealthConfig? = nil, onBuild: [String]? = nil, shell: [String]? = nil) {
        self.user = user
        self.exposedPorts = exposedPorts
        self.env = env
        self.entrypoint = entrypoint
        self.cmd = cmd
        self.volumes = volumes
        self.workingDir = workingDir
        self.labels = labels
        self.stopSignal = stopSignal
        self.healthcheck = healthcheck
        self.onBuild = onBuild
        self.shell = shell
    }
}

/// Docker's HEALTHCHECK settings; durations in nanoseconds as docker writes them.
public struct HealthConfig: Codable, Hashable, Sendable {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    public var test: [String]?
    public var interval: Int64?
    public var timeout: Int64?
    public var startPeriod: Int64?
    public var startInterval: Int64?
    public var retries: Int?

    enum CodingKeys: String, CodingKey {
        case test = "Test", interval = "Interval", timeout = "Timeout", startPeriod = "StartPeriod"
        case startInterval = "StartInterval", retries = "Retries"
    }

    public init(test: [String]? = nil, interval: Int64? = nil, timeout: Int64? = nil,
                startPeriod: Int64? = nil, startInterval: Int64? = nil, retries: Int? = nil) {
        self.test = test
        self.interval = interval
        self.timeout = timeout
        self.startPeriod = startPeriod
        self.startInterval = startInterval
        self.retries = retries
    }
}

/// `rootfs`: the uncompressed digests of the layers, in order.
public struct RootFS: Codable, Hashable, Sendable {
    public var type: String
    public var diffIDs: [Digest]

    enum CodingKeys: String, CodingKey {
        case type
        case diffIDs = "diff_ids"
    }

    public init(type: String = "layers", diffIDs: [Digest]) {
        self.type = type
        self.diffIDs = diffIDs
    }
}

/// One step of how the image was made; `emptyLayer` steps added no layer.
public struct History: Codable, Hashable, Sendable {
    public var created: String?
    public var author: String?
    public var createdBy: String?
    public var comment: String?
    public var emptyLayer: Bool?

    enum CodingKeys: String, CodingKey {
        case created, author, comment
        case createdBy = "created_by"
        case emptyLayer = "empty_layer"
    }

    public init(created: String? = nil, author: String? = nil, createdBy: String? = nil,
                comment: String? = nil, emptyLayer: Bool? = nil) {
        self.created = created
        self.author = author
        self.createdBy = createdBy
        self.comment = comment
        self.emptyLayer = emptyLayer
    }
}
