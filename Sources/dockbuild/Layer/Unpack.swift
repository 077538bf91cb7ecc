import Archive
import ArgumentParser
import Foundation
import Runtime
import SystemSupport
import ImageStore
import OCI

/// `dockbuild unpack IMAGE DIR [--bundle]`: the image's layers applied in order, whiteouts honoured.
struct Unpack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Unpack an image's root filesystem into a directory (optionally as an OCI runtime bundle).",
        discussion: """
        Applies every layer of IMAGE in order onto DIR, honouring OCI whiteouts, like
        `umoci unpack` or `crane export`. With --bundle, DIR gets rootfs/ and a config.json made
        from runc's `spec` defaults plus the image's Env, Cmd, Entrypoint, WorkingDir and User,
        ready for `runc run -b DIR NAME`.
        """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Image name, ID or digest in the local store.")
    var image: String

    @Argument(help: "Target directory (created if missing; should be empty).")
    var directory: String

    @Flag(help: "Write an OCI runtime bundle: DIR/rootfs and DIR/config.json.")
    var bundle = false

    @Flag(help: "With --bundle: set process.terminal (needs a terminal for `runc run`).")
    var tty = false

    @Option(help: "Platform to pick from a multi-platform image (default: this machine's).")
    var platform: String?

    func run() throws {
        let store = try ImageStore(root: global.resolvedRoot)
        let chosen = try platform.map { try Platform(parsing: $0) } ?? .host
        let img = try store.image(image, platform: chosen)
        let rootfs = bundle ? directory + "/rootfs" : directory
        try FileSystem.makeDirectories(rootfs)
        let fm = FileManager.default
        if let existing = try? fm.contentsOfDirectory(atPath: rootfs), !existing.isEmpty {
            FileHandle.standardError.write(Data("warning: \(rootfs) is not empty; layers are applied on top of what is there\n".utf8))
        }
        let warn: @Sendable (String) -> Void = { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) }
        let diffIDs = img.config.rootfs.diffIDs
        // Every layer is checked against the config's diff_ids before the first is applied, so a
        // corrupt or tampered image leaves nothing half-unpacked in DIR.
        try store.verifyLayers(of: img.manifest, config: img.config, what: image)
        for (i, layer) in img.manifest.layers.enumerated() {
            let path = store.path(for: layer.digest)
            guard fm.fileExists(atPath: path) else {
                throw ValidationError("layer \(layer.digest) of \(image) is not in the store; pull the image again")
            }
            // The config's diff_ids are checked while the layers stream (same count, or they cannot be matched).
            let expected = diffIDs.count == img.manifest.layers.count ? diffIDs[i] : nil
            try LayerApplier.apply(layer: path, to: rootfs, options: .init(warn: warn, expectedDiffID: expected))
        }
        if bundle {
            let spec = try BundleSpec.make(config: img.config, rootfs: rootfs, terminal: tty)
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = try enc.encode(spec)
            try FileSystem.writeAtomically(data, to: directory + "/config.json")
        }
        print("unpacked \(img.manifest.layers.count) layer(s) of \(image) into \(rootfs)")
    }
}
