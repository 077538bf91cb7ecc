// The third layer: build arguments, ARG scoping and the stage graph
// (what BuildKit's dockerfile2llb does before it dispatches instructions).

/// Build arguments (`--build-arg`) and the platforms of a build.
public struct BuildArgs: Sendable, Hashable {
    /// Values given on the command line; they override ARG defaults.
    public var values: [String: String]
    /// `os/arch[/variant]` of the machine that builds.
    public var buildPlatform: String
    /// `os/arch[/variant]` of the image being built (default: the build platform).
    public var targetPlatform: String

    public init(_ values: [String: String] = [:], buildPlatform: String = BuildArgs.hostPlatform,
                targetPlatform: String? = nil) {
        self.values = values
        self.buildPlatform = buildPlatform
        self.targetPlatform = targetPlatform ?? buildPlatform
    }

    /// The platform this library was compiled for, in OCI notation.
    public static var hostPlatform: String {
        #if arch(x86_64)
        "linux/amd64"
        #elseif arch(arm64)
        "linux/arm64"
        #elseif arch(arm)
        "linux/arm/v7"
        #else
        "linux/unknown"
        #endif
    }

    /// The proxy arguments every RUN sees when given, without an ARG.
    public static let proxyArgs: Set<String> = [
        "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
        "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
    ]

    /// The automatic platform arguments (BUILDPLATFORM, TARGETARCH, ...) and TARGETSTAGE;
    /// build args of the same name override them.
    public func predefined(targetStage: String?) -> [String: String] {
        func split(_ p: String) -> (String, String, String) {
            let parts = p.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            return (parts.first ?? "", parts.count > 1 ? parts[1] : "", parts.count > 2 ? parts[2] : "")
        }
        let (bos, barch, bvar) = split(buildPlatform)
        let (tos, tarch, tvar) = split(targetPlatform)
        var out: [String: String] = [
            "BUILDPLATFORM": buildPlatform, "BUILDOS": bos, "BUILDOSVERSION": "", "BUILDARCH": barch, "BUILDVARIANT": bvar,
            "TARGETPLATFORM": targetPlatform, "TARGETOS": tos, "TARGETOSVERSION": "", "TARGETARCH": tarch,
            "TARGETVARIANT": tvar, "TARGETSTAGE": targetStage ?? "default",
        ]
        for key in out.keys {
            if let v = values[key] { out[key] = v }
        }
        return out
    }

    /// Proxy variables passed with `values`, for RUN's environment.
    public var proxyEnvironment: [String: String] {
        values.filter { Self.proxyArgs.contains($0.key) }
    }
}

/// Where a stage starts from.
public enum StageBase: Sendable, Hashable {
    /// `FROM scratch`.
    case scratch
    /// An earlier stage, by index.
    case stage(Int)
    /// An image reference, after ARG expansion.
    case image(String)
}

/// A stage after FROM expansion, with the stages it needs.
public struct ResolvedStage: Sendable, Hashable {
    public var stage: Stage
    /// The base name after expanding global ARGs.
    public var baseName: String
    public var base: StageBase
    /// `--platform` after expansion, if given.
    public var platform: String?
    /// Indexes of stages this one needs (base, `COPY --from`, `RUN --mount from=`), sorted.
    public var dependencies: [Int]
    /// Images named by `COPY --from` or `RUN --mount from=` that are not stages.
    public var externalImages: [String]
}

/// What a build of one target needs: the target and the stages it depends on, in file order.
public struct BuildPlan: Sendable, Hashable {
    /// Index of the target stage.
    public var target: Int
    /// The needed stages, in file order; stages the target does not need are pruned.
    public var stages: [ResolvedStage]
    /// Every stage resolved (reachable or not), by index.
    public var allStages: [ResolvedStage]
    /// The global ARG scope: predefined args and meta ARGs after build-arg overrides.
    public var globalArgs: [String: String]
}

