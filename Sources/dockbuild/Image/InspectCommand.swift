import ArgumentParser
import Containers
import Foundation
import ImageStore
import OCI

/// `dockbuild inspect`: images as `docker image inspect` shows them, plus the manifest.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show containers or images as JSON (docker inspect's fields; images add their manifest).")

    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Format with a Go template: '{{.Id}}', '{{.Config.Cmd}}', '{{json .RootFS}}', or json.")
    var format: String?
    @Option(help: "Platform to show for multi-platform images (default: this machine's).")
    var platform: String?
    @Option(help: "Only objects of this type: container, image or volume (default: a container, else an image).")
    var type: String?
    @Argument(help: "Names, IDs or digests of containers, images or volumes.") var images: [String]

    func validate() throws {
        if images.isEmpty { throw ValidationError("inspect needs at least one container, image or volume") }
        if let type, !["container", "image", "volume"].contains(type) {
            throw ValidationError("\"\(type)\" is not a valid value for --type (container, image or volume)")
        }
        if let format, format != "json", type == nil || type == "image" {
            _ = try OutputFormat.parse(format, typeName: "types.ImageInspect", strictMaps: true)
        }
    }

    func run() throws {
        switch type {
        case "container":
            try ContainerCLI.guarded {
                let m = try ContainerCLI.manager(global)
                try ContainerInspect.print(m, ids: try images.map { try m.store.lookup($0).id }, format: format)
            }
            return
        case "volume":
            try VolumeGroup.Inspect.show(global, names: images, format: format)
            return
        case "image": break
        default:
            // Containers first, as docker's top-level inspect does; images otherwise.
            if try ContainerInspect.tryContainers(global, names: images, format: format) { return }
            return try inspectAny()
        }
        let store = try ImageCLI.run { try ImageCLI.openStore(global) }
        let plat = try ImageCLI.run { try platform.map { try Platform(parsing: $0) } ?? .host }
        var docs: [TemplateValue] = []
        var failures: [String] = []
        for arg in images {
            do {
                docs.append(try ImageCLI.run { try Self.describe(arg, store: store, platform: plat) })
            } catch {
                failures.append("\(error)")
            }
        }
        if let format {
            let t = try OutputFormat.parse(format == "json" ? "{{json .}}" : format, typeName: "types.ImageInspect", strictMaps: true)
            for d in docs { ImageCLI.writeStdout(try t.render(d)) }
        } else {
            ImageCLI.writeStdout(TemplateValue.array(docs).pretty(indent: "    "))
        }
        if !failures.isEmpty { throw UserError(failures.joined(separator: "\nError: ")) }
    }

    /// No `--type`: each name is a container, else an image, else a volume (docker's order),
    /// all printed in one array; a name that is none of them is docker's "No such object".
    func inspectAny() throws {
        let m = try? ContainerManager(root: global.resolvedRoot)
        let store = try? ImageCLI.openStore(global)
        let plat = try ImageCLI.run { try platform.map { try Platform(parsing: $0) } ?? .host }
        var parts: [(text: String, value: TemplateValue)] = []
        var failures: [String] = []
        for arg in images {
            if let m, let c = try? m.store.lookup(arg) {
                // the container's text as `inspect` prints it, without the array around it
                let text = try ContainerCLI.guarded { try m.inspectJSON([c.id]) }
                let inner = text.split(separator: "\n", omittingEmptySubsequences: false).dropFirst().dropLast().joined(separator: "\n")
                guard case let .array(docs) = TemplateValue(try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))),
                      let doc = docs.first else { continue }
                parts.append((inner, doc))
            } else if let store, let doc = try? Self.describe(arg, store: store, platform: plat) {
                parts.append(("    " + doc.pretty(indent: "    ", level: 1), doc))
            } else if let m, let v = try? m.volumes.inspect(arg) {
                let doc = VolumeGroup.Inspect.document(v)
                parts.append(("    " + doc.pretty(indent: "    ", level: 1), doc))
            } else {
                failures.append("No such object: \(arg)")
            }
        }
        if let format {
            let t = try OutputFormat.parse(format == "json" ? "{{json .}}" : format, typeName: "types.ContainerJSON", strictMaps: true)
            for p in parts { ImageCLI.writeStdout(try t.render(p.value)) }
        } else {
            ImageCLI.writeStdout(parts.isEmpty ? "[]" : "[\n" + parts.map(\.text).joined(separator: ",\n") + "\n]")
        }
        if !failures.isEmpty { throw UserError(failures.joined(separator: "\nError: ")) }
    }

    static func describe(_ arg: String, store: ImageStore, platform: Platform) throws -> TemplateValue {
        // one read of the index for the look-up and the names (it was read twice)
        let entries = try store.listImages()
        let desc = try store.resolve(arg, in: entries)
        let img = try store.image(for: desc, platform: platform)
        let names = entries.filter { $0.descriptor.digest == desc.digest }.compactMap(\.reference)
        let cfgJSON = try JSONDecoder().decode(JSONValue.self, from: img.configData)
        func field(_ k: String) -> JSONValue? {
            if case let .object(o) = cfgJSON { return o[k] }
            return nil
        }
        let cfg = img.config
        let repoDigests = Array(Set(names.map { "\($0.familiarName)@\(img.repoDigest)" })).sorted()
        var fields: [(String, TemplateValue)] = [
            ("Id", .string(img.id.description)),
            ("RepoTags", .array(names.map { .string($0.familiarString) })),
            ("RepoDigests", .array(repoDigests.map { .string($0) })),
            ("Parent", .string("")),
            ("Comment", .string(cfg.history?.last?.comment ?? "")),
            ("Created", .string(cfg.created ?? "")),
            ("DockerVersion", .string(cfg.dockerVersion ?? "")),
            ("Author", .string(cfg.author ?? "")),
            ("Config", field("config").map(TemplateValue.init) ?? .null),
            ("Architecture", .string(cfg.architecture)),
        ]
        if let v = cfg.variant { fields.append(("Variant", .string(v))) }
        let size = store.contentSize(of: img.manifest.layers)
        fields += [
            ("Os", .string(cfg.os)),
            ("Size", .int(size)),  // docker's: the layers' files, uncompressed
            ("VirtualSize", .int(size)),
            ("RootFS", .object([("Type", .string(cfg.rootfs.type)),
                                ("Layers", .array(cfg.rootfs.diffIDs.map { .string($0.description) }))])),
            ("Metadata", .object([("LastTagTime", .string("0001-01-01T00:00:00Z"))])),
            ("Descriptor", TemplateValue(try JSONDecoder().decode(JSONValue.self, from: CanonicalJSON.encode(desc)))),
            ("Manifest", TemplateValue(try JSONDecoder().decode(JSONValue.self, from: CanonicalJSON.encode(img.manifest)))),
        ]
        return .object(fields)
    }
}

