import OCI

/// How a layer's tar stream is compressed.
///
/// gzip levels 0-3 use ISA-L (fast), 4-9 use zlib; the output bytes depend on library and level,
/// which is why each level pins one library: the same input always gives the same digest.
public enum Compression: Sendable, Equatable, CustomStringConvertible {
    case none
    case gzip(level: Int)
    case zstd(level: Int)

    /// The default for new layers: ISA-L gzip level 1 — fast, and readable by every registry and runtime.
    public static let `default`: Compression = .gzip(level: 1)

    /// The OCI media type of a layer compressed this way.
    public var layerMediaType: String {
        switch self {
        case .none: LayerMediaType.tar
        case .gzip: LayerMediaType.tarGzip
        case .zstd: LayerMediaType.tarZstd
        }
    }

    public var description: String {
        switch self {
        case .none: "none"
        case let .gzip(level): "gzip:\(level)"
        case let .zstd(level): "zstd:\(level)"
        }
    }

    /// Parses `none`, `gzip`, `gzip:6`, `zstd`, `zstd:3`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        let name = parts.first ?? ""
        var level: Int?
        if parts.count == 2 {
            guard let l = Int(parts[1]) else {
                throw ArchiveError.invalidArgument("compression level \"\(parts[1])\" is not a number (e.g. gzip:6, zstd:3)")
            }
            level = l
        }
        switch name {
        case "none", "tar": self = .none
        case "gzip", "gz":
            let l = level ?? 1
            guard (0...9).contains(l) else { throw ArchiveError.invalidArgument("gzip level must be 0-9, got \(l)") }
            self = .gzip(level: l)
        case "zstd", "zst":
            let l = level ?? 3
            guard (1...22).contains(l) else { throw ArchiveError.invalidArgument("zstd level must be 1-22, got \(l)") }
            self = .zstd(level: l)
        default:
            throw ArchiveError.invalidArgument("unknown compression \"\(text)\"; use none, gzip[:0-9] or zstd[:1-22]")
        }
    }
}

/// OCI layer media types (image-spec layer.md).
public enum LayerMediaType {
    public static let tar = "application/vnd.oci.image.layer.v1.tar"
    public static let tarGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let tarZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
}

/// What an image needs to know about a layer it has just written.
public struct LayerInfo: Sendable, Equatable {
    /// Digest of the bytes written (compressed).
    public var digest: Digest
    /// Number of bytes written.
    public var size: Int64
    /// Digest of the uncompressed tar stream (the config's `rootfs.diff_ids`).
    public var diffID: Digest
    /// `application/vnd.oci.image.layer.v1.tar(+gzip|+zstd)`.
    public var mediaType: String

    public init(digest: Digest, size: Int64, diffID: Digest, mediaType: String) {
        self.digest = digest
        self.size = size
        self.diffID = diffID
        self.mediaType = mediaType
    }
}