extension Dockerfile {
    /// Expands FROM lines with the global ARG scope, links stages, checks the graph
    /// (unknown target, bad stage index, cycles) and keeps only what `target` needs.
    /// - Parameter target: a stage name (`--target`); nil builds the last stage.
    public func plan(target: String? = nil, buildArgs: BuildArgs = BuildArgs()) throws -> BuildPlan {
        let lex = shellLex
        let targetName = target ?? stages.last?.name
        var global = buildArgs.predefined(targetStage: targetName)

        // meta ARGs: defaults expanded with what came before, build args win
        for arg in metaArgs {
            for decl in arg.args {
                if let v = buildArgs.values[decl.key] {
                    global[decl.key] = v
                } else if let def = decl.value {
                    do {
                        global[decl.key] = try lex.processWord(def, env: global)
                    } catch {
                        throw DockerfileError(file: fileName, position: arg.source.range.start, message: error.message)
                    }
                }
            }
        }

        var resolved: [ResolvedStage] = []
        var byName: [String: Int] = [:]
        for stage in stages {
            let from = stage.from
            let baseName: String
            do {
                baseName = try lex.processWord(from.baseName, env: global)
            } catch {
                throw DockerfileError(file: fileName, position: from.source.range.start, message: error.message)
            }
            if baseName.isEmpty {
                throw DockerfileError(file: fileName, position: from.source.range.start,
                                      message: "base name (\(from.baseName)) should not be blank",
                                      suggestion: suggestArg(in: from.baseName, known: global))
            }
            var platform: String?
            if let p = from.platform {
                let v: String
                do {
                    v = try lex.processWord(p, env: global)
                } catch {
                    throw DockerfileError(file: fileName, position: from.source.range.start,
                                          message: "failed to process arguments for platform \(p): \(error.message)")
                }
                if v.isEmpty {
                    throw DockerfileError(file: fileName, position: from.source.range.start,
                                          message: "empty platform value from expression \(p)",
                                          suggestion: suggestArg(in: p, known: global))
                }
                platform = v
            }
            let base: StageBase
            if let i = byName[baseName] {
                base = .stage(i)
            } else if baseName.lowercased() == "scratch" {
                base = .scratch
            } else {
                base = .image(baseName)
            }
            resolved.append(ResolvedStage(stage: stage, baseName: baseName, base: base, platform: platform,
                                          dependencies: [], externalImages: []))
            if let name = stage.name { byName[name] = stage.index }
        }

        // edges: COPY --from and RUN --mount from=
        var edges: [[(Int, SourceRange)]] = Array(repeating: [], count: stages.count)
        for stage in stages {
            var deps = Set<Int>()
            var images: [String] = []
            if case .stage(let b) = resolved[stage.index].base {
                deps.insert(b)
                edges[stage.index].append((b, stage.from.source.range))
            }
            func link(_ ref: String, _ range: SourceRange, allowIndex: Bool) throws {
                if allowIndex, let idx = Int(ref) {
                    guard idx >= 0 && idx < stages.count else {
                        throw DockerfileError(file: fileName, position: range.start, message: "invalid stage index \(idx)")
                    }
                    deps.insert(idx)
                    edges[stage.index].append((idx, range))
                } else if let i = byName[ref.lowercased()] {
                    deps.insert(i)
                    edges[stage.index].append((i, range))
                } else if !images.contains(ref) {
                    images.append(ref)
                }
            }
            for instruction in stage.instructions {
                switch instruction {
                case .copy(let c):
                    guard let from = c.from else { continue }
                    let plain = (try? ShellLex(escapeToken: escapeToken).processWord(from, env: [String: String]())) ?? ""
                    if plain != from {
                        throw DockerfileError(
                            file: fileName, position: c.source.range.start,
                            message: "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround")
                    }
                    try link(from, c.source.range, allowIndex: true)
                case .run(let r):
                    for m in r.mounts {
                        if let from = m.from { try link(from, r.source.range, allowIndex: false) }
                    }
                default:
                    continue
                }
            }
            resolved[stage.index].dependencies = deps.sorted()
            resolved[stage.index].externalImages = images
        }

        // cycles
        var state = [UInt8](repeating: 0, count: stages.count)  // 0 new, 1 on path, 2 done
        func visit(_ i: Int) -> SourceRange? {
            if state[i] == 2 { return nil }
            state[i] = 1
            for (d, range) in edges[i] {
                if state[d] == 1 { return range }
                if let r = visit(d) { return r }
            }
            state[i] = 2
            return nil
        }
        for stage in stages {
            if let range = visit(stage.index) {
                throw DockerfileError(file: fileName, position: range.start,
                                      message: "circular dependency detected on stage: \(stage.displayName)")
            }
        }

        // target
        let targetIndex: Int
        if let target {
            guard let i = byName[target.lowercased()] else {
                throw DockerfileError(file: fileName, position: nil,
                                      message: "target stage \(goQuote(target)) could not be found",
                                      suggestion: suggest(target, among: stages.compactMap(\.name), caseSensitive: true))
            }
            targetIndex = i
        } else {
            targetIndex = stages.count - 1
        }
        var needed = Set<Int>()
        var stack = [targetIndex]
        while let i = stack.popLast() {
            if !needed.insert(i).inserted { continue }
            stack += resolved[i].dependencies
        }
        return BuildPlan(target: targetIndex, stages: resolved.filter { needed.contains($0.stage.index) },
                         allStages: resolved, globalArgs: global)
    }

