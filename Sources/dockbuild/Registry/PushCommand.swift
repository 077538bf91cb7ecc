import ArgumentParser
import Foundation
import ImageStore
import OCI
import Registry

struct PushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Push an image from the local store to a registry.",
        discussion: """
        `dockbuild push NAME` pushes the local image NAME to the registry NAME names; \
        `dockbuild push LOCAL DEST` pushes the local image LOCAL as DEST. Blobs the registry has \
        are skipped, blobs another repository of the same registry has are mounted. The digest \
        of the pushed manifest or index is printed on stdout.
        """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var transfer: RegistryTransferOptions

    @Option(name: .long, help: "Blobs larger than this many MiB are uploaded in chunks of this size.")
    var chunkSize: Int = 96

    @Option(name: .long, help: "A repository of the target registry to try mounting blobs from (repeatable).")
    var mountFrom: [String] = []

    @Argument(help: "Local image (name, ID or digest).")
    var image: String

    @Argument(help: "Destination reference (default: the local name).")
    var destination: String?

    func validate() throws {
        guard chunkSize >= 1, chunkSize <= 1 << 20 else {
            throw ValidationError("--chunk-size must be between 1 and 1048576 (MiB), not \(chunkSize)")
        }
    }

    func run() async throws {
        let store = try ImageStore(root: global.resolvedRoot)
        let descriptor = try store.resolve(image)
        let dest: ImageReference
        if let destination {
            dest = try parseReference(destination)
        } else {
            // Without DEST the local name says where to push; an ID or digest names no repository.
            guard let ref = try? ImageReference(parsing: image),
                  try ref.digest != nil || store.names(for: descriptor.digest).contains(ref) else {
                throw ValidationError("'\(image)' is an image ID or digest, not a name, so it does not say where to push: give the destination, e.g. dockbuild push \(image) localhost:5000/NAME:TAG")
            }
            dest = ref
        }
        let printer = RegistryProgressPrinter(quiet: transfer.quiet, verb: "Pushing")
        let options = PushOptions(maxConcurrent: transfer.maxConcurrent, chunkSize: Int64(chunkSize) << 20,
                                  mountFrom: mountFrom, progress: printer.handler)
        let client = RegistryClient(registry: dest.domain, insecure: transfer.insecure)
        let start = Date()
        let result = try await client.push(descriptor, from: store, to: dest, options: options)
        let secs = Date().timeIntervalSince(start)
        printer.message("Pushed \(dest.familiarString): \(result.uploadedBlobs) blobs (\(human(result.uploadedBytes))) uploaded, \(result.mountedBlobs) mounted, \(result.skippedBlobs) already there, in \(String(format: "%.1f", secs))s")
        print(result.descriptor.digest)
    }
}
