import Containers
import Foundation

/// Finds, reads, interpolates, merges and types compose files (the Compose Specification's
/// loading rules, for the keys dockbuild supports).
public struct ComposeLoader: Sendable {
    /// What the command line says about the project.
    public struct Options: Sendable {
        /// `-f` files in order; empty to look for compose.yaml & co.
        public var files: [String] = []
        /// `-p`.
        public var projectName: String?
        /// `--project-directory`: where relative paths and `.env` are looked up.
        public var projectDirectory: String?
        /// `--env-file` files, in place of `<project dir>/.env`.
        public var envFiles: [String] = []
        /// `--profile`s that enable services with `profiles:`.
        public var profiles: [String] = []
        /// The process environment (wins over `.env`).
        public var environment: [String: String] = ProcessInfo.processInfo.environment
        /// The files that included this one (`include`), to refuse a cycle.
        public var includeChain: [String] = []
        /// The text of `-f -` (the caller reads its standard input).
        public var stdinText: String?
        /// Where file discovery starts.
        public var currentDirectory: String = FileManager.default.currentDirectoryPath
        public init() {}
    }

    /// The file names looked for, in order, in the current directory and then its parents.
    public static let defaultFileNames = ["compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"]

    public var options: Options
    /// Variables used unset while loading (each became "").
    public private(set) var warnings: [String] = []

    public init(_ options: Options) { self.options = options }

