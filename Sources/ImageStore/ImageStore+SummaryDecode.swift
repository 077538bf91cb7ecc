// The fields `images` reads from a manifest and a config, decoded without Codable where it
// can: JSONDecoder spent most of a hundred images' listing in the Swift runtime's metadata
// and conformance look-ups. The fast mapping gives up on anything unexpected (the parser is
// stricter than JSONDecoder, see SystemSupport's FastJSON) and JSONDecoder then decides, so
// results and errors are the same.
import Foundation
import SystemSupport
import OCI

/// The parts of a manifest and a config that `ImageStore.summary` reads.
enum SummaryDecode {
    struct Sized: Decodable, Equatable { var mediaType: String; var digest: Digest; var size: Int64 }
    struct Config: Decodable, Equatable { var digest: Digest; var size: Int64 }
    struct Manifest: Decodable, Equatable { var config: Config; var layers: [Sized]? }
    struct Labels: Decodable, Equatable { var Labels: [String: String]? }
    struct Created: Decodable, Equatable { var created: String?; var config: Labels? }

    static func manifest(_ data: Data) throws -> Manifest {
        if let fast = try? fastManifest(data) { return fast }
        return try JSONDecoder().decode(Manifest.self, from: data)
    }

    static func created(_ data: Data) throws -> Created {
        if let fast = try? fastCreated(data) { return fast }
        return try JSONDecoder().decode(Created.self, from: data)
    }

    static func fastManifest(_ data: Data) throws -> Manifest {
        let o = try FastJSON.parse(data).object()
        let c = try o.required("config").object()
        return Manifest(config: Config(digest: try digest(c.required("digest")), size: try c.required("size").int64()),
                        layers: try o.list("layers") { v in
                            let l = try v.object()
                            return Sized(mediaType: try l.required("mediaType").string(), digest: try digest(l.required("digest")),
                                         size: try l.required("size").int64())
                        })
    }

    static func fastCreated(_ data: Data) throws -> Created {
        let o = try FastJSON.parse(data).object()
        return Created(created: try o.string("created"),
                       config: try o.object("config").map { Labels(Labels: try $0.stringMap("Labels")) })
    }

    private static func digest(_ v: FastJSON) throws -> Digest {
        do { return try Digest(parsing: v.string()) } catch { throw FastJSONFailure("invalid digest") }
    }
}
