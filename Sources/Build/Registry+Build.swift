import Foundation
import OCI
import ImageStore
import Registry

/// Runs async registry work from the builder's synchronous, non-cooperative threads.
final class AsyncResult<T: Sendable>: @unchecked Sendable {
    var result: Result<T, any Error>?
}

func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = AsyncResult<T>()
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    guard let r = box.result else { throw BuildError.system("registry operation ended without a result") }
    return try r.get()
}

extension Builder {
    /// Pulls a base image into the store (FROM of an image the store lacks, or `--pull`).
    func pullBase(_ name: String, line: Int, platform wanted: Platform? = nil) throws -> Image {
        let ref: ImageReference
        do { ref = try ImageReference(parsing: name) } catch { throw err(line, "FROM \(name): \(error)") }
        progress(.note("pulling \(ref.familiarString)"))
        let store = self.store
        let platform = wanted ?? options.platform
        do {
            _ = try blocking {
                try await RegistryClient(registry: ref.domain).pull(ref, into: store, options: PullOptions(platform: platform))
            }
        } catch {
            // The store may hold the name for other platforms: say which, as the fix is often
            // another --platform rather than a network.
            var offered = ""
            if let d = try? store.resolve(name) {
                let platforms: [String]
                if MediaType.isIndex(d.mediaType) {
                    platforms = ((try? store.index(d).manifests) ?? []).compactMap { $0.platform?.description }
                } else if let image = try? store.image(for: d) {
                    platforms = [Platform(os: image.config.os, architecture: image.config.architecture, variant: image.config.variant).description]
                } else {
                    platforms = []
                }
                if !platforms.isEmpty {
                    offered = "; the store has it for \(platforms.joined(separator: ", ")) only, not \(platform.description) (build with one of those in --platform)"
                }
            }
            throw err(line, "base image `\(name)` for \(platform.description) is not in the store and pulling it failed: \(error)\(offered)")
        }
        return try store.image(ref.description, platform: platform)
    }

    /// Pushes a built image to `reference` (`--push`, `--output type=registry`).
    public static func push(_ image: Image, store: ImageStore, to reference: ImageReference) throws -> Digest {
        try push(descriptor: image.descriptor, store: store, to: reference)
    }

    /// Pushes an image or an index (a multi-platform build) to `reference`.
    public static func push(descriptor desc: Descriptor, store: ImageStore, to reference: ImageReference) throws -> Digest {
        do {
            return try blocking {
                try await RegistryClient(registry: reference.domain).push(desc, from: store, to: reference).descriptor.digest
            }
        } catch {
            throw BuildError.system("push to \(reference.familiarString) failed: \(error)")
        }
    }
}

/// One place that makes registry clients for the builder.
enum RegistryClientFactory {
    static func client(for ref: ImageReference) -> RegistryClient { RegistryClient(registry: ref.domain) }
}
