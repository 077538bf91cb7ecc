import ArgumentParser
import Containers
import Foundation
import OCI

/// Container-aware `inspect`: the top-level `inspect` calls `ContainerInspect.tryContainers`
/// first; when every name is a container it prints them, otherwise it falls through to images.
enum ContainerInspect {
    /// Prints the JSON and returns true when all `names` are containers; false (printing nothing) otherwise.
    static func tryContainers(_ global: GlobalOptions, names: [String], format: String?) throws -> Bool {
        guard let m = try? ContainerManager(root: global.resolvedRoot) else { return false }
        var ids: [String] = []
        for n in names {
            guard let c = try? m.store.lookup(n) else { return false }
            ids.append(c.id)
        }
        try print(m, ids: ids, format: format)
        return true
    }

    static func print(_ m: ContainerManager, ids: [String], format: String?) throws {
        if let format {
            let t = try OutputFormat.parse(format == "json" ? "{{json .}}" : format, typeName: "types.ContainerJSON", strictMaps: true)
            for id in ids {
                guard case let .array(docs) = TemplateValue(try JSONDecoder().decode(JSONValue.self, from: Data(try m.inspectJSON([id]).utf8))),
                      let doc = docs.first else { continue }
                ContainerCLI.out(try t.render(doc))
            }
        } else {
            ContainerCLI.out(try m.inspectJSON(ids))
        }
    }
}

/// `container inspect`.
struct ContainerInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show containers as JSON.")
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Template, e.g. '{{.State.ExitCode}}'.") var format: String?
    @Argument(help: "Container names or IDs.") var containers: [String]

    func run() throws {
        try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            let ids = try containers.map { try m.store.lookup($0).id }
            try ContainerInspect.print(m, ids: ids, format: format)
        }
    }
}
