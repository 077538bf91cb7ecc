import ArgumentParser
import Foundation
import ImageStore

/// Options every command that touches the store accepts.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Root of dockbuild's state (default: $DOCKBUILD_ROOT, /var/lib/dockbuild as root, ~/.local/share/dockbuild otherwise).")
    var root: String?

    /// The store root after defaults are applied.
    /// Absolute: paths under the root go into mount options and runtime bundles.
    var resolvedRoot: String { ImageStore.absolute(root ?? ImageStore.defaultRoot()) }
}
