import Foundation
import Testing
@testable import OCI

/// ../shared/schemas/image-spec next to the package.
let imageSpecDir: String = {
    let pkg = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return pkg.deletingLastPathComponent().appendingPathComponent("shared/schemas/image-spec").path
}()

/// Round-trips the image-spec's own examples (extracted into ../shared/schemas/image-spec/cases).
/// Runs when ../shared is present next to the checkout (as on the development machines).
@Suite(.enabled(if: FileManager.default.fileExists(atPath: imageSpecDir), "../shared/schemas/image-spec is not present"))
struct SpecExamplesTests {
    static let specDir = imageSpecDir

    struct Case: Decodable, Sendable, CustomTestStringConvertible {
        var id: String
        var mediatype: String
        var doc: String
        var expect: String
        var testDescription: String { id }
    }

    static func cases(_ file: String) -> [Case] {
        guard let data = FileManager.default.contents(atPath: specDir + "/cases/" + file) else { return [] }
        return (try? JSONDecoder().decode([Case].self, from: data)) ?? []
    }

    /// Decodes `doc` as the model type for `mediaType` and encodes it back.
    static func roundTrip(_ mediaType: String, _ doc: Data) throws -> Data? {
        switch mediaType {
        case MediaType.imageManifest: return try CanonicalJSON.encode(ImageManifest.decode(doc))
        case MediaType.imageIndex: return try CanonicalJSON.encode(ImageIndex.decode(doc))
        case MediaType.imageConfig: return try CanonicalJSON.encode(ImageConfig.decode(doc))
        case MediaType.descriptor:
            return try CanonicalJSON.encode(CanonicalJSON.decode(Descriptor.self, from: doc, what: "descriptor"))
        case MediaType.layoutHeader:
            return try CanonicalJSON.encode(CanonicalJSON.decode(ImageLayoutHeader.self, from: doc, what: "oci-layout"))
        default: return nil
        }
    }

