import ArgumentParser
import Containers
import Foundation
import SystemSupport
import ImageStore

/// `dockbuild info`: docker's system-wide information for the store under `--root` (there is
/// no daemon: the "server" is this store, its runtime and this kernel).
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Display system-wide information: store, storage, runtime, cgroups, security, registries, counts.")

    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Format with a Go template, e.g. '{{.Images}}' or '{{json .SecurityOptions}}', or json.")
    var format: String?

    func validate() throws {
        if let format, format != "json" { _ = try OutputFormat.parse(format, typeName: "types.Info") }
    }

    /// docker's `types.Info` fields that mean something here, plus `ClientInfo`.
    static func document(root: String) throws -> TemplateValue {
        let images = try ImageStore(root: root)
        let ids = Set(try images.listImages().map(\.descriptor.digest))
        let manager = try ContainerManager(root: root)
        let containers = manager.store.list()
        // as docker counts them: a paused container is neither running nor stopped
        let paused = containers.filter(\.isPaused).count
        let running = containers.filter(\.isRunning).count - paused
        let runtime = (try? manager.runtime().command) ?? ["dockbuild", "runtime"]
        let host = SystemInfo.uname()
        let cgroupVersion = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers") ? "2" : "1"
        var security: [TemplateValue] = []
        if FileManager.default.fileExists(atPath: "/proc/sys/kernel/seccomp/actions_avail") {
            security.append(.string("name=seccomp,profile=builtin"))
        }
        let rootless = StatePaths.isRootless
        if rootless { security.append(.string("name=rootless")) }
        if cgroupVersion == "2" { security.append(.string("name=cgroupns")) }
        let level = ProcessInfo.processInfo.environment["DOCKBUILD_LOG_LEVEL"] ?? "info"
        return .object([
            ("ID", .string("")),
            ("Containers", .int(Int64(containers.count))),
            ("ContainersRunning", .int(Int64(running))),
            ("ContainersPaused", .int(Int64(paused))),
            ("ContainersStopped", .int(Int64(containers.count - running - paused))),
            ("Images", .int(Int64(ids.count))),
            ("Driver", .string("overlay")),
            ("DriverStatus", .array([
                .array([.string("Content Store"), .string("oci-layout at \(root)")]),
                .array([.string("Snapshots"), .string("\(root)/snapshots")]),
            ] + Rootless.driverStatus().map { .array([.string($0.0), .string($0.1)]) })),
            ("Debug", .bool(level == "debug")),
            ("KernelVersion", .string(host.release)),
            ("OperatingSystem", .string(SystemInfo.operatingSystem)),
            ("OSType", .string("linux")),
            ("Architecture", .string(host.machine)),
            ("NCPU", .int(Int64(ProcessInfo.processInfo.activeProcessorCount))),
            ("MemTotal", .int(Int64(ProcessInfo.processInfo.physicalMemory))),
            ("DockerRootDir", .string(root)),
            ("Name", .string(host.nodename)),
            ("ServerVersion", .string(Dockbuild.version)),
            ("CgroupDriver", .string("cgroupfs")),
            ("CgroupVersion", .string(cgroupVersion)),
            ("DefaultRuntime", .string(runtime.joined(separator: " "))),
            ("SecurityOptions", .array(security)),
            ("Rootless", .bool(rootless)),
            ("RegistryConfig", .object([("Auths", .array(registries().map(TemplateValue.string)))])),
            ("ClientInfo", .object([
                ("Debug", .bool(level == "debug")), ("LogLevel", .string(level)),
                ("Version", .string(Dockbuild.version)),
                ("ConfigFile", .string(Self.configPath)),
            ])),
        ])
    }

    static var configPath: String {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["DOCKER_CONFIG"], !dir.isEmpty { return dir + "/config.json" }
        return (env["HOME"] ?? "/root") + "/.docker/config.json"
    }

    /// Registries with credentials in config.json (`auths` keys), sorted.
    static func registries() -> [String] {
        guard let data = FileManager.default.contents(atPath: configPath),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let auths = obj["auths"] as? [String: Any] else { return [] }
        return auths.keys.sorted()
    }

    func run() throws {
        let doc = try ImageCLI.run { try Self.document(root: global.resolvedRoot) }
        if let format {
            ImageCLI.writeStdout(try OutputFormat.single(format, doc, typeName: "types.Info"))
            return
        }
        func v(_ k: String) -> String { doc.lookup([k])?.goString ?? "" }
        func list(_ k: String) -> [String] {
            if case let .array(a) = doc.lookup([k]) ?? .null { return a.map(\.goString) }
            return []
        }
        var lines = [
            "Client:",
            " Version:    \(Dockbuild.version)",
            " Debug Mode: \(v("Debug"))",
            " Config:     \(Self.configPath)",
            "",
            "Server:",
            " Containers: \(v("Containers"))",
            "  Running: \(v("ContainersRunning"))",
            "  Paused: \(v("ContainersPaused"))",
            "  Stopped: \(v("ContainersStopped"))",
            " Images: \(v("Images"))",
            " Server Version: \(v("ServerVersion")) (daemonless)",
            " Storage Driver: \(v("Driver"))",
        ]
        if case let .array(st) = doc.lookup(["DriverStatus"]) ?? .null {
            for pair in st { if case let .array(p) = pair, p.count == 2 { lines.append("  \(p[0].goString): \(p[1].goString)") } }
        }
        lines += [
            " Cgroup Driver: \(v("CgroupDriver"))",
            " Cgroup Version: \(v("CgroupVersion"))",
            " Default Runtime: \(v("DefaultRuntime"))",
            " Security Options:",
        ]
        for s in list("SecurityOptions") {
            let parts = s.split(separator: ",").map { $0.split(separator: "=", maxSplits: 1).map(String.init) }
            for p in parts where p.count == 2 {
                lines.append(p[0] == "name" ? "  \(p[1])" : "   \(p[0].capitalized): \(p[1])")
            }
        }
        lines += [
            " Kernel Version: \(v("KernelVersion"))",
            " Operating System: \(v("OperatingSystem"))",
            " OSType: \(v("OSType"))",
            " Architecture: \(v("Architecture"))",
            " CPUs: \(v("NCPU"))",
            " Total Memory: \(String(format: "%.2fGiB", Double(Int64(v("MemTotal")) ?? 0) / 1_073_741_824))",
            " Name: \(v("Name"))",
            " Docker Root Dir: \(v("DockerRootDir"))",
            " Debug Mode: \(v("Debug"))",
            " Rootless: \(v("Rootless"))",
            " Registries: \(Self.registries().joined(separator: ", "))",
        ]
        ImageCLI.writeStdout(lines.joined(separator: "\n"))
    }
}

extension SystemInfo {
    /// PRETTY_NAME from os-release.
    static var operatingSystem: String {
        guard let text = try? String(contentsOfFile: "/etc/os-release", encoding: .utf8) else { return "Linux" }
        for line in text.split(separator: "\n") where line.hasPrefix("PRETTY_NAME=") {
            return String(line.dropFirst(12)).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return "Linux"
    }
}
