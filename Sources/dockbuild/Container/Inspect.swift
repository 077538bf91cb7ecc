import ArgumentParser
import Containers
import Foundation

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
            for id in ids { ContainerCLI.out(try Template.render(format, try m.inspect(id))) }
        } else {
            ContainerCLI.out(try m.inspectJSON(ids))
        }
    }
}

/// `{{.State.ExitCode}}`, `{{json .Mounts}}` and `{{.NetworkSettings.IPAddress}}` over inspect output.
enum Template {
    static func render(_ t: String, _ obj: [String: Any]) throws -> String {
        var out = ""
        var rest = Substring(t.replacingOccurrences(of: "\\n", with: "\n").replacingOccurrences(of: "\\t", with: "\t"))
        while let open = rest.range(of: "{{") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "}}") else { throw ContainersError.invalidArgument("--format: unclosed {{") }
            var expr = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            var asJSON = false
            if expr.hasPrefix("json ") { asJSON = true; expr = String(expr.dropFirst(5)).trimmingCharacters(in: .whitespaces) }
            var v: Any? = obj
            for key in expr.split(separator: ".") { v = (v as? [String: Any])?[String(key)] }
            if asJSON || v is [String: Any] || v is [Any] {
                let d = (try? JSONSerialization.data(withJSONObject: v ?? NSNull(), options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])) ?? Data("null".utf8)
                out += String(decoding: d, as: UTF8.self)
            } else if let b = v as? Bool, !(v is Int) || "\(type(of: v!))".contains("Bool") {
                out += b ? "true" : "false"
            } else if let v, !(v is NSNull) {
                out += "\(v)"
            } else {
                out += "<no value>"
            }
            rest = rest[close.upperBound...]
        }
        return out + rest
    }
}

/// `container inspect`.
struct ContainerInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show containers as JSON.")
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Template, e.g. '{{.State.ExitCode}}'.") var format: String?
    @Argument var containers: [String]

    func run() throws {
        try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            let ids = try containers.map { try m.store.lookup($0).id }
            try ContainerInspect.print(m, ids: ids, format: format)
        }
    }
}