    static func sameJSON(_ a: Data, _ b: Data) throws -> Bool {
        // null and absent mean the same in these documents (docker writes "Volumes": null).
        func dropNulls(_ v: Any) -> Any {
            if let o = v as? [String: Any] {
                return o.filter { !($0.value is NSNull) }.mapValues(dropNulls)
            }
            if let a = v as? [Any] { return a.map(dropNulls) }
            return v
        }
        func norm(_ d: Data) throws -> Data {
            let o = dropNulls(try JSONSerialization.jsonObject(with: d, options: [.fragmentsAllowed]))
            return try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .fragmentsAllowed])
        }
        return try norm(a) == norm(b)
    }

    @Test func corpusIsPresent() {
        #expect(Self.cases("spec-examples.json").count >= 10)
        #expect(Self.cases("go-tables.json").count >= 60)
    }

    /// Digests whose algorithm the image-spec grammar allows but nobody registered
    /// (`sha256+b64`, `multihash+base58`): dockbuild cannot verify them, so it refuses them.
    static func unverifiable(_ c: Case) -> Bool {
        c.doc.range(of: #""digest"\s*:\s*"(?!sha256:|sha512:)"#, options: .regularExpression) != nil
    }

    @Test(arguments: cases("go-tables.json").filter { $0.expect == "valid" && unverifiable($0) })
    func unverifiableAlgorithmsAreRefusedClearly(_ c: Case) throws {
        #expect {
            _ = try Self.roundTrip(c.mediatype, Data(c.doc.utf8))
        } throws: { "\($0)".contains("unsupported algorithm") }
    }

    @Test(arguments: cases("spec-examples.json") + cases("go-tables.json").filter { $0.expect == "valid" && !unverifiable($0) })
    func validDocumentsRoundTrip(_ c: Case) throws {
        let doc = Data(c.doc.utf8)
        let out = try #require(try Self.roundTrip(c.mediatype, doc))
        #expect(try Self.sameJSON(doc, out), "\(c.id) changed in the round trip: \(String(decoding: out, as: UTF8.self))")
        // Canonical: encoding twice gives the same bytes.
        #expect(try Self.roundTrip(c.mediatype, out) == out)
    }

    /// Invalid documents dockbuild still accepts, on purpose: manifests without layers (FROM
    /// scratch images with no files; registries serve them).
    static let acceptedOnPurpose: Set<String> = ["manifest_test.go:TestManifest:5"]

    @Test(arguments: cases("go-tables.json").filter { $0.expect == "invalid" && !acceptedOnPurpose.contains($0.id) })
    func invalidDocumentsAreRefused(_ c: Case) {
        #expect(throws: (any Error).self, "\(c.id) was accepted") { _ = try Self.roundTrip(c.mediatype, Data(c.doc.utf8)) }
    }

    @Test func sampleManifestRoundTrips() throws {
        let data = try #require(FileManager.default.contents(atPath: Self.specDir + "/samples/manifest.json"))
        let m = try ImageManifest.decode(data)
        #expect(m.layers.count == 1)
        #expect(m.config.size == 7023)
        #expect(try Self.sameJSON(data, CanonicalJSON.encode(m)))
    }

    @Test(arguments: ["manifest-bad-mediatype.json", "manifest-bad-size.json"])
    func badSamplesAreRefusedWithTheirField(_ file: String) throws {
        let data = try #require(FileManager.default.contents(atPath: Self.specDir + "/samples/" + file))
        #expect {
            try ImageManifest.decode(data)
        } throws: { e in
            let s = "\(e)"
            return file.contains("mediatype") ? s.contains("not a media type") : (s.contains("config.size") && s.contains("expected"))
        }
    }

    @Test func writtenDocumentsValidateAgainstSchema() throws {
        let validator = Self.specDir + "/validate.py"
        try #require(FileManager.default.fileExists(atPath: validator), "missing \(validator)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("oci-schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let layer = Descriptor.of(Data("layer".utf8), mediaType: MediaType.layerGzip)
        let config = ImageConfig(created: "2024-01-01T00:00:00Z", platform: Platform(os: "linux", architecture: "amd64"),
                                 config: ContainerConfig(exposedPorts: ["80/tcp": EmptyObject()], env: ["PATH=/bin"], cmd: ["/bin/sh"],
                                                         volumes: ["/data": EmptyObject()],
                                                         healthcheck: HealthConfig(test: ["CMD", "true"], interval: 30_000_000_000)),
                                 rootfs: RootFS(diffIDs: [Digest.compute(Data("diff".utf8))]),
                                 history: [History(created: "2024-01-01T00:00:00Z", createdBy: "import")])
        let configData = try CanonicalJSON.encode(config)
        let manifest = ImageManifest(config: .of(configData, mediaType: MediaType.imageConfig), layers: [layer],
                                     annotations: [AnnotationKey.created: "2024-01-01T00:00:00Z"])
        let manifestData = try CanonicalJSON.encode(manifest)
        var entry = Descriptor.of(manifestData, mediaType: MediaType.imageManifest)
        entry.platform = Platform(os: "linux", architecture: "arm64", variant: "v8")
        entry.annotations = [AnnotationKey.refName: "latest"]
        let index = ImageIndex(manifests: [entry])
        let docs: [(String, Data)] = [
            (MediaType.imageConfig, configData), (MediaType.imageManifest, manifestData),
            (MediaType.imageIndex, try CanonicalJSON.encode(index)),
            (MediaType.layoutHeader, try CanonicalJSON.encode(ImageLayoutHeader())),
            (MediaType.descriptor, try CanonicalJSON.encode(layer)),
        ]
        for (i, (type, data)) in docs.enumerated() {
            let file = dir.appendingPathComponent("doc\(i).json")
            try data.write(to: file)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", validator, type, file.path]
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = pipe
            try p.run()
            let out = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            let text = String(decoding: out, as: UTF8.self)
            try #require(!text.contains("ModuleNotFoundError"),
                         "validate.py needs python3 with jsonschema>=4.18 and referencing (pip install jsonschema): \(text)")
            #expect(p.terminationStatus == 0, "\(type) failed schema validation: \(text)")
        }
    }
}