/// A value as docker's Go templates see it: JSON with object keys in a chosen order (docker's
/// field order), printed docker-style (no HTML escaping, as docker's `json` function and
/// API), with Go's `<no value>` for a missing map key. Runtime's `OrderedJSON` is the other
/// ordered JSON: Go's encoding/json defaults (HTML escaped), for runc's output and the logs.
indirect enum TemplateValue {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([TemplateValue])
    case object([(String, TemplateValue)])
    /// What a template gets for a map key that is not there (Go's `<no value>`); JSON null.
    case missing

    /// Sorted keys for values that come from documents.
    init(_ v: JSONValue) {
        switch v {
        case .null: self = .null
        case let .bool(b): self = .bool(b)
        case let .int(i): self = .int(i)
        case let .double(d): self = .double(d)
        case let .string(s): self = .string(s)
        case let .array(a): self = .array(a.map(TemplateValue.init))
        case let .object(o): self = .object(o.keys.sorted().map { ($0, TemplateValue(o[$0] ?? .null)) })
        }
    }

    static func quote(_ s: String) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.withoutEscapingSlashes]
        return (try? e.encode(s)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
    }

    var compact: String {
        switch self {
        case .null, .missing: "null"
        case let .bool(b): b ? "true" : "false"
        case let .int(i): String(i)
        case let .double(d): String(d)
        case let .string(s): TemplateValue.quote(s)
        case let .array(a): "[" + a.map(\.compact).joined(separator: ",") + "]"
        case let .object(o): "{" + o.map { TemplateValue.quote($0.0) + ":" + $0.1.compact }.joined(separator: ",") + "}"
        }
    }

    func pretty(indent: String, level: Int = 0) -> String {
        let pad = String(repeating: indent, count: level + 1)
        let end = String(repeating: indent, count: level)
        switch self {
        case let .array(a):
            if a.isEmpty { return "[]" }
            return "[\n" + a.map { pad + $0.pretty(indent: indent, level: level + 1) }.joined(separator: ",\n") + "\n\(end)]"
        case let .object(o):
            if o.isEmpty { return "{}" }
            return "{\n" + o.map { pad + TemplateValue.quote($0.0) + ": " + $0.1.pretty(indent: indent, level: level + 1) }
                .joined(separator: ",\n") + "\n\(end)}"
        default:
            return compact
        }
    }

    func lookup(_ path: [String]) -> TemplateValue? {
        var cur = self
        for k in path {
            guard case let .object(o) = cur, let next = o.first(where: { $0.0 == k })?.1 else { return nil }
            cur = next
        }
        return cur
    }

    /// Go's fmt %v rendering, as docker's templates print values.
    var goString: String {
        switch self {
        case .null: "<nil>"
        case .missing: "<no value>"
        case let .string(s): s
        case let .array(a): "[" + a.map(\.goString).joined(separator: " ") + "]"
        case let .object(o): "map[" + o.sorted { $0.0 < $1.0 }.map { "\($0.0):\($0.1.goString)" }.joined(separator: " ") + "]"
        default: compact
        }
    }
}
