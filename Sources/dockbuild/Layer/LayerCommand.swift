import Archive
import ArgumentParser
import Foundation
import SystemSupport

/// `dockbuild layer create|apply|diff`: the layer engine on its own, for scripts and benchmarks.
struct LayerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "layer",
        abstract: "Create, apply and diff OCI layer tarballs.",
        subcommands: [Create.self, Apply.self, Diff.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a directory as a deterministic layer; prints digest, size, diffID.")
        @Argument(help: "Directory to archive.") var directory: String
        @Option(name: .shortAndLong, help: "Output file.") var output: String
        @Option(name: .shortAndLong, help: "none, gzip[:0-9] (0-3 ISA-L, 4-9 zlib) or zstd[:1-22].") var compression = "gzip:1"
        @Option(help: "Compression threads (default: all CPUs; the output does not depend on it).") var threads = 0
        @Option(help: "Path prefix for every entry.") var prefix = ""
        @Flag(help: "Skip fsync of the output.") var noSync = false

        func run() throws {
            let info = try LayerWriter.write(directory: directory, to: output, compression: Compression(parsing: compression),
                                             options: .init(prefix: prefix, threads: threads, sync: !noSync))
            LayerCommand.printInfo(info)
        }
    }

    struct Apply: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply a layer (any compression) onto a directory, honouring whiteouts.")
        @Argument(help: "Layer file (tar, tar+gzip, tar+zstd, bzip2, xz).") var layer: String
        @Argument(help: "Target directory.") var directory: String
        @Flag(help: "Write overlayfs whiteouts instead of deleting (for overlay lower dirs).") var overlayWhiteouts = false

        func run() throws {
            try FileSystem.makeDirectories(directory)
            let warn: @Sendable (String) -> Void = { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) }
            try LayerApplier.apply(layer: layer, to: directory,
                                   options: .init(whiteouts: overlayWhiteouts ? .overlay : .apply, warn: warn))
        }
    }

    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the layer between two directories, or from an overlayfs upper directory.")
        @Argument(help: "LOWER UPPER, or just UPPER with --overlay.") var directories: [String]
        @Flag(help: "The single directory is an overlayfs upper dir.") var overlay = false
        @Option(name: .shortAndLong, help: "Output file.") var output: String
        @Option(name: .shortAndLong, help: "none, gzip[:0-9] or zstd[:1-22].") var compression = "gzip:1"

        func validate() throws {
            if overlay && directories.count != 1 { throw ValidationError("--overlay takes one directory (the upper dir)") }
            if !overlay && directories.count != 2 { throw ValidationError("give LOWER and UPPER (or --overlay UPPER)") }
        }

        func run() throws {
            let c = try Compression(parsing: compression)
            let info = overlay
                ? try LayerDiff.fromOverlayUpper(directories[0], to: output, compression: c)
                : try LayerDiff.between(lower: directories[0], upper: directories[1], to: output, compression: c)
            LayerCommand.printInfo(info)
        }
    }

    static func printInfo(_ info: LayerInfo) {
        print("digest: \(info.digest)\nsize: \(info.size)\ndiffID: \(info.diffID)\nmediaType: \(info.mediaType)")
    }
}
