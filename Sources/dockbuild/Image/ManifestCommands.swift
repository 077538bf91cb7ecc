// `dockbuild manifest create|add|annotate|inspect|push|rm`: docker manifest's and buildah
// manifest's verbs over manifest lists kept in the store (ImageStore+ManifestLists). The
// commands parse and print; the store makes every change.
import ArgumentParser
import Foundation
import ImageStore
import OCI
import Registry

/// `dockbuild manifest ...`.
struct ManifestGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifest",
        abstract: "Manage manifest lists (multi-platform OCI image indexes) in the local store.",
        discussion: """
        A manifest list is an OCI image index stored under a name, like an image. Create one, add \
        single-platform images to it (their platform comes from their config), adjust entries with \
        annotate, and push it with the images it lists.
        """,
        subcommands: [ManifestCreate.self, ManifestAdd.self, ManifestAnnotate.self, ManifestInspect.self,
                      ManifestPush.self, ManifestRm.self, ManifestRemove.self]
    )
}

enum ManifestCLI {
    /// A list name as the user typed it: a reference without a digest.
    static func listName(_ s: String) throws -> ImageReference {
        let ref = try parseReference(s)
        guard ref.digest == nil else {
            throw ValidationError("a manifest list is named by name[:tag], not by digest (\(s))")
        }
        return ref
    }

    /// Runs `body`, turning library errors into plain messages (exit 1).
    @discardableResult
    static func run<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let e as ImageStoreError {
            throw UserError(e.description)
        } catch let e as OCIError {
            throw UserError(e.description)
        } catch let e as RegistryError {
            throw UserError(e.description)
        }
    }

    /// What to add for `image`: itself when the store has it; otherwise, when it is a registry
    /// reference, it is pulled first (every platform of an index with `all`, else the one of
    /// `platform`, or this machine's) and the pulled manifest or index is added. docker's
    /// `manifest create` and podman's `manifest add` take registry references this way; here the
    /// images come into the store, so `manifest push` has what it pushes.
    static func localOrPulled(_ image: String, store: ImageStore, all: Bool, platform: Platform?, insecure: Bool) async throws -> Descriptor {
        if let local = try? store.resolve(image) { return local }
        guard let ref = try? parseReference(image) else { return try store.resolve(image) }
        var options = PullOptions()
        options.allPlatforms = all
        if let platform { options.platform = platform }
        let client = RegistryClient(registry: ref.domain, insecure: insecure)
        let result: PullResult
        do {
            result = try await client.pull(ref, into: store, options: options)
        } catch let e as RegistryError {
            throw UserError("no such image: \(image) in the store, and pulling it from its registry failed: \(e.description)")
        }
        if !all, result.manifests.count == 1 { return result.manifests[0] }
        return result.descriptor
    }

    /// Keys in the order docker's `manifest inspect` prints them, the rest sorted after.
    static let keyOrder = ["schemaVersion", "mediaType", "artifactType", "config", "layers", "manifests", "size", "digest",
                           "urls", "data", "platform", "architecture", "os", "os.version", "os.features", "variant",
                           "features", "subject", "annotations"]

    static func ordered(_ v: JSONValue) -> TemplateValue {
        switch v {
        case let .array(a): return .array(a.map(ordered))
        case let .object(o):
            let keys = o.keys.sorted { a, b in
                let ia = keyOrder.firstIndex(of: a) ?? keyOrder.count, ib = keyOrder.firstIndex(of: b) ?? keyOrder.count
                return ia != ib ? ia < ib : a < b
            }
            return .object(keys.map { ($0, ordered(o[$0] ?? .null)) })
        default: return TemplateValue(v)
        }
    }

    /// A manifest or index indented with three spaces, as `docker manifest inspect` prints it.
    static func pretty(_ data: Data) throws -> String {
        let value: JSONValue
        do { value = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw UserError("the document is not JSON: \(error)")
        }
        return ordered(value).pretty(indent: "   ")
    }
}

