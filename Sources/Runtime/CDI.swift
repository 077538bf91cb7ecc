import Foundation
import Yams

/// A CDI spec file (Container Device Interface, cncf-tags/container-device-interface SPEC.md).
public struct CDISpec: Codable, Sendable, Equatable {
    public var cdiVersion: String
    public var kind: String
    public var devices: [Device]
    public var containerEdits: ContainerEdits?

    public init(cdiVersion: String = "0.6.0", kind: String, devices: [Device], containerEdits: ContainerEdits? = nil) {
        self.cdiVersion = cdiVersion
        self.kind = kind
        self.devices = devices
        self.containerEdits = containerEdits
    }

    public struct Device: Codable, Sendable, Equatable {
        public var name: String
        public var annotations: [String: String]?
        public var containerEdits: ContainerEdits
        public init(name: String, containerEdits: ContainerEdits) { self.name = name; self.containerEdits = containerEdits }
    }

    public struct ContainerEdits: Codable, Sendable, Equatable {
        public var env: [String]?
        public var deviceNodes: [DeviceNode]?
        public var hooks: [Hook]?
        public var mounts: [Mount]?
        public var additionalGIDs: [UInt32]?
        public init(env: [String]? = nil, deviceNodes: [DeviceNode]? = nil, hooks: [Hook]? = nil, mounts: [Mount]? = nil) {
            self.env = env
            self.deviceNodes = deviceNodes
            self.hooks = hooks
            self.mounts = mounts
        }
        var isEmpty: Bool {
            (env ?? []).isEmpty && (deviceNodes ?? []).isEmpty && (hooks ?? []).isEmpty && (mounts ?? []).isEmpty
        }
    }

    public struct DeviceNode: Codable, Sendable, Equatable {
        public var path: String
        public var hostPath: String?
        public var type: String?
        public var major: Int64?
        public var minor: Int64?
        public var fileMode: UInt32?
        public var permissions: String?
        public var uid: UInt32?
        public var gid: UInt32?
        public init(path: String, hostPath: String? = nil) { self.path = path; self.hostPath = hostPath }
    }

    public struct Mount: Codable, Sendable, Equatable {
        public var hostPath: String
        public var containerPath: String
        public var options: [String]?
        public var type: String?
        public init(hostPath: String, containerPath: String, options: [String]? = nil, type: String? = nil) {
            self.hostPath = hostPath
            self.containerPath = containerPath
            self.options = options
            self.type = type
        }
    }

    public struct Hook: Codable, Sendable, Equatable {
        public var hookName: String
        public var path: String
        public var args: [String]?
        public var env: [String]?
        public var timeout: Int?
        public init(hookName: String, path: String, args: [String]? = nil) { self.hookName = hookName; self.path = path; self.args = args }
    }
}

/// The CDI specs found on this host, and the edits they make to a runtime spec.
public struct CDIRegistry: Sendable {
    /// Directories searched in order; a later directory overrides an earlier one for the same kind.
    public static let defaultDirectories = ["/etc/cdi", "/var/run/cdi"]

    public var specs: [CDISpec]

    public init(specs: [CDISpec]) { self.specs = specs }

