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
    /// Named contexts (`--build-context NAME=VALUE`): a directory, `docker-image://REF` or
    /// `oci-layout://PATH[:TAG|@DIGEST]`, used where a FROM, `COPY --from` or mount names NAME.
    public var buildContexts: [String: String] = [:]
    /// SSH agent sockets RUN may use (`--ssh ID=SOCKET`; `default` from `$SSH_AUTH_SOCK`):
    /// `RUN --mount=type=ssh[,id=ID]` gets the socket and `SSH_AUTH_SOCK` pointing at it.
    public var ssh: [String: String] = [:]
    /// `--cache-from type=local,src=DIR` directories.
    public var cacheFrom: [String] = []
    /// `--cache-to type=local,dest=DIR` directories.
    public var cacheTo: [String] = []
    /// `--cache-from type=registry,ref=R` images.
    public var cacheFromRegistry: [ImageReference] = []
    /// `--cache-to type=registry,ref=R` images.
    public var cacheToRegistry: [ImageReference] = []
    /// `--cache-to type=inline`: the cache records ride in the image's own config, so pushing the
    /// image pushes its cache and `--cache-from IMAGE` reuses it.
    public var cacheInline = false
    /// `mode=max` exports every step of every stage built; `min` (the default, as BuildKit)
    /// only the steps whose layers are in the result.
    public var cacheModeMax = false
    /// Leave `cacheTo`/`cacheToRegistry` to the caller (a multi-platform build exports every
    /// platform's records together, once, instead of each platform overwriting the others).
    var deferCacheExport = false
    public var platform: Platform = .host
    public var compression: Compression = .default
    /// Clamps layer mtimes and sets `created` (defaults to `$SOURCE_DATE_EPOCH`).
    public var sourceDateEpoch: Int64? = LayerWriter.environmentSourceDateEpoch()
    /// Write each layer's blob in line, before the next step starts, instead of on a background
    /// thread while the next steps run (`LayerExports`; the bytes are the same either way).
    var layersInLine = false

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
    /// The keys `--cache-to` exports for this build: all with `mode=max`, else those whose
    /// layers are in the result.
    public var exportKeys: [String] = []
    /// Steps that did work (not cached), by their text, in order.
    public var executed: [String]
}

/// The state of a stage after some instructions.
struct StageState: Sendable {
    var config: ImageConfig
    /// Bottom first; the top ones may still be being written (`LayerExports`).
    var layers: [StageLayer]
    var key: String
    var cmdSet = false
    var args: [String: String] = [:]
    /// Every ARG declared in this stage, in order (a key may repeat), for RUN's `|N k=v` history.
    var argOrder: [String] = []
    var name: String
}

/// Turns a Dockerfile and a context into an image in the store, with a content-digest step cache.
public final class Builder: @unchecked Sendable {
    public let store: ImageStore
    public let cache: BuildCache
    public let options: BuildOptions
    /// The parsed Dockerfile (typed instructions, stages).
    let dockerfile: Dockerfile
    /// The stages the target needs, FROM lines resolved with the global ARGs.
    let plan: BuildPlan
    let buildArgs: BuildArgs
    let progress: @Sendable (BuildEvent) -> Void
    /// The context's `.dockerignore` (empty when there is none).
    let ignore: DockerIgnore
    /// Remembered content digests of the context's files (nil without a context).
    let contextDigests: ContextDigests?
    let lock = NSLock()
    var results: [Int: StageState] = [:]
    /// The layer blobs being written while the build goes on.
    let layerExports: LayerExports
    /// The background context hashing (`startContextPrefetchOnce`), under `lock`.
    private var prefetchStarted = false
    private var prefetchJob: ContextPrefetch?
    /// Named build contexts already turned into states (each made once per build).
    var namedStates: [String: StageState] = [:]
    var keys: [String] = []
    var steps = 0
    var cachedSteps = 0
    var executed: [String] = []
    let lex: ShellLex
    let created: String
    /// The newest `created` of the cached records this build reused.
    var latestCached: String?
    /// Stands for the build's time in history entries until the build knows it.
    static let createdPlaceholder = "@dockbuild-created@"

