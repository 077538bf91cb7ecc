import Containers
import Foundation
import Runtime
import ImageStore
import SystemSupport

/// Which commands of an ordinary user run in its user namespace (`RootlessNamespace`).
enum Rootless {
    /// Commands that touch no store or container, or that must see the host as the user does:
    /// they run as they are.
    static let outside: Set<String> = ["version", "login", "logout", "layer", "dockerfile", "help", "runtime", "completion"]

    /// True when `arguments` (after the global options) is a command an ordinary user runs in
    /// its user namespace: everything that reads or writes the store or containers.
    static func needsNamespace(_ arguments: [String]) -> Bool {
        guard StatePaths.isRootless, !StatePaths.inRootlessNamespace, let first = arguments.first else { return false }
        if outside.contains(first) || first.hasPrefix("-") { return false }
        if arguments.contains("--help") || arguments.contains("-h") && first != "run" && first != "create" { return false }
        if first == "registry", arguments.count > 1, arguments[1] == "serve" || arguments[1] == "gc" { return false }
        return true
    }

    /// Says once, on stderr, which resource flags an ordinary user's container runs without
    /// (no delegated cgroup subtree), as rootless podman and docker do.
    static func warnLimits(_ rec: ContainerRecord) {
        let flags = ContainerManager.unappliedLimits(rec)
        guard !flags.isEmpty else { return }
        FileHandle.standardError.write(Data(("WARNING: \(flags.joined(separator: ", ")) not applied: running rootless without a "
            + "delegated cgroup v2 subtree, the container gets no cgroup of its own (see docs/rootless.md)\n").utf8))
    }

    /// `info`'s rows for an ordinary user: how layers are mounted, the id mapping in force.
    static func driverStatus() -> [(String, String)] {
        guard StatePaths.isRootless else { return [] }
        let scratch = StatePaths.runtimeDir() + "/overlay-probe-\(getpid())"
        var rows = [("Rootless Overlay", StatePaths.inRootlessNamespace ? Overlay.rootlessDescription(scratch: scratch) : Overlay.driver.rawValue)]
        rows.append(("Rootless Network", RootlessNetwork.unavailableReason().map { "none (\($0)): use --network none or host" }
            ?? "pasta (\(RootlessNetwork.pasta ?? "pasta"))"))
        if StatePaths.inRootlessNamespace, let text = try? String(contentsOfFile: "/proc/self/uid_map", encoding: .utf8) {
            let maps = text.split(separator: "\n").map { $0.split(separator: " ").joined(separator: ":") }
            rows.append(("Rootless UID Map", maps.joined(separator: ",")))
        }
        return rows
    }
}
