import ArgumentParser
import Build
import Foundation
import ImageStore
import OCI

/// `dockbuild build`: a Dockerfile and a context -> an image, with the step cache.
struct BuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build an image from a Dockerfile and a context.",
        discussion: """
            CONTEXT is a directory (with an optional .dockerignore) or - to read a Dockerfile \
            or a tar context from standard input. Steps whose inputs did not change are served \
            from the cache (content digests, never modification times).
            """
    )

    @OptionGroup var global: GlobalOptions
    @Option(name: [.short, .customLong("tag")], help: "Name the image (repeatable).") var tag: [String] = []
    @Option(name: [.short, .customLong("file")], help: "The Dockerfile (default: CONTEXT/Dockerfile; - for stdin).") var file: String?
    @Option(name: .customLong("build-arg"), help: "Set a build argument K=V (K alone takes it from the environment).") var buildArg: [String] = []
    @Option(help: "Build this stage and the stages it needs.") var target: String?
    @Option(help: ArgumentHelp("Target platform(s): os/arch[/variant], comma-separated or repeated.", discussion: "Several platforms build every stage once per platform and name an OCI image index; RUN of a foreign architecture runs through QEMU (qemu-user-static in binfmt_misc with the F flag)."))
    var platform: [String] = []
    @Flag(name: .customLong("no-cache"), help: "Run every step, ignoring the cache.") var noCache = false
    @Flag(help: "Pull base images even when present (needs the registry client).") var pull = false
    @Option(help: "Add a label K=V to the image (repeatable).") var label: [String] = []
    @Option(help: "Network for RUN: default, host or none.") var network = "default"
    @Option(help: "A secret for RUN --mount=type=secret: id=ID,src=FILE (repeatable).") var secret: [String] = []
    @Option(help: "Forward an SSH agent to RUN --mount=type=ssh: default (SSH_AUTH_SOCK) or ID=SOCKET (repeatable).")
    var ssh: [String] = []
    @Option(name: .customLong("build-context"), help: "A named context NAME=VALUE for FROM, COPY --from and --mount from=: a directory, docker-image://REF or oci-layout://PATH[:TAG|@DIGEST] (repeatable).")
    var buildContext: [String] = []
    @Option(name: .customLong("cache-from"), help: ArgumentHelp("Import a cache (repeatable): REF or type=registry,ref=REF (a cache image, or any image built with type=inline), type=local,src=DIR.", discussion: "Layers of a registry cache are fetched only for the steps the build reuses."))
    var cacheFrom: [String] = []
    @Option(name: .customLong("cache-to"), help: ArgumentHelp("Export the cache: type=inline (records in the image's config), type=registry,ref=REF[,mode=min|max], type=local,dest=DIR[,mode=min|max].", discussion: "mode=min (the default) exports the steps whose layers are in the result; mode=max every step of every stage built."))
    var cacheTo: [String] = []
    @Option(name: [.short, .customLong("output")], help: "type=oci|docker,dest=FILE.tar, type=local,dest=DIR, type=registry, type=image.") var output: [String] = []
    @Flag(help: "Push the image (same as --output type=registry).") var push = false
    @Option(help: "Write the image ID to this file.") var iidfile: String?
    @Option(help: "Progress output: auto, tty, plain, json or quiet.") var progress = "auto"
    @Flag(name: [.short, .customLong("quiet")], help: "Print only the image ID.") var quiet = false
    @Argument(help: "The context directory, or - for standard input.") var context: String

    func run() throws {
        let mode = quiet ? "quiet" : progress
        guard ["auto", "tty", "plain", "json", "quiet"].contains(mode) else {
            throw ValidationError("--progress \(progress): use auto, tty, plain, json or quiet")
        }
        var contextDir: String?
        var dockerfileText: String?
        var dockerfileName = "Dockerfile"
        var tarContext: TarContext?
        defer { tarContext?.remove() }
        BuildInterrupts.install()
        if context == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            if TarContext.looksLikeTar(data) {
                if file == "-" { throw ValidationError("-f - and a tar context on standard input cannot both be read from stdin: give -f PATH-IN-THE-TAR") }
                let t = try TarContext(data: data, store: try ImageStore(root: global.resolvedRoot))
                tarContext = t
                if mode == "plain" || mode == "auto" || mode == "tty" {
                    for n in t.notes { FileHandle.standardError.write(Data("note: tar context: \(n)\n".utf8)) }
                }
                contextDir = t.directory
                let name = file ?? "Dockerfile"
                dockerfileText = try t.dockerfile(name)
                dockerfileName = name
            } else {
                dockerfileText = String(decoding: data, as: UTF8.self)
                dockerfileName = "<stdin>"
            }
        } else {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: context, isDirectory: &isDir), isDir.boolValue else {
                throw ValidationError("context \(context) is not a directory; give a directory or - for standard input")
            }
            let dir = (context as NSString).standardizingPath
            contextDir = dir.hasPrefix("/") ? dir : FileManager.default.currentDirectoryPath + "/" + dir
        }
        if dockerfileText == nil {
            if file == "-" {
                dockerfileText = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
                dockerfileName = "<stdin>"
            } else {
                let path = file ?? ((contextDir ?? ".") + "/Dockerfile")
                // The default Dockerfile is read inside the context (symlinks resolved in it); -f is the user's own path.
                let read = try file == nil ? contextDir.flatMap { try ContextFile.read("Dockerfile", in: $0) } : FileManager.default.contents(atPath: path)
                guard let d = read else {
                    throw ValidationError("cannot read the Dockerfile \(path); pass -f FILE")
                }
                dockerfileText = String(decoding: d, as: UTF8.self)
                dockerfileName = path
            }
        }
        var opts = BuildOptions(contextDir: contextDir, dockerfileText: dockerfileText ?? "", dockerfileName: dockerfileName)
        for a in buildArg {
            if let eq = a.firstIndex(of: "=") { opts.buildArgs[String(a[..<eq])] = String(a[a.index(after: eq)...]) }
            else if let v = ProcessInfo.processInfo.environment[a] { opts.buildArgs[a] = v }
        }
        for l in label {
            guard let eq = l.firstIndex(of: "=") else { throw ValidationError("--label \(l): use KEY=VALUE") }
            opts.labels[String(l[..<eq])] = String(l[l.index(after: eq)...])
        }
        for s in secret {
            let kv = Self.csv(s)
            guard let id = kv["id"], let src = kv["src"] ?? kv["source"] else { throw ValidationError("--secret \(s): use id=ID,src=FILE") }
            opts.secrets[id] = src
        }
        for spec in ssh {
            let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
            let id = parts[0]
            let sock = parts.count > 1 ? parts[1].split(separator: ",").first.map(String.init) : ProcessInfo.processInfo.environment["SSH_AUTH_SOCK"]
            guard !id.isEmpty, let sock, !sock.isEmpty else {
                throw ValidationError("--ssh \(spec): give default (with SSH_AUTH_SOCK set) or ID=SOCKET")
            }
            opts.ssh[id] = sock
        }
        for c in buildContext {
            guard let eq = c.firstIndex(of: "="), eq != c.startIndex, c.index(after: eq) != c.endIndex else {
                throw ValidationError("--build-context \(c): use NAME=DIR, NAME=docker-image://REF or NAME=oci-layout://PATH")
            }
            var value = String(c[c.index(after: eq)...])
            if !value.contains("://"), !value.hasPrefix("/") { value = FileManager.default.currentDirectoryPath + "/" + value }
            opts.buildContexts[String(c[..<eq])] = value
        }
        for c in cacheFrom {
            let kv = Self.csv(c)
            if !c.contains("=") { opts.cacheFromRegistry.append(try ImageReference(parsing: c)); continue }
            if kv["type"] == "local", let src = kv["src"] { opts.cacheFrom.append(src) }
            else if kv["type"] == "registry", let ref = kv["ref"] { opts.cacheFromRegistry.append(try ImageReference(parsing: ref)) }
            else { throw ValidationError("--cache-from \(c): use type=local,src=DIR or type=registry,ref=REGISTRY/REPO:TAG") }
        }
        for c in cacheTo {
            let kv = Self.csv(c)
            switch kv["mode"] {
            case nil, "min": break
            case "max": opts.cacheModeMax = true
            case let m?: throw ValidationError("--cache-to \(c): mode=\(m): use mode=min or mode=max")
            }
            if kv["type"] == "inline" { opts.cacheInline = true }
            else if kv["type"] == "local", let dest = kv["dest"] { opts.cacheTo.append(dest) }
            else if kv["type"] == "registry", let ref = kv["ref"] { opts.cacheToRegistry.append(try ImageReference(parsing: ref)) }
            else { throw ValidationError("--cache-to \(c): use type=inline, type=local,dest=DIR or type=registry,ref=REGISTRY/REPO:TAG") }
        }
        opts.tags = try tag.map { try ImageReference(parsing: $0) }
        opts.target = target
        opts.noCache = noCache
        opts.network = network
        let platforms = try platform.flatMap { $0.split(separator: ",").map(String.init) }.map { p in
            do { return try Platform(parsing: p).validated() } catch { throw ValidationError("--platform \(p): \(error)") }
        }
        if platforms.count == 1 { opts.platform = platforms[0] }
        var outputs = try output.map { try BuildOutput(parsing: $0) }
        if push { outputs.append(.registry) }
        if outputs.contains(.registry) && tag.isEmpty {
            throw ValidationError("--push / --output type=registry needs a name: add -t REGISTRY/REPO:TAG")
        }
        opts.pull = pull

        let store = try ImageStore(root: global.resolvedRoot)
        // `auto` is BuildKit's live view on a terminal, plain lines otherwise.
        let live = mode == "tty" || (mode == "auto" && isatty(2) != 0 && ProcessInfo.processInfo.environment["TERM"] != "dumb")
        if platforms.count > 1 {
            // several builds at once: plain lines (the live view follows one build)
            try runMultiPlatform(store: store, options: opts, platforms: platforms, outputs: outputs,
                                 printer: ProgressPrinter(mode: live ? "plain" : mode), mode: mode)
            return
        }
        let printer = ProgressPrinter(mode: live ? "quiet" : mode)
        let tty = live ? TTYProgress() : nil
        let builder = try Builder(store: store, options: opts, progress: { e in
            if let tty { tty.handle(e) } else { printer.handle(e) }
        })
        let start = Date()
        let result: BuildResult
        do { result = try builder.build() } catch {
            tty?.finish(failed: true)
            printer.flush()
            let sig = BuildInterrupts.received
            if sig != 0 {
                FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
                tarContext?.remove()
                Foundation.exit(128 + sig)
            }
            throw error
        }
        tty?.finish(failed: false)
        let id = result.image.id.description
        try Builder.deliver(result.image, to: outputs, store: store, tags: opts.tags) { t, d in
            if mode != "quiet" { FileHandle.standardError.write(Data("pushed \(t.familiarString)@\(d)\n".utf8)) }
        }
        if let iidfile { try Data(id.utf8).write(to: URL(fileURLWithPath: iidfile)) }
        ProgressPrinter(mode: live ? "plain" : mode).summary(result: result, seconds: Date().timeIntervalSince(start), tags: opts.tags)
        print(id)
    }

    /// `--platform P1,P2,...`: one build per platform, an index over them, and the outputs of the index.
    func runMultiPlatform(store: ImageStore, options opts: BuildOptions, platforms: [Platform], outputs: [BuildOutput],
                          printer: ProgressPrinter, mode: String) throws {
        for o in outputs {
            if case .archive(.docker, _) = o {
                throw ValidationError("--output type=docker holds one platform; use type=oci for several platforms, or build one --platform")
            }
        }
        let start = Date()
        let result: MultiPlatformResult
        do { result = try Builder.buildPlatforms(store: store, options: opts, platforms: platforms, progress: { printer.handle($0) }) } catch {
            let sig = BuildInterrupts.received
            if sig != 0 {
                FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
                Foundation.exit(128 + sig)
            }
            throw error
        }
        for o in outputs {
            switch o {
            case .archive(let format, let dest): try store.save([result.descriptor.digest.description], format: format, to: dest)
            case .local(let dest):
                // One directory per platform, as BuildKit's local exporter names them (linux_arm64).
                for r in result.results {
                    let p = Platform(os: r.image.config.os, architecture: r.image.config.architecture, variant: r.image.config.variant)
                    try Builder.exportFilesystem(r.image, store: store, to: dest + "/" + p.description.replacingOccurrences(of: "/", with: "_"))
                }
            case .registry:
                for t in opts.tags {
                    let d = try Builder.push(descriptor: result.descriptor, store: store, to: t)
                    if mode != "quiet" { FileHandle.standardError.write(Data("pushed \(t.familiarString)@\(d)\n".utf8)) }
                }
            case .image: break
            }
        }
        let id = result.id.description
        if let iidfile { try Data(id.utf8).write(to: URL(fileURLWithPath: iidfile)) }
        if mode != "quiet" {
            let steps = result.results.reduce(0) { $0 + $1.steps }, cached = result.results.reduce(0) { $0 + $1.cachedSteps }
            let text = "built index \(id) for \(platforms.map(\.description).joined(separator: ", ")) in \(String(format: "%.2fs", Date().timeIntervalSince(start)))"
                + " (\(steps) steps, \(cached) cached)" + (opts.tags.isEmpty ? "" : ", named " + opts.tags.map(\.description).joined(separator: ", "))
            printer.write(text)
        }
        print(id)
    }

    static func csv(_ s: String) -> [String: String] {
        var kv: [String: String] = [:]
        for part in s.split(separator: ",") {
            if let eq = part.firstIndex(of: "=") { kv[part[..<eq].lowercased()] = String(part[part.index(after: eq)...]) }
        }
        return kv
    }
}

