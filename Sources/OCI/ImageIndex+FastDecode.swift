// index.json without Codable: the store reads its index on every command (`images`,
// `ps`, `inspect`, name look-ups), and JSONDecoder spent most of that time in the Swift
// runtime's metadata and conformance look-ups, not in parsing. The mapping below keeps
// the checks of `ImageIndex`/`Descriptor`'s `init(from:)` and gives up (the caller then
// uses JSONDecoder, so results and errors never differ) on anything it does not check
// itself: embedded `data`, `urls`, an unknown media type, a value of an unexpected type.
import Foundation
import SystemSupport

extension ImageIndex {
    /// The index, or `FastJSONFailure` where JSONDecoder should judge instead.
    package static func fastDecode(_ data: Data) throws -> ImageIndex {
        let o = try FastJSON.parse(data).object()
        guard try o.required("schemaVersion").int() == 2 else { throw FastJSONFailure("schemaVersion is not 2") }
        let mediaType = try o.string("mediaType")
        if let mediaType, !MediaType.isIndex(mediaType) { throw FastJSONFailure("not an index media type") }
        let artifactType = try o.string("artifactType")
        var manifests: [Descriptor] = []
        let list = try o.required("manifests").array()
        manifests.reserveCapacity(list.count)
        for m in list { manifests.append(try Descriptor(fast: m.object())) }
        return ImageIndex(mediaType: mediaType, manifests: manifests,
                          subject: try o.object("subject").map { try Descriptor(fast: $0) },
                          annotations: try o.stringMap("annotations"), artifactType: artifactType)
    }
}

extension Descriptor {
    /// A descriptor from a parsed object, with `init(from:)`'s checks; embedded data and
    /// URLs are left to JSONDecoder.
    package init(fast o: FastObject) throws {
        let mediaType = try o.required("mediaType").string()
        guard MediaType.isValid(mediaType) else { throw FastJSONFailure("invalid mediaType") }
        let digest: Digest
        do { digest = try Digest(parsing: o.required("digest").string()) } catch { throw FastJSONFailure("invalid digest") }
        let size = try o.required("size").int64()
        guard size >= 0 else { throw FastJSONFailure("negative size") }
        guard o["urls"] == nil, o["data"] == nil else { throw FastJSONFailure("urls or data") }
        let artifactType = try o.string("artifactType")
        if let artifactType, !MediaType.isValid(artifactType) { throw FastJSONFailure("invalid artifactType") }
        self.init(mediaType: mediaType, digest: digest, size: size, annotations: try o.stringMap("annotations"),
                  platform: try o.object("platform").map { try Platform(fast: $0) }, artifactType: artifactType)
    }
}

extension Platform {
    /// A platform from a parsed object (the keys of its `CodingKeys`).
    package init(fast o: FastObject) throws {
        self.init(os: try o.required("os").string(), architecture: try o.required("architecture").string(),
                  variant: try o.string("variant"), osVersion: try o.string("os.version"),
                  osFeatures: try o.strings("os.features"), features: try o.strings("features"))
    }
}