    public init(store: ImageStore, options: BuildOptions, progress: @escaping @Sendable (BuildEvent) -> Void = { _ in }) throws {
        self.store = store
        self.options = options
        self.progress = progress
        layerExports = LayerExports(inline: options.layersInLine)
        cache = try BuildCache(store: store)
        do {
            dockerfile = try Dockerfile.parse(options.dockerfileText, fileName: options.dockerfileName)
        } catch let e as DockerfileError {
            throw BuildError(e)
        }
        func platform(_ p: Platform) -> String { "\(p.os)/\(p.architecture)" + (p.variant.map { "/\($0)" } ?? "") }
        buildArgs = BuildArgs(options.buildArgs, buildPlatform: platform(.host), targetPlatform: platform(options.platform))
        do {
            plan = try dockerfile.plan(target: options.target, buildArgs: buildArgs)
        } catch let e as DockerfileError {
            throw BuildError(e)
        }
        lex = dockerfile.shellLex
        do {
            // `NAME.dockerignore` beside the Dockerfile wins over the context's `.dockerignore`; both
            // are read inside the context when they lie in it, so a symlink to a host file is not
            // followed out.
            func readIgnore(_ path: String) throws -> DockerIgnore? {
                let data: Data?
                if let ctx = options.contextDir, path.hasPrefix(ctx + "/") {
                    data = try ContextFile.read(String(path.dropFirst(ctx.count + 1)), in: ctx)
                } else {
                    data = FileManager.default.contents(atPath: path)
                }
                return try data.map { try DockerIgnore(contents: String(decoding: $0, as: UTF8.self), fileName: path) }
            }
            let named = options.dockerfileName == "<stdin>" ? nil : options.dockerfileName + ".dockerignore"
            ignore = try options.contextDir.flatMap { ctx in
                try named.flatMap(readIgnore) ?? readIgnore(ctx + "/.dockerignore")
            } ?? DockerIgnore(patterns: [])
        } catch {
            throw BuildError.context("\(error)")
        }
        let indexDir = cache.dir + "/context-index"
        contextDigests = try options.contextDir.map { ctx in
            let d = indexDir
            try FS.mkdirs(d)
            return ContextDigests(contextDir: ctx, dir: d)
        }
        let date = options.sourceDateEpoch.map { Date(timeIntervalSince1970: TimeInterval($0)) } ?? Date()
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        f.timeZone = TimeZone(identifier: "UTC")
        created = f.string(from: date)
    }

    func err(_ line: Int, _ msg: String) -> BuildError { .dockerfile(file: dockerfile.fileName, line: line, message: msg) }

    func expand(_ word: String, _ env: [String: String], _ line: Int) throws -> String {
        do { return try lex.processWord(word, env: env) } catch {
            throw err(line, "cannot expand `\(word)`: \(error)")
        }
    }

    /// The stage a `--from` or `from=` names: a stage name or index.
    func stageIndex(_ ref: String) -> Int? {
        if let s = dockerfile.stage(named: ref) { return s.index }
        if let i = Int(ref), i >= 0, i < dockerfile.stages.count { return i }
        return nil
    }

    // MARK: build

    /// Builds the target stage (and the stages it needs, independent ones in parallel).
    /// First cleans what killed builds left in the store; afterwards removes this build's
    /// temporary files. A build stopped by SIGINT/SIGTERM (see `BuildInterrupts`) fails with
    /// an error that says so, its RUN containers killed and their mounts gone.
    @discardableResult
    public func build() throws -> BuildResult {
        BuildSession.reapDead(store: store.root)
        defer { cache.endSession(); contextDigests?.save() }
        defer { stopContextPrefetch() }
        // (runs first: no layer write may still read the session's directories when they go)
        defer { layerExports.drain(store.snapshotter) }
        do {
            try BuildInterrupts.check()
            return try buildStages()
        } catch {
            let sig = BuildInterrupts.received
            if sig != 0 {
                let name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal \(sig)"
                throw BuildError.system("the build was stopped by \(name); its running step was killed and its temporary files removed")
            }
            throw error
        }
    }

    /// At the first step that misses the cache (a fully cached build never starts it), starts
    /// hashing in the background the context paths that the needed stages' COPY and ADD name (up
    /// to their first wildcard; words with variables are left to their step), so a cold build
    /// reads its context while its steps run.
    func startContextPrefetchOnce() {
        lock.lock()
        defer { lock.unlock() }
        guard !prefetchStarted else { return }
        prefetchStarted = true
        prefetchJob = makeContextPrefetch()
    }

    private func stopContextPrefetch() {
        lock.lock()
        let job = prefetchJob
        prefetchJob = nil
        prefetchStarted = true
        lock.unlock()
        job?.stop()
    }

