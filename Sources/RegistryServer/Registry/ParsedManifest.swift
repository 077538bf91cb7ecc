import Foundation
import OCI

/// The parts of a pushed manifest the registry checks and indexes (image-spec manifest.md,
/// image-index.md; Docker schema 2 has the same shape).
public struct ParsedManifest: Sendable {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerList = "application/vnd.docker.distribution.manifest.list.v2+json"

    public var digest: Digest
    public var mediaType: String
    public var isIndex: Bool
    /// Config and layers of an image manifest.
    public var blobs: [Digest]
    /// Children of an index.
    public var manifests: [Digest]
    public var subject: Digest?
    public var artifactType: String?
    public var configMediaType: String?
    public var annotations: [String: String]?

    static func invalid(_ why: String) -> DistributionError { DistributionError(400, .manifestInvalid, "manifest invalid", detail: why) }

    static func descriptor(_ value: Any?, _ where_: String) throws -> (digest: Digest, mediaType: String?) {
        guard let obj = value as? [String: Any] else { throw invalid("\(where_) must be a descriptor object") }
        guard let ds = obj["digest"] as? String else { throw invalid("\(where_).digest is missing") }
        guard let d = try? Digest(parsing: ds) else { throw invalid("\(where_).digest \"\(ds)\" is not a valid digest") }
        guard let size = obj["size"] as? NSNumber, size.int64Value >= 0 else { throw invalid("\(where_).size must be a non-negative integer") }
        if let mt = obj["mediaType"], !(mt is String) { throw invalid("\(where_).mediaType must be a string") }
        return (d, obj["mediaType"] as? String)
    }

    /// Parses and checks structure; `contentType` is the request's Content-Type.
    public static func parse(_ bytes: [UInt8], contentType: String?, algorithm: Digest.Algorithm = .sha256) throws -> ParsedManifest {
        guard let any = try? JSONSerialization.jsonObject(with: Data(bytes)), let obj = any as? [String: Any] else {
            throw invalid("body is not a JSON object")
        }
        if let v = obj["schemaVersion"] {
            guard let n = v as? NSNumber, n.intValue == 2 else { throw invalid("schemaVersion must be 2 (schema 1 manifests are not supported)") }
        } else {
            throw invalid("schemaVersion is missing")
        }
        let declared = obj["mediaType"] as? String
        let header = contentType.map { $0.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? $0 }
        if let declared, let header, !header.isEmpty, declared != header {
            throw invalid("mediaType \"\(declared)\" in the body differs from Content-Type \"\(header)\"")
        }
        let isIndex: Bool
        if let mt = declared ?? header, mt == ociIndex || mt == dockerList {
            isIndex = true
        } else if let mt = declared ?? header, mt == ociManifest || mt == dockerManifest {
            isIndex = false
        } else {
            isIndex = obj["manifests"] != nil
        }
        let mediaType = declared ?? ((header?.isEmpty == false ? header : nil) ?? (isIndex ? ociIndex : ociManifest))
        var blobs: [Digest] = []
        var manifests: [Digest] = []
        var configMediaType: String?
        if isIndex {
            guard let list = obj["manifests"] as? [Any] else { throw invalid("an index needs a \"manifests\" array") }
            for (i, m) in list.enumerated() { manifests.append(try descriptor(m, "manifests[\(i)]").digest) }
        } else {
            let config = try descriptor(obj["config"], "config")
            blobs.append(config.digest)
            configMediaType = config.mediaType
            guard let layers = obj["layers"] as? [Any] else { throw invalid("an image manifest needs a \"layers\" array") }
            for (i, l) in layers.enumerated() {
                let d = try descriptor(l, "layers[\(i)]")
                // Foreign layers live elsewhere (their `urls`); the registry need not hold them.
                if let urls = (l as? [String: Any])?["urls"] as? [Any], !urls.isEmpty { continue }
                if d.mediaType?.contains("foreign") == true || d.mediaType?.contains("nondistributable") == true { continue }
                blobs.append(d.digest)
            }
        }
        var subject: Digest?
        if obj["subject"] != nil { subject = try descriptor(obj["subject"], "subject").digest }
        if let at = obj["artifactType"], !(at is String) { throw invalid("artifactType must be a string") }
        var annotations: [String: String]?
        if let a = obj["annotations"] {
            guard let dict = a as? [String: String] else { throw invalid("annotations must map strings to strings") }
            annotations = dict
        }
        return ParsedManifest(digest: Digest.compute(bytes, algorithm: algorithm), mediaType: mediaType, isIndex: isIndex, blobs: blobs,
                              manifests: manifests, subject: subject, artifactType: obj["artifactType"] as? String,
                              configMediaType: configMediaType, annotations: annotations)
    }

    /// The descriptor the referrers API lists for this manifest.
    func referrerDescriptor(size: Int64) -> [UInt8] {
        var d: [String: Any] = ["mediaType": mediaType, "digest": digest.description, "size": size]
        if let at = artifactType ?? (isIndex ? nil : configMediaType) { d["artifactType"] = at }
        if let annotations { d["annotations"] = annotations }
        return (try? [UInt8](JSONSerialization.data(withJSONObject: d, options: [.sortedKeys]))) ?? []
    }
}
