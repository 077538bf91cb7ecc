import Foundation
import Containers

/// A compose project after loading: the files merged, values interpolated and every service
/// typed (the Compose Specification's `services`, `volumes`, `networks` top-level elements, the
/// subset dockbuild supports; see docs/compose.md).
public struct ComposeProject: Sendable, Equatable {
    /// The project name (`-p`, `$COMPOSE_PROJECT_NAME`, the top-level `name`, or the directory's name).
    public var name: String
    /// The directory relative paths resolve against.
    public var workingDir: String
    /// The compose files read, in merge order.
    public var files: [String]
    /// Services by name, in sorted order.
    public var services: [ComposeService]
    /// The top-level named volumes (the key in the file, and its settings).
    public var volumes: [ComposeVolume]
    /// The top-level networks, `default` (`PROJECT_default`) among them, by key.
    public var networks: [ComposeNetwork]
    /// The top-level `secrets` and `configs`, by key.
    public var secrets: [ComposeFileObject]
    public var configs: [ComposeFileObject]

    public init(name: String, workingDir: String, files: [String], services: [ComposeService], volumes: [ComposeVolume],
                networks: [ComposeNetwork] = [], secrets: [ComposeFileObject] = [], configs: [ComposeFileObject] = []) {
        self.name = name; self.workingDir = workingDir; self.files = files; self.services = services; self.volumes = volumes
        self.networks = networks; self.secrets = secrets; self.configs = configs
    }

    public func service(_ name: String) -> ComposeService? { services.first { $0.name == name } }

    /// The network every service without `networks:` joins (docker compose's `PROJECT_default`).
    public var defaultNetworkName: String { network("default")?.name ?? "\(name)_default" }

    /// The top-level network with key `key`.
    public func network(_ key: String) -> ComposeNetwork? { networks.first { $0.key == key } }
}

/// A top-level secret or config: a host file (`file:`), or text (`content:`, or the value of
/// `environment:`'s variable) that `up` writes into a file of its own.
public struct ComposeFileObject: Sendable, Equatable, Codable {
    public var key: String
    /// An absolute path, when from `file:`.
    public var file: String?
    /// The text, when from `content:` or `environment:` (nil when that variable is unset: an
    /// error only where a container needs it).
    public var content: String?
    /// `environment:`'s variable name.
    public var environment: String?
    public init(key: String, file: String?, content: String?, environment: String? = nil) {
        self.key = key; self.file = file; self.content = content; self.environment = environment
    }
}

/// A service's use of a secret or config: mounted read-only at `target`.
public struct FileReference: Sendable, Equatable, Codable {
    public var source: String
    /// An absolute path in the container.
    public var target: String
    public init(source: String, target: String) { self.source = source; self.target = target }
}

/// A top-level network: a user-defined bridge network `PROJECT_KEY` unless `name:` or
/// `external:` says otherwise.
public struct ComposeNetwork: Sendable, Equatable, Codable {
    public var key: String
    /// The network's name in the store.
    public var name: String
    public var external: Bool
    public var labels: [String: String]
    public init(key: String, name: String, external: Bool, labels: [String: String]) {
        self.key = key; self.name = name; self.external = external; self.labels = labels
    }
}

/// A top-level volume: `PROJECT_KEY` unless `name:` or `external:` says otherwise.
public struct ComposeVolume: Sendable, Equatable, Codable {
    public var key: String
    /// The volume's name in the store.
    public var name: String
    public var external: Bool
    public var labels: [String: String]
    public init(key: String, name: String, external: Bool, labels: [String: String]) {
        self.key = key; self.name = name; self.external = external; self.labels = labels
    }
}

/// `depends_on`'s conditions.
public enum DependencyCondition: String, Sendable, Codable, CaseIterable {
    case serviceStarted = "service_started"
    case serviceHealthy = "service_healthy"
    case serviceCompletedSuccessfully = "service_completed_successfully"
}

/// One `depends_on` entry.
public struct Dependency: Sendable, Equatable, Codable {
    public var service: String
    public var condition: DependencyCondition
    public var required: Bool
    public init(service: String, condition: DependencyCondition, required: Bool) {
        self.service = service; self.condition = condition; self.required = required
    }
}

/// One `ports` entry in long form.
public struct ServicePort: Sendable, Equatable, Codable {
    public var hostIP: String
    /// The host port; "" for any free port.
    public var published: String
    public var target: Int
    public var proto: String
    public init(hostIP: String, published: String, target: Int, proto: String) {
        self.hostIP = hostIP; self.published = published; self.target = target; self.proto = proto
    }
}

/// One `volumes` entry in long form.
public struct ServiceMount: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable { case bind, volume, tmpfs }
    public var type: Kind
    /// An absolute host path (bind), a top-level volume's key (volume; "" for anonymous), "" for tmpfs.
    public var source: String
    public var target: String
    public var readOnly: Bool
    public init(type: Kind, source: String, target: String, readOnly: Bool) {
        self.type = type; self.source = source; self.target = target; self.readOnly = readOnly
    }
}