    /// Reads every *.yaml, *.yml and *.json file of the directories.
    public static func load(directories: [String] = defaultDirectories) throws -> CDIRegistry {
        var specs: [CDISpec] = []
        for dir in directories {
            for name in Sys.listDir(dir).sorted() {
                let path = dir + "/" + name
                guard let data = Sys.readData(path) else { continue }
                if name.hasSuffix(".json") {
                    do { specs.append(try JSONDecoder().decode(CDISpec.self, from: data)) } catch {
                        throw RuntimeError(.cdi, "CDI spec \(path) is not valid: \(error)")
                    }
                } else if name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
                    do { specs.append(try YAMLDecoder().decode(CDISpec.self, from: String(decoding: data, as: UTF8.self))) } catch {
                        throw RuntimeError(.cdi, "CDI spec \(path) is not valid YAML for CDI: \(error)")
                    }
                }
            }
        }
        return CDIRegistry(specs: specs)
    }

    /// All fully-qualified device names ("vendor/class=name").
    public var deviceNames: [String] {
        specs.flatMap { s in s.devices.map { "\(s.kind)=\($0.name)" } }.sorted()
    }

    /// Resolves `vendor/class=name` (name may be "all") to the edits to apply, spec-wide edits first.
    public func edits(for request: String) throws -> [CDISpec.ContainerEdits] {
        let parts = request.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, parts[0].contains("/") else {
            throw RuntimeError(.cdi, "CDI device \"\(request)\" is not qualified; write it as vendor/class=name, e.g. nvidia.com/gpu=all")
        }
        let kind = String(parts[0]), name = String(parts[1])
        let matching = specs.filter { $0.kind == kind }
        guard !matching.isEmpty else {
            throw RuntimeError(.cdi, "no CDI spec for kind \(kind) in \(CDIRegistry.defaultDirectories.joined(separator: " or ")); generate one with `dockbuild cdi generate`")
        }
        var out: [CDISpec.ContainerEdits] = []
        var found = false
        for s in matching {
            let devs = s.devices.filter { $0.name == name }
            if devs.isEmpty { continue }
            found = true
            if let e = s.containerEdits { out.append(e) }
            out += devs.map(\.containerEdits)
        }
        if !found && name == "all" {
            for s in matching {
                if let e = s.containerEdits { out.append(e) }
                out += s.devices.map(\.containerEdits)
            }
            found = !out.isEmpty
        }
        guard found else {
            let known = matching.flatMap { $0.devices.map(\.name) }.joined(separator: ", ")
            throw RuntimeError(.cdi, "CDI device \(request) is not defined; \(kind) has: \(known)")
        }
        return out
    }

    /// Applies the edits of every requested device to `spec`.
    public func apply(_ requests: [String], to spec: inout RuntimeSpec) throws {
        var seen = Set<String>()
        for r in requests {
            for e in try edits(for: r) { try CDIRegistry.apply(e, to: &spec, seen: &seen) }
        }
    }

    static func apply(_ e: CDISpec.ContainerEdits, to spec: inout RuntimeSpec, seen: inout Set<String>) throws {
        var proc = spec.process ?? RuntimeSpec.Process()
        for kv in e.env ?? [] {
            let key = kv.split(separator: "=", maxSplits: 1).first.map(String.init) ?? kv
            var env = proc.env ?? []
            env.removeAll { $0.hasPrefix(key + "=") }
            env.append(kv)
            proc.env = env
        }
        if let g = e.additionalGIDs {
            var gids = proc.user.additionalGids ?? []
            for x in g where !gids.contains(x) { gids.append(x) }
            proc.user.additionalGids = gids
        }
        spec.process = proc
        var linux = spec.linux ?? RuntimeSpec.Linux()
        for n in e.deviceNodes ?? [] {
            guard seen.insert("dev:" + n.path).inserted else { continue }
            let host = n.hostPath ?? n.path
            var type = n.type, major = n.major, minor = n.minor, mode = n.fileMode
            var st = stat()
            if stat(host, &st) == 0 {
                let fmt = st.st_mode & S_IFMT
                if type == nil { type = fmt == S_IFBLK ? "b" : fmt == S_IFIFO ? "p" : "c" }
                if major == nil { major = Int64(st.st_rdev >> 8 & 0xfff) | Int64((st.st_rdev >> 32) & ~0xfff) }
                if minor == nil { minor = Int64(st.st_rdev & 0xff) | Int64((st.st_rdev >> 12) & ~0xff) }
                if mode == nil { mode = UInt32(st.st_mode & 0o777) }
            } else if major == nil {
                throw RuntimeError(.cdi, "CDI device node \(host) does not exist on this host and has no major/minor")
            }
            var devs = linux.devices ?? []
            devs.removeAll { $0.path == n.path }
            devs.append(.init(type: type ?? "c", path: n.path, major: major, minor: minor, fileMode: mode, uid: n.uid, gid: n.gid))
            linux.devices = devs
            var res = linux.resources ?? RuntimeSpec.Resources()
            var rules = res.devices ?? []
            rules.append(.init(allow: true, type: type ?? "c", major: major, minor: minor, access: n.permissions ?? "rwm"))
            res.devices = rules
            linux.resources = res
        }
        spec.linux = linux
        for m in e.mounts ?? [] {
            guard seen.insert("mnt:" + m.containerPath).inserted else { continue }
            var mounts = spec.mounts ?? []
            mounts.removeAll { $0.destination == m.containerPath }
            mounts.append(.init(destination: m.containerPath, type: m.type ?? "bind", source: m.hostPath,
                                options: m.options ?? ["ro", "nosuid", "nodev", "rbind", "rprivate"]))
            spec.mounts = mounts
        }
        var hooks = spec.hooks ?? RuntimeSpec.Hooks()
        for h in e.hooks ?? [] {
            let hook = RuntimeSpec.Hook(path: h.path, args: h.args, env: h.env, timeout: h.timeout)
            switch h.hookName {
            case "prestart": hooks.prestart = (hooks.prestart ?? []) + [hook]
            case "createRuntime": hooks.createRuntime = (hooks.createRuntime ?? []) + [hook]
            case "createContainer": hooks.createContainer = (hooks.createContainer ?? []) + [hook]
            case "startContainer": hooks.startContainer = (hooks.startContainer ?? []) + [hook]
            case "poststart": hooks.poststart = (hooks.poststart ?? []) + [hook]
            case "poststop": hooks.poststop = (hooks.poststop ?? []) + [hook]
            default: throw RuntimeError(.cdi, "CDI hook \(h.path) has unknown hookName \"\(h.hookName)\"")
            }
        }
        if !(e.hooks ?? []).isEmpty { spec.hooks = hooks }
    }
}
