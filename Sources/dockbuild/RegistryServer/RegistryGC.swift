import ArgumentParser
import Foundation
import RegistryServer

/// `dockbuild registry gc`: delete blobs no manifest references.
struct RegistryGC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove registry blobs that no manifest references, stale uploads and crash leftovers.",
        discussion: """
        Run it while nothing pushes to the registry (stop the server or restart it with --read-only). \
        Reads may go on: replicas on S3 keep serving while it runs.

        Also removes temporary files of interrupted writes whose process exited, and upload \
        sessions of monolithic uploads whose server process exited; a running server's files stay.

        With --config, collects the storage that `registry serve --config` uses: an S3 bucket \
        (storage.s3, where unfinished multipart uploads older than --upload-age are aborted too) \
        or a directory.
        """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "Storage directory (default: <root>/registry).")
    var storage: String?

    @Option(help: ArgumentHelp("The config file of `registry serve` (distribution's config.yml): collect the storage it names, such as storage.s3.", valueName: "file"))
    var config: String?

    @Flag(help: "Only report what would be removed.")
    var dryRun = false

    @Option(help: "Remove upload sessions idle for longer than this many seconds.")
    var uploadAge: Double = 3600

    func run() throws {
        let driver: any StorageDriver
        var dir = storage ?? global.resolvedRoot + "/registry"
        if let config {
            do {
                var settings = try RegistryServeSettings.load(file: config)
                if let storage { settings.storage = storage }
                let cfg = try settings.configuration(defaultStorage: dir)
                dir = cfg.root
                if let s3 = cfg.s3 {
                    let d = try S3Driver(config: s3)
                    try d.checkBucket()
                    driver = d
                } else {
                    driver = try RegistryGC.filesystem(dir)
                }
            } catch let RegistryServerError.invalidConfiguration(message) {
                throw ValidationError(message)
            }
        } else {
            driver = try RegistryGC.filesystem(dir)
        }
        let store = RegistryStore(driver: driver)
        let r = try store.collectGarbage(dryRun: dryRun, uploadAge: uploadAge)
        let verb = dryRun ? "would remove" : "removed"
        for d in r.removedBlobs { print("\(verb) blob \(d)") }
        for u in r.removedUploads { print("\(verb) upload \(u)") }
        for t in r.removedTemporaries { print("\(verb) temporary \(t)") }
        print("\(verb) \(r.removedBlobs.count) blobs (\(r.freedBytes) bytes), \(r.removedLinks) links, \(r.removedUploads.count) uploads, \(r.removedTemporaries.count) temporaries; kept \(r.keptBlobs) blobs")
    }

    static func filesystem(_ dir: String) throws -> FilesystemDriver {
        guard FileManager.default.fileExists(atPath: dir) else {
            throw ValidationError("no registry storage at \(dir); pass --storage DIR, --config FILE or --root")
        }
        return try FilesystemDriver(root: dir)
    }
}
