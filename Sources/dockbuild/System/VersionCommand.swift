import ArgumentParser
import Foundation

/// `dockbuild version`: docker's layout (Client, then the engine's components), with the
/// versions of the OCI specifications dockbuild implements.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Show the dockbuild version information (client, library and OCI spec versions).")

    @Option(name: .shortAndLong, help: "Format with a Go template, e.g. '{{.Client.Version}}', or json.")
    var format: String?

    /// The specifications this build follows.
    static let specs: [(String, String)] = [
        ("oci-image-spec", "1.1.0"), ("oci-runtime-spec", "1.0.2"), ("oci-distribution-spec", "1.1.0"),
    ]

    func validate() throws {
        if let format, format != "json" { _ = try OutputFormat.parse(format, typeName: "types.VersionInfo") }
    }

    /// The document `--format` sees: `.Client` and `.Server` (the library, as docker's engine).
    static func document() -> TemplateValue {
        let host = SystemInfo.uname()
        let components: [TemplateValue] = [
            .object([("Name", .string("dockbuild")), ("Version", .string(Dockbuild.version)),
                     ("Details", .object([("Runtime", .string("dockbuild runtime (runc's command line)"))]))]),
        ] + specs.map { .object([("Name", .string($0.0)), ("Version", .string($0.1)), ("Details", .object([]))]) }
        let client: TemplateValue = .object([
            ("Platform", .object([("Name", .string("dockbuild"))])),
            ("Version", .string(Dockbuild.version)),
            ("ApiVersion", .string("none (daemonless)")),
            ("GitCommit", .string("")),
            ("SwiftVersion", .string(SystemInfo.swiftVersion)),
            ("Os", .string("linux")),
            ("Arch", .string(SystemInfo.goArch(host.machine))),
            ("Context", .string("default")),
        ])
        let server: TemplateValue = .object([
            ("Platform", .object([("Name", .string("dockbuild (daemonless library)"))])),
            ("Components", .array(components)),
            ("Version", .string(Dockbuild.version)),
            ("Os", .string("linux")),
            ("Arch", .string(SystemInfo.goArch(host.machine))),
            ("KernelVersion", .string(host.release)),
        ])
        return .object([("Client", client), ("Server", server)])
    }

    func run() throws {
        let doc = Self.document()
        if let format {
            ImageCLI.writeStdout(try OutputFormat.single(format, doc, typeName: "types.VersionInfo"))
            return
        }
        func field(_ o: TemplateValue, _ k: String) -> String { o.lookup([k]).map { $0.goString } ?? "" }
        let c = doc.lookup(["Client"]) ?? .null, s = doc.lookup(["Server"]) ?? .null
        var lines = ["Client:",
                     " Version:           \(field(c, "Version"))",
                     " Swift version:     \(field(c, "SwiftVersion"))",
                     " OS/Arch:           \(field(c, "Os"))/\(field(c, "Arch"))",
                     "",
                     "Server: \(s.lookup(["Platform", "Name"])?.goString ?? "")"]
        if case let .array(comps) = s.lookup(["Components"]) ?? .null {
            for comp in comps {
                lines.append(" \(comp.lookup(["Name"])?.goString ?? ""):")
                lines.append("  Version:          \(comp.lookup(["Version"])?.goString ?? "")")
            }
        }
        lines.append(" Kernel:            \(field(s, "KernelVersion"))")
        ImageCLI.writeStdout(lines.joined(separator: "\n"))
    }
}

/// Facts about this machine that `version` and `info` print.
enum SystemInfo {
    struct Uname { var release: String; var machine: String; var nodename: String }

    static func uname() -> Uname {
        var u = utsname()
        _ = Foundation.uname(&u)
        func s<T>(_ v: T) -> String {
            withUnsafeBytes(of: v) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return Uname(release: s(u.release), machine: s(u.machine), nodename: s(u.nodename))
    }

    /// docker's architecture names (GOARCH).
    static func goArch(_ machine: String) -> String {
        switch machine {
        case "x86_64": "amd64"
        case "aarch64": "arm64"
        case "armv7l": "arm"
        default: machine
        }
    }

    static var swiftVersion: String {
        #if compiler(>=6.3)
        "6.3"
        #elseif compiler(>=6.2)
        "6.2"
        #else
        "6.0"
        #endif
    }
}