/// `--os`, `--arch`, ... of `manifest add` and `annotate`.
struct ManifestPlatformOptions: ParsableArguments {
    @Option(name: .customLong("os"), help: "Operating system of the entry (e.g. linux).")
    var os: String?
    @Option(name: .customLong("arch"), help: "Architecture of the entry (e.g. amd64, arm64).")
    var arch: String?
    @Option(name: .customLong("variant"), help: "Architecture variant of the entry (e.g. v7, v8).")
    var variant: String?
    @Option(name: .customLong("os-version"), help: "Operating system version of the entry.")
    var osVersion: String?
    @Option(name: .customLong("os-features"), help: "Operating system features the entry needs (comma-separated, repeatable).")
    var osFeatures: [String] = []
    @Option(name: .customLong("features"), help: "Platform features the entry needs (comma-separated, repeatable).")
    var features: [String] = []
    @Option(name: .customLong("annotation"), help: "An annotation KEY=VALUE for the entry (repeatable).")
    var annotation: [String] = []

    static func list(_ values: [String]) -> [String]? {
        values.isEmpty ? nil : values.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
    }

    /// The edit these flags ask for; a malformed value is a usage error.
    func edit() throws -> ManifestEntryEdit {
        var annotations: [String: String] = [:]
        for a in annotation {
            guard let eq = a.firstIndex(of: "="), eq != a.startIndex else {
                throw ValidationError("--annotation \(a): expected KEY=VALUE")
            }
            annotations[String(a[..<eq])] = String(a[a.index(after: eq)...])
        }
        let edit = ManifestEntryEdit(os: os, architecture: arch, variant: variant, osVersion: osVersion,
                                     osFeatures: Self.list(osFeatures), features: Self.list(features), annotations: annotations)
        // Each field given is checked now (the others stand in with valid values), so a typo is a
        // usage error before anything is read.
        if os != nil || arch != nil || variant != nil || !osFeatures.isEmpty || !features.isEmpty {
            let probe = Platform(os: os ?? "linux", architecture: arch ?? "amd64", variant: variant.flatMap { $0.isEmpty ? nil : $0 },
                                 osFeatures: edit.osFeatures, features: edit.features)
            do { _ = try probe.validated() } catch { throw ValidationError("\(error)") }
        }
        return edit
    }
}

/// `manifest create LIST [IMAGE...]`.
struct ManifestCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a manifest list in the local store, optionally with images in it.",
        discussion: "Prints the digest of the new list. An IMAGE that is itself an index adds all its manifests.")

    @OptionGroup var global: GlobalOptions
    @Flag(name: [.short, .long], help: "Add to the list if LIST already exists.") var amend = false
    @Flag(name: .long, help: "Add every manifest of an IMAGE that is an index (what is always done; for podman's command lines).")
    var all = false
    @Flag(name: .long, help: "HTTPS without checking the certificate, else plain HTTP, when an image is pulled (localhost gets plain HTTP anyway).")
    var insecure = false
    @Argument(help: "Name of the new list, e.g. registry.example.com/team/app:1.0.") var list: String
    @Argument(help: "Images to put in the list: names, IDs or digests in the store, or registry references (pulled first).") var images: [String] = []

    func validate() throws { _ = try ManifestCLI.listName(list) }

    func run() async throws {
        let name = try ManifestCLI.listName(list)
        let store = try ImageCLI.run { try ImageCLI.openStore(global) }
        let desc = try await ManifestCLI.run {
            var local: [String] = []
            for image in images {
                local.append(try await ManifestCLI.localOrPulled(image, store: store, all: true, platform: nil, insecure: insecure).digest.description)
            }
            return try store.createManifestList(name, images: local, amend: amend)
        }
        ImageCLI.writeStdout(desc.digest.description)
    }
}

