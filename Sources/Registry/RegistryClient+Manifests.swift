import Foundation
import OCI

/// A manifest or index as the registry sent it: the exact bytes, their type and digest.
public struct FetchedManifest: Sendable {
    public var data: Data
    public var mediaType: String
    public var digest: Digest
    public var size: Int64 { Int64(data.count) }
}

extension RegistryClient {
    /// Media types asked for when fetching manifests, preferred first.
    public static let manifestAccept = [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]

    static let schema1Types: Set<String> = [
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    ]

    /// Fetches a manifest by tag or digest and checks its digest: against the digest asked
    /// for, else against `Docker-Content-Digest`. Schema 1 manifests are refused.
    public func manifest(_ repository: String, reference: String, displayName: String? = nil) async throws -> FetchedManifest {
        let url = endpoint.url("/v2/\(repository)/manifests/\(reference)")
        let resp = try await send("GET", url, headers: [HTTPHeader("Accept", RegistryClient.manifestAccept.joined(separator: ", "))],
                                  scopes: [RegistryClient.scope(repository)])
        guard resp.status == 200 else { throw httpError(resp, "GET", url) }
        let data = resp.body
        let name = displayName ?? "\(endpoint.name)/\(repository):\(reference)"
        struct Peek: Decodable { var schemaVersion: Int?; var mediaType: String? }
        let peek = try? JSONDecoder().decode(Peek.self, from: data)
        var mediaType = (resp.header("content-type") ?? "").split(separator: ";").first.map {
            $0.trimmingCharacters(in: .whitespaces)
        } ?? ""
        if RegistryClient.schema1Types.contains(mediaType) || peek?.schemaVersion == 1 {
            throw RegistryError.schema1(reference: name)
        }
        guard let peek else {
            throw RegistryError.invalidResponse(url: url.absoluteString, reason: "manifest is not JSON")
        }
        if let m = peek.mediaType, !m.isEmpty { mediaType = m }
        if !RegistryClient.manifestAccept.contains(mediaType) {
            // OCI documents may omit mediaType; tell index from manifest by their fields.
            struct Shape: Decodable { var manifests: [AnyCodable]?; var layers: [AnyCodable]? }
            let shape = try? JSONDecoder().decode(Shape.self, from: data)
            if shape?.manifests != nil { mediaType = "application/vnd.oci.image.index.v1+json" }
            else if shape?.layers != nil { mediaType = "application/vnd.oci.image.manifest.v1+json" }
            else {
                throw RegistryError.invalidResponse(url: url.absoluteString, reason: "unsupported manifest type \"\(mediaType)\"")
            }
        }
        let expected: Digest? = (try? Digest(parsing: reference))
            ?? resp.header("docker-content-digest").flatMap { try? Digest(parsing: $0) }
        let actual = Digest.compute(data, algorithm: expected?.algorithm ?? .sha256)
        if let expected, expected != actual {
            throw RegistryError.digestMismatch(url: url.absoluteString, expected: expected, actual: actual)
        }
        let digest = expected?.algorithm == .sha256 || expected == nil ? actual : Digest.compute(data)
        return FetchedManifest(data: data, mediaType: mediaType, digest: digest)
    }

    /// Uploads a manifest or index under a tag (or its digest) and returns its digest.
    @discardableResult
    public func putManifest(_ repository: String, reference: String, data: Data, mediaType: String) async throws -> Digest {
        let url = endpoint.url("/v2/\(repository)/manifests/\(reference)")
        let resp = try await send("PUT", url, headers: [HTTPHeader("Content-Type", mediaType)], body: .data(data),
                                  scopes: [RegistryClient.scope(repository, push: true)])
        guard resp.status == 201 || resp.status == 200 else { throw httpError(resp, "PUT", url) }
        let digest = Digest.compute(data)
        try checkDigestHeader(resp, digest, url)
        return digest
    }

    /// Whether the repository has this manifest (HEAD), for skipping pushes of indexes' children.
    public func hasManifest(_ repository: String, reference: String, push: Bool = false) async throws -> Bool {
        let url = endpoint.url("/v2/\(repository)/manifests/\(reference)")
        let resp = try await send("HEAD", url, headers: [HTTPHeader("Accept", RegistryClient.manifestAccept.joined(separator: ", "))],
                                  scopes: [RegistryClient.scope(repository, push: push)])
        switch resp.status {
        case 200: return true
        case 404: return false
        default: throw httpError(resp, "HEAD", url)
        }
    }
}

/// Decodes and ignores any JSON value (for shape checks).
struct AnyCodable: Decodable {
    init(from decoder: any Decoder) throws {}
}
