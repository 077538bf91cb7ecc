import Foundation
import ImageStore
import OCI
import Registry

/// docker's `--pull` for `run` and `create`.
public enum PullPolicy: String, Sendable, CaseIterable {
    /// Pull when the store lacks the image (the default).
    case missing
    /// Pull every time, so a moved tag is followed.
    case always
    /// Never pull: a missing image is an error.
    case never
}

/// Pulling the image a container needs before it is created.
public enum ImagePull {
    /// A pull that failed: the reference and why.
    public struct Failure: Error, CustomStringConvertible {
        public let reference: ImageReference
        public let underlying: any Error
        public var description: String { "cannot pull \(reference.familiarString): \(underlying)" }
    }

    /// Makes sure `image` is in `store` as `policy` asks, pulling it by name from its registry
    /// with the client's usual rules (plain HTTP for a loopback registry, TLS elsewhere,
    /// credentials from docker's config.json). A digest or ID prefix that is not in the store
    /// cannot be pulled by name: it is left for `create` to report. `onPull` is told before a
    /// pull starts.
    /// With `platform` (`run --platform`), an image stored for another platform counts as
    /// missing, as in docker, and the pull takes that platform from an index.
    public static func ensure(_ image: String, policy: PullPolicy, store: ImageStore, platform: Platform? = nil,
                              onPull: (ImageReference) -> Void = { _ in }) async throws {
        if policy == .never { return }
        if policy == .missing {
            do {
                let img = try store.image(image, platform: platform ?? .host)
                // stored for another platform than the one asked: pulled, as docker does
                if platform?.matches(img.platform) ?? true { return }
            } catch let e as ImageStoreError {
                guard case .imageNotFound = e else { return }
            } catch { return }
        }
        guard let ref = try? ImageReference(parsing: image) else { return }
        onPull(ref)
        do {
            _ = try await RegistryClient(registry: ref.domain).pull(ref, into: store, options: PullOptions(platform: platform ?? .host))
        } catch {
            throw Failure(reference: ref, underlying: error)
        }
    }
}
