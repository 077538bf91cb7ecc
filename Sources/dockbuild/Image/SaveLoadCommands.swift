import ArgumentParser
import Build
import Foundation
import ImageStore
import OCI

/// `dockbuild save`: images to a tar (docker-archive or OCI layout).
struct SaveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "save",
        abstract: "Save images to a tar archive (docker-archive by default, or an OCI layout).")

    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Write to this file instead of standard output.") var output: String?
    @Option(help: "docker (docker save's format) or oci (an OCI image layout).") var format: String = "docker"
    @Option(help: "Platform to save for multi-platform images (default: this machine's).") var platform: String?
    @Argument(help: "Names, IDs or digests.") var images: [String]

    func validate() throws {
        if images.isEmpty { throw ValidationError("save needs at least one image") }
        if ImageArchiveFormat(rawValue: format) == nil { throw ValidationError("--format must be docker or oci, not \(format)") }
    }

    func run() throws {
        let target = output ?? "-"
        if target == "-" && isatty(1) != 0 {
            throw UserError("refusing to write an archive to a terminal; use -o FILE or redirect standard output")
        }
        try ImageCLI.run {
            let store = try ImageCLI.openStore(global)
            let plat = try platform.map { try Platform(parsing: $0) } ?? .host
            try store.save(images, format: ImageArchiveFormat(rawValue: format) ?? .docker, to: target, platform: plat)
        }
    }
}

/// `dockbuild load`: images from a docker-archive or OCI layout tar.
struct LoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load images from a tar archive (docker-archive or OCI layout; compressed or not).")

    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Read from this file instead of standard input.") var input: String?
    @Flag(name: .shortAndLong, help: "Print nothing.") var quiet = false

    func run() throws {
        let source = input ?? "-"
        if source == "-" && isatty(0) != 0 {
            throw UserError("requested load from standard input, but it is a terminal; use -i FILE or redirect standard input")
        }
        let loaded = try ImageCLI.run {
            let store = try ImageCLI.openStore(global)
            return try store.load(from: source)
        }
        if quiet { return }
        var lines: [String] = []
        for l in loaded {
            if l.names.isEmpty { lines.append("Loaded image ID: \(l.id)") }
            for n in l.names { lines.append("Loaded image: \(n.familiarString)") }
        }
        ImageCLI.writeStdout(lines.joined(separator: "\n"))
    }
}

/// `dockbuild import`: a root filesystem as a one-layer image.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a root filesystem (tarball, compressed or not, a directory, or - for stdin) as an image.")

    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Apply a Dockerfile instruction to the config (CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, SHELL, STOPSIGNAL, USER, VOLUME, WORKDIR).")
    var change: [String] = []
    @Option(name: .shortAndLong, help: "Commit message for the image's history.") var message: String?
    @Option(help: "Platform to record (default: this machine's).") var platform: String?
    @Option(help: "Layer compression: gzip[:0-9], zstd[:1-22] or none.") var compression: String = "gzip"
    @Argument(help: "Tarball, directory, or - for standard input.") var source: String
    @Argument(help: "Name for the image, e.g. busybox:local.") var reference: String?

    func run() throws {
        let image = try ImageCLI.run {
            let store = try ImageCLI.openStore(global)
            var opts = ImageStore.ImportOptions()
            opts.changes = change
            opts.message = message
            if let platform { opts.platform = try Platform(parsing: platform) }
            do { opts.compression = try .init(parsing: compression) } catch { throw UserError("\(error)") }
            let tag = try reference.map { try ImageReference(parsing: $0) }
            return try store.importRootfs(from: source, tag: tag, options: opts)
        }
        ImageCLI.writeStdout(image.id.description)
    }
}

/// `dockbuild image prune`: remove dangling images (all unused with -a), then collect garbage.
struct PruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove dangling images (with -a: every image no container uses) and free their blobs.")

    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Remove all images that no container uses, not just dangling ones.") var all = false
    @Flag(name: .shortAndLong, help: "Do not prompt (dockbuild never prompts; accepted for docker compatibility).") var force = false

    func run() throws {
        let (lines, result) = try ImageCLI.run {
            let store = try ImageCLI.openStore(global)
            let held = Set(store.holds().values)
            var lines: [String] = []
            var removed = Set<Digest>()
            for e in try store.listImages() where !held.contains(e.descriptor.digest) {
                if e.reference == nil || all {
                    if let r = e.reference {
                        try store.untag(r)
                        lines.append("untagged: \(r.familiarString)")
                    } else {
                        try store.removeImage(e.descriptor.digest)
                    }
                    removed.insert(e.descriptor.digest)
                }
            }
            for d in removed.sorted() where try store.names(for: d).isEmpty {
                try store.removeImage(d)
                lines.append("deleted: \((try? store.imageID(of: Descriptor(mediaType: MediaType.imageManifest, digest: d, size: 0))) ?? d)")
            }
            return (lines, try store.gc())
        }
        var out = lines.isEmpty ? "" : "Deleted Images:\n" + lines.joined(separator: "\n") + "\n\n"
        out += "Total reclaimed space: \(ImageCLI.humanSize(result.reclaimedBytes))"
        ImageCLI.writeStdout(out)
    }
}

/// `dockbuild image gc`: remove blobs, snapshots and temp files no name, image or container reaches.
struct GCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove blobs and snapshots that no image or container reaches.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let r = try ImageCLI.run { () -> GCResult in
            let store = try ImageCLI.openStore(global)
            // what killed builds left (their RUN processes, overlays, namespaces) holds nothing worth keeping
            BuildSession.reapDead(store: store.root)
            return try store.gc()
        }
        ImageCLI.writeStdout("removed \(r.removedBlobs.count) blobs (\(ImageCLI.humanSize(r.reclaimedBytes))), \(r.removedSnapshots.count) snapshots, \(r.removedTempFiles) temp files")
    }
}
