import Foundation
import OCI
import Archive
import ImageStore
import Dockerfile
#if canImport(Glibc)
import Glibc
#endif

/// What to build and how.
public struct BuildOptions: Sendable {
    /// The context directory (nil when the build has no context, e.g. a Dockerfile on stdin).
    public var contextDir: String?
    public var dockerfileText: String
    public var dockerfileName: String
    public var buildArgs: [String: String] = [:]
    public var target: String?
    public var tags: [ImageReference] = []
    public var noCache = false
    /// Pull base images from their registry even when the store has them.
    public var pull = false
    public var labels: [String: String] = [:]
    /// `default`, `host` or `none` for every RUN (a RUN's own `--network` wins).
    public var network = "default"
    /// Secret id -> host file.
    public var secrets: [String: String] = [:]
    /// `--cache-from type=local,src=DIR` directories.
    public var cacheFrom: [String] = []
    /// `--cache-to type=local,dest=DIR` directories.
    public var cacheTo: [String] = []
    /// `--cache-from type=registry,ref=R` images.
    public var cacheFromRegistry: [ImageReference] = []
    /// `--cache-to type=registry,ref=R` images.
    public var cacheToRegistry: [ImageReference] = []
    public var platform: Platform = .host
    public var compression: Compression = .default
    /// Clamps layer mtimes and sets `created` (defaults to `$SOURCE_DATE_EPOCH`).
    public var sourceDateEpoch: Int64? = LayerWriter.environmentSourceDateEpoch()

    public init(contextDir: String?, dockerfileText: String, dockerfileName: String = "Dockerfile") {
        self.contextDir = contextDir
        self.dockerfileText = dockerfileText
        self.dockerfileName = dockerfileName
    }
}

/// Progress of a build, for the CLI's plain / json / quiet views.
public enum BuildEvent: Sendable {
    /// A step starts: `[stage] [n/total] TEXT`.
    case step(stage: String, number: Int, total: Int, text: String)
    /// The step was served from the cache.
    case cached(stage: String, number: Int)
    /// The step finished after `seconds`.
    case finished(stage: String, number: Int, seconds: Double)
    /// A line of RUN output.
    case output(stage: String, number: Int, line: String)
    /// Something worth saying that is not a step.
    case note(String)
}

/// What a build produced.
public struct BuildResult: Sendable {
    public var image: Image
    public var steps: Int
    public var cachedSteps: Int
    /// Cache keys of the steps of the stages that were built (for `--cache-to`).
    public var cacheKeys: [String]
    /// Steps that did work (not cached), by their text, in order.
    public var executed: [String]
}

/// The state of a stage after some instructions.
struct StageState: Sendable {
    var config: ImageConfig
    var layers: [LayerRef]
    var key: String
    var cmdSet = false
    var args: [String: String] = [:]
    var name: String
}

/// Turns a Dockerfile and a context into an image in the store, with a content-digest step cache.
public final class Builder: @unchecked Sendable {
    public let store: ImageStore
    public let cache: BuildCache
    public let options: BuildOptions
    let plan: Plan
    let progress: @Sendable (BuildEvent) -> Void
    /// The context's `.dockerignore` (empty when there is none).
    let ignore: DockerIgnore
    let lock = NSLock()
    var results: [Int: StageState] = [:]
    var keys: [String] = []
    var steps = 0
    var cachedSteps = 0
    var executed: [String] = []
    let lex: ShellLex
    let created: String
    var globalArgs: [String: String] = [:]
    /// The newest `created` of the cached records this build reused.
    var latestCached: String?
    /// Stands for the build's time in history entries until the build knows it.
    static let createdPlaceholder = "@dockbuild-created@"