    private func suggestArg(in expression: String, known: [String: String]) -> String? {
        guard let r = try? shellLex.processWordWithMatches(expression, env: known) else { return nil }
        for name in r.unmatched.sorted() {
            if let s = suggest(name, among: Array(known.keys), caseSensitive: true) { return "$" + s }
        }
        return nil
    }
}

/// The variables visible while a stage's instructions run, following BuildKit's
/// ARG rules: an ARG is visible from its declaration on; a build arg overrides its
/// default; an ARG without default inherits the global (meta) value; ENV wins over ARG.
public struct StageEnvironment: Sendable {
    /// ARGs declared so far in this stage, with their values (nil: declared, unset).
    public private(set) var args: [String: String?] = [:]
    /// ENV values so far, including the base image's.
    public private(set) var env: [String: String]
    let global: [String: String]
    let buildArgs: BuildArgs
    let lex: ShellLex

    /// - Parameters:
    ///   - plan: gives the global scope.
    ///   - baseEnv: the base image's (or base stage's) ENV.
    public init(plan: BuildPlan, buildArgs: BuildArgs, baseEnv: [String: String] = [:],
                lex: ShellLex = ShellLex()) {
        self.global = plan.globalArgs
        self.buildArgs = buildArgs
        self.env = baseEnv
        self.lex = lex
    }

    /// What `$NAME` means at this point: ENV over ARG.
    public var variables: [String: String] {
        var out: [String: String] = [:]
        for (k, v) in args { if let v { out[k] = v } }
        for (k, v) in env { out[k] = v }
        return out
    }

    /// Expands one word of an instruction that expands variables.
    public func expand(_ word: String) throws(ExpansionError) -> String {
        try lex.processWord(word, env: variables)
    }

    /// Applies an ARG or ENV instruction; other instructions change nothing.
    public mutating func apply(_ instruction: Instruction) throws(ExpansionError) {
        switch instruction {
        case .arg(let a):
            for decl in a.args {
                if let v = buildArgs.values[decl.key] {
                    args[decl.key] = .some(v)
                } else if let def = decl.value {
                    args[decl.key] = .some(try lex.processWord(def, env: variables))
                } else if let g = global[decl.key] {
                    args[decl.key] = .some(g)
                } else {
                    args[decl.key] = .some(nil)
                }
            }
        case .env(let e):
            // BuildKit expands every ENV value against the environment before this instruction
            let before = variables
            for kv in e.env {
                let value = try lex.processWord(kv.value, env: before)
                env[kv.key] = value
            }
        default:
            break
        }
    }
}