    /// Loads the project.
    public mutating func load() throws -> ComposeProject {
        let files = try resolveFiles()
        // (a file read from stdin lives in the current directory, as with docker compose)
        let workingDir = options.projectDirectory.map(absolute)
            ?? (files[0] == "-" ? absolute(options.currentDirectory) : (files[0] as NSString).deletingLastPathComponent)
        // the interpolation environment: .env (or --env-file) under the process's own
        var env: [String: String] = [:]
        let envFiles = options.envFiles.isEmpty ? ["\(workingDir)/.env"] : options.envFiles.map(absolute)
        for f in envFiles {
            guard let text = try? String(contentsOfFile: f, encoding: .utf8) else {
                if options.envFiles.isEmpty { continue }
                throw ComposeError.invalidArgument("--env-file \(f): cannot read the file")
            }
            for (k, v) in try DotEnv.parse(text, file: f, environment: options.environment) { env[k] = v }
        }
        env.merge(options.environment) { $1 }
        var interp = Interpolator(environment: env)
        var merged: YNode?
        for f in files {
            guard let text = f == "-" ? options.stdinText : try? String(contentsOfFile: f, encoding: .utf8) else {
                throw ComposeError.noComposeFile("\(f): cannot read the compose file")
            }
            var tree = try YNode.parse(text, file: f)
            guard case .map = tree else {
                throw ComposeError.invalidFile("\(f): the top level must be a mapping with `services:`, not \(tree.kind)")
            }
            try checkTopLevel(tree)
            tree = try tree.mapScalars { try interp.interpolate($0, at: $1) }
            merged = merged.map { Merge.top($0, tree) } ?? tree
        }
        guard var root = merged else { throw ComposeError.noComposeFile("no compose file") }
        // extends: bases from this project's files or others (read and interpolated alike)
        if case .map(var top, let tm) = root, let i = top.firstIndex(where: { $0.key == "services" }) {
            top[i].value = try Extends.resolve(top[i].value, baseDir: workingDir) { path in
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                    throw ComposeError.invalidFile("\(path): cannot read the file that extends names")
                }
                return try YNode.parse(text, file: path).mapScalars { try interp.interpolate($0, at: $1) }
            }
            root = .map(top, tm)
        }
        warnings = interp.warnings
        let name = try projectName(root, workingDir: workingDir, env: env)
        var typer = Typer(project: name, workingDir: workingDir, environment: env)
        var volumes = try typer.volumes(root["volumes"])
        var networks = try typer.networks(root["networks"])
        var secrets = try typer.fileObjects(root["secrets"], "secrets")
        var configs = try typer.fileObjects(root["configs"], "configs")
        var services: [ComposeService] = []
        // include: each file a project of its own (its directory, its .env), merged in
        if let inc = root["include"] {
            for sub in try includes(inc, projectName: name, baseDir: workingDir) {
                for s in sub.services {
                    guard !services.contains(where: { $0.name == s.name }), root["services"]?[s.name] == nil else {
                        throw ComposeError.invalidFile("service \"\(s.name)\" is defined by \(sub.files.joined(separator: ", ")) and again by this project: rename one")
                    }
                    services.append(s)
                }
                func add<T: Equatable>(_ mine: inout [T], _ theirs: [T], key: (T) -> String, what: String) throws {
                    for t in theirs {
                        if let m = mine.first(where: { key($0) == key(t) }) {
                            guard m == t else { throw ComposeError.invalidFile("\(what) \"\(key(t))\" is defined by \(sub.files.joined(separator: ", ")) and, differently, by this project: rename one") }
                            continue
                        }
                        mine.append(t)
                    }
                }
                try add(&volumes, sub.volumes, key: \.key, what: "volume")
                try add(&networks, sub.networks.filter { $0.key != "default" }, key: \.key, what: "network")
                try add(&secrets, sub.secrets, key: \.key, what: "secret")
                try add(&configs, sub.configs, key: \.key, what: "config")
            }
        }
        guard let servicesNode = root["services"] ?? (root["include"] != nil ? .map([], root.mark) : nil) else {
            throw ComposeError.invalidFile("\(files.joined(separator: ", ")): no `services:`; a compose file defines at least one service")
        }
        guard case let .map(pairs, _) = servicesNode else {
            throw ComposeError.invalidFile("\(servicesNode.mark): `services` must be a mapping of service names, not \(servicesNode.kind)")
        }
        for (key, node) in pairs {
            services.append(try typer.service(key, node, volumes: volumes))
        }
        // profiles: services with profiles run only when one of theirs is enabled
        let enabled = Set(options.profiles + (env["COMPOSE_PROFILES"].map { $0.split(separator: ",").map(String.init) } ?? []))
        services = services.filter { $0.profiles.isEmpty || !enabled.isDisjoint(with: $0.profiles) || enabled.contains("*") }
        services.sort { $0.name < $1.name }
        let names = Set(services.map(\.name))
        for s in services {
            for d in s.dependsOn where !names.contains(d.service) {
                if d.required {
                    throw ComposeError.invalidFile("service \"\(s.name)\" depends on undefined service \"\(d.service)\": define it or remove it from depends_on")
                }
            }
        }
        for i in services.indices where services[i].networkMode != nil {
            guard services[i].networks == ["default": []] else {
                throw ComposeError.invalidFile("service \"\(services[i].name)\": `network_mode` and `networks` cannot be combined: keep one")
            }
            services[i].networks = [:]
        }
        for s in services {
            if s.replicas > 1, let n = s.containerName {
                throw ComposeError.invalidFile("service \"\(s.name)\": container_name \"\(n)\" is one name for \(s.replicas) replicas: remove container_name, or use one replica")
            }
            for r in s.secrets where !secrets.contains(where: { $0.key == r.source }) {
                throw ComposeError.invalidFile("service \"\(s.name)\" refers to undefined secret \(r.source): define it under the top-level `secrets:`")
            }
            for r in s.configs where !configs.contains(where: { $0.key == r.source }) {
                throw ComposeError.invalidFile("service \"\(s.name)\" refers to undefined config \(r.source): define it under the top-level `configs:`")
            }
            for n in s.networks.keys.sorted() where !networks.contains(where: { $0.key == n }) {
                throw ComposeError.invalidFile("service \"\(s.name)\" refers to undefined network \(n): define it under the top-level `networks:`")
            }
        }
        let project = ComposeProject(name: name, workingDir: workingDir, files: files, services: services, volumes: volumes,
                                     networks: networks, secrets: secrets, configs: configs)
        _ = try DependencyOrder.sorted(project, services: services.map(\.name))
        return project
    }

    // MARK: - include

    /// The projects `include` names (a path, or `{path, project_directory, env_file}` each),
    /// loaded as this project (`projectName`), each from its own directory.
    func includes(_ node: YNode, projectName: String, baseDir: String) throws -> [ComposeProject] {
        guard case let .seq(items, _) = node else {
            throw ComposeError.invalidFile("\(node.mark): `include` must be a list of files, not \(node.kind)")
        }
        func strings(_ n: YNode, _ what: String) throws -> [String] {
            switch n {
            case let .scalar(s, _): return [s]
            case let .seq(list, _):
                return try list.map { guard case let .scalar(s, _) = $0 else { throw ComposeError.invalidFile("\($0.mark): include \(what): expected a string") }; return s }
            default: throw ComposeError.invalidFile("\(n.mark): include \(what): expected a string or a list")
            }
        }
        func abs(_ p: String) -> String { ((p.hasPrefix("/") ? p : "\(baseDir)/\(p)") as NSString).standardizingPath }
        return try items.map { it in
            var o = options
            o.projectName = projectName
            o.stdinText = nil
            o.envFiles = []
            o.projectDirectory = nil
            switch it {
            case .scalar: o.files = try strings(it, "path").map(abs)
            case let .map(fields, _):
                for (k, f) in fields {
                    switch k {
                    case "path": o.files = try strings(f, k).map(abs)
                    case "project_directory": o.projectDirectory = abs(try strings(f, k).first ?? ".")
                    case "env_file": o.envFiles = try strings(f, k).map(abs)
                    default: throw ComposeError.invalidFile("\(f.mark): include: unknown key \"\(k)\" (path, project_directory, env_file)")
                    }
                }
            default: throw ComposeError.invalidFile("\(it.mark): include: expected a path or a mapping")
            }
            guard let first = o.files.first else { throw ComposeError.invalidFile("\(it.mark): include: give the path of a compose file") }
            guard !o.includeChain.contains(first) else {
                throw ComposeError.invalidFile("\(it.mark): include: \(first) includes itself (\((o.includeChain + [first]).joined(separator: " -> ")))")
            }
            for f in o.files where !FileManager.default.fileExists(atPath: f) {
                throw ComposeError.invalidFile("\(it.mark): include: \(f) does not exist")
            }
            o.includeChain.append(first)
            var sub = ComposeLoader(o)
            return try sub.load()
        }
    }

    // MARK: - files and names

    func absolute(_ p: String) -> String {
        let path = p.hasPrefix("/") ? p : "\(options.currentDirectory)/\(p)"
        return (path as NSString).standardizingPath
    }

    /// `-f` files (`-`: `stdinText`), `$COMPOSE_FILE`, else the first default name found
    /// in the current directory or a parent, with its `.override` file when there is one.
    func resolveFiles() throws -> [String] {
        var given = options.files
        if given.isEmpty, let env = options.environment["COMPOSE_FILE"], !env.isEmpty {
            given = env.split(separator: ":").map(String.init)
        }
        if !given.isEmpty {
            return try given.map { f in
                if f == "-" {
                    guard options.stdinText != nil else { throw ComposeError.invalidArgument("-f -: no compose file was read from stdin") }
                    return f
                }
                let p = absolute(f)
                guard FileManager.default.fileExists(atPath: p) else {
                    throw ComposeError.noComposeFile("-f \(f): no such file (\(p))")
                }
                return p
            }
        }
        var dir = absolute(options.projectDirectory ?? options.currentDirectory)
        while true {
            for n in Self.defaultFileNames where FileManager.default.fileExists(atPath: "\(dir)/\(n)") {
                let base = (n as NSString).deletingPathExtension
                let override = ["yaml", "yml"].map { "\(dir)/\(base).override.\($0)" }.first { FileManager.default.fileExists(atPath: $0) }
                return ["\(dir)/\(n)"] + (override.map { [$0] } ?? [])
            }
            if dir == "/" { break }
            dir = (dir as NSString).deletingLastPathComponent
        }
        throw ComposeError.noComposeFile("no configuration file provided: not found (looked for \(Self.defaultFileNames.joined(separator: ", ")) in \(absolute(options.currentDirectory)) and its parents); give one with -f")
    }

    /// docker compose's rule: lower case letters, digits, `-` and `_`, starting with a letter or digit.
    public static func normalizeProjectName(_ s: String) -> String {
        let lower = s.lowercased().filter { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" || $0 == "_" }
        return String(lower.drop { $0 == "-" || $0 == "_" })
    }

    private func projectName(_ root: YNode, workingDir: String, env: [String: String]) throws -> String {
        if let p = options.projectName {
            guard !p.isEmpty, Self.normalizeProjectName(p) == p else {
                throw ComposeError.invalidArgument("-p \"\(p)\": a project name must contain only lower case letters, digits, dashes and underscores, and start with a letter or digit")
            }
            return p
        }
        if let p = options.environment["COMPOSE_PROJECT_NAME"], !p.isEmpty { return Self.normalizeProjectName(p) }
        if case let .scalar(p, mark)? = root["name"] {
            guard Self.normalizeProjectName(p) == p, !p.isEmpty else {
                throw ComposeError.invalidFile("\(mark): key \"name\": \"\(p)\" is not a valid project name (lower case letters, digits, - and _, starting with a letter or digit)")
            }
            return p
        }
        let n = Self.normalizeProjectName((workingDir as NSString).lastPathComponent)
        guard !n.isEmpty else {
            throw ComposeError.invalidArgument("the project directory \(workingDir) gives no valid project name: give one with -p")
        }
        return n
    }

    private func checkTopLevel(_ tree: YNode) throws {
        guard case let .map(pairs, _) = tree else { return }
        let known: Set = ["name", "version", "services", "volumes", "networks", "secrets", "configs", "include"]
        let unsupported: Set = ["models"]
        for (k, v) in pairs where !k.hasPrefix("x-") {
            if unsupported.contains(k) {
                throw ComposeError.invalidFile("\(v.mark): top-level key \"\(k)\" is not supported yet by dockbuild compose; remove it")
            }
            guard known.contains(k) else {
                throw ComposeError.invalidFile("\(v.mark): unknown top-level key \"\(k)\" (expected name, services, volumes, networks, or x-* extensions)")
            }
        }
    }
}

