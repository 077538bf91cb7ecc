import ArgumentParser
import Foundation
import ImageStore
import OCI

/// `dockbuild history`: how an image was made, newest step first.
struct HistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Show the history of an image.")

    @OptionGroup var global: GlobalOptions
    @Flag(name: .customLong("no-trunc"), help: "Don't truncate output.") var noTrunc = false
    @Flag(name: .shortAndLong, help: "Only show image IDs.") var quiet = false
    @Option(help: "Format with a Go template ('{{.CreatedBy}} {{.Size}}'), table TEMPLATE, or json.") var format: String?
    @Argument(help: "Name, ID or digest.") var image: String

    func run() throws {
        let store = try ImageCLI.run { try ImageCLI.openStore(global) }
        let img = try ImageCLI.run { try store.image(image) }
        var steps = img.config.history ?? []
        if steps.isEmpty {
            steps = img.manifest.layers.map { _ in History() }
        }
        // Each non-empty step owns the next layer, in order.
        var layerIndex = 0
        var rows: [(History, Int64)] = []
        for h in steps {
            var size: Int64 = 0
            if h.emptyLayer != true, layerIndex < img.manifest.layers.count {
                size = store.contentSize(ofLayer: img.manifest.layers[layerIndex])  // docker's: uncompressed
                layerIndex += 1
            }
            rows.append((h, size))
        }
        rows.reverse()
        if quiet {
            ImageCLI.writeStdout(noTrunc ? img.id.description : ImageCLI.shortID(img.id))
            return
        }
        let values: [TemplateValue] = rows.enumerated().map { i, row in
            let (h, size) = row
            let created = h.created.flatMap(ImageConfig.parseDate)
            return .object([
                ("Comment", .string(h.comment ?? "")),
                ("CreatedAt", .string(created.map { ImageConfig.formatDate($0) } ?? "")),
                ("CreatedBy", .string(h.createdBy ?? "")), ("CreatedSince", .string(ImageCLI.since(created))),
                ("ID", .string(i == 0 ? (noTrunc ? img.id.description : ImageCLI.shortID(img.id)) : "<missing>")),
                ("Size", .string(ImageCLI.humanSize(size))),
            ])
        }
        let headers = ["ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
                       "Size": "SIZE", "Comment": "COMMENT"]
        if let out = try OutputFormat.list(format, rows: values, headers: headers, typeName: "*formatter.historyContext") {
            if !out.isEmpty { ImageCLI.writeStdout(out) }
            return
        }
        var table = [["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]]
        for (i, (h, size)) in rows.enumerated() {
            let id = i == 0 ? (noTrunc ? img.id.description : ImageCLI.shortID(img.id)) : "<missing>"
            var by = (h.createdBy ?? "").replacingOccurrences(of: "\n", with: " ")
            if !noTrunc && by.count > 45 { by = String(by.prefix(44)) + "…" }
            table.append([id, ImageCLI.since(h.created.flatMap(ImageConfig.parseDate)), by,
                          ImageCLI.humanSize(size), h.comment ?? ""])
        }
        ImageCLI.writeStdout(ImageCLI.table(table))
    }
}
