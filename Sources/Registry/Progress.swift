import OCI

/// What a pull or push is doing, for progress displays. Events for one blob arrive in order;
/// events for different blobs interleave.
public enum TransferEvent: Sendable {
    /// A manifest or index was resolved (`what`: "index", "manifest").
    case resolved(what: String, digest: Digest)
    /// A blob transfer starts; `total` is its size.
    case started(digest: Digest, kind: BlobKind, total: Int64)
    /// Bytes moved so far for a blob.
    case progress(digest: Digest, bytes: Int64)
    /// The blob is done: `outcome` says how.
    case finished(digest: Digest, kind: BlobKind, outcome: BlobOutcome, bytes: Int64)

    public enum BlobKind: String, Sendable { case config, layer, manifest }
    public enum BlobOutcome: Sendable, Equatable {
        case downloaded, alreadyExists, pushed, mounted(from: String), presentInRegistry
    }
}

/// Receives transfer events; called from transfer threads, so it must be thread-safe.
public typealias TransferProgress = @Sendable (TransferEvent) -> Void