    private func makeContextPrefetch() -> ContextPrefetch? {
        guard let digests = contextDigests, let ctx = options.contextDir else { return nil }
        var roots: [String] = []
        for r in plan.stages {
            for ins in r.stage.instructions {
                let words: [String]
                switch ins {
                case .copy(let c) where c.from == nil: words = c.sources
                case .add(let a): words = a.sources
                default: continue
                }
                for w in words where !w.contains("$") && !w.contains("://") && !w.hasPrefix("git@") {
                    let fixed = cleanPath(w).split(separator: "/").prefix { !$0.contains(where: { "*?[\\".contains($0) }) }
                    roots.append(fixed.joined(separator: "/"))
                }
            }
        }
        // A root under another one is walked with it.
        let kept = roots.enumerated().filter { i, r in
            !roots.enumerated().contains { j, q in j != i && (q == r ? j < i : (q.isEmpty || r.hasPrefix(q + "/"))) }
        }.map(\.element)
        guard !kept.isEmpty else { return nil }
        return digests.prefetch(contextDir: ctx, roots: kept, ignore: ignore)
    }

    private func buildStages() throws -> BuildResult {
        for dir in options.cacheFrom { try cache.importLocal(from: dir) }
        for ref in options.cacheFromRegistry {
            do { try cache.importRegistry(from: ref) } catch {
                progress(.note("cache import from \(ref.familiarString) skipped: \(error)"))
            }
        }
        var deps: [Int: Set<Int>] = [:]
        for r in plan.stages { deps[r.stage.index] = Set(r.dependencies) }
        let needed = Set(deps.keys)
        let resolved = Dictionary(uniqueKeysWithValues: plan.stages.map { ($0.stage.index, $0) })
        var done: Set<Int> = []
        while !needed.isSubset(of: done) {
            let ready = needed.subtracting(done).filter { deps[$0, default: []].isSubset(of: done) }.sorted()
            if ready.isEmpty { throw BuildError.invalidOption("stages depend on each other in a cycle") }
            let errors = ErrorBox()
            DispatchQueue.concurrentPerform(iterations: ready.count) { n in
                do {
                    guard let stage = resolved[ready[n]] else { throw BuildError.system("stage \(ready[n]) is not planned") }
                    let st = try self.buildStage(stage)
                    self.lock.lock(); self.results[ready[n]] = st; self.lock.unlock()
                } catch { errors.set(error) }
            }
            if let e = errors.error { throw e }
            done.formUnion(ready)
        }
        guard let target = results[plan.target] else { throw BuildError.system("target stage produced no result") }
        // Every layer blob of the build is in the store (and its directory a snapshot) before
        // anything names one.
        try layerExports.finish(store.snapshotter)
        let finalLayers = try target.layers.map { try $0.stored() }
        var final = target
        if !options.labels.isEmpty {
            var c = final.config.config ?? ContainerConfig()
            var l = c.labels ?? [:]
            for (k, v) in options.labels { l[k] = v }
            c.labels = l
            final.config.config = c
        }
        final.config.rootfs = RootFS(diffIDs: finalLayers.map(\.diffID))
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
        let inFinal = Set(finalLayers.map(\.descriptor.digest))
        let minKeys = keys.filter { k in cache.record(k).map { $0.layer.map { inFinal.contains($0.descriptor.digest) } ?? true } ?? false }
        let exportKeys = options.cacheModeMax ? keys : minKeys
        if options.cacheInline {
            final.config.extra = (final.config.extra ?? [:]).merging([BuildCache.recordsKey: try cache.recordsValue(keys: minKeys)]) { $1 }
        }
        let image = try store.putImage(config: final.config, layers: finalLayers.map(\.descriptor), tag: options.tags.first)
        for t in options.tags.dropFirst() { try store.tag(t, descriptor: image.descriptor) }
        if !options.deferCacheExport {
            for dir in options.cacheTo { try cache.exportLocal(keys: exportKeys, to: dir) }
            for ref in options.cacheToRegistry { try cache.exportRegistry(keys: exportKeys, to: ref) }
        }
        return BuildResult(image: image, steps: steps, cachedSteps: cachedSteps, cacheKeys: keys, exportKeys: exportKeys, executed: executed)
    }


    func stageResult(_ index: Int) -> StageState? {
        lock.lock(); defer { lock.unlock() }
        return results[index]
    }

