import ArgumentParser
import Foundation
import ImageStore
import OCI

/// `dockbuild images`: the images in the store.
struct ImagesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "images",
        abstract: "List images.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Only images of this repository (and tag), e.g. busybox or busybox:1.36.")
    var repository: String?

    @Option(help: "Output format: table, json (one object per line, docker's fields), or a Go template such as '{{.Repository}}:{{.Tag}}' ('table ' before it adds a header).")
    var format: String = "table"

    @Flag(name: .shortAndLong, help: "Only show image IDs.")
    var quiet = false

    @Flag(help: "Show digests.")
    var digests = false

    @Flag(name: .customLong("no-trunc"), help: "Don't truncate IDs.")
    var noTrunc = false

    @Option(name: .shortAndLong, help: "Filter (repeatable): dangling=true|false, reference=PATTERN, label=KEY[=VALUE], before=IMAGE, since=IMAGE.")
    var filter: [String] = []

    @Flag(name: .shortAndLong, help: "Show all images (BuildKit-style builds keep no intermediate images, so the same list).")
    var all = false

    struct Row {
        var repository: String
        var tag: String
        var digest: String
        var id: Digest
        var created: Date?
        var size: Int64
    }

    func validate() throws {
        if !OutputFormat.isDefaultTable(format), format != "json" {
            _ = try OutputFormat.parse(OutputFormat.listTemplate(format).text, typeName: "*formatter.ImageContext")
        }
    }

    func run() throws {
        let store = try ImageCLI.run { try ImageCLI.openStore(global) }
        var rows: [Row] = []
        let entries = try ImageCLI.run { try store.listImages() }
        var repoFilter: ImageReference?
        if let repository {
            repoFilter = try ImageCLI.run { try ImageReference.parseNormalized(repository) }
        }
        var dangling: Bool?
        var refPatterns: [String] = []
        var labels: [String] = []
        var before: [Date] = [], since: [Date] = []
        for f in filter {
            let kv = f.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw ValidationError("--filter \(f): bad format of filter (expected name=value)") }
            switch kv[0] {
            case "dangling":
                switch kv[1].lowercased() {
                case "true", "1": dangling = true
                case "false", "0": dangling = false
                default: throw ValidationError("--filter \(f): invalid filter 'dangling=\(kv[1])': use true or false")
                }
            case "reference": refPatterns.append(kv[1])
            case "label": labels.append(kv[1])
            case "before", "since":
                let when = try ImageCLI.run { () throws -> Date? in
                    let img = try store.image(kv[1])
                    return img.config.createdDate
                }
                guard let when else { throw ValidationError("--filter \(f): image \(kv[1]) has no creation time") }
                if kv[0] == "before" { before.append(when) } else { since.append(when) }
            default: throw ValidationError("--filter \(f): invalid filter '\(kv[0])': use dangling, reference, label, before or since")
            }
        }
        var infos: [Digest: (Digest, Date?, Int64)] = [:]
        var labelsOf: [Digest: [String: String]] = [:]
        for e in entries {
            if let dangling, dangling != (e.reference == nil) { continue }
            if let repoFilter {
                guard let r = e.reference, r.name == repoFilter.name, repoFilter.tag == nil || repoFilter.tag == r.tag else { continue }
            }
            if !refPatterns.isEmpty {
                guard let r = e.reference, refPatterns.contains(where: { fnmatch($0, r.familiarString, 0) == 0 || fnmatch($0, r.familiarName, 0) == 0 }) else { continue }
            }
            // An entry whose content is damaged still gets a row, so it can be removed. Names of the
            // same image read its manifest and config once.
            let info: (Digest, Date?, Int64)
            if let cached = infos[e.descriptor.digest] { info = cached } else {
                let img = try? store.summary(for: e.descriptor)
                info = (img?.id ?? e.descriptor.digest, img?.created, img?.size ?? e.descriptor.size)
                infos[e.descriptor.digest] = info
                labelsOf[e.descriptor.digest] = img?.labels ?? [:]
            }
            if !labels.isEmpty {
                let have = labelsOf[e.descriptor.digest] ?? [:]
                // every label filter must match (docker ANDs them)
                guard labels.allSatisfy({ l in
                    if let eq = l.firstIndex(of: "=") { return have[String(l[..<eq])] == String(l[l.index(after: eq)...]) }
                    return have[l] != nil
                }) else { continue }
            }
            if !before.isEmpty || !since.isEmpty {
                guard let c = info.1, before.allSatisfy({ c < $0 }), since.allSatisfy({ c > $0 }) else { continue }
            }
            rows.append(Row(repository: e.reference?.familiarName ?? "<none>", tag: e.reference?.tag ?? "<none>",
                            digest: e.descriptor.digest.description,
                            id: info.0, created: info.1, size: info.2))
        }
        rows.sort { ($0.created ?? .distantPast) > ($1.created ?? .distantPast) || (($0.created == $1.created) && ($0.repository, $0.tag) < ($1.repository, $1.tag)) }
        let idText: (Digest) -> String = { noTrunc ? $0.description : ImageCLI.shortID($0) }
        if quiet {
            var seen = Set<Digest>()
            let ids = rows.filter { seen.insert($0.id).inserted }.map { idText($0.id) }
            if !ids.isEmpty { ImageCLI.writeStdout(ids.joined(separator: "\n")) }
            return
        }
        // (only for a --format: the default table below formats its own columns; building these
        // for every row cost `images` 25% more instructions in times and sizes never printed)
        let values: [TemplateValue] = OutputFormat.isDefaultTable(format) ? [] : rows.map { r in
            .object([
                ("Containers", .string("N/A")), ("CreatedAt", .string(OutputFormat.goTime(r.created))),
                ("CreatedSince", .string(ImageCLI.since(r.created))), ("Digest", .string(r.digest)), ("ID", .string(idText(r.id))),
                ("Repository", .string(r.repository)), ("SharedSize", .string("N/A")), ("Size", .string(ImageCLI.humanSize(r.size))),
                ("Tag", .string(r.tag)), ("UniqueSize", .string("N/A")), ("VirtualSize", .string(ImageCLI.humanSize(r.size))),
            ])
        }
        let headers = ["Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST", "CreatedSince": "CREATED",
                       "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE",
                       "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE"]
        if let out = try OutputFormat.list(format, rows: values, headers: headers, typeName: "*formatter.ImageContext") {
            if !out.isEmpty { ImageCLI.writeStdout(out) }
            return
        }
        var table: [[String]] = [digests ? ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
                                         : ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]]
        for r in rows {
            var row = [r.repository, r.tag]
            if digests { row.append(r.digest) }
            row += [idText(r.id), ImageCLI.since(r.created), ImageCLI.humanSize(r.size)]
            table.append(row)
        }
        ImageCLI.writeStdout(ImageCLI.table(table))
    }

}
