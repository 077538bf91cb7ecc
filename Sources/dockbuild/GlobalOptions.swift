import ArgumentParser
import Foundation

/// Options every command that touches the store accepts.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Root of dockbuild's state (default: $DOCKBUILD_ROOT, /var/lib/dockbuild as root, ~/.local/share/dockbuild otherwise).")
    var root: String?

    /// The store root after defaults are applied.
    var resolvedRoot: String {
        if let root { return root }
        if let env = ProcessInfo.processInfo.environment["DOCKBUILD_ROOT"], !env.isEmpty { return env }
        if getuid() == 0 { return "/var/lib/dockbuild" }
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        return home + "/.local/share/dockbuild"
    }
}
