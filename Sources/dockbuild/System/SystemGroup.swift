import ArgumentParser
import Containers
import Foundation
import ImageStore
import OCI

/// `dockbuild system ...`: docker's management command for the store as a whole.
struct SystemGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "system",
        abstract: "Manage dockbuild's store as a whole (df, info, prune).",
        subcommands: [SystemDf.self, InfoCommand.self, SystemPrune.self])
}

/// `system df`: disk usage by images, containers, volumes and build cache, as docker lays it out.
struct SystemDf: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "df", abstract: "Show dockbuild disk usage.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Format with a Go template ('{{.Type}} {{.Size}}'), table TEMPLATE, or json.") var format: String?

    func validate() throws {
        if !OutputFormat.isDefaultTable(format), let format, format != "json" {
            _ = try OutputFormat.parse(OutputFormat.listTemplate(format).text, typeName: "*formatter.diskUsageImagesContext")
        }
    }

    struct Usage { var type: String; var total: Int; var active: Int; var size: Int64; var reclaimable: Int64 }

    /// Sizes: each blob once (layers images share count once); a container's own layer (its
    /// upper directory); a volume's data.
    static func usage(root: String) throws -> [Usage] {
        let store = try ImageStore(root: root)
        let m = try ContainerManager(root: root)
        let containers = m.store.list()
        let held = Set(store.holds().values)
        var blobsOf: [Digest: Set<Digest>] = [:]
        var sizeOf: [Digest: Int64] = [:]
        for e in try store.listImages() where blobsOf[e.descriptor.digest] == nil {
            guard let img = try? store.image(for: e.descriptor) else { continue }
            var blobs: Set<Digest> = [img.manifest.config.digest]
            sizeOf[img.manifest.config.digest] = 0  // docker counts the layers' files only
            for l in img.manifest.layers { blobs.insert(l.digest); sizeOf[l.digest] = store.contentSize(ofLayer: l) }
            blobsOf[e.descriptor.digest] = blobs
        }
        let all = blobsOf.values.reduce(into: Set<Digest>()) { $0.formUnion($1) }
        let active = blobsOf.filter { held.contains($0.key) }.values.reduce(into: Set<Digest>()) { $0.formUnion($1) }
        let total = all.reduce(Int64(0)) { $0 + (sizeOf[$1] ?? 0) }
        let activeSize = active.reduce(Int64(0)) { $0 + (sizeOf[$1] ?? 0) }
        var rows = [Usage(type: "Images", total: blobsOf.count, active: blobsOf.keys.filter { held.contains($0) }.count,
                          size: total, reclaimable: total - activeSize)]
        var cSize: Int64 = 0, cReclaim: Int64 = 0
        for c in containers {
            let s = du(m.store.directory(c.id) + "/upper")
            cSize += s
            if !c.isRunning { cReclaim += s }
        }
        rows.append(Usage(type: "Containers", total: containers.count, active: containers.filter(\.isRunning).count,
                          size: cSize, reclaimable: cReclaim))
        var used = Set<String>()
        for c in containers { for v in c.record.mounts where v.type == .volume { used.insert(v.source) } }
        var vSize: Int64 = 0, vReclaim: Int64 = 0
        let volumes = m.volumes.list()
        for v in volumes {
            let s = du((try? m.volumes.dataPath(v.name)) ?? "")
            vSize += s
            if !used.contains(v.name) { vReclaim += s }
        }
        rows.append(Usage(type: "Local Volumes", total: volumes.count, active: volumes.filter { used.contains($0.name) }.count,
                          size: vSize, reclaimable: vReclaim))
        rows.append(Usage(type: "Build Cache", total: 0, active: 0, size: 0, reclaimable: 0))
        return rows
    }

    /// Bytes in regular files under `path` (no links followed), as `du` counts apparent size.
    static func du(_ path: String) -> Int64 {
        guard !path.isEmpty, let e = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total: Int64 = 0
        while let rel = e.nextObject() as? String {
            var st = stat()
            if lstat(path + "/" + rel, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { total += Int64(st.st_size) }
        }
        return total
    }

    func run() throws {
        let rows = try ImageCLI.run { try Self.usage(root: global.resolvedRoot) }
        func reclaim(_ u: Usage) -> String {
            let pct = u.size > 0 ? " (\(Int((Double(u.reclaimable) * 100 / Double(u.size)).rounded()))%)" : ""
            return ImageCLI.humanSize(u.reclaimable) + pct
        }
        let values: [TemplateValue] = rows.map { u in
            .object([("Active", .string(String(u.active))), ("Reclaimable", .string(reclaim(u))),
                     ("Size", .string(ImageCLI.humanSize(u.size))), ("TotalCount", .string(String(u.total))), ("Type", .string(u.type))])
        }
        let headers = ["Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"]
        if let out = try OutputFormat.list(format, rows: values, headers: headers, typeName: "*formatter.diskUsageContext") {
            if !out.isEmpty { ImageCLI.writeStdout(out) }
            return
        }
        let table = [["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]]
            + rows.map { [$0.type, String($0.total), String($0.active), ImageCLI.humanSize($0.size), reclaim($0)] }
        ImageCLI.writeStdout(OutputFormat.tabwrite(table.map { $0.joined(separator: "\t") }.joined(separator: "\n")))
    }
}

/// `system prune`: stopped containers, (with --volumes) unused volumes, dangling images (with
/// -a every image no container uses), then the blobs nothing reaches. Asks first, as docker does.
struct SystemPrune: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove unused data: stopped containers, dangling images (-a: unused ones), unused volumes (--volumes).")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Remove all unused images, not just dangling ones.") var all = false
    @Flag(help: "Prune anonymous volumes no container uses too.") var volumes = false
    @Flag(name: .shortAndLong, help: "Do not prompt for confirmation.") var force = false

    func run() throws {
        if !force {
            var warning = "WARNING! This will remove:\n  - all stopped containers\n"
            if volumes { warning += "  - all anonymous volumes not used by at least one container\n" }
            warning += all ? "  - all images without at least one container associated to them\n" : "  - all dangling images\n"
            warning += "  - all blobs and snapshots no image or container uses\n\nAre you sure you want to continue? [y/N] "
            FileHandle.standardOutput.write(Data(warning.utf8))
            let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
            guard answer == "y" || answer == "yes" else { return }
        }
        try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            let ids = m.prune()
            if !ids.isEmpty { ContainerCLI.out("Deleted Containers:\n" + ids.joined(separator: "\n") + "\n") }
            if volumes {
                var used = Set<String>()
                for c in m.store.list() { for v in c.record.mounts where v.type == .volume { used.insert(v.source) } }
                var removed: [String] = []
                for v in m.volumes.list() where !used.contains(v.name) && v.anonymous {
                    try m.volumes.remove(v.name)
                    removed.append(v.name)
                }
                if !removed.isEmpty { ContainerCLI.out("Deleted Volumes:\n" + removed.joined(separator: "\n") + "\n") }
            }
        }
        // images and blobs: `image prune`'s own code and output ("Total reclaimed space")
        let prune = try PruneCommand.parse(["--root", global.resolvedRoot] + (all ? ["--all"] : []))
        try prune.run()
    }
}
