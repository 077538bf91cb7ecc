// OCI image-spec v1.1 "Image Manifest" (manifest.md); also reads Docker schema 2 manifests,
// which have the same shape.
import Foundation

/// One image for one platform: a config blob plus an ordered list of layers.
public struct ImageManifest: Codable, Hashable, Sendable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var artifactType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(mediaType: String? = MediaType.imageManifest, config: Descriptor, layers: [Descriptor],
                subject: Descriptor? = nil, annotations: [String: String]? = nil, artifactType: String? = nil) {
        schemaVersion = 2
        self.mediaType = mediaType
        self.config = config
        self.layers = layers
        self.subject = subject
        self.annotations = annotations
        self.artifactType = artifactType
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        schemaVersion = try c.decode(Int.self, forKey: .schemaVersion)
        guard schemaVersion == 2 else {
            throw OCIError.invalidDocument("manifest schemaVersion is \(schemaVersion); only 2 is supported")
        }
        mediaType = try c.decodeIfPresent(String.self, forKey: .mediaType)
        if let mediaType, !MediaType.isManifest(mediaType) {
            throw OCIError.invalidDocument("manifest has mediaType \(mediaType); expected \(MediaType.imageManifest)")
        }
        artifactType = try c.decodeIfPresent(String.self, forKey: .artifactType)
        config = try c.decode(Descriptor.self, forKey: .config)
        layers = try c.decodeIfPresent([Descriptor].self, forKey: .layers) ?? []
        subject = try c.decodeIfPresent(Descriptor.self, forKey: .subject)
        annotations = try c.decodeIfPresent([String: String].self, forKey: .annotations)
    }

    /// Decodes a manifest, with an error that says what is wrong.
    public static func decode(_ data: Data) throws -> ImageManifest {
        try CanonicalJSON.decode(ImageManifest.self, from: data, what: "image manifest")
    }
}