    public init(store: ImageStore, options: BuildOptions, progress: @escaping @Sendable (BuildEvent) -> Void = { _ in }) throws {
        self.store = store
        self.options = options
        self.progress = progress
        cache = try BuildCache(store: store)
        let tree: SyntaxTree
        do { tree = try SyntaxTree.parse(options.dockerfileText, fileName: options.dockerfileName) } catch {
            throw BuildError.dockerfile(file: options.dockerfileName, line: 0, message: "\(error)")
        }
        plan = try Plan(tree: tree, fileName: options.dockerfileName)
        lex = ShellLex(escapeToken: plan.escape)
        do {
            ignore = try options.contextDir.flatMap { try DockerIgnore.load(contextDirectory: $0) } ?? DockerIgnore(patterns: [])
        } catch {
            throw BuildError.context("\(error)")
        }
        let date = options.sourceDateEpoch.map { Date(timeIntervalSince1970: TimeInterval($0)) } ?? Date()
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        f.timeZone = TimeZone(identifier: "UTC")
        created = f.string(from: date)
    }

    func err(_ line: Int, _ msg: String) -> BuildError { .dockerfile(file: plan.fileName, line: line, message: msg) }

    // MARK: plan

    /// Predefined platform args (BuildKit's automatic ARGs).
    var automaticArgs: [String: String] {
        let p = options.platform
        let host = Platform.host
        func s(_ p: Platform) -> String { "\(p.os)/\(p.architecture)" + (p.variant.map { "/\($0)" } ?? "") }
        return ["TARGETPLATFORM": s(p), "TARGETOS": p.os, "TARGETARCH": p.architecture, "TARGETVARIANT": p.variant ?? "",
                "BUILDPLATFORM": s(host), "BUILDOS": host.os, "BUILDARCH": host.architecture, "BUILDVARIANT": host.variant ?? ""]
    }

    func computeGlobalArgs() throws {
        var env = automaticArgs
        for ins in plan.globalArgs {
            for word in ins.args {
                let (name, value) = try argPair(word, env: env, line: ins.line)
                if let v = options.buildArgs[name] { env[name] = v } else if let value { env[name] = value } else { env[name] = nil }
                if env[name] == nil, options.buildArgs[name] == nil { env.removeValue(forKey: name) }
            }
        }
        globalArgs = env
    }

    func argPair(_ word: String, env: [String: String], line: Int) throws -> (String, String?) {
        if let eq = word.firstIndex(of: "=") {
            let name = String(word[..<eq])
            let raw = String(word[word.index(after: eq)...])
            return (name, try expand(raw, env, line))
        }
        return (word, nil)
    }

    func expand(_ word: String, _ env: [String: String], _ line: Int) throws -> String {
        do { return try lex.processWord(word, env: env) } catch {
            throw err(line, "cannot expand `\(word)`: \(error)")
        }
    }

    func baseName(_ stage: Stage) throws -> String {
        try expand(stage.baseRaw, globalArgs, stage.line)
    }

    /// Stages a stage needs first (its base, COPY --from, RUN --mount from=).
    func dependencies(_ stage: Stage) throws -> Set<Int> {
        var deps: Set<Int> = []
        func add(_ ref: String) {
            let r = (try? expand(ref, globalArgs, stage.line)) ?? ref
            if let s = plan.stage(named: r), s.index < stage.index { deps.insert(s.index) }
        }
        add(stage.baseRaw)
        for ins in stage.instructions {
            if let f = ins.flag("from"), ins.keyword == "copy" || ins.keyword == "add" { add(f) }
            if ins.keyword == "run" {
                for m in ins.flags["mount"] ?? [] {
                    for part in m.split(separator: ",") where part.lowercased().hasPrefix("from=") { add(String(part.dropFirst(5))) }
                }
            }
        }
        return deps
    }

    // MARK: build