/// `manifest add LIST IMAGE`.
struct ManifestAdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add an image to a manifest list.",
        discussion: """
        The entry's platform is the image's (from its config), changed by the flags. An image the \
        list already holds is replaced; another image for a platform the list has is refused. \
        An IMAGE that is not in the store is pulled from its registry first: with --all every \
        platform of an index, else the one of --os/--arch/--variant (this machine's by default). \
        Prints the digest of the changed list.
        """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var platform: ManifestPlatformOptions
    @Flag(name: .long, help: "Add every manifest of an IMAGE that is an index (what is always done; for podman's command lines).")
    var all = false
    @Flag(name: .long, help: "HTTPS without checking the certificate, else plain HTTP, when the image is pulled (localhost gets plain HTTP anyway).")
    var insecure = false
    @Argument(help: "Name of the manifest list.") var list: String
    @Argument(help: "Image to add: a name, ID or digest in the store, or a registry reference (pulled first).") var image: String

    func validate() throws {
        _ = try ManifestCLI.listName(list)
        _ = try platform.edit()
    }

    func run() async throws {
        let name = try ManifestCLI.listName(list)
        let edit = try platform.edit()
        let store = try ImageCLI.run { try ImageCLI.openStore(global) }
        // The platform to pull from a remote index: the one the flags name, if they name one.
        let wanted = platform.arch.map {
            Platform(os: platform.os ?? "linux", architecture: $0, variant: platform.variant.flatMap { $0.isEmpty ? nil : $0 })
        }
        let r = try await ManifestCLI.run {
            // --all with a single image is what is always done; with a remote index it pulls all.
            let local = try await ManifestCLI.localOrPulled(image, store: store, all: all, platform: wanted, insecure: insecure)
            // An entry pulled for a named platform already has it; the flags' edit still applies.
            return try store.addToManifestList(name, manifest: local, edit: edit)
        }
        ImageCLI.writeStdout(r.descriptor.digest.description)
    }
}

/// `manifest annotate LIST IMAGE-or-DIGEST`.
struct ManifestAnnotate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "annotate",
        abstract: "Change the platform or annotations of an entry of a manifest list.",
        discussion: "Prints the digest of the changed list.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var platform: ManifestPlatformOptions
    @Argument(help: "Name of the manifest list.") var list: String
    @Argument(help: "The entry: its manifest digest, or an image in the store whose manifest the list holds.") var entry: String

    func validate() throws {
        _ = try ManifestCLI.listName(list)
        guard !(try platform.edit()).isEmpty else {
            throw ValidationError("nothing to change: give --os, --arch, --variant, --os-version, --os-features, --features or --annotation")
        }
    }

    func run() async throws {
        let name = try ManifestCLI.listName(list)
        let edit = try platform.edit()
        let r = try await ManifestCLI.run {
            try ImageCLI.openStore(global).annotateManifestList(name, entry: entry, edit: edit)
        }
        ImageCLI.writeStdout(r.descriptor.digest.description)
    }
}

/// `manifest inspect LIST-or-REFERENCE`.
struct ManifestInspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a manifest list from the store, or a manifest or index from a registry.",
        discussion: "A name that is not a manifest list in the store is fetched from its registry.")

    @OptionGroup var global: GlobalOptions
    @Flag(name: .long, help: "HTTPS without checking the certificate, else plain HTTP (localhost and 127.0.0.0/8 get plain HTTP anyway).")
    var insecure = false
    @Argument(help: "A manifest list in the store, or a registry reference.") var name: String

    func run() async throws {
        let ref = try parseReference(name)
        let store = try ImageCLI.run { try ImageCLI.openStore(global) }
        let data: Data = try await ManifestCLI.run {
            if ref.digest == nil, let (d, _) = try? store.manifestList(ref) {
                return try store.readBlob(d.digest)
            }
            let client = RegistryClient(registry: ref.domain, insecure: insecure)
            let reference = ref.digest?.description ?? ref.tag ?? ImageReference.defaultTag
            return try await client.manifest(ref.path, reference: reference, displayName: ref.familiarString).data
        }
        ImageCLI.writeStdout(try ManifestCLI.pretty(data))
    }
}

