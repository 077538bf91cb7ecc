import ArgumentParser
import Foundation
import ImageStore
import OCI
import Registry

struct PullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Pull an image from a registry into the local store.",
        discussion: """
        Credentials come from docker's config.json (see `dockbuild login`). The digest of the \
        pulled manifest or index is printed on stdout; progress goes to stderr.
        """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var transfer: RegistryTransferOptions

    @Option(name: .long, help: "Platform to pull from a multi-platform image, os/arch[/variant] (default: this machine's).")
    var platform: String?

    @Flag(name: .long, help: "Pull every platform of a multi-platform image.")
    var allPlatforms = false

    @Argument(help: "Image reference: NAME[:TAG] or NAME@DIGEST (docker.io/library/ is implied for short names).")
    var image: String

    func run() async throws {
        let ref = try parseReference(image)
        var options = PullOptions(maxConcurrent: transfer.maxConcurrent)
        options.allPlatforms = allPlatforms
        if let platform {
            do { options.platform = try Platform(parsing: platform).validated() } catch { throw ValidationError("--platform: \(error)") }
        }
        let printer = RegistryProgressPrinter(quiet: transfer.quiet, verb: "Downloading")
        options.progress = printer.handler
        let store = try ImageStore(root: global.resolvedRoot)
        let client = RegistryClient(registry: ref.domain, insecure: transfer.insecure)
        let start = Date()
        let result = try await client.pull(ref, into: store, options: options)
        let secs = Date().timeIntervalSince(start)
        printer.message("Pulled \(ref.familiarString): \(result.downloadedBlobs) blobs (\(human(result.downloadedBytes))) downloaded, \(result.skippedBlobs) already present, in \(String(format: "%.1f", secs))s")
        print(result.descriptor.digest)
    }
}