    /// The PATH a stage gets when its base has none (BuildKit's, on Linux).
    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The state of `FROM scratch` for `platform` (the target platform by default); the cache
    /// key names the platform, so steps on scratch are not shared between platforms.
    func scratchState(platform: Platform? = nil) -> StageState {
        var cc = ContainerConfig(env: ["PATH=" + Self.defaultPath])
        cc.workingDir = "/"
        let p = platform ?? options.platform
        let cfg = ImageConfig(created: nil, platform: p, config: cc, rootfs: RootFS(diffIDs: []), history: [])
        return StageState(config: cfg, layers: [], key: "scratch;platform=\(p)", name: "scratch")
    }

    /// The state of an image (`scratch`, or from the store, pulled when missing or with `--pull`).
    func baseState(_ name: String, line: Int, platform: Platform? = nil) throws -> StageState {
        if let named = try namedContext(name, line: line) { return named }
        return try imageState(name, line: line, platform: platform)
    }

    /// The state of an image by reference (`scratch`, or from the store, pulled when missing or with `--pull`).
    func imageState(_ name: String, line: Int, platform: Platform? = nil) throws -> StageState {
        let wanted = platform ?? options.platform
        if name.lowercased() == "scratch" { return scratchState(platform: wanted) }
        let image: Image
        if options.pull {
            image = try pullBase(name, line: line, platform: wanted)
        } else if let local = try? store.image(name, platform: wanted) {
            image = local
        } else {
            image = try pullBase(name, line: line, platform: wanted)
        }
        guard image.manifest.layers.count == image.config.rootfs.diffIDs.count else {
            throw err(line, "base image \(name) has \(image.manifest.layers.count) layers but its config lists \(image.config.rootfs.diffIDs.count) diff_ids; the image is corrupt, pull or load it again")
        }
        try checkBasePlatform(image, name: name, wanted: wanted, line: line)
        let layers = zip(image.manifest.layers, image.config.rootfs.diffIDs).map { StageLayer.ready(LayerRef(descriptor: $0.0, diffID: $0.1)) }
        var cfg = image.config
        if cfg.history == nil { cfg.history = [] }
        // BuildKit makes sure every stage has a PATH: a base without one gets the default, so
        // `ENV PATH=/custom:$PATH` extends it instead of leaving `/custom:`.
        var cc = cfg.config ?? ContainerConfig()
        if !(cc.env ?? []).contains(where: { $0.hasPrefix("PATH=") }) {
            cc.env = (cc.env ?? []) + ["PATH=" + Self.defaultPath]
            cfg.config = cc
        }
        return StageState(config: cfg, layers: layers, key: Digest.compute(Data(image.descriptor.digest.description.utf8)).encoded, name: name)
    }

