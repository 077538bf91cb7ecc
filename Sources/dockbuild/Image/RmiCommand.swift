import ArgumentParser
import Foundation
import ImageStore
import OCI

/// `dockbuild rmi`: untag images and delete those no name or container needs any more.
struct RmiCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rmi",
        abstract: "Remove one or more images.")

    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Remove the image even when other names or containers use it.") var force = false
    @Flag(name: .customLong("no-prune"), help: "Keep the blobs (only remove names).") var noPrune = false
    @Argument(help: "Names, IDs or digests.") var images: [String]

    func validate() throws {
        if images.isEmpty { throw ValidationError("rmi needs at least one image") }
    }

    func run() throws {
        let store = try ImageCLI.run { try ImageCLI.openStore(global) }
        var failures: [String] = []
        var removedAny = false
        for arg in images {
            do {
                let lines = try remove(arg, store: store)
                removedAny = removedAny || lines.contains { $0.hasPrefix("Deleted") }
                ImageCLI.writeStdout(lines.joined(separator: "\n"))
            } catch let e as ImageStoreError {
                failures.append(e.description)
            } catch let e as OCIError {
                failures.append(e.description)
            } catch {
                failures.append("\(error)")
            }
        }
        if removedAny && !noPrune { _ = try? store.gc(wait: 2) }
        if !failures.isEmpty {
            throw UserError(failures.joined(separator: "\nError: "))
        }
    }

    func remove(_ arg: String, store: ImageStore) throws -> [String] {
        let desc = try store.resolve(arg)
        let names = try store.names(for: desc.digest)
        let byName: ImageReference? = (try? ImageReference(parsing: arg)).flatMap { names.contains($0) ? $0 : nil }
        let holders = store.holds().filter { $0.value == desc.digest }.map(\.key).sorted()
        let id = (try? store.imageID(of: desc)) ?? desc.digest
        // A name that is one of several: only the name goes.
        if let byName, names.count > 1 {
            try store.untag(byName)
            return ["Untagged: \(byName.familiarString)"]
        }
        if byName == nil && names.count > 1 && !force {
            throw ImageStoreError.inUse("image \(ImageCLI.shortID(id)) is referenced by several names (\(names.map(\.familiarString).joined(separator: ", "))); remove them by name or use -f")
        }
        if !holders.isEmpty {
            guard force else {
                throw ImageStoreError.inUse("image \(arg) (\(ImageCLI.shortID(id))) is being used by \(holders.joined(separator: ", ")); remove those first or use -f")
            }
            // Forced: the names go, the image stays for its containers (as docker does).
            var lines: [String] = []
            for n in names { try store.untag(n, keepDangling: true); lines.append("Untagged: \(n.familiarString)") }
            return lines
        }
        var lines = names.map { "Untagged: \($0.familiarString)" }
        try store.removeImage(desc.digest)
        lines.append("Deleted: \(id)")
        return lines
    }
}
