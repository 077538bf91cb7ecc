import Foundation
import SystemSupport
import OCI

/// A published port: `[hostIP:]hostPort:containerPort/proto`; hostPort 0 asks for a free one.
public struct PortBinding: Codable, Sendable, Hashable {
    public var hostIP: String
    public var hostPort: Int
    public var containerPort: Int
    public var proto: String
    public init(hostIP: String = "", hostPort: Int, containerPort: Int, proto: String = "tcp") {
        self.hostIP = hostIP; self.hostPort = hostPort; self.containerPort = containerPort; self.proto = proto
    }

    /// Parses docker's `-p` forms: `80`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`, `8080:80/udp`.
    public init(parsing text: String) throws {
        var spec = text
        var proto = "tcp"
        if let slash = spec.lastIndex(of: "/") {
            proto = String(spec[spec.index(after: slash)...]).lowercased()
            spec = String(spec[..<slash])
        }
        guard proto == "tcp" || proto == "udp" else {
            throw ContainersError.invalidArgument("-p \(text): protocol must be tcp or udp")
        }
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var ip = "", host = "", ctr = ""
        switch parts.count {
        case 1: ctr = parts[0]
        case 2: host = parts[0]; ctr = parts[1]
        case 3: ip = parts[0]; host = parts[1]; ctr = parts[2]
        default: throw ContainersError.invalidArgument("-p \(text): expected [IP:]HOST:CONTAINER[/udp]")
        }
        guard let c = Int(ctr), (1...65535).contains(c) else {
            throw ContainersError.invalidArgument("-p \(text): container port \"\(ctr)\" is not a port number (1-65535)")
        }
        var h = 0
        if !host.isEmpty {
            guard let v = Int(host), (0...65535).contains(v) else {
                throw ContainersError.invalidArgument("-p \(text): host port \"\(host)\" is not a port number")
            }
            h = v
        }
        if !ip.isEmpty, inet_addr(ip) == INADDR_NONE, ip != "255.255.255.255" {
            throw ContainersError.invalidArgument("-p \(text): \"\(ip)\" is not an IPv4 address")
        }
        self.init(hostIP: ip, hostPort: h, containerPort: c, proto: proto)
    }

    /// `0.0.0.0:8080->80/tcp` as `ps` shows it.
    public var display: String {
        "\(hostIP.isEmpty ? "0.0.0.0" : hostIP):\(hostPort)->\(containerPort)/\(proto)"
    }
}

/// One mount of a container: a host directory, a named volume or a tmpfs.
public struct MountPoint: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable { case bind, volume, tmpfs }
    public var type: Kind
    /// Host path for binds, volume name for volumes, empty for tmpfs.
    public var source: String
    public var destination: String
    public var readOnly: Bool
    public var options: [String]
    /// A volume created for this container only (image VOLUME or `-v /path`); `rm -v` removes it.
    public var anonymous: Bool
    public init(type: Kind, source: String, destination: String, readOnly: Bool = false, options: [String] = [], anonymous: Bool = false) {
        self.type = type; self.source = source; self.destination = destination
        self.readOnly = readOnly; self.options = options; self.anonymous = anonymous
    }
}

