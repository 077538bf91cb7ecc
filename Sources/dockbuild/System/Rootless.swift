import CRuntime
import Containers
import Foundation
import Runtime
import ImageStore
import SystemSupport

/// Which commands of an ordinary user run in its user namespace (`RootlessNamespace`).
enum Rootless {
    /// True when `arguments` (after the global options) is a command an ordinary user runs in
    /// its user namespace: everything that reads or writes the store or containers. The list of
    /// the commands that run as they are is `cruntime_rootless_needs_namespace`'s, which the
    /// join before main (rootless.c) reads too.
    static func needsNamespace(_ arguments: [String]) -> Bool {
        guard StatePaths.isRootless, !StatePaths.inRootlessNamespace, !arguments.isEmpty else { return false }
        var words = arguments.map { strdup($0) }
        defer { for w in words { free(w) } }
        return words.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { cWords in
                cruntime_rootless_needs_namespace(Int32(cWords.count), cWords.baseAddress) != 0
            }
        }
    }

    /// Says once, on stderr, which resource flags an ordinary user's container runs without
    /// (no delegated cgroup subtree, or one without their controllers), as rootless podman and docker do.
    static func warnLimits(_ rec: ContainerRecord) {
        guard let warning = ContainerManager.limitsWarning(rec) else { return }
        FileHandle.standardError.write(Data((warning + "\n").utf8))
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

/// Marks this program as the dockbuild CLI for rootless.c: an ordinary user's command joins the
/// user namespace before main, with no re-exec, when its holder already runs. Never called.
@_cdecl("dockbuild_rootless_early_join")
func dockbuildRootlessEarlyJoin() {}