    /// Builds the target stage (and the stages it needs, independent ones in parallel).
    @discardableResult
    public func build() throws -> BuildResult {
        for dir in options.cacheFrom { try cache.importLocal(from: dir) }
        for ref in options.cacheFromRegistry {
            do { try cache.importRegistry(from: ref) } catch {
                progress(.note("cache import from \(ref.familiarString) skipped: \(error)"))
            }
        }
        try computeGlobalArgs()
        let target: Stage
        if let t = options.target {
            guard let s = plan.stage(named: t) else {
                let names = plan.stages.compactMap(\.name)
                throw BuildError.invalidOption("--target \(t): no such stage; stages are \(names.isEmpty ? "unnamed (use an index)" : names.joined(separator: ", "))")
            }
            target = s
        } else {
            target = plan.stages[plan.stages.count - 1]
        }
        var deps: [Int: Set<Int>] = [:]
        var needed: Set<Int> = []
        var stack = [target.index]
        while let i = stack.popLast() {
            guard needed.insert(i).inserted else { continue }
            let d = try dependencies(plan.stages[i])
            deps[i] = d
            stack.append(contentsOf: d)
        }
        var done: Set<Int> = []
        while !needed.isSubset(of: done) {
            let ready = needed.subtracting(done).filter { deps[$0, default: []].isSubset(of: done) }.sorted()
            if ready.isEmpty { throw BuildError.invalidOption("stages depend on each other in a cycle") }
            let errors = ErrorBox()
            DispatchQueue.concurrentPerform(iterations: ready.count) { n in
                do {
                    let st = try self.buildStage(self.plan.stages[ready[n]])
                    self.lock.lock(); self.results[ready[n]] = st; self.lock.unlock()
                } catch { errors.set(error) }
            }
            if let e = errors.error { throw e }
            done.formUnion(ready)
        }
        guard var final = results[target.index] else { throw BuildError.system("target stage produced no result") }
        if !options.labels.isEmpty {
            var c = final.config.config ?? ContainerConfig()
            var l = c.labels ?? [:]
            for (k, v) in options.labels { l[k] = v }
            c.labels = l
            final.config.config = c
        }
        final.config.rootfs = RootFS(diffIDs: final.layers.map(\.diffID))
        // A build that ran nothing keeps the time of the cache it reused, so a fully cached
        // rebuild gives the same image ID (as BuildKit does).
        var when = created
        if options.sourceDateEpoch == nil, executed.isEmpty, let latestCached { when = latestCached }
        final.config.created = when
        final.config.history = final.config.history?.map { h in
            var h = h
            if h.created == Self.createdPlaceholder { h.created = when }
            return h
        }
        let image = try store.putImage(config: final.config, layers: final.layers.map(\.descriptor), tag: options.tags.first)
        for t in options.tags.dropFirst() { try store.tag(t, descriptor: image.descriptor) }
        for dir in options.cacheTo { try cache.exportLocal(keys: keys, to: dir) }
        for ref in options.cacheToRegistry { try cache.exportRegistry(keys: keys, to: ref) }
        return BuildResult(image: image, steps: steps, cachedSteps: cachedSteps, cacheKeys: keys, executed: executed)
    }

    func stageLabel(_ s: Stage) -> String { s.name ?? "stage-\(s.index)" }

    func stageResult(_ index: Int) -> StageState? {
        lock.lock(); defer { lock.unlock() }
        return results[index]
    }