/// Prints build events as docker-like lines (plain), JSON lines, or nothing (quiet).
final class ProgressPrinter: @unchecked Sendable {
    let mode: String
    let lock = NSLock()
    var stepIDs: [String: Int] = [:]
    var next = 1

    init(mode: String) { self.mode = mode }

    func id(_ stage: String, _ n: Int) -> Int {
        let k = "\(stage)#\(n)"
        if let v = stepIDs[k] { return v }
        let v = next
        next += 1
        stepIDs[k] = v
        return v
    }

    func write(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

    func handle(_ e: BuildEvent) {
        if mode == "quiet" { return }
        lock.lock(); defer { lock.unlock() }
        if mode == "json" {
            var obj: [String: Any] = [:]
            switch e {
            case let .step(stage, number, total, text): obj = ["event": "step", "id": id(stage, number), "stage": stage, "step": number, "total": total, "text": text]
            case let .cached(stage, number): obj = ["event": "cached", "id": id(stage, number), "stage": stage, "step": number]
            case let .finished(stage, number, s): obj = ["event": "done", "id": id(stage, number), "stage": stage, "step": number, "seconds": (s * 1000).rounded() / 1000]
            case let .output(stage, number, line): obj = ["event": "output", "id": id(stage, number), "stage": stage, "step": number, "line": line]
            case let .note(n): obj = ["event": "note", "text": n]
            }
            if let d = try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]) { write(String(decoding: d, as: UTF8.self)) }
            return
        }
        switch e {
        case let .step(stage, number, total, text): write("#\(id(stage, number)) [\(stage) \(number)/\(total)] \(text)")
        case let .cached(stage, number): write("#\(id(stage, number)) CACHED")
        case let .finished(stage, number, s): write("#\(id(stage, number)) DONE \(String(format: "%.2fs", s))")
        case let .output(stage, number, line): write("#\(id(stage, number)) \(line)")
        case let .note(n): write(n)
        }
    }

    func flush() {}

    func summary(result: BuildResult, seconds: Double, tags: [ImageReference]) {
        if mode == "quiet" { return }
        let text = "built \(result.image.id) in \(String(format: "%.2fs", seconds)) (\(result.steps) steps, \(result.cachedSteps) cached)"
            + (tags.isEmpty ? "" : ", named " + tags.map(\.description).joined(separator: ", "))
        if mode == "json" {
            let obj: [String: Any] = ["event": "result", "id": result.image.id.description, "seconds": seconds, "steps": result.steps, "cached": result.cachedSteps]
            if let d = try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]) { write(String(decoding: d, as: UTF8.self)) }
        } else {
            write(text)
        }
    }
}
