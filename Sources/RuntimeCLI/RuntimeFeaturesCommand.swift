import ArgumentParser
import Foundation
import Runtime

/// `runtime features`: runc's features document (what containerd reads to learn what the
/// runtime supports: spec versions, hooks, mount options, namespaces, capabilities, seccomp).
struct RuntimeFeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Show the enabled features (runc's JSON): spec versions, hooks, mount options, namespaces, seccomp.")
    @OptionGroup var verbGlobals: RuntimeVerbGlobals

    func run() throws {
        var data = try RuntimeFeatures.json()
        data.append(0x0a)
        FileHandle.standardOutput.write(data)
    }
}

/// runc's `--version` text: the name and version, the spec version, libseccomp's version.
public enum RuntimeVersion {
    public static func text(_ name: String) -> String {
        "\(name) version \(RuntimeFeatures.version)\nspec: \(RuntimeFeatures.ociVersionMax)\nlibseccomp: \(RuntimeFeatures.libseccompVersion)\n"
    }
}