    /// The state a FROM starts from: scratch, an earlier stage, or an image in the store.
    func baseState(_ name: String, for stage: Stage?, line: Int) throws -> StageState {
        if name.lowercased() == "scratch" {
            let cfg = ImageConfig(created: nil, platform: options.platform,
                                  config: ContainerConfig(env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]),
                                  rootfs: RootFS(diffIDs: []), history: [])
            return StageState(config: cfg, layers: [], key: "scratch", name: "scratch")
        }
        if let s = plan.stage(named: name), stage == nil || s.index < (stage?.index ?? 0), let r = stageResult(s.index) {
            return r
        }
        let image: Image
        if options.pull {
            image = try pullBase(name, line: line)
        } else if let local = try? store.image(name, platform: options.platform) {
            image = local
        } else {
            image = try pullBase(name, line: line)
        }
        let layers = zip(image.manifest.layers, image.config.rootfs.diffIDs).map { LayerRef(descriptor: $0.0, diffID: $0.1) }
        var cfg = image.config
        if cfg.history == nil { cfg.history = [] }
        return StageState(config: cfg, layers: layers, key: Digest.compute(Data(image.descriptor.digest.description.utf8)).encoded, name: name)
    }

    func buildStage(_ stage: Stage) throws -> StageState {
        let base = try baseName(stage)
        var st = try baseState(base, for: stage, line: stage.line)
        st.name = stageLabel(stage)
        st.args = [:]
        st.cmdSet = false
        var instructions = stage.instructions
        // ONBUILD triggers of the base run first, then are cleared.
        if let triggers = st.config.config?.onBuild, !triggers.isEmpty {
            var pre: [Instruction] = []
            for t in triggers {
                guard let tree = try? SyntaxTree.parse(t, fileName: "ONBUILD"), let node = tree.instructions.first else {
                    throw err(stage.line, "cannot parse the base image's ONBUILD trigger `\(t)`")
                }
                var ins = Instruction(node: node)
                ins.line = stage.line
                pre.append(ins)
            }
            st.config.config?.onBuild = nil
            instructions = pre + instructions
        }
        let total = instructions.count + 1
        progress(.step(stage: st.name, number: 1, total: total, text: "FROM \(base)"))
        for (i, ins) in instructions.enumerated() {
            let n = i + 2
            let text = ins.keyword.uppercased() + " " + ins.text
            progress(.step(stage: st.name, number: n, total: total, text: text))
            let t0 = Date()
            let wasCached = try dispatch(ins, &st, number: n)
            lock.lock()
            steps += 1
            if wasCached == true { cachedSteps += 1 }
            if wasCached == false { executed.append(text) }
            lock.unlock()
            if wasCached == true { progress(.cached(stage: st.name, number: n)) }
            progress(.finished(stage: st.name, number: n, seconds: Date().timeIntervalSince(t0)))
        }
        return st
    }

    /// The variables visible to expansion: ARGs in scope, then ENV (ENV wins).
    func expansionEnv(_ st: StageState) -> [String: String] {
        var env = st.args
        for e in st.config.config?.env ?? [] {
            if let eq = e.firstIndex(of: "=") { env[String(e[..<eq])] = String(e[e.index(after: eq)...]) }
        }
        return env
    }

    func history(_ st: inout StageState, _ createdBy: String, empty: Bool) {
        var h = st.config.history ?? []
        h.append(History(created: Self.createdPlaceholder, createdBy: createdBy, comment: "buildkit.dockerfile.v0", emptyLayer: empty ? true : nil))
        st.config.history = h
    }

    func record(_ key: String) { lock.lock(); keys.append(key); lock.unlock() }

    /// Applies one instruction. Returns nil for metadata-only steps, true when a layer step was a cache hit.
    func dispatch(_ ins: Instruction, _ st: inout StageState, number: Int) throws -> Bool? {
        let env = expansionEnv(st)
        var cc = st.config.config ?? ContainerConfig()
        defer { }
        switch ins.keyword {
        case "env":
            var pairs: [String] = []
            var i = 0
            var list = cc.env ?? []
            while i + 1 < ins.args.count {
                let k = ins.args[i]
                let v = try expand(ins.args[i + 1], expansionEnvWith(st, list), ins.line)
                if let idx = list.firstIndex(where: { $0.hasPrefix(k + "=") }) { list[idx] = k + "=" + v } else { list.append(k + "=" + v) }
                pairs.append(k + "=" + v)
                i += 3
            }
            cc.env = list
            st.config.config = cc
            history(&st, "ENV " + pairs.joined(separator: " "), empty: true)
        case "label":
            var labels = cc.labels ?? [:]
            var pairs: [String] = []
            var i = 0
            while i + 1 < ins.args.count {
                let k = try expand(ins.args[i], env, ins.line)
                let v = try expand(ins.args[i + 1], env, ins.line)
                labels[k] = v
                pairs.append("\(goQuoteString(k))=\(goQuoteString(v))")
                i += 3
            }
            cc.labels = labels
            st.config.config = cc
            history(&st, "LABEL " + pairs.joined(separator: " "), empty: true)
        case "maintainer":
            st.config.author = try expand(ins.args.first ?? "", env, ins.line)
            history(&st, "MAINTAINER " + (st.config.author ?? ""), empty: true)
        case "arg":
            var committed: [String] = []
            for word in ins.args {
                let (name, value) = try argPair(word, env: env, line: ins.line)
                let v = options.buildArgs[name] ?? value ?? globalArgs[name]
                st.args[name] = v ?? ""
                if v == nil { st.args.removeValue(forKey: name) }
                committed.append(v.map { "\(name)=\($0)" } ?? name)
            }
            history(&st, "ARG " + committed.joined(separator: " "), empty: true)
        case "expose":
            var ports = cc.exposedPorts ?? [:]
            for raw in ins.args {
                let p = try expand(raw, env, ins.line)
                for port in try expandPorts(p, line: ins.line) { ports[port] = EmptyObject() }
            }
            cc.exposedPorts = ports
            st.config.config = cc
            history(&st, "EXPOSE map[" + ports.keys.sorted().map { "\($0):{}" }.joined(separator: " ") + "]", empty: true)
        case "volume":
            var vols = cc.volumes ?? [:]
            var added: [String] = []
            for raw in ins.args {
                let v = try expand(raw, env, ins.line)
                if v.isEmpty { throw err(ins.line, "VOLUME specified can not be an empty string") }
                vols[v] = EmptyObject()
                added.append(v)
            }
            cc.volumes = vols
            st.config.config = cc
            history(&st, "VOLUME [" + added.joined(separator: " ") + "]", empty: true)
        case "user":
            cc.user = try expand(ins.args.first ?? "", env, ins.line)
            st.config.config = cc
            history(&st, "USER " + (cc.user ?? ""), empty: true)
        case "stopsignal":
            cc.stopSignal = try expand(ins.args.first ?? "", env, ins.line)
            st.config.config = cc
            history(&st, "STOPSIGNAL " + (cc.stopSignal ?? ""), empty: true)
        case "shell":
            guard ins.isJSON, !ins.args.isEmpty else { throw err(ins.line, "SHELL requires the arguments in JSON form, e.g. SHELL [\"/bin/bash\", \"-c\"]") }
            cc.shell = ins.args
            st.config.config = cc
            history(&st, "SHELL [" + ins.args.joined(separator: " ") + "]", empty: true)
        case "cmd":
            cc.cmd = ins.isJSON ? ins.args : shell(cc) + [ins.args.joined(separator: " ")]
            st.cmdSet = true
            st.config.config = cc
            history(&st, "CMD " + goList(cc.cmd ?? []), empty: true)
        case "entrypoint":
            cc.entrypoint = ins.isJSON ? ins.args : shell(cc) + [ins.args.joined(separator: " ")]
            if !st.cmdSet { cc.cmd = nil }
            st.config.config = cc
            history(&st, "ENTRYPOINT " + goList(cc.entrypoint ?? []), empty: true)
        case "onbuild":
            guard let t = ins.onbuildTrigger, !t.isEmpty else { throw err(ins.line, "ONBUILD needs an instruction") }
            let kw = t.split(separator: " ").first.map { $0.uppercased() } ?? ""
            if ["ONBUILD", "FROM", "MAINTAINER"].contains(kw) { throw err(ins.line, "\(kw) isn't allowed as an ONBUILD trigger") }
            cc.onBuild = (cc.onBuild ?? []) + [t]
            st.config.config = cc
            history(&st, "ONBUILD " + t, empty: true)
        case "healthcheck":
            cc.healthcheck = try healthcheck(ins)
            st.config.config = cc
            history(&st, "HEALTHCHECK " + goList(cc.healthcheck?.test ?? []), empty: true)
        case "workdir":
            var wd = try expand(ins.args.first ?? "", env, ins.line)
            if !wd.hasPrefix("/") { wd = (cc.workingDir ?? "/") + "/" + wd }
            wd = "/" + cleanPath(wd)
            cc.workingDir = wd
            st.config.config = cc
            return try workdirLayer(wd, ins, &st)
        case "run":
            return try runStep(ins, &st, number: number)
        case "copy", "add":
            return try copyStep(ins, &st)
        default:
            throw err(ins.line, "unknown instruction `\(ins.keyword.uppercased())`")
        }
        return nil
    }

    func expansionEnvWith(_ st: StageState, _ envList: [String]) -> [String: String] {
        var s = st
        var c = s.config.config ?? ContainerConfig()
        c.env = envList
        s.config.config = c
        return expansionEnv(s)
    }

    func shell(_ cc: ContainerConfig) -> [String] { cc.shell ?? ["/bin/sh", "-c"] }

    func expandPorts(_ p: String, line: Int) throws -> [String] {
        var proto = "tcp"
        var ports = p
        if let slash = p.firstIndex(of: "/") {
            proto = p[p.index(after: slash)...].lowercased()
            ports = String(p[..<slash])
        }
        guard ["tcp", "udp", "sctp"].contains(proto) else { throw err(line, "EXPOSE \(p): protocol must be tcp, udp or sctp") }
        let bounds = ports.split(separator: "-").map { Int($0) }
        guard !bounds.isEmpty, bounds.count <= 2, let lo = bounds[0], let hi = bounds.last ?? lo, lo <= hi, lo >= 0, hi <= 65535 else {
            throw err(line, "EXPOSE \(p): not a port or port range")
        }
        return (lo...hi).map { "\($0)/\(proto)" }
    }

    func healthcheck(_ ins: Instruction) throws -> HealthConfig {
        guard let kind = ins.args.first?.uppercased() else { throw err(ins.line, "HEALTHCHECK needs NONE or CMD") }
        if kind == "NONE" {
            if ins.args.count > 1 || !ins.flags.isEmpty { throw err(ins.line, "HEALTHCHECK NONE takes no arguments") }
            return HealthConfig(test: ["NONE"])
        }
        guard kind == "CMD", ins.args.count > 1 else { throw err(ins.line, "HEALTHCHECK takes NONE or CMD followed by a command") }
        let rest = Array(ins.args.dropFirst())
        var h = HealthConfig(test: ins.isJSON ? ["CMD"] + rest : ["CMD-SHELL", rest.joined(separator: " ")])
        func dur(_ name: String) throws -> Int64? {
            guard let v = ins.flag(name) else { return nil }
            guard let d = parseGoDuration(v) else { throw err(ins.line, "HEALTHCHECK --\(name)=\(v): not a duration like 30s or 1m30s") }
            return d
        }
        h.interval = try dur("interval")
        h.timeout = try dur("timeout")
        h.startPeriod = try dur("start-period")
        h.startInterval = try dur("start-interval")
        if let r = ins.flag("retries") {
            guard let n = Int(r), n >= 0 else { throw err(ins.line, "HEALTHCHECK --retries=\(r): not a number") }
            h.retries = n
        }
        return h
    }
}

