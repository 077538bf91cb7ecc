import Containers
import Foundation

/// Turns the merged tree into typed services; every error names the file and line, the
/// service and the key.
struct Typer {
    let project: String
    let workingDir: String
    let environment: [String: String]

    static let supportedKeys: Set = [
        "image", "command", "entrypoint", "environment", "env_file", "ports", "volumes", "depends_on", "healthcheck",
        "restart", "user", "working_dir", "labels", "container_name", "hostname", "extra_hosts", "tmpfs", "expose",
        "cap_add", "cap_drop", "privileged", "read_only", "init", "tty", "stdin_open", "stop_signal",
        "stop_grace_period", "network_mode", "networks", "profiles", "dns", "mem_limit", "cpus", "shm_size",
        "pids_limit", "ulimits", "devices", "gpus", "security_opt", "group_add", "dns_search", "dns_opt", "pull_policy",
        "platform", "deploy", "build", "scale", "secrets", "configs",
    ]
    /// Keys of the Compose Specification that dockbuild does not implement yet: refused rather
    /// than ignored, so a project never runs other than it says.
    static let unsupportedKeys: Set = [
        "logging", "sysctls", "ipc", "pid", "mem_reservation", "memswap_limit",
        "cpu_shares", "cpu_quota", "cpu_period", "cpuset", "links", "external_links", "domainname", "mac_address",
        "volumes_from", "develop", "attach", "cgroup", "cgroup_parent", "device_cgroup_rules", "isolation",
        "oom_kill_disable", "oom_score_adj", "runtime", "storage_opt", "userns_mode", "uts", "annotations", "blkio_config",
        "credential_spec", "label_file", "post_start", "pre_stop", "use_api_socket", "mem_swappiness",
        "cpu_count", "cpu_percent", "cpu_rt_runtime", "cpu_rt_period", "cpuset_mems", "provider", "models",
        "lifecycle_hooks",
    ]

    struct Ctx {
        let service: String
        func err(_ n: YNode, _ key: String, _ msg: String) -> ComposeError {
            .invalidFile("\(n.mark): service \"\(service)\", key \"\(key)\": \(msg)")
        }
        func string(_ n: YNode, _ key: String) throws -> String {
            guard case let .scalar(s, _) = n else { throw err(n, key, "expected a string, got \(n.kind)") }
            return s
        }
        func strings(_ n: YNode, _ key: String) throws -> [String] {
            switch n {
            case let .seq(items, _): return try items.map { try string($0, key) }
            case let .scalar(s, _): return [s]
            case .null: return []
            default: throw err(n, key, "expected a list of strings, got \(n.kind)")
            }
        }
        func bool(_ n: YNode, _ key: String) throws -> Bool {
            switch try string(n, key).lowercased() {
            case "true", "yes", "on", "y": return true
            case "false", "no", "off", "n": return false
            default: throw err(n, key, "expected true or false")
            }
        }
        func int(_ n: YNode, _ key: String) throws -> Int {
            guard let v = Int(try string(n, key)) else { throw err(n, key, "expected a whole number") }
            return v
        }
        func duration(_ n: YNode, _ key: String) throws -> Int64 {
            let s = try string(n, key)
            do { return try FlagValue.duration(s, flag: key) } catch {
                throw err(n, key, "\"\(s)\" is not a duration; give one such as 30s, 1m30s or 500ms")
            }
        }
        /// A mapping, or a list of `K=V` (`K` alone: null).
        func dict(_ n: YNode, _ key: String, separator: Character = "=") throws -> [(String, String?)] {
            switch n {
            case let .map(pairs, _):
                return try pairs.map { p in
                    switch p.value {
                    case .null: return (p.key, nil)
                    case let .scalar(s, _): return (p.key, s)
                    default: throw err(p.value, key, "the value of \(p.key) must be a string, number or boolean, not \(p.value.kind)")
                    }
                }
            case let .seq(items, _):
                return try items.map { it in
                    let s = try string(it, key)
                    if let i = s.firstIndex(of: separator) { return (String(s[..<i]), String(s[s.index(after: i)...])) }
                    return (s, nil)
                }
            case .null: return []
            default: throw err(n, key, "expected a mapping or a list of KEY=VALUE, got \(n.kind)")
            }
        }
    }

    /// Shell-like splitting of a `command`/`entrypoint` string (compose splits, it does not run a shell).
    static func split(_ s: String) -> [String]? {
        var out: [String] = [], cur = "", inWord = false
        var quote: Character?
        var esc = false
        for c in s {
            if esc { cur.append(c); esc = false; inWord = true; continue }
            if let q = quote {
                if c == q { quote = nil } else if c == "\\" && q == "\"" { esc = true } else { cur.append(c) }
                continue
            }
            if c == "\\" { esc = true; continue }
            if c == "\"" || c == "'" { quote = c; inWord = true; continue }
            if c == " " || c == "\t" || c == "\n" {
                if inWord { out.append(cur); cur = ""; inWord = false }
                continue
            }
            cur.append(c); inWord = true
        }
        if quote != nil || esc { return nil }
        if inWord { out.append(cur) }
        return out
    }