/// Merging several compose files: later files override earlier ones, with the Compose
/// Specification's rules per key (mappings merge, `ports`/`expose`/`env_file`... append,
/// `volumes` merge by target, `environment`/`labels`/`depends_on`/`extra_hosts` merge by name).
enum Merge {
    static func top(_ a: YNode, _ b: YNode) -> YNode {
        mapMerge(a, b) { key, x, y in
            switch key {
            case "services": return mapMerge(x, y) { _, s, t in service(s, t) }
            case "volumes", "networks", "secrets", "configs": return mapMerge(x, y) { _, _, t in t }
            default: return y
            }
        }
    }

    static func service(_ a: YNode, _ b: YNode) -> YNode {
        mapMerge(a, b) { key, x, y in
            switch key {
            case "environment", "labels", "extra_hosts":
                return mapMerge(asMap(x, separator: key == "extra_hosts" ? ":" : "="), asMap(y, separator: key == "extra_hosts" ? ":" : "=")) { _, _, v in v }
            case "depends_on": return mapMerge(dependsMap(x), dependsMap(y)) { _, _, v in v }
            case "healthcheck": return mapMerge(x, y) { _, _, v in v }
            case "ports", "expose", "env_file", "dns", "tmpfs", "cap_add", "cap_drop", "profiles":
                guard case let .seq(i, m) = x, case let .seq(j, _) = y else { return y }
                return .seq(i + j, m)
            case "volumes":
                guard case let .seq(i, m) = x, case let .seq(j, _) = y else { return y }
                let targets = Set(j.compactMap(volumeTarget))
                return .seq(i.filter { volumeTarget($0).map { !targets.contains($0) } ?? true } + j, m)
            default: return y
            }
        }
    }