/// What `run`/`create` were asked for, before the image is consulted.
public struct CreateOptions: Codable, Sendable {
    public var name: String?
    public var image: String
    public var command: [String] = []
    public var entrypoint: [String]?
    public var env: [String] = []
    public var workingDir: String?
    public var user: String?
    public var hostname: String?
    public var tty = false
    public var openStdin = false
    public var autoRemove = false
    public var readOnly = false
    public var privileged = false
    public var capAdd: [String] = []
    public var capDrop: [String] = []
    public var initProcess = false
    public var mounts: [MountPoint] = []
    public var ports: [PortBinding] = []
    public var publishAll = false
    public var network = "bridge"
    public var memory: Int64?
    public var memorySwap: Int64?
    public var nanoCpus: Int64?
    public var pidsLimit: Int64?
    public var gpus: String?
    /// `--security-opt` values (seccomp=, no-new-privileges, label=, apparmor=).
    public var securityOpt: [String] = []
    public var labels: [String: String] = [:]
    /// `--add-host` entries, `HOST:IP` (see `FlagValue.extraHost`).
    public var extraHosts: [String] = []
    /// `--network-alias`: more names the container answers to on a user-defined network.
    public var networkAliases: [String] = []
    /// User-defined networks joined besides `network` (eth1, eth2, ... in name order), each
    /// with the container's aliases there.
    public var moreNetworks: [String: [String]] = [:]
    /// `--dns`, `--dns-search`, `--dns-option`.
    public var dns: [String] = []
    public var dnsSearch: [String] = []
    public var dnsOptions: [String] = []
    /// `--ulimit` (the last one for a name wins), `--shm-size` bytes, `--group-add` gids or names.
    public var ulimits: [Ulimit] = []
    public var shmSize: Int64?
    public var groupAdd: [String] = []
    /// `--platform`: the image's platform to use (an index's manifest; a plain image must match).
    public var platform: String?
    /// The streams `run` attaches (docker's Config.AttachStdin/out/err): stdin, stdout,
    /// stderr; nil for `create`'s default (stdout and stderr, stdin with -i), [] for `run -d`.
    public var attach: [String]?
    /// `--device vendor.com/class=name`: CDI devices by fully-qualified name (`name` may be `all`).
    public var cdiDevices: [String] = []
    /// `--log-driver` (json-file or none) and `--log-opt` (max-size, max-file).
    public var logDriver: String?
    public var logOpts: [String: String] = [:]
    /// `--ipc`, `--pid`, `--uts` as given ("" for the container's own namespace).
    public var ipcMode = ""
    public var pidMode = ""
    public var utsMode = ""
    /// `--stop-signal` (else the image's STOPSIGNAL) and `--stop-timeout` seconds (-1: no limit).
    public var stopSignal: String?
    public var stopTimeout: Int?
    /// `--device` mappings.
    public var devices: [DeviceMapping] = []
    /// `--restart`; nil for "no".
    public var restartPolicy: RestartPolicy?
    /// `--health-*` (`FlagValue.healthConfig`), merged over the image's HEALTHCHECK; `["NONE"]`
    /// for `--no-healthcheck`; nil for the image's.
    public var healthcheck: HealthConfig?
    public init(image: String) { self.image = image }
}

/// The resolved process and resources of a container (docker's Config + HostConfig).
public struct ContainerRecord: Codable, Sendable {
    public var id: String
    public var name: String
    public var created: String
    public var image: String
    public var imageID: String
    public var imageDescriptor: Descriptor
    public var chainID: String?
    public var entrypoint: [String]
    public var cmd: [String]
    public var env: [String]
    public var workingDir: String
    public var user: String
    public var hostname: String
    public var tty: Bool
    public var openStdin: Bool
    public var labels: [String: String]
    public var exposedPorts: [String]
    public var stopSignal: String?
    public var autoRemove: Bool
    public var readOnly: Bool
    public var privileged: Bool
    public var capAdd: [String]
    public var capDrop: [String]
    public var initProcess: Bool
    public var mounts: [MountPoint]
    public var ports: [PortBinding]
    public var publishAll: Bool
    public var network: String
    public var memory: Int64
    public var memorySwap: Int64
    public var nanoCpus: Int64
    public var pidsLimit: Int64
    public var gpus: String?
    /// `--security-opt` values; nil in records written before the option existed.
    public var securityOpt: [String]?
    /// `--add-host` entries (`HOST:IP`); nil when none (and in older records).
    public var extraHosts: [String]?
    /// `--network-alias` names on a user-defined network; nil when none.
    public var networkAliases: [String]?
    /// User-defined networks joined besides `network`, with the aliases there; nil when none.
    public var moreNetworks: [String: [String]]?
    /// `--dns`, `--dns-search`, `--dns-option`; nil when not given.
    public var dns: [String]?
    public var dnsSearch: [String]?
    public var dnsOptions: [String]?
    /// `--ulimit` limits; nil when none.
    public var ulimits: [Ulimit]?
    /// `--shm-size` in bytes; nil for docker's 64m.
    public var shmSize: Int64?
    /// The image's platform (`os/arch[/variant]`, from its config); nil in records written
    /// before it was kept.
    public var platform: String?
    /// CDI devices named with `--device vendor.com/class=name`; nil when none.
    public var cdiDevices: [String]?
    /// `CreateOptions.attach` as given (nil: docker's default for `create`).
    public var attach: [String]?
    /// `--log-driver` (nil: json-file) and `--log-opt` (`LogConfig`).
    public var logDriver: String?
    public var logOpts: [String: String]?
    /// `--group-add` gids or group names of the image; nil when none.
    public var groupAdd: [String]?
    /// `--ipc` (host, none, shareable, container:NAME), `--pid` (host, container:NAME), `--uts`
    /// (host); nil for the container's own namespace.
    public var ipcMode: String?
    public var pidMode: String?
    public var utsMode: String?
    /// `--stop-timeout`: the seconds `stop` waits by default (-1: no limit); nil for docker's 10.
    public var stopTimeout: Int?
    /// `--device` mappings; nil when none.
    public var devices: [DeviceMapping]?
    /// `--restart`, applied by the container's monitor; nil for "no".
    public var restartPolicy: RestartPolicy?
    /// The health check (docker's Config.Healthcheck): the flags' over the image's; nil for none.
    public var healthcheck: HealthConfig?
    /// The image's SHELL (docker's Config.Shell), which runs a CMD-SHELL health check; nil for /bin/sh -c.
    public var shell: [String]?

