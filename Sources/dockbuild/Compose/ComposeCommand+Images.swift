import ArgumentParser
import Compose
import Containers
import Foundation
import ImageStore
import OCI
import Registry

// `compose create`, `images`, `push` and `cp`: the top-level commands' code over the project's
// containers and images.

struct ComposeCreate: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create the services' containers without starting them.")
    @Flag(name: .long, help: "Build images before creating containers.") var build = false
    @Flag(name: .long, help: "Recreate containers even if their configuration is unchanged.") var forceRecreate = false
    @Flag(name: .long, help: "Do not create the services' dependencies.") var noDeps = false
    @Option(name: .long, help: "SERVICE=N: create N containers of the service.") var scale: [String] = []
    @Argument(help: "Services (all by default).") var services: [String] = []
    func run(_ ctx: ComposeContext) async throws {
        let e = try ctx.engine { try ComposeUp.applyScale(scale, to: &$0) }
        try await e.create(services, forceRecreate: forceRecreate, noDeps: noDeps, build: build)
    }
}

struct ComposeImages: ComposeSubcommand {
    static let configuration = CommandConfiguration(commandName: "images", abstract: "List the images of the services' containers.")
    @Flag(name: .shortAndLong, help: "Only the image IDs.") var quiet = false
    @Argument(help: "Services (all by default).") var services: [String] = []
    func run(_ ctx: ComposeContext) async throws {
        let e = try ctx.engine()
        try e.checkServices(services)
        let store = try e.manager.images()
        var rows = [["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"]]
        var ids: [String] = []
        for c in e.containers(services) {
            let id = String(c.record.imageID.split(separator: ":").last?.prefix(12) ?? "")
            let ref = try? ImageReference(parsing: c.record.image)
            let size = (try? store.summary(for: c.record.imageDescriptor)).map { ImageCLI.humanSize($0.size) } ?? "N/A"
            rows.append([c.name, ref?.familiarName ?? c.record.image, ref?.tag ?? (ref?.digest == nil ? "latest" : "<none>"), id, size])
            if !ids.contains(id) { ids.append(id) }
        }
        if quiet { for id in ids { print(id) }; return }
        let widths = (0..<5).map { i in rows.map { $0[i].count }.max() ?? 0 }
        for r in rows {
            print(r.enumerated().map { i, v in i == 4 ? v : v.padding(toLength: widths[i] + 3, withPad: " ", startingAt: 0) }.joined())
        }
    }
}

struct ComposePush: ComposeSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "push", abstract: "Push the images of services with `build:` to their registries.",
        discussion: "Each service with `build:` and an `image:` name is pushed to the registry that name says (as `dockbuild push IMAGE`); the others are skipped.")
    @Flag(name: .long, help: "Go on when a push fails (and exit 0).") var ignorePushFailures = false
    @Flag(name: .shortAndLong, help: "No progress output.") var quiet = false
    @Flag(name: .long, help: "Allow plain HTTP and unverified TLS.") var insecure = false
    @Argument(help: "Services (all by default).") var services: [String] = []
    func run(_ ctx: ComposeContext) async throws {
        let e = try ctx.engine()
        try e.checkServices(services)
        let store = try e.manager.images()
        for s in e.project.services where (services.isEmpty || services.contains(s.name)) && s.build != nil {
            do {
                let ref = try ImageReference(parsing: s.image)
                guard let descriptor = try? store.resolve(s.image) else {
                    throw ComposeError.service("service \"\(s.name)\": image \(s.image) is not in the store: build it first (`dockbuild compose build \(s.name)`)")
                }
                if !quiet { ComposeCLI.err(" \(s.name) Pushing \(ref.familiarString)") }
                let client = RegistryClient(registry: ref.domain, insecure: insecure)
                let result = try await client.push(descriptor, from: store, to: ref, options: PushOptions())
                if !quiet { ComposeCLI.err(" \(s.name) Pushed \(result.descriptor.digest)") }
            } catch {
                guard ignorePushFailures else {
                    if error is ComposeError { throw error }
                    throw ComposeError.service("service \"\(s.name)\": push of \(s.image) failed: \(error)")
                }
                ComposeCLI.err("WARN: service \"\(s.name)\": push of \(s.image) failed: \(error)")
            }
        }
    }
}

struct ComposeCp: ComposeSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "cp", abstract: "Copy files between a service's container and the host.",
        discussion: "SERVICE:SRC HOSTPATH, or HOSTPATH SERVICE:DEST (to every container of the service with --all).")
    @Option(name: .long, help: "Which container of the service (1 by default).") var index: Int?
    @Flag(name: .shortAndLong, help: "Copy to every container of the service.") var all = false
    @Argument(help: "SERVICE:SRC or a host path.") var source: String
    @Argument(help: "A host path or SERVICE:DEST.") var destination: String

    func run(_ ctx: ComposeContext) async throws {
        let e = try ctx.engine()
        func split(_ s: String) -> (String, String)? {
            guard !s.hasPrefix("/"), !s.hasPrefix("."), let i = s.firstIndex(of: ":") else { return nil }
            return (String(s[..<i]), String(s[s.index(after: i)...]))
        }
        let toContainer: Bool
        let service: String, containerPath: String, hostPath: String
        if let (svc, path) = split(source), split(destination) == nil {
            (service, containerPath, hostPath, toContainer) = (svc, path, destination, false)
        } else if let (svc, path) = split(destination), split(source) == nil {
            (service, containerPath, hostPath, toContainer) = (svc, path, source, true)
        } else {
            throw ComposeError.invalidArgument("cp: exactly one of the two paths must be SERVICE:PATH")
        }
        try e.checkServices([service])
        let candidates = e.containers([service])
        let chosen: [Container]
        if all && toContainer {
            chosen = candidates
        } else {
            let n = String(index ?? 1)
            chosen = candidates.filter { $0.record.labels[ComposeLabel.number] == n }
        }
        guard !chosen.isEmpty else {
            throw ComposeError.service("service \"\(service)\" has no container \(all ? "" : String(index ?? 1)): create it with `dockbuild compose up`")
        }
        for c in chosen {
            do { try e.manager.copy(c.id, containerPath: containerPath, hostPath: hostPath, toContainer: toContainer) } catch {
                throw ComposeError.service("cp \(c.name): \(error)")
            }
        }
    }
}
