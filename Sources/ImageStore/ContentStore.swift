// The content-store protocol: what a registry client (or anything that moves images) needs of
// local content. `ImageStore` is the project's implementation; a library user can pull into, and
// push from, anything that conforms — an in-memory store, a cache, another layout.
import Foundation
import OCI

/// One blob being written: bytes in, then `commit` (which checks the digest, the size and, for
/// a layer, the digest of its uncompressed tar) or `abort`. After either, the ingest is spent.
public protocol ContentIngest: AnyObject, Sendable {
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Checks what was written against `expected` (digest), `expectedSize` and `diffID` (the
    /// layer's uncompressed digest, when given), and only then makes the blob visible. On a
    /// mismatch nothing is stored and the error says which check failed.
    @discardableResult
    func commit(expected: Digest?, expectedSize: Int64?, diffID: Digest?) throws -> (digest: Digest, size: Int64)
    func abort()
}

/// Content-addressed blobs, verified on the way in, and the names of the images they make.
public protocol ContentStore: Sendable {
    /// Where the content lives, for messages ("the store at …").
    var location: String { get }
    func has(_ digest: Digest) -> Bool
    /// The whole blob, checked against its digest (manifests and configs; stream layers from
    /// `path(for:)`).
    func readBlob(_ digest: Digest) throws -> Data
    /// A file holding the blob, for streaming it out (a push sends it from there).
    func path(for digest: Digest) -> String
    /// Starts writing a blob (see `ContentIngest`).
    func beginIngest(algorithm: Digest.Algorithm) throws -> any ContentIngest
    /// Checks a stored layer against the diff_id its config gives, reading it to the end.
    func verifyLayer(_ layer: Descriptor, diffID: Digest, what: String) throws
    /// Records a pulled image (a manifest or index already stored): under `reference` (a tag),
    /// or, without one, unnamed (kept, as docker keeps a pull by digest).
    func record(_ descriptor: Descriptor, as reference: ImageReference?) throws
    /// Every name the store holds and what it points at (a push mounts shared blobs from the
    /// repositories they name); empty for a store without names.
    func imageNames() -> [(reference: ImageReference, descriptor: Descriptor)]
}

extension ContentStore {
    /// Stores `data`, checking it against `expected` when given; returns its digest.
    @discardableResult
    public func writeData(_ data: Data, expected: Digest? = nil) throws -> Digest {
        let ingest = try beginIngest(algorithm: expected?.algorithm ?? .sha256)
        do {
            try data.withUnsafeBytes { try ingest.write($0) }
            return try ingest.commit(expected: expected, expectedSize: expected == nil ? nil : Int64(data.count), diffID: nil).digest
        } catch {
            ingest.abort()
            throw error
        }
    }

    /// The names that point at `digest`.
    public func names(pointingAt digest: Digest) -> [ImageReference] {
        imageNames().filter { $0.descriptor.digest == digest }.map(\.reference)
    }
}

extension BlobIngest: ContentIngest {}

extension ImageStore: ContentStore {
    public var location: String { root }

    public func beginIngest(algorithm: Digest.Algorithm) throws -> any ContentIngest { try ingest(algorithm: algorithm) }

    public func record(_ descriptor: Descriptor, as reference: ImageReference?) throws {
        if let reference {
            try tag(reference, descriptor: descriptor)
        } else {
            try addUnnamed(descriptor)
        }
        // a pulled image, as docker reports it: the reference pulled
        events.record(StoreEvent(type: "image", action: "pull", id: reference?.familiarString ?? descriptor.digest.description,
                                 attributes: ["name": reference?.familiarString ?? descriptor.digest.description]))
    }

    public func imageNames() -> [(reference: ImageReference, descriptor: Descriptor)] {
        ((try? listImages()) ?? []).compactMap { e in e.reference.map { ($0, e.descriptor) } }
    }
}
