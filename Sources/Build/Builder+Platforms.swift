// Platforms of a build: per-stage platforms (`FROM --platform`), base images that must match
// them, RUN through QEMU for foreign architectures, and multi-platform builds into an index.
import Foundation
import OCI
import ImageStore
import Dockerfile
import Runtime

extension Builder {
    /// The platform a stage builds for: its `FROM --platform=`, else the build's target.
    func stagePlatform(_ r: ResolvedStage) throws -> Platform {
        guard let p = r.platform else { return options.platform }
        do { return try Platform(parsing: p) } catch {
            throw err(r.stage.from.source.startLine, "FROM --platform=\(p): \(error)")
        }
    }

    /// Refuses a base image whose config is for another platform than the stage's: building on
    /// it would label one architecture's binaries as another's.
    func checkBasePlatform(_ image: Image, name: String, wanted: Platform, line: Int) throws {
        let c = image.config
        guard !c.architecture.isEmpty else { return }
        let have = Platform(os: c.os, architecture: c.architecture, variant: c.variant).normalized()
        let w = wanted.normalized()
        if have.os == w.os, have.architecture == w.architecture, w.matches(have) { return }
        var offered = ""
        if let idx = image.index, let index = try? store.index(idx) {
            offered = " (its index offers " + index.manifests.compactMap { $0.platform?.description }.joined(separator: ", ") + ")"
        }
        throw err(line, "base image `\(name)` is \(have), not \(w)\(offered): name an image or index that offers \(w), "
                  + "pull it with `dockbuild pull --platform \(w) \(name)`, or build with --platform \(have)")
    }

    /// Fails a RUN whose stage's architecture cannot execute here (natively or through a QEMU
    /// binfmt_misc handler with the F flag), naming the architecture and the package to install.
    func checkRunnable(_ st: StageState, line: Int) throws {
        let arch = st.config.architecture
        guard !arch.isEmpty else { return }
        switch Emulation.support(architecture: Platform(os: st.config.os, architecture: arch).normalized().architecture) {
        case .native, .emulated: return
        case .unavailable(let reason):
            throw err(line, "RUN cannot execute \(st.config.os)/\(arch) binaries on this \(Emulation.hostArchitecture) machine: \(reason)")
        }
    }

    /// One platform's build; a failed RUN names the platform, since an index build runs the
    /// same step once per platform.
    private static func labelled(_ b: Builder) -> Result<BuildResult, any Error> {
        Result { try b.build() }.mapError { e in
            guard case let BuildError.runFailed(command, status, output, line, nil) = e else { return e }
            return BuildError.runFailed(command: command, status: status, output: output, line: line,
                                        platform: b.options.platform.description)
        }
    }

    /// Builds `options` once per platform in `platforms` and writes an OCI image index over the
    /// results, named by `options.tags` (a single platform gives a plain image, as docker does).
    /// Every stage is built once per platform; the cache keys differ by platform through the
    /// base images and `scratch`. Progress names each step's platform.
    public static func buildPlatforms(store: ImageStore, options: BuildOptions, platforms: [Platform],
                                      progress: @escaping @Sendable (BuildEvent) -> Void = { _ in }) throws -> MultiPlatformResult {
        var seen: Set<String> = []
        for p in platforms {
            let s = p.normalized().description
            if !seen.insert(s).inserted { throw BuildError.invalidOption("--platform lists \(s) more than once") }
        }
        guard !platforms.isEmpty else { throw BuildError.invalidOption("--platform needs at least one platform") }
        if platforms.count == 1 {
            var o = options
            o.platform = platforms[0]
            let r = try Builder(store: store, options: o, progress: progress).build()
            return MultiPlatformResult(descriptor: r.image.descriptor, results: [r])
        }
        var builders: [Builder] = []
        for p in platforms {
            var o = options
            o.platform = p.normalized()
            o.tags = []
            o.deferCacheExport = true
            let label = o.platform.description
            builders.append(try Builder(store: store, options: o, progress: { e in progress(e.prefixed(label)) }))
        }
        // The platforms build side by side: a foreign one spends most of its time in QEMU, which
        // then overlaps the others. A stage pinned with `FROM --platform=` (a cross-compiling
        // stage on $BUILDPLATFORM) is the same for every target, so the first platform builds
        // alone first and the others find that stage in the cache instead of building it again.
        let outcomes = PlatformOutcomes(count: builders.count)
        let first = builders[0].plan.stages.contains(where: { $0.platform != nil }) ? 1 : 0
        if first == 1 { outcomes.set(0, .success(try labelled(builders[0]).get())) }
        let rest = Array(builders[first...])
        DispatchQueue.concurrentPerform(iterations: rest.count) { n in
            outcomes.set(first + n, labelled(rest[n]))
        }
        // The first failing platform in the order asked, whatever order they failed in.
        let results = try outcomes.all()
        let manifests = results.map { r -> Descriptor in
            var d = r.image.descriptor
            d.annotations = nil
            d.platform = Platform(os: r.image.config.os, architecture: r.image.config.architecture, variant: r.image.config.variant)
            return d
        }
        let desc = try store.putIndex(manifests: manifests, tag: options.tags.first)
        for t in options.tags.dropFirst() { try store.tag(t, descriptor: desc) }
        // One export with every platform's records: per platform, each would replace the last.
        var keys: [String] = []
        var seenKeys: Set<String> = []
        for r in results { for k in r.exportKeys where seenKeys.insert(k).inserted { keys.append(k) } }
        let cache = builders[0].cache
        for dir in options.cacheTo { try cache.exportLocal(keys: keys, to: dir) }
        for ref in options.cacheToRegistry { try cache.exportRegistry(keys: keys, to: ref) }
        return MultiPlatformResult(descriptor: desc, results: results)
    }
}

/// Each platform's build outcome, filled in from the threads that build them.
final class PlatformOutcomes: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Result<BuildResult, any Error>?]

    init(count: Int) { items = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ r: Result<BuildResult, any Error>) { lock.lock(); items[i] = r; lock.unlock() }

    /// The results in order, or the first platform's error (in the order asked).
    func all() throws -> [BuildResult] {
        lock.lock(); defer { lock.unlock() }
        return try items.map { r in
            guard let r else { throw BuildError.system("a platform's build produced no result") }
            return try r.get()
        }
    }
}

/// What a multi-platform build produced: the index (or, for one platform, the image) and each
/// platform's build.
public struct MultiPlatformResult: Sendable {
    /// The index over the platforms' images, or the image itself when one platform was asked for.
    public var descriptor: Descriptor
    /// One result per platform, in the order asked.
    public var results: [BuildResult]
    /// The ID `build` prints: the index digest, or the image's config digest.
    public var id: Digest {
        results.count == 1 ? results[0].image.id : descriptor.digest
    }
}

extension BuildEvent {
    /// The event with its stage named after the platform too (`linux/arm64 build`).
    func prefixed(_ platform: String) -> BuildEvent {
        switch self {
        case let .step(stage, number, total, text): return .step(stage: platform + " " + stage, number: number, total: total, text: text)
        case let .cached(stage, number): return .cached(stage: platform + " " + stage, number: number)
        case let .finished(stage, number, seconds): return .finished(stage: platform + " " + stage, number: number, seconds: seconds)
        case let .output(stage, number, line): return .output(stage: platform + " " + stage, number: number, line: line)
        case .note: return self
        }
    }
}