    /// Merges two mappings key by key (`f` for keys in both); anything else: `b` wins.
    static func mapMerge(_ a: YNode, _ b: YNode, _ f: (String, YNode, YNode) -> YNode) -> YNode {
        guard case .map(var pa, let m) = a, case let .map(pb, _) = b else { return b }
        for (k, v) in pb {
            if let i = pa.firstIndex(where: { $0.key == k }) { pa[i].value = f(k, pa[i].value, v) } else { pa.append((k, v)) }
        }
        return .map(pa, m)
    }

    /// `["K=V", "K"]` as a mapping (K: V, K: null).
    static func asMap(_ n: YNode, separator: Character) -> YNode {
        guard case let .seq(items, m) = n else { return n }
        var pairs: [(key: String, value: YNode)] = []
        for it in items {
            guard case let .scalar(s, im) = it else { continue }
            if let i = s.firstIndex(of: separator) ?? (separator == ":" ? s.firstIndex(of: "=") : nil) {
                pairs.append((String(s[..<i]), .scalar(String(s[s.index(after: i)...]), im)))
            } else {
                pairs.append((s, .null(im)))
            }
        }
        return .map(pairs, m)
    }

    static func dependsMap(_ n: YNode) -> YNode {
        guard case let .seq(items, m) = n else { return n }
        return .map(items.compactMap { it in
            guard case let .scalar(s, im) = it else { return nil }
            return (s, .map([("condition", .scalar("service_started", im))], im))
        }, m)
    }

    static func volumeTarget(_ n: YNode) -> String? {
        switch n {
        case let .scalar(s, _):
            let parts = s.split(separator: ":", omittingEmptySubsequences: false)
            return parts.count >= 2 ? String(parts[1]) : String(parts[0])
        case .map:
            if case let .scalar(t, _)? = n["target"] { return t }
            return nil
        default: return nil
        }
    }
}

extension ComposeLoader {
    /// Splits a command string as compose does for `command:`/`entrypoint:` (quotes and
    /// backslashes as a shell reads them; no shell runs); nil for an unterminated quote.
    public static func splitCommand(_ s: String) -> [String]? { Typer.split(s) }
}