    func absolute(_ p: String) -> String {
        var path = p
        if path.hasPrefix("~/"), let home = environment["HOME"] { path = home + path.dropFirst(1) }
        if !path.hasPrefix("/") { path = "\(workingDir)/\(path)" }
        return (path as NSString).standardizingPath
    }

    // MARK: - top level

    mutating func volumes(_ n: YNode?) throws -> [ComposeVolume] {
        guard let n else { return [] }
        if case .null = n { return [] }
        guard case let .map(pairs, _) = n else { throw ComposeError.invalidFile("\(n.mark): `volumes` must be a mapping of volume names, not \(n.kind)") }
        let ctx = Ctx(service: "")
        var out: [ComposeVolume] = []
        for (key, v) in pairs {
            guard VolumeStore.validName(key) else {
                throw ComposeError.invalidFile("\(v.mark): volume \"\(key)\": use letters, digits, _ . - (starting with a letter or digit)")
            }
            var vol = ComposeVolume(key: key, name: "\(project)_\(key)", external: false, labels: [:])
            if case let .map(fields, _) = v {
                for (k, f) in fields where !k.hasPrefix("x-") {
                    switch k {
                    case "name": vol.name = try ctx.string(f, k)
                    case "external":
                        if case .map = f { vol.external = true; if case let .scalar(nm, _)? = f["name"] { vol.name = nm } } else { vol.external = try ctx.bool(f, k) }
                    case "labels": for (lk, lv) in try ctx.dict(f, k) { vol.labels[lk] = lv ?? "" }
                    case "driver":
                        guard try ctx.string(f, k) == "local" else {
                            throw ComposeError.invalidFile("\(f.mark): volume \"\(key)\": only the local driver is supported")
                        }
                    default:
                        throw ComposeError.invalidFile("\(f.mark): volume \"\(key)\": key \"\(k)\" is not supported (name, external, labels, driver: local)")
                    }
                }
                if vol.external, fields.first(where: { $0.key == "name" }) == nil, case .scalar? = v["external"] { vol.name = key }
            } else if case .null = v {} else {
                throw ComposeError.invalidFile("\(v.mark): volume \"\(key)\": expected a mapping or nothing, got \(v.kind)")
            }
            out.append(vol)
        }
        return out.sorted { $0.key < $1.key }
    }

    /// A service's `secrets` or `configs`: names, or `{source, target}` (a relative target is
    /// under `base`).
    func fileReferences(_ n: YNode, _ key: String, _ ctx: Ctx, base: String) throws -> [FileReference] {
        guard case let .seq(items, _) = n else { throw ctx.err(n, key, "expected a list, got \(n.kind)") }
        return try items.map { it in
            if case let .scalar(name, _) = it { return FileReference(source: name, target: base + name) }
            guard case let .map(fields, _) = it else { throw ctx.err(it, key, "expected a name or a mapping, got \(it.kind)") }
            var source = "", target: String?
            for (k, f) in fields where !k.hasPrefix("x-") {
                switch k {
                case "source": source = try ctx.string(f, key)
                case "target": target = try ctx.string(f, key)
                default:
                    throw ctx.err(f, key, "\"\(k)\" is not supported yet (source, target): the file is bind-mounted read-only with its own owner and mode")
                }
            }
            guard !source.isEmpty else { throw ctx.err(it, key, "source: give the name of a top-level \(key) entry") }
            let t = target ?? source
            return FileReference(source: source, target: t.hasPrefix("/") ? t : base + t)
        }
    }

    /// The top-level `secrets` or `configs`: `file`, `environment` or `content` each.
    func fileObjects(_ n: YNode?, _ what: String) throws -> [ComposeFileObject] {
        guard let n else { return [] }
        if case .null = n { return [] }
        guard case let .map(pairs, _) = n else { throw ComposeError.invalidFile("\(n.mark): `\(what)` must be a mapping of names, not \(n.kind)") }
        let ctx = Ctx(service: "")
        return try pairs.map { key, v in
            // The name becomes a file under the project's directory (content and environment
            // values are written there): no path separators, no leading dot.
            guard VolumeStore.validName(key) else {
                throw ComposeError.invalidFile("\(v.mark): \(what) \"\(key)\": use letters, digits, _ . - (starting with a letter or digit)")
            }
            guard case let .map(fields, _) = v else {
                throw ComposeError.invalidFile("\(v.mark): \(what) \"\(key)\": expected a mapping with file, environment or content")
            }
            var obj = ComposeFileObject(key: key, file: nil, content: nil)
            for (k, f) in fields where !k.hasPrefix("x-") {
                switch k {
                case "file": obj.file = absolute(try ctx.string(f, k))
                case "content": obj.content = try ctx.string(f, k)
                case "environment":
                    let name = try ctx.string(f, k)
                    obj.environment = name
                    obj.content = environment[name]
                case "name": _ = try ctx.string(f, k)
                default:
                    throw ComposeError.invalidFile("\(f.mark): \(what) \"\(key)\": key \"\(k)\" is not supported yet (file, environment, content, name)")
                }
            }
            guard (obj.file == nil) != (obj.content == nil && obj.environment == nil) else {
                throw ComposeError.invalidFile("\(v.mark): \(what) \"\(key)\": give one of file, environment or content")
            }
            return obj
        }.sorted { $0.key < $1.key }
    }

