import ArgumentParser
import Foundation
import SystemSupport
import Runtime

/// `dockbuild cdi`: Container Device Interface specs.
public struct CDICommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "cdi", abstract: "Generate and list CDI (Container Device Interface) specs.",
        subcommands: [CDIGenerate.self, CDIList.self])

    public init() {}
}

struct CDIGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "generate", abstract: "Write a CDI spec for the NVIDIA GPUs of this host.")
    @Option(name: .long, help: "Output file (default: stdout); .json selects JSON.") var output: String?
    @Option(name: .long, help: "yaml or json.") var format: String?
    @Option(name: .customLong("dev-root"), help: "Root under which /dev is searched.") var devRoot: String = "/"
    @Option(name: .customLong("driver-root"), help: "Root under which driver libraries and tools are searched.") var driverRoot: String = "/"
    @Option(name: .long, help: "Device kind.") var kind: String = "nvidia.com/gpu"
    func run() throws {
        try runtimeFail {
            let spec = try CDIGenerator.nvidia(devRoot: devRoot, driverRoot: driverRoot, kind: kind)
            let json = format == "json" || (format == nil && (output ?? "").hasSuffix(".json"))
            let text = try CDIGenerator.encode(spec, json: json)
            if let output {
                do {
                    try FileSystem.makeDirectories(FileSystem.parent(of: output))
                    try FileSystem.writeAtomically(Data(text.utf8), to: output)
                } catch {
                    throw RuntimeError(.system, "cannot write \(output): \(error)")
                }
                FileHandle.standardError.write(Data("wrote \(output): \(spec.devices.count) devices of \(spec.kind)\n".utf8))
            } else {
                print(text, terminator: "")
            }
        }
    }
}

struct CDIList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List CDI devices from /etc/cdi and /var/run/cdi.")
    @Option(name: .customLong("spec-dir"), help: "Spec directory; repeatable (default: /etc/cdi, /var/run/cdi).") var specDirs: [String] = []
    func run() throws {
        try runtimeFail {
            let reg = try CDIRegistry.load(directories: specDirs.isEmpty ? CDIRegistry.defaultDirectories : specDirs)
            reg.deviceNames.forEach { print($0) }
        }
    }
}