/// `healthcheck`; durations in nanoseconds.
public struct ServiceHealthcheck: Sendable, Equatable, Codable {
    public var test: [String]?
    public var interval: Int64?
    public var timeout: Int64?
    public var startPeriod: Int64?
    public var startInterval: Int64?
    public var retries: Int?
    public var disable: Bool
    public init(test: [String]? = nil, interval: Int64? = nil, timeout: Int64? = nil, startPeriod: Int64? = nil,
                startInterval: Int64? = nil, retries: Int? = nil, disable: Bool = false) {
        self.test = test; self.interval = interval; self.timeout = timeout; self.startPeriod = startPeriod
        self.startInterval = startInterval; self.retries = retries; self.disable = disable
    }
}

/// `build`: how to build a service's image (`dockbuild build` with these settings).
public struct ServiceBuild: Sendable, Equatable, Codable {
    /// The context directory (absolute).
    public var context: String
    /// The Dockerfile: a path relative to the context, or absolute.
    public var dockerfile: String
    /// `dockerfile_inline`: the Dockerfile's text itself.
    public var dockerfileInline: String?
    public var args: [String: String]
    public var target: String?
    public var labels: [String: String]
    /// Images whose inline cache a build may reuse (`cache_from`).
    public var cacheFrom: [String]
    /// `network` for RUN steps: default, host or none.
    public var network: String?
    public init(context: String) {
        self.context = context; dockerfile = "Dockerfile"; args = [:]; labels = [:]; cacheFrom = []
    }
}

/// A service, with every supported key typed and normalised.
public struct ComposeService: Sendable, Equatable, Codable {
    public var name: String
    public var image: String
    public var command: [String]?
    public var entrypoint: [String]?
    /// The environment after `env_file` and `environment` (the latter wins), by name.
    public var environment: [String: String]
    public var ports: [ServicePort]
    public var volumes: [ServiceMount]
    public var dependsOn: [Dependency]
    public var healthcheck: ServiceHealthcheck?
    /// no, always, on-failure[:N], unless-stopped; nil when not given.
    public var restart: String?
    public var user: String?
    public var workingDir: String?
    public var labels: [String: String]
    public var containerName: String?
    public var hostname: String?
    public var extraHosts: [String]
    public var tmpfs: [String]
    public var expose: [String]
    public var capAdd: [String]
    public var capDrop: [String]
    public var privileged: Bool
    public var readOnly: Bool
    public var initProcess: Bool
    public var tty: Bool
    public var stdinOpen: Bool
    public var stopSignal: String?
    /// `stop_grace_period` in seconds.
    public var stopGracePeriod: Int?
    public var networkMode: String?
    public var profiles: [String]
    public var dns: [String]
    /// `mem_limit` or `deploy.resources.limits.memory`, bytes.
    public var memLimit: Int64?
    /// `cpus` or `deploy.resources.limits.cpus`, nano-CPUs.
    public var nanoCpus: Int64?
    /// `pids_limit` or `deploy.resources.limits.pids`.
    public var pidsLimit: Int64?
    /// `shm_size`, bytes.
    public var shmSize: Int64?
    public var ulimits: [Ulimit] = []
    /// `devices` as given (`HOST[:CONTAINER[:PERMS]]` or a CDI name `vendor/class=name`).
    public var devices: [String] = []
    /// `gpus` or `deploy.resources.reservations.devices` with capability gpu: `all`, a count,
    /// or `device=ID,...` (as `run --gpus`).
    public var gpus: String?
    public var securityOpt: [String] = []
    public var groupAdd: [String] = []
    public var dnsSearch: [String] = []
    public var dnsOpt: [String] = []
    /// always, missing, never (nil: missing).
    public var pullPolicy: String?
    public var platform: String?
    /// `networks`: the keys of the top-level networks the service joins, each with its
    /// `aliases` (more names the service answers to there); `default` when not given, empty
    /// with `network_mode`.
    public var networks: [String: [String]] = ["default": []]
    /// The aliases on all the service's networks.
    public var aliases: [String] { networks.keys.sorted().flatMap { networks[$0] ?? [] } }
    /// `secrets` (at /run/secrets/NAME by default) and `configs` (at /NAME by default).
    public var secrets: [FileReference] = []
    public var configs: [FileReference] = []
    /// `deploy.replicas` or `scale` (`up --scale` overrides): containers `PROJECT-SERVICE-1..N`.
    public var replicas = 1
    /// How to build `image` (nil: pulled or already in the store). A service with `build` and
    /// no `image` gets the image name `PROJECT-SERVICE`.
    public var build: ServiceBuild?

    public init(name: String, image: String) {
        self.name = name; self.image = image
        environment = [:]; ports = []; volumes = []; dependsOn = []; labels = [:]; extraHosts = []; tmpfs = []
        expose = []; capAdd = []; capDrop = []; privileged = false; readOnly = false; initProcess = false
        tty = false; stdinOpen = false; profiles = []; dns = []
    }
}