    /// The top-level `networks` (`default` added when missing): user-defined bridge networks.
    func networks(_ n: YNode?) throws -> [ComposeNetwork] {
        var out = [ComposeNetwork(key: "default", name: "\(project)_default", external: false, labels: [:])]
        guard let n else { return out }
        if case .null = n { return out }
        guard case let .map(pairs, _) = n else { throw ComposeError.invalidFile("\(n.mark): `networks` must be a mapping of network names, not \(n.kind)") }
        let ctx = Ctx(service: "")
        for (key, v) in pairs {
            guard key.allSatisfy({ ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "_" || $0 == "." || $0 == "-" }),
                  key.first?.isLetter == true || key.first?.isNumber == true else {
                throw ComposeError.invalidFile("\(v.mark): network \"\(key)\": use letters, digits, _ . - (starting with a letter or digit)")
            }
            var net = ComposeNetwork(key: key, name: "\(project)_\(key)", external: false, labels: [:])
            if case let .map(fields, _) = v {
                for (k, f) in fields where !k.hasPrefix("x-") {
                    switch k {
                    case "name": net.name = try ctx.string(f, k)
                    case "external":
                        if case .map = f { net.external = true; if case let .scalar(nm, _)? = f["name"] { net.name = nm } } else { net.external = try ctx.bool(f, k) }
                    case "labels": for (lk, lv) in try ctx.dict(f, k) { net.labels[lk] = lv ?? "" }
                    case "driver":
                        guard try ctx.string(f, k) == "bridge" else {
                            throw ComposeError.invalidFile("\(f.mark): network \"\(key)\": only the bridge driver is supported")
                        }
                    case "attachable": _ = try ctx.bool(f, k)
                    default:
                        throw ComposeError.invalidFile("\(f.mark): network \"\(key)\": key \"\(k)\" is not supported yet (name, external, labels, driver: bridge)")
                    }
                }
                if net.external, fields.first(where: { $0.key == "name" }) == nil, case .scalar? = v["external"] { net.name = key }
            } else if case .null = v {} else {
                throw ComposeError.invalidFile("\(v.mark): network \"\(key)\": expected a mapping or nothing, got \(v.kind)")
            }
            guard ContainerStore.validName(net.name), !NetworkStore.builtIn.contains(net.name) else {
                throw ComposeError.invalidFile("\(v.mark): network \"\(key)\": name \"\(net.name)\" cannot be a network's name (use letters, digits, _ . -; not bridge, host, none)")
            }
            out.removeAll { $0.key == key }
            out.append(net)
        }
        return out.sorted { $0.key < $1.key }
    }

    // MARK: - services