/// `manifest push LIST [DESTINATION]`.
struct ManifestPush: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Push a manifest list and the images it lists to a registry.",
        discussion: """
        Pushes each image of the list (blobs, then manifests), then the index, to DESTINATION \
        (default: the list's name), and prints the index's digest.
        """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var transfer: RegistryTransferOptions
    @Flag(name: .long, help: "Push the images the list names too (always done; for podman's command lines).")
    var all = false
    @Flag(name: .customLong("rm"), help: "Remove the list from the store once it is pushed.")
    var remove = false
    @Argument(help: "Name of the manifest list.") var list: String
    @Argument(help: "Destination reference (default: the list's name).") var destination: String?

    func validate() throws {
        _ = try ManifestCLI.listName(list)
        if let destination { _ = try parseReference(destination) }
    }

    func run() async throws {
        let name = try ManifestCLI.listName(list)
        let dest = try destination.map(parseReference) ?? name
        let store = try ImageCLI.run { try ImageCLI.openStore(global) }
        let printer = RegistryProgressPrinter(quiet: transfer.quiet, verb: "Pushing")
        let result = try await ManifestCLI.run {
            let (desc, index) = try store.manifestList(name)
            guard !index.manifests.isEmpty else {
                throw UserError("\(name.familiarString) is empty; add images with `dockbuild manifest add` before pushing it")
            }
            let client = RegistryClient(registry: dest.domain, insecure: transfer.insecure)
            return try await client.push(desc, from: store, to: dest,
                                         options: PushOptions(maxConcurrent: transfer.maxConcurrent, progress: printer.handler))
        }
        printer.message("Pushed \(dest.familiarString): \(result.uploadedBlobs) blobs (\(human(result.uploadedBytes))) uploaded, \(result.mountedBlobs) mounted, \(result.skippedBlobs) already there")
        if remove {
            try await ManifestCLI.run { try store.removeManifestList(name) }
        }
        ImageCLI.writeStdout(result.descriptor.digest.description)
    }
}

/// `manifest rm LIST...`.
struct ManifestRm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove manifest lists from the local store (not the images they list).")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "Names of the manifest lists.") var lists: [String] = []

    func validate() throws {
        if lists.isEmpty { throw ValidationError("manifest rm needs at least one list") }
        for l in lists { _ = try ManifestCLI.listName(l) }
    }

    func run() throws {
        let store = try ImageCLI.run { try ImageCLI.openStore(global) }
        var failures: [String] = []
        for l in lists {
            do {
                try store.removeManifestList(try ManifestCLI.listName(l))
            } catch let e as ImageStoreError {
                failures.append(e.description)
            } catch {
                failures.append("\(error)")
            }
        }
        if !failures.isEmpty { throw UserError(failures.joined(separator: "\nError: ")) }
    }
}

/// `manifest remove LIST DIGEST`: podman's verb for taking one entry out of a list.
struct ManifestRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove an entry from a manifest list.",
        discussion: "ENTRY is the entry's manifest digest, or an image in the store whose manifest the list holds. Prints the digest of the changed list. (To remove whole lists, use `manifest rm`.)")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "Name of the manifest list.") var list: String
    @Argument(help: "The entry: its manifest digest, or an image in the store whose manifest the list holds.") var entry: String

    func validate() throws { _ = try ManifestCLI.listName(list) }

    func run() async throws {
        let name = try ManifestCLI.listName(list)
        let desc = try await ManifestCLI.run {
            try ImageCLI.openStore(global).removeFromManifestList(name, entry: entry)
        }
        ImageCLI.writeStdout(desc.digest.description)
    }
}
