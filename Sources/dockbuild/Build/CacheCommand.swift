import ArgumentParser
import Build
import Foundation
import ImageStore

/// `dockbuild cache ls|prune`: the build step cache.
struct CacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "List or prune the build cache.",
        subcommands: [CacheLs.self, CachePrune.self]
    )
}

struct CacheLs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List cached build steps.")
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let store = try ImageStore(root: global.resolvedRoot)
        let cache = try BuildCache(store: store)
        var total: Int64 = 0
        print("KEY            LAYER                                                                     SIZE")
        for k in cache.keys().sorted() {
            let rec = cache.record(k)
            let size = rec?.layer?.descriptor.size ?? 0
            total += size
            print("\(k.prefix(12))   \(rec?.layer?.descriptor.digest.description ?? "<empty>")   \(size)")
        }
        print("total: \(cache.keys().count) steps, \(total) bytes of layers")
    }
}

struct CachePrune: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove cached build steps and free their layers.")
    @OptionGroup var global: GlobalOptions
    @Option(name: .customLong("keep-storage"), help: "Keep this much (e.g. 500MB, 2GB) of the most recent cache.") var keepStorage: String?

    func run() throws {
        let keep = try keepStorage.map { s -> Int64 in
            guard let v = Self.parseSize(s) else { throw ValidationError("--keep-storage \(s): use a size like 500MB or 2GB") }
            return v
        } ?? 0
        var removed = 0
        do {
            let store = try ImageStore(root: global.resolvedRoot)
            BuildSession.reapDead(store: store.root)
            let cache = try BuildCache(store: store)
            removed = cache.prune(keepBytes: keep)
        }
        let store = try ImageStore(root: global.resolvedRoot)
        let gc = try store.gc()
        print("removed \(removed) cached steps, reclaimed \(gc.reclaimedBytes) bytes")
    }

    static func parseSize(_ s: String) -> Int64? {
        let u = s.uppercased().trimmingCharacters(in: .whitespaces)
        let units: [(String, Int64)] = [("GB", 1 << 30), ("G", 1 << 30), ("MB", 1 << 20), ("M", 1 << 20), ("KB", 1 << 10), ("K", 1 << 10), ("B", 1)]
        for (suffix, mult) in units where u.hasSuffix(suffix) {
            return Int64(u.dropLast(suffix.count)).map { $0 * mult }
        }
        return Int64(u)
    }
}