    mutating func service(_ name: String, _ node: YNode, volumes: [ComposeVolume]) throws -> ComposeService {
        guard !name.isEmpty, name.allSatisfy({ ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "_" || $0 == "." || $0 == "-" }),
              name.first?.isLetter == true || name.first?.isNumber == true else {
            throw ComposeError.invalidFile("\(node.mark): service name \"\(name)\" must use letters, digits, _ . - and start with a letter or digit")
        }
        let ctx = Ctx(service: name)
        guard case let .map(pairs, _) = node else {
            throw ComposeError.invalidFile("\(node.mark): service \"\(name)\" must be a mapping, not \(node.kind)")
        }
        var s = ComposeService(name: name, image: "")
        var envFromFiles: [String: String] = [:]
        var envOwn: [(String, String?)] = []
        for (key, v) in pairs where !key.hasPrefix("x-") {
            if Self.unsupportedKeys.contains(key) {
                throw ctx.err(v, key, "not supported yet by dockbuild compose; remove it")
            }
            guard Self.supportedKeys.contains(key) else {
                throw ctx.err(v, key, "unknown key (see the Compose Specification's service keys; extensions start with x-)")
            }
            switch key {
            case "image": s.image = try ctx.string(v, key)
            case "command", "entrypoint":
                var argv: [String]?
                switch v {
                case .null: argv = nil
                case let .scalar(text, _):
                    guard let a = Self.split(text) else { throw ctx.err(v, key, "unterminated quote or trailing backslash in \"\(text)\"") }
                    argv = a
                default: argv = try ctx.strings(v, key)
                }
                if key == "command" { s.command = argv } else { s.entrypoint = argv }
            case "environment": envOwn = try ctx.dict(v, key)
            case "env_file":
                var items: [(String, Bool)] = []
                switch v {
                case let .seq(list, _):
                    for it in list {
                        if case .map = it {
                            guard let p = it["path"] else { throw ctx.err(it, key, "an entry needs `path`") }
                            items.append((try ctx.string(p, key), try it["required"].map { try ctx.bool($0, key) } ?? true))
                        } else { items.append((try ctx.string(it, key), true)) }
                    }
                default: items = try ctx.strings(v, key).map { ($0, true) }
                }
                for (p, required) in items {
                    let path = absolute(p)
                    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                        if !required { continue }
                        throw ctx.err(v, key, "env file \(path) not found: create it, or mark it `required: false`")
                    }
                    for (k, val) in try DotEnv.parse(text, file: path, environment: environment) { envFromFiles[k] = val }
                }
            case "ports":
                guard case let .seq(list, _) = v else { throw ctx.err(v, key, "expected a list, got \(v.kind)") }
                for it in list { s.ports += try port(it, ctx) }
            case "expose": s.expose = try ctx.strings(v, key)
            case "volumes":
                guard case let .seq(list, _) = v else { throw ctx.err(v, key, "expected a list, got \(v.kind)") }
                for it in list { s.volumes.append(try mount(it, ctx, volumes: volumes)) }
            case "depends_on": s.dependsOn = try dependencies(v, ctx)
            case "healthcheck": s.healthcheck = try healthcheck(v, ctx)
            case "restart":
                let r = try ctx.string(v, key)
                do { _ = try FlagValue.restartPolicy(r, flag: "restart") } catch {
                    throw ctx.err(v, key, "\"\(r)\": use no, always, on-failure[:N] or unless-stopped")
                }
                s.restart = r
            case "user": s.user = try ctx.string(v, key)
            case "working_dir": s.workingDir = try ctx.string(v, key)
            case "labels": for (k, val) in try ctx.dict(v, key) { s.labels[k] = val ?? "" }
            case "container_name":
                let n = try ctx.string(v, key)
                guard ContainerStore.validName(n) else { throw ctx.err(v, key, "\"\(n)\" is not a valid container name (letters, digits, _ . -)") }
                s.containerName = n
            case "hostname": s.hostname = try ctx.string(v, key)
            case "extra_hosts":
                for (h, ip) in try ctx.dict(v, key, separator: ":") {
                    guard let ip else { throw ctx.err(v, key, "\"\(h)\": give HOST:IP") }
                    do { s.extraHosts.append(try FlagValue.extraHost("\(h):\(ip)", flag: "extra_hosts")) } catch { throw ctx.err(v, key, "\(error)") }
                }
            case "tmpfs": s.tmpfs = try ctx.strings(v, key)
            case "cap_add": s.capAdd = try ctx.strings(v, key)
            case "cap_drop": s.capDrop = try ctx.strings(v, key)
            case "privileged": s.privileged = try ctx.bool(v, key)
            case "read_only": s.readOnly = try ctx.bool(v, key)
            case "init": s.initProcess = try ctx.bool(v, key)
            case "tty": s.tty = try ctx.bool(v, key)
            case "stdin_open": s.stdinOpen = try ctx.bool(v, key)
            case "stop_signal": s.stopSignal = try ctx.string(v, key)
            case "stop_grace_period": s.stopGracePeriod = Int((try ctx.duration(v, key) + 999_999_999) / 1_000_000_000)
            case "network_mode":
                let m = try ctx.string(v, key)
                guard ["bridge", "host", "none"].contains(m) else {
                    throw ctx.err(v, key, "\"\(m)\" is not supported yet (bridge, host or none)")
                }
                s.networkMode = m
            case "networks":
                var nets: [String: [String]] = [:]
                if case let .map(p, _) = v {
                    for (n, settings) in p {
                        nets[n] = []
                        if case let .map(fields, _) = settings {
                            for (k, f) in fields where !k.hasPrefix("x-") {
                                guard k == "aliases" else { throw ctx.err(f, key, "\(n): \"\(k)\" is not supported yet (aliases)") }
                                nets[n] = try ctx.strings(f, key)
                            }
                        } else if case .null = settings {} else {
                            throw ctx.err(settings, key, "\(n): expected a mapping or nothing, got \(settings.kind)")
                        }
                    }
                } else {
                    for n in try ctx.strings(v, key) { nets[n] = [] }
                }
                if !nets.isEmpty { s.networks = nets }
            case "mem_limit": s.memLimit = try flag(v, key, ctx) { try FlagValue.bytes($0, flag: key) }
            case "cpus": s.nanoCpus = try flag(v, key, ctx) { try FlagValue.nanoCPUs($0, flag: key) }
            case "pids_limit": s.pidsLimit = try flag(v, key, ctx) { try FlagValue.pidsLimit($0, flag: key) }
            case "shm_size": s.shmSize = try flag(v, key, ctx) { try FlagValue.shmSize($0, flag: key) }
            case "ulimits":
                guard case let .map(limits, _) = v else { throw ctx.err(v, key, "expected a mapping of limits, got \(v.kind)") }
                for (name, l) in limits {
                    let text: String
                    if case .map = l {
                        guard let soft = l["soft"], let hard = l["hard"] else { throw ctx.err(l, key, "\(name): give soft and hard") }
                        text = "\(name)=\(try ctx.string(soft, key)):\(try ctx.string(hard, key))"
                    } else { text = "\(name)=\(try ctx.string(l, key))" }
                    s.ulimits.append(try flag(l, key, ctx) { _ in try FlagValue.ulimit(text, flag: key) })
                }
            case "devices":
                s.devices = try ctx.strings(v, key)
                for d in s.devices where !FlagValue.isCDIDevice(d) {
                    _ = try flag(v, key, ctx) { _ in try FlagValue.device(d, flag: key) }
                }
            case "gpus":
                if case let .scalar(g, _) = v {
                    guard g == "all" else { throw ctx.err(v, key, "\"\(g)\": give all, or a list of {count, device_ids}") }
                    s.gpus = "all"
                } else {
                    guard case let .seq(items, _) = v, items.count == 1 else { throw ctx.err(v, key, "give all or one {count, device_ids} entry") }
                    s.gpus = try gpuRequest(items[0], key, ctx)
                }
            case "security_opt": s.securityOpt = try ctx.strings(v, key)
            case "group_add": s.groupAdd = try ctx.strings(v, key)
            case "dns_search": s.dnsSearch = try ctx.strings(v, key)
            case "dns_opt": s.dnsOpt = try ctx.strings(v, key)
            case "pull_policy":
                let p = try ctx.string(v, key)
                switch p {
                case "always", "missing", "never": s.pullPolicy = p
                case "if_not_present": s.pullPolicy = "missing"
                default: throw ctx.err(v, key, "\"\(p)\": use always, missing or never (build is not supported yet)")
                }
            case "platform": s.platform = try ctx.string(v, key)
            case "deploy": try deploy(v, &s, ctx)
            case "secrets": s.secrets = try fileReferences(v, key, ctx, base: "/run/secrets/")
            case "configs": s.configs = try fileReferences(v, key, ctx, base: "/")
            case "scale":
                let n = try ctx.int(v, key)
                guard n >= 0 else { throw ctx.err(v, key, "\(n) must be 0 or more") }
                s.replicas = n
            case "build": s.build = try build(v, ctx)
            case "profiles": s.profiles = try ctx.strings(v, key)
            case "dns": s.dns = try ctx.strings(v, key)
            default: break
            }
        }
        if s.image.isEmpty, s.build != nil { s.image = "\(project)-\(name)" }
        guard !s.image.isEmpty else {
            throw ComposeError.invalidFile("\(node.mark): service \"\(name)\" has neither an image nor a build section: give it `image:` or `build:`")
        }
        s.environment = envFromFiles
        for (k, v) in envOwn {
            if let v { s.environment[k] = v } else if let e = environment[k] { s.environment[k] = e } else { s.environment[k] = nil }
        }
        return s
    }

    /// `build`: a context path, or a mapping (context, dockerfile, dockerfile_inline, args,
    /// target, labels, cache_from, network).
    func build(_ n: YNode, _ ctx: Ctx) throws -> ServiceBuild {
        if case let .scalar(c, _) = n {
            let b = ServiceBuild(context: absolute(c))
            try checkContext(b, n, ctx)
            return b
        }
        guard case let .map(fields, _) = n else { throw ctx.err(n, "build", "expected a context path or a mapping, got \(n.kind)") }
        var b = ServiceBuild(context: workingDir)
        for (k, f) in fields where !k.hasPrefix("x-") {
            switch k {
            case "context":
                let c = try ctx.string(f, "build")
                guard !c.contains("://"), !c.hasPrefix("git@") else { throw ctx.err(f, "build", "context \(c): only a local directory is supported yet") }
                b.context = absolute(c)
            case "dockerfile": b.dockerfile = try ctx.string(f, "build")
            case "dockerfile_inline": b.dockerfileInline = try ctx.string(f, "build")
            case "args":
                for (ak, av) in try ctx.dict(f, "build") {
                    if let av { b.args[ak] = av } else if let e = environment[ak] { b.args[ak] = e }
                }
            case "target": b.target = try ctx.string(f, "build")
            case "labels": for (lk, lv) in try ctx.dict(f, "build") { b.labels[lk] = lv ?? "" }
            case "cache_from": b.cacheFrom = try ctx.strings(f, "build")
            case "network":
                let net = try ctx.string(f, "build")
                guard ["default", "host", "none"].contains(net) else { throw ctx.err(f, "build", "network \(net): use default, host or none") }
                b.network = net
            default:
                throw ctx.err(f, "build", "\"\(k)\" is not supported yet (context, dockerfile, dockerfile_inline, args, target, labels, cache_from, network)")
            }
        }
        try checkContext(b, n, ctx)
        return b
    }

    func checkContext(_ b: ServiceBuild, _ n: YNode, _ ctx: Ctx) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: b.context, isDirectory: &isDir), isDir.boolValue else {
            throw ctx.err(n, "build", "the build context \(b.context) is not a directory: create it or fix the path")
        }
        if b.dockerfileInline == nil {
            let path = b.dockerfile.hasPrefix("/") ? b.dockerfile : "\(b.context)/\(b.dockerfile)"
            guard FileManager.default.fileExists(atPath: path) else {
                throw ctx.err(n, "build", "no Dockerfile at \(path): add one, or name it with `dockerfile:`")
            }
        }
    }

    /// A value through one of `FlagValue`'s parsers, its error naming the file, service and key.
    func flag<T>(_ n: YNode, _ key: String, _ ctx: Ctx, _ parse: (String) throws -> T) throws -> T {
        let text: String
        if case let .scalar(t, _) = n { text = t } else { text = "" }
        do { return try parse(text) } catch let e as ComposeError { throw e } catch {
            throw ctx.err(n, key, "\(error)")
        }
    }

    /// One GPU request (`count` all or N, or `device_ids`) as `run --gpus` takes it.
    func gpuRequest(_ n: YNode, _ key: String, _ ctx: Ctx) throws -> String {
        guard case let .map(fields, _) = n else { throw ctx.err(n, key, "expected a mapping with count or device_ids") }
        var out = "all"
        for (k, f) in fields {
            switch k {
            case "count":
                let c = try ctx.string(f, key)
                guard c == "all" || Int(c).map({ $0 > 0 }) == true else { throw ctx.err(f, key, "count \"\(c)\": give all or a number") }
                out = c
            case "device_ids": out = "device=" + (try ctx.strings(f, key)).joined(separator: ",")
            case "capabilities":
                guard try ctx.strings(f, key).contains("gpu") else { throw ctx.err(f, key, "only the gpu capability is supported") }
            case "driver", "options": break
            default: throw ctx.err(f, key, "\"\(k)\" is not supported (count, device_ids, capabilities, driver)")
            }
        }
        return out
    }

    /// `deploy`: `replicas` (1), `resources.limits` (cpus, memory, pids) and GPU reservations.
    func deploy(_ n: YNode, _ s: inout ComposeService, _ ctx: Ctx) throws {
        guard case let .map(fields, _) = n else { throw ctx.err(n, "deploy", "expected a mapping, got \(n.kind)") }
        for (k, f) in fields {
            switch k {
            case "replicas":
                let n = try ctx.int(f, "deploy")
                guard n >= 0 else { throw ctx.err(f, "deploy", "replicas: \(n) must be 0 or more") }
                s.replicas = n
            case "resources":
                guard case let .map(rs, _) = f else { throw ctx.err(f, "deploy", "resources: expected a mapping") }
                for (rk, r) in rs {
                    guard case let .map(items, _) = r else { throw ctx.err(r, "deploy", "resources.\(rk): expected a mapping") }
                    for (ik, i) in items {
                        switch (rk, ik) {
                        case ("limits", "cpus"): s.nanoCpus = try flag(i, "deploy", ctx) { try FlagValue.nanoCPUs($0, flag: "deploy.resources.limits.cpus") }
                        case ("limits", "memory"): s.memLimit = try flag(i, "deploy", ctx) { try FlagValue.bytes($0, flag: "deploy.resources.limits.memory") }
                        case ("limits", "pids"): s.pidsLimit = try flag(i, "deploy", ctx) { try FlagValue.pidsLimit($0, flag: "deploy.resources.limits.pids") }
                        case ("reservations", "devices"):
                            guard case let .seq(list, _) = i, list.count == 1 else { throw ctx.err(i, "deploy", "reservations.devices: give one GPU request") }
                            s.gpus = try gpuRequest(list[0], "deploy", ctx)
                        default:
                            throw ctx.err(i, "deploy", "resources.\(rk).\(ik) is not supported yet (limits: cpus, memory, pids; reservations: devices)")
                        }
                    }
                }
            default: throw ctx.err(f, "deploy", "\"\(k)\" is not supported yet (replicas, resources)")
            }
        }
    }

    func port(_ n: YNode, _ ctx: Ctx) throws -> [ServicePort] {
        if case .map = n {
            guard let t = n["target"] else { throw ctx.err(n, "ports", "a long-form port needs `target`") }
            let target = try ctx.int(t, "ports")
            guard (1...65535).contains(target) else { throw ctx.err(t, "ports", "target \(target) is not a port number (1-65535)") }
            let proto = try n["protocol"].map { try ctx.string($0, "ports") } ?? "tcp"
            guard proto == "tcp" || proto == "udp" else { throw ctx.err(n, "ports", "protocol must be tcp or udp") }
            if let m = n["mode"], try ctx.string(m, "ports") != "ingress", try ctx.string(m, "ports") != "host" {
                throw ctx.err(m, "ports", "mode must be ingress or host")
            }
            return [ServicePort(hostIP: try n["host_ip"].map { try ctx.string($0, "ports") } ?? "",
                                published: try n["published"].map { try ctx.string($0, "ports") } ?? "", target: target, proto: proto)]
        }
        let text = try ctx.string(n, "ports")
        var spec = text, proto = "tcp"
        if let slash = spec.lastIndex(of: "/") { proto = String(spec[spec.index(after: slash)...]); spec = String(spec[..<slash]) }
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var ip = "", host = "", ctr = ""
        switch parts.count {
        case 1: ctr = parts[0]
        case 2: host = parts[0]; ctr = parts[1]
        case 3: ip = parts[0]; host = parts[1]; ctr = parts[2]
        default: throw ctx.err(n, "ports", "\"\(text)\": expected [IP:][HOST:]CONTAINER[/PROTOCOL]")
        }
        func range(_ s: String) -> ClosedRange<Int>? {
            let b = s.split(separator: "-", omittingEmptySubsequences: false)
            guard b.count <= 2, let lo = Int(b[0]), let hi = Int(b.last ?? b[0]), lo <= hi, (1...65535).contains(lo), hi <= 65535 else { return nil }
            return lo...hi
        }
        guard proto == "tcp" || proto == "udp" else { throw ctx.err(n, "ports", "\"\(text)\": protocol must be tcp or udp") }
        guard let c = range(ctr) else { throw ctx.err(n, "ports", "\"\(text)\": container port \"\(ctr)\" is not a port or range (1-65535)") }
        if !ip.isEmpty, !FlagValue.isIPAddress(ip) { throw ctx.err(n, "ports", "\"\(text)\": \"\(ip)\" is not an IP address") }
        var hosts: [String] = Array(repeating: "", count: c.count)
        if !host.isEmpty {
            guard let h = range(host) else { throw ctx.err(n, "ports", "\"\(text)\": host port \"\(host)\" is not a port or range") }
            if h.count == c.count { hosts = h.map(String.init) } else if h.count == 1 && c.count == 1 { hosts = [String(h.lowerBound)] } else {
                throw ctx.err(n, "ports", "\"\(text)\": the host and container ranges differ in size")
            }
        }
        return zip(c, hosts).map { ServicePort(hostIP: ip, published: $1, target: $0, proto: proto) }
    }

    func mount(_ n: YNode, _ ctx: Ctx, volumes: [ComposeVolume]) throws -> ServiceMount {
        func named(_ src: String, _ at: YNode) throws -> String {
            guard volumes.contains(where: { $0.key == src }) else {
                throw ctx.err(at, "volumes", "refers to undefined volume \"\(src)\": declare it under the top-level `volumes:`")
            }
            return src
        }
        func target(_ t: String, _ at: YNode) throws -> String {
            guard t.hasPrefix("/") else { throw ctx.err(at, "volumes", "the container path \"\(t)\" must be absolute") }
            return t
        }
        if case let .map(fields, _) = n {
            for (k, f) in fields where !["type", "source", "target", "read_only", "bind", "volume", "tmpfs", "consistency"].contains(k) {
                throw ctx.err(f, "volumes", "\"\(k)\" is not supported in a long-form volume (type, source, target, read_only)")
            }
            let typeText = try n["type"].map { try ctx.string($0, "volumes") } ?? "volume"
            guard let type = ServiceMount.Kind(rawValue: typeText) else {
                throw ctx.err(n, "volumes", "type \"\(typeText)\" is not supported (bind, volume or tmpfs)")
            }
            guard let t = n["target"] else { throw ctx.err(n, "volumes", "a long-form volume needs `target`") }
            var src = try n["source"].map { try ctx.string($0, "volumes") } ?? ""
            switch type {
            case .bind:
                guard !src.isEmpty else { throw ctx.err(n, "volumes", "a bind mount needs `source`") }
                src = absolute(src)
            case .volume: if !src.isEmpty { src = try named(src, n) }
            case .tmpfs: src = ""
            }
            return ServiceMount(type: type, source: src, target: try target(try ctx.string(t, "volumes"), t),
                                readOnly: try n["read_only"].map { try ctx.bool($0, "volumes") } ?? false)
        }
        let text = try ctx.string(n, "volumes")
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard (1...3).contains(parts.count), !parts.contains(where: \.isEmpty) else {
            throw ctx.err(n, "volumes", "\"\(text)\": expected [SOURCE:]TARGET[:MODE]")
        }
        if parts.count == 1 { return ServiceMount(type: .volume, source: "", target: try target(parts[0], n), readOnly: false) }
        var ro = false
        if parts.count == 3 {
            for o in parts[2].split(separator: ",") {
                switch o {
                case "ro": ro = true
                case "rw", "z", "Z", "cached", "delegated", "consistent", "nocopy": break
                default: throw ctx.err(n, "volumes", "\"\(text)\": unknown mode \"\(o)\" (ro or rw)")
                }
            }
        }
        let src = parts[0]
        if src.hasPrefix("/") || src.hasPrefix(".") || src.hasPrefix("~") {
            return ServiceMount(type: .bind, source: absolute(src), target: try target(parts[1], n), readOnly: ro)
        }
        return ServiceMount(type: .volume, source: try named(src, n), target: try target(parts[1], n), readOnly: ro)
    }

    func dependencies(_ n: YNode, _ ctx: Ctx) throws -> [Dependency] {
        switch n {
        case .seq: return try ctx.strings(n, "depends_on").map { Dependency(service: $0, condition: .serviceStarted, required: true) }
        case let .map(pairs, _):
            return try pairs.map { p in
                var d = Dependency(service: p.key, condition: .serviceStarted, required: true)
                if case let .map(fields, _) = p.value {
                    for (k, f) in fields {
                        switch k {
                        case "condition":
                            let c = try ctx.string(f, "depends_on")
                            guard let cond = DependencyCondition(rawValue: c) else {
                                throw ctx.err(f, "depends_on", "\(p.key): condition \"\(c)\" is not one of service_started, service_healthy, service_completed_successfully")
                            }
                            d.condition = cond
                        case "required": d.required = try ctx.bool(f, "depends_on")
                        case "restart": _ = try ctx.bool(f, "depends_on")
                        default: throw ctx.err(f, "depends_on", "\(p.key): unknown key \"\(k)\" (condition, required, restart)")
                        }
                    }
                } else if case .null = p.value {} else {
                    throw ctx.err(p.value, "depends_on", "\(p.key): expected a mapping with `condition`")
                }
                return d
            }
        case .null: return []
        default: throw ctx.err(n, "depends_on", "expected a list of services or a mapping, got \(n.kind)")
        }
    }

    func healthcheck(_ n: YNode, _ ctx: Ctx) throws -> ServiceHealthcheck {
        guard case let .map(fields, _) = n else { throw ctx.err(n, "healthcheck", "expected a mapping, got \(n.kind)") }
        var h = ServiceHealthcheck(disable: false)
        for (k, f) in fields {
            switch k {
            case "test":
                if case let .scalar(s, _) = f { h.test = ["CMD-SHELL", s] } else {
                    let t = try ctx.strings(f, "healthcheck")
                    guard let first = t.first, ["CMD", "CMD-SHELL", "NONE"].contains(first) else {
                        throw ctx.err(f, "healthcheck", "test: a list must start with CMD, CMD-SHELL or NONE")
                    }
                    h.test = t
                }
            case "interval": h.interval = try ctx.duration(f, "healthcheck")
            case "timeout": h.timeout = try ctx.duration(f, "healthcheck")
            case "start_period": h.startPeriod = try ctx.duration(f, "healthcheck")
            case "start_interval": h.startInterval = try ctx.duration(f, "healthcheck")
            case "retries": h.retries = try ctx.int(f, "healthcheck")
            case "disable": h.disable = try ctx.bool(f, "healthcheck")
            default: throw ctx.err(f, "healthcheck", "unknown key \"\(k)\" (test, interval, timeout, start_period, start_interval, retries, disable)")
            }
        }
        return h
    }
}

/// Start order: each service after the ones it depends on; a cycle is an error.
public enum DependencyOrder {
    /// `services` and everything they depend on (transitively, unless `withDependencies` is
    /// false), dependencies first, ties by name.
    public static func sorted(_ p: ComposeProject, services: [String], withDependencies: Bool = true) throws -> [ComposeService] {
        var out: [ComposeService] = []
        var state: [String: Int] = [:]  // 1 visiting, 2 done
        func visit(_ name: String, _ path: [String]) throws {
            if state[name] == 2 { return }
            if state[name] == 1 {
                let cycle = path.drop { $0 != name } + [name]
                throw ComposeError.invalidFile("dependency cycle between services: \(cycle.joined(separator: " -> ")); remove one depends_on")
            }
            guard let s = p.service(name) else { return }
            state[name] = 1
            for d in s.dependsOn.sorted(by: { $0.service < $1.service }) where withDependencies || services.contains(d.service) {
                try visit(d.service, path + [name])
            }
            state[name] = 2
            out.append(s)
        }
        for n in services.sorted() { try visit(n, []) }
        return out
    }
}
