// OCI image-spec v1.1 "Content Descriptors" (descriptor.md).
import Foundation

/// A typed, sized, content-addressed reference to a blob.
public struct Descriptor: Codable, Hashable, Sendable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    public var urls: [String]?
    public var annotations: [String: String]?
    /// Embedded content (base64 in JSON); must hash to `digest` when present.
    public var data: Data?
    /// Only in index entries: which platform the manifest is for.
    public var platform: Platform?
    public var artifactType: String?

    public init(mediaType: String, digest: Digest, size: Int64, urls: [String]? = nil,
                annotations: [String: String]? = nil, data: Data? = nil,
                platform: Platform? = nil, artifactType: String? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.urls = urls
        self.annotations = annotations
        self.data = data
        self.platform = platform
        self.artifactType = artifactType
    }

    /// A descriptor for `bytes`, computing digest and size.
    public static func of<D: DataProtocol>(_ bytes: D, mediaType: String) -> Descriptor {
        Descriptor(mediaType: mediaType, digest: Digest.compute(bytes), size: Int64(bytes.count))
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mediaType = try c.decode(String.self, forKey: .mediaType)
        guard MediaType.isValid(mediaType) else {
            throw OCIError.invalidDocument("descriptor mediaType \"\(mediaType)\" is not a type/subtype media type")
        }
        digest = try c.decode(Digest.self, forKey: .digest)
        size = try c.decode(Int64.self, forKey: .size)
        guard size >= 0 else {
            throw OCIError.invalidDocument("descriptor \(digest) has negative size \(size)")
        }
        urls = try c.decodeIfPresent([String].self, forKey: .urls)
        for u in urls ?? [] where URL(string: u)?.scheme == nil {
            throw OCIError.invalidDocument("descriptor \(digest) has an invalid URL \"\(u)\"")
        }
        annotations = try c.decodeIfPresent([String: String].self, forKey: .annotations)
        if let b64 = try c.decodeIfPresent(String.self, forKey: .data) {
            guard let d = Data(base64Encoded: b64) else {
                throw OCIError.invalidDocument("descriptor \(digest) has data that is not padded base64")
            }
            guard Digest.compute(d, algorithm: digest.algorithm) == digest, Int64(d.count) == size else {
                throw OCIError.invalidDocument("descriptor \(digest): its embedded data does not match its digest and size")
            }
            data = d
        } else {
            data = nil
        }
        platform = try c.decodeIfPresent(Platform.self, forKey: .platform)
        artifactType = try c.decodeIfPresent(String.self, forKey: .artifactType)
        if let artifactType, !MediaType.isValid(artifactType) {
            throw OCIError.invalidDocument("descriptor artifactType \"\(artifactType)\" is not a type/subtype media type")
        }
    }

    /// The image-spec's "empty" descriptor (`{}`), for artifacts without a config.
    public static let empty = Descriptor.of(Data("{}".utf8), mediaType: MediaType.emptyJSON)
}
