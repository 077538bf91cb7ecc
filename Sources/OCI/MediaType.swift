// OCI image-spec v1.1 "Media Types" (media-types.md) and Docker image manifest v2 schema 2.

/// Media type strings of the documents and blobs dockbuild reads and writes.
///
/// Plain `String` constants rather than an enum: registries and tools send media types we do not
/// know, and a descriptor must carry them through unchanged.
public enum MediaType {
    public static let descriptor = "application/vnd.oci.descriptor.v1+json"
    public static let layoutHeader = "application/vnd.oci.layout.header.v1+json"
    public static let imageManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let imageIndex = "application/vnd.oci.image.index.v1+json"
    public static let imageConfig = "application/vnd.oci.image.config.v1+json"
    public static let emptyJSON = "application/vnd.oci.empty.v1+json"
    public static let layer = "application/vnd.oci.image.layer.v1.tar"
    public static let layerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let layerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let layerNondistributable = "application/vnd.oci.image.layer.nondistributable.v1.tar"
    public static let layerNondistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    public static let layerNondistributableZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayer = "application/vnd.docker.image.rootfs.diff.tar"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    public static let dockerLayerZstd = "application/vnd.docker.image.rootfs.diff.tar.zstd"
    public static let dockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

    /// True for single-image manifests (OCI or Docker schema 2).
    public static func isManifest(_ t: String) -> Bool { t == imageManifest || t == dockerManifest }
    /// True for multi-platform indexes (OCI index or Docker manifest list).
    public static func isIndex(_ t: String) -> Bool { t == imageIndex || t == dockerManifestList }
    /// True for image configs (OCI or Docker).
    public static func isConfig(_ t: String) -> Bool { t == imageConfig || t == dockerConfig }

    /// How a layer blob is compressed, judged by its media type.
    public enum LayerCompression: String, Sendable { case uncompressed, gzip, zstd }

    /// The compression of a layer media type, or nil when `t` is not a layer type.
    public static func layerCompression(_ t: String) -> LayerCompression? {
        switch t {
        case layer, layerNondistributable, dockerLayer: .uncompressed
        case layerGzip, layerNondistributableGzip, dockerLayerGzip, dockerForeignLayerGzip: .gzip
        case layerZstd, layerNondistributableZstd, dockerLayerZstd: .zstd
        default: nil
        }
    }

    /// RFC 6838 `type/subtype` as the image-spec schema requires (each part 1-127 characters,
    /// starting with a letter or digit).
    public static func isValid(_ t: String) -> Bool {
        let parts = t.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        for p in parts {
            let u = Array(p.utf8)
            guard let f = u.first, u.count <= 127, isAlnum(f) else { return false }
            guard u.allSatisfy({ isAlnum($0) || Array("!#$&^_.+-".utf8).contains($0) }) else { return false }
        }
        return true
    }

    static func isAlnum(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) }

    /// True for any layer media type, OCI or Docker.
    public static func isLayer(_ t: String) -> Bool { layerCompression(t) != nil }
}

/// Well-known annotation keys (annotations.md).
public enum AnnotationKey {
    public static let refName = "org.opencontainers.image.ref.name"
    public static let created = "org.opencontainers.image.created"
    public static let baseName = "org.opencontainers.image.base.name"
    public static let baseDigest = "org.opencontainers.image.base.digest"
    /// containerd's key for the full image name in an OCI layout's index.json.
    public static let containerdImageName = "io.containerd.image.name"
}
