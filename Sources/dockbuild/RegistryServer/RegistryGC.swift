import ArgumentParser
import Foundation
import RegistryServer

/// `dockbuild registry gc`: delete blobs no manifest references.
struct RegistryGC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove registry blobs that no manifest references, stale uploads and crash leftovers.",
        discussion: """
        Run it while nothing pushes to the registry (stop the server or restart it with --read-only).
        Also removes temporary files of interrupted writes whose process exited, and upload
        sessions of monolithic uploads whose server process exited; a running server's files stay.
        """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "Storage directory (default: <root>/registry).")
    var storage: String?

    @Flag(help: "Only report what would be removed.")
    var dryRun = false

    @Option(help: "Remove upload sessions idle for longer than this many seconds.")
    var uploadAge: Double = 3600

    func run() throws {
        let dir = storage ?? global.resolvedRoot + "/registry"
        guard FileManager.default.fileExists(atPath: dir) else {
            throw ValidationError("no registry storage at \(dir); pass --storage DIR or --root")
        }
        let store = RegistryStore(driver: try FilesystemDriver(root: dir))
        let r = try store.collectGarbage(dryRun: dryRun, uploadAge: uploadAge)
        let verb = dryRun ? "would remove" : "removed"
        for d in r.removedBlobs { print("\(verb) blob \(d)") }
        for u in r.removedUploads { print("\(verb) upload \(u)") }
        for t in r.removedTemporaries { print("\(verb) temporary \(t)") }
        print("\(verb) \(r.removedBlobs.count) blobs (\(r.freedBytes) bytes), \(r.removedLinks) links, \(r.removedUploads.count) uploads, \(r.removedTemporaries.count) temporaries; kept \(r.keptBlobs) blobs")
    }
}
