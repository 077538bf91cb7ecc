// OCI image-spec v1.1 "Image Index" (image-index.md); also reads Docker manifest lists.
import Foundation

/// A list of manifests, usually one per platform; also the `index.json` of an OCI layout.
public struct ImageIndex: Codable, Hashable, Sendable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var artifactType: String?
    public var manifests: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(mediaType: String? = MediaType.imageIndex, manifests: [Descriptor],
                subject: Descriptor? = nil, annotations: [String: String]? = nil, artifactType: String? = nil) {
        schemaVersion = 2
        self.mediaType = mediaType
        self.manifests = manifests
        self.subject = subject
        self.annotations = annotations
        self.artifactType = artifactType
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        schemaVersion = try c.decode(Int.self, forKey: .schemaVersion)
        guard schemaVersion == 2 else {
            throw OCIError.invalidDocument("index schemaVersion is \(schemaVersion); only 2 is supported")
        }
        mediaType = try c.decodeIfPresent(String.self, forKey: .mediaType)
        if let mediaType, !MediaType.isIndex(mediaType) {
            throw OCIError.invalidDocument("index has mediaType \(mediaType); expected \(MediaType.imageIndex)")
        }
        artifactType = try c.decodeIfPresent(String.self, forKey: .artifactType)
        manifests = try c.decode([Descriptor].self, forKey: .manifests)
        subject = try c.decodeIfPresent(Descriptor.self, forKey: .subject)
        annotations = try c.decodeIfPresent([String: String].self, forKey: .annotations)
    }

    public static func decode(_ data: Data) throws -> ImageIndex {
        // Without Codable where it can (see ImageIndex+FastDecode.swift); the same result.
        if let fast = try? fastDecode(data) { return fast }
        return try CanonicalJSON.decode(ImageIndex.self, from: data, what: "image index")
    }

    /// The manifest descriptor that best suits `platform` (docker's choice rules).
    public func manifest(for platform: Platform) -> Descriptor? {
        platform.best(of: manifests, platform: \.platform)
    }
}

/// The `oci-layout` file at the root of an OCI image layout (image-layout.md).
public struct ImageLayoutHeader: Codable, Hashable, Sendable {
    public var imageLayoutVersion: String
    public init(imageLayoutVersion: String = "1.0.0") { self.imageLayoutVersion = imageLayoutVersion }
}