/// Collects the first error of parallel work.
final class ErrorBox: @unchecked Sendable {
    let lock = NSLock()
    var error: (any Error)?
    func set(_ e: any Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
}

/// Go's `%q` of a []string: `["a" "b"]`.
func goList(_ l: [String]) -> String { "[" + l.map(goQuoteString).joined(separator: " ") + "]" }

func goQuoteString(_ s: String) -> String {
    var out = "\""
    for c in s.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default: out.unicodeScalars.append(c)
        }
    }
    return out + "\""
}

/// Go's time.ParseDuration for the units HEALTHCHECK uses, in nanoseconds.
func parseGoDuration(_ s: String) -> Int64? {
    if s == "0" { return 0 }
    var total: Double = 0
    var rest = Substring(s)
    let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 6e10), ("h", 3.6e12)]
    while !rest.isEmpty {
        let num = rest.prefix(while: { $0.isNumber || $0 == "." })
        guard !num.isEmpty, let v = Double(num) else { return nil }
        rest = rest.dropFirst(num.count)
        guard let u = units.first(where: { rest.hasPrefix($0.0) && !(($0.0 == "m") && rest.hasPrefix("ms")) }) else { return nil }
        rest = rest.dropFirst(u.0.count)
        total += v * u.1
    }
    return Int64(total)
}