    /// The seconds `stop` and `restart` wait when not told.
    public var defaultStopTimeout: Int {
        guard let t = stopTimeout else { return 10 }
        return t < 0 ? FlagValue.maxTimeoutSeconds : t
    }

    /// The argv the container runs: entrypoint then cmd.
    public var argv: [String] { entrypoint + cmd }
}

/// What a container is doing; written by its monitor, read by everyone.
public struct ContainerState: Codable, Sendable {
    public enum Status: String, Codable, Sendable { case created, running, exited, dead }
    public var status: Status = .created
    public var pid: Int32 = 0
    public var monitorPid: Int32 = 0
    /// The monitor's start time (from /proc/<pid>/stat) so a reused pid is not mistaken for it.
    public var monitorStartTime: UInt64 = 0
    public var exitCode: Int32 = 0
    public var oomKilled = false
    public var startedAt: String = "0001-01-01T00:00:00Z"
    public var finishedAt: String = "0001-01-01T00:00:00Z"
    public var error: String = ""
    public var ipAddress: String = ""
    /// The addresses on the record's `moreNetworks`, by network name, while running.
    public var moreIPs: [String: String]?
    public var gateway: String = ""
    public var macAddress: String = ""
    public var ports: [PortBinding] = []
    public var restartCount = 0
    /// Between two runs of a `--restart` policy (docker's State.Restarting); status stays running.
    public var restarting: Bool?
    /// `stop`, `kill` or `rm -f` asked for the end: the restart policy no longer applies.
    public var manuallyStopped: Bool?
    public var cgroupPaths: [String: String] = [:]
    /// The OCI runtime command the container was started with (`OCIRuntime.command`), so that
    /// kill, exec and delete reach the same runtime whatever the default is later.
    public var ociRuntime: [String]?
    /// docker's State.Health, kept by the monitor of a container with a health check.
    public var health: HealthState?
    public init() {}
}

/// A container as listed: its record and its state with liveness checked.
public struct Container: Sendable {
    public var record: ContainerRecord
    public var state: ContainerState
    public var directory: String
    public var id: String { record.id }
    public var name: String { record.name }
    public var isRunning: Bool { state.status == .running }
    /// Running with every process frozen (`pause`); docker's State.Paused. Read from the
    /// container's cgroup when the container is looked up.
    public var isPaused = false
}

public enum Time {
    /// RFC 3339 with nanoseconds, UTC, as docker prints times.
    static func now() -> String { format(timespecNow()) }

    /// Seconds on the monotonic clock, for timeouts.
    static func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func timespecNow() -> timespec {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return ts
    }

    static func format(_ ts: timespec) -> String { UTCTime.format(ts, .nanos) }

    /// RFC 3339 by hand (ImageConfig.parseDate): `ps` parses two times per container, and an
    /// ISO8601DateFormatter per call was most of its run time.
    static func parse(_ s: String) -> Date? { ImageConfig.parseDate(s) }

    /// "Up 3 minutes", "2 hours" like docker's human durations.
    static func human(_ seconds: Double) -> String {
        let s = Int(seconds)
        if s < 1 { return "Less than a second" }
        if s < 60 { return "\(s) second\(s == 1 ? "" : "s")" }
        let m = s / 60
        if m < 60 { return m == 1 ? "About a minute" : "\(m) minutes" }
        let h = m / 60
        if h < 48 { return h == 1 ? "About an hour" : "\(h) hours" }
        return "\(h / 24) days"
    }
}

extension Time {
    /// Parses the RFC 3339 times the state files hold.
    public static func parsePublic(_ s: String) -> Date? { parse(s) }
    /// docker-style human durations ("5 seconds", "About a minute").
    public static func humanPublic(_ seconds: Double) -> String { human(seconds) }
}
