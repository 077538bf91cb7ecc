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
    @Option(help: "Target platform (os/arch[/variant]).") var platform: String?
    @Flag(name: .customLong("no-cache"), help: "Run every step, ignoring the cache.") var noCache = false
    @Flag(help: "Pull base images even when present (needs the registry client).") var pull = false
    @Option(help: "Add a label K=V to the image (repeatable).") var label: [String] = []
    @Option(help: "Network for RUN: default, host or none.") var network = "default"
    @Option(help: "A secret for RUN --mount=type=secret: id=ID,src=FILE (repeatable).") var secret: [String] = []
    @Option(name: .customLong("cache-from"), help: "Import a cache: type=local,src=DIR (repeatable).") var cacheFrom: [String] = []
    @Option(name: .customLong("cache-to"), help: "Export the cache: type=local,dest=DIR.") var cacheTo: [String] = []
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
        var tempContext: String?
        defer { if let t = tempContext { try? FileManager.default.removeItem(atPath: t) } }
        if context == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            if Self.looksLikeTar(data) {
                let t = FileManager.default.temporaryDirectory.appendingPathComponent("dockbuild-ctx-\(UUID().uuidString.prefix(8))").path
                try FileManager.default.createDirectory(atPath: t, withIntermediateDirectories: true)
                tempContext = t
                try Self.untar(data, into: t)
                contextDir = t
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
        for c in cacheFrom {
            let kv = Self.csv(c)
            if kv["type"] == "local", let src = kv["src"] { opts.cacheFrom.append(src) }
            else if kv["type"] == "registry", let ref = kv["ref"] { opts.cacheFromRegistry.append(try ImageReference(parsing: ref)) }
            else { throw ValidationError("--cache-from \(c): use type=local,src=DIR or type=registry,ref=REGISTRY/REPO:TAG") }
        }
        for c in cacheTo {
            let kv = Self.csv(c)
            if kv["type"] == "local", let dest = kv["dest"] { opts.cacheTo.append(dest) }
            else if kv["type"] == "registry", let ref = kv["ref"] { opts.cacheToRegistry.append(try ImageReference(parsing: ref)) }
            else { throw ValidationError("--cache-to \(c): use type=local,dest=DIR or type=registry,ref=REGISTRY/REPO:TAG") }
        }
        opts.tags = try tag.map { try ImageReference(parsing: $0) }
        opts.target = target
        opts.noCache = noCache
        opts.network = network
        if let platform { opts.platform = try Platform(parsing: platform) }
        var outputs = try output.map { try BuildOutput(parsing: $0) }
        if push { outputs.append(.registry) }
        if outputs.contains(.registry) && tag.isEmpty {
            throw ValidationError("--push / --output type=registry needs a name: add -t REGISTRY/REPO:TAG")
        }
        opts.pull = pull

        let store = try ImageStore(root: global.resolvedRoot)
        let printer = ProgressPrinter(mode: mode)
        let builder = try Builder(store: store, options: opts, progress: { printer.handle($0) })
        let start = Date()
        let result: BuildResult
        do { result = try builder.build() } catch {
            printer.flush()
            throw error
        }
        let id = result.image.id.description
        for o in outputs {
            switch o {
            case .archive(let format, let dest): try store.save([result.image.descriptor.digest.description], format: format, to: dest)
            case .local(let dest): try Builder.exportFilesystem(result.image, store: store, to: dest)
            case .registry:
                for t in opts.tags {
                    let d = try Builder.push(result.image, store: store, to: t)
                    if mode != "quiet" { FileHandle.standardError.write(Data("pushed \(t.familiarString)@\(d)\n".utf8)) }
                }
            case .image: break
            }
        }
        if let iidfile { try Data(id.utf8).write(to: URL(fileURLWithPath: iidfile)) }
        printer.summary(result: result, seconds: Date().timeIntervalSince(start), tags: opts.tags)
        print(id)
    }

    static func csv(_ s: String) -> [String: String] {
        var kv: [String: String] = [:]
        for part in s.split(separator: ",") {
            if let eq = part.firstIndex(of: "=") { kv[part[..<eq].lowercased()] = String(part[part.index(after: eq)...]) }
        }
        return kv
    }

    static func looksLikeTar(_ d: Data) -> Bool {
        let b = [UInt8](d.prefix(512))
        if b.count >= 2, b[0] == 0x1f, b[1] == 0x8b { return true }
        if b.count >= 4, b[0...3] == [0x28, 0xb5, 0x2f, 0xfd] { return true }
        if b.count >= 3, b[0...2] == [0x42, 0x5a, 0x68] { return true }
        if b.count >= 6, b[0...5] == [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] { return true }
        return b.count >= 262 && Array(b[257..<262]) == Array("ustar".utf8)
    }

    static func untar(_ data: Data, into dir: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["tar", "-x", "-f", "-", "-C", dir, "--no-same-owner"]
        let pipe = Pipe()
        p.standardInput = pipe
        try p.run()
        pipe.fileHandleForWriting.write(data)
        try pipe.fileHandleForWriting.close()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw ValidationError("the context on standard input is not a readable tar") }
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