    func buildStage(_ resolved: ResolvedStage) throws -> StageState {
        let stage = resolved.stage
        let line = stage.from.source.startLine
        let base = resolved.baseName
        var st: StageState
        let platform = try stagePlatform(resolved)
        switch resolved.base {
        case .scratch: st = scratchState(platform: platform)
        case .image(let ref): st = try baseState(ref, line: line, platform: platform)
        case .stage(let i):
            guard let r = stageResult(i) else { throw err(line, "stage \(base) is not built yet") }
            st = r
        }
        st.name = stage.displayName
        st.args = [:]
        st.argOrder = []
        st.cmdSet = false
        var instructions = stage.instructions.map { (ins: $0, line: $0.source.startLine) }
        // ONBUILD triggers of the base run first, then are cleared.
        if let triggers = st.config.config?.onBuild, !triggers.isEmpty {
            var pre: [(ins: Instruction, line: Int)] = []
            for t in triggers {
                do {
                    let tree = try SyntaxTree.parse(t, fileName: "ONBUILD")
                    guard let node = tree.instructions.first else { throw err(line, "the base image's ONBUILD trigger `\(t)` is empty") }
                    pre.append((try Instruction.parse(node, fileName: "ONBUILD"), line))
                } catch let e as DockerfileError {
                    throw err(line, "cannot parse the base image's ONBUILD trigger `\(t)`: \(e.text)")
                }
            }
            st.config.config?.onBuild = nil
            instructions = pre + instructions
        }
        var env = StageEnvironment(plan: plan, buildArgs: buildArgs, baseEnv: envMap(st.config.config?.env ?? []), lex: lex)
        let total = instructions.count + 1
        progress(.step(stage: st.name, number: 1, total: total, text: "FROM \(base)"))
        for (i, step) in instructions.enumerated() {
            let n = i + 2
            let text = step.ins.keyword + " " + Self.text(step.ins)
            progress(.step(stage: st.name, number: n, total: total, text: text))
            let t0 = Date()
            let wasCached = try dispatch(step.ins, line: step.line, &st, &env, number: n)
            // a layer of an earlier step that could not be written ends the build here
            try layerExports.check()
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

    /// The instruction text after the keyword, as docker records it in `created_by`.
    static func text(_ ins: Instruction) -> String {
        var t = ins.source.original.drop(while: { $0 == " " || $0 == "\t" })
        t = t.drop(while: { $0 != " " && $0 != "\t" }).drop(while: { $0 == " " || $0 == "\t" })
        return String(t)
    }

    func envMap(_ list: [String]) -> [String: String] {
        var env: [String: String] = [:]
        for e in list {
            if let eq = e.firstIndex(of: "=") { env[String(e[..<eq])] = String(e[e.index(after: eq)...]) }
        }
        return env
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

    func expansionEnvWith(_ st: StageState, _ envList: [String]) -> [String: String] {
        var s = st
        var c = s.config.config ?? ContainerConfig()
        c.env = envList
        s.config.config = c
        return expansionEnv(s)
    }

    func shell(_ cc: ContainerConfig) -> [String] { cc.shell ?? ["/bin/sh", "-c"] }
}

extension BuildError {
    /// A Dockerfile error of the parser, the instruction layer or the stage plan.
    init(_ e: DockerfileError) {
        self = .dockerfile(file: e.file, line: e.position?.line ?? 0, message: e.text)
    }
}

/// Collects the first error of parallel work.
final class ErrorBox: @unchecked Sendable {
    let lock = NSLock()
    var error: (any Error)?
    func set(_ e: any Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
}

/// Go's `%q` of a []string: `["a" "b"]`.
/// BuildKit's `HEALTHCHECK %q` of its health config: `&{["CMD-SHELL" "..."] "30s" "5s" "0s" "0s" '\x03'}`
/// (test, interval, timeout, start period, start interval, retries as a Go rune literal).
func goHealthcheck(_ hc: HealthConfig) -> String {
    let durations = [hc.interval, hc.timeout, hc.startPeriod, hc.startInterval].map { "\"" + goDuration($0 ?? 0) + "\"" }
    return "&{" + goList(hc.test ?? []) + " " + durations.joined(separator: " ") + " " + goQuoteRune(hc.retries ?? 0) + "}"
}

/// Go's `time.Duration.String()` for nanoseconds: `0s`, `500ms`, `1.5s`, `1m30s`, `2h0m0s`.
func goDuration(_ ns: Int64) -> String {
    if ns == 0 { return "0s" }
    let neg = ns < 0
    let u = ns.magnitude
    func frac(_ v: UInt64, _ unit: UInt64) -> String {
        var s = String(v / unit)
        var rem = v % unit
        if rem != 0 {
            var digits = ""
            var scale = unit
            while rem != 0 { scale /= 10; digits += String(rem / scale); rem %= scale }
            s += "." + digits
        }
        return s
    }
    var out: String
    if u < 1_000 { out = "\(u)ns" }
    else if u < 1_000_000 { out = frac(u, 1_000) + "µs" }
    else if u < 1_000_000_000 { out = frac(u, 1_000_000) + "ms" }
    else {
        let h = u / 3_600_000_000_000, m = (u / 60_000_000_000) % 60
        let secs = frac(u % 60_000_000_000, 1_000_000_000) + "s"
        out = h > 0 ? "\(h)h\(m)m" + secs : m > 0 ? "\(m)m" + secs : secs
    }
    return (neg ? "-" : "") + out
}

/// Go's `%q` of an integer: a single-quoted rune literal (`'\x03'`, `'A'`).
func goQuoteRune(_ n: Int) -> String {
    let named: [Int: String] = [7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 39: "\\'", 92: "\\\\"]
    if let e = named[n] { return "'" + e + "'" }
    if (32..<127).contains(n) { return "'" + String(Character(UnicodeScalar(UInt8(n)))) + "'" }
    if (0..<128).contains(n) { return "'\\x" + (n < 16 ? "0" : "") + String(n, radix: 16) + "'" }
    return "'" + String(Character(UnicodeScalar(UInt32(clamping: n)) ?? "\u{fffd}")) + "'"
}

func goList(_ l: [String]) -> String { "[" + l.map(goQuoteString).joined(separator: " ") + "]" }

/// Go's `%q`, as BuildKit quotes the words of CMD/ENTRYPOINT in history.
func goQuoteString(_ s: String) -> String { GoString.quote(s) }
