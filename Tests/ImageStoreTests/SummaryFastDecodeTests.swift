import Foundation
import OCI
import SystemSupport
import Testing
@testable import ImageStore

/// `images` reads a manifest's config and layers and a config's created time and labels
/// without Codable; the result is JSONDecoder's, or the fast path refuses and JSONDecoder decides.
@Suite struct SummaryFastDecodeTests {
    static let d1 = "sha256:" + String(repeating: "a1", count: 32)
    static let d2 = "sha256:" + String(repeating: "b2", count: 32)

    static let manifests = [
        #"""
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "\#(Self.d1)", "size": 1234},
         "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "\#(Self.d2)", "size": 9223372036854775807,
                     "annotations": {"x": "y"}, "urls": ["https://example.com/l"]},
                    {"mediaType": "a\/b \u00e9", "digest": "\#(Self.d1)", "size": 0}],
         "annotations": {"k": "\ud83d\ude00"}, "subject": {"mediaType": "a/b", "digest": "\#(Self.d2)", "size": 3}, "unknown": [1.5, null]}
        """#,
        #"{"config":{"digest":"\#(Self.d1)","size":0}}"#,
        #"{"config":{"digest":"\#(Self.d1)","size":0},"layers":null}"#,
        #"{"config":{"digest":"\#(Self.d1)","size":0},"layers":[]}"#,
    ]

    static let configs = [
        #"""
        {"created": "2024-01-01T00:00:00.123456789Z", "architecture": "amd64", "os": "linux",
         "config": {"Cmd": ["/bin/sh"], "Labels": {"a": "1", "esc\"aped": "line\nbreak", "\u65e5": "\ud834\udd1e", "": ""}},
         "rootfs": {"type": "layers", "diff_ids": ["\#(Self.d2)"]}, "history": [{"created_by": "x", "empty_layer": true}]}
        """#,
        #"{}"#,
        #"{"created":null,"config":null}"#,
        #"{"created":"x","config":{"Labels":null}}"#,
        #"{"config":{"Labels":{}}}"#,
    ]

    @Test func decodesAlikeBothWays() throws {
        for doc in Self.manifests {
            let data = Data(doc.utf8)
            #expect(try SummaryDecode.fastManifest(data) == JSONDecoder().decode(SummaryDecode.Manifest.self, from: data), "\(doc)")
        }
        for doc in Self.configs {
            let data = Data(doc.utf8)
            #expect(try SummaryDecode.fastCreated(data) == JSONDecoder().decode(SummaryDecode.Created.self, from: data), "\(doc)")
        }
    }

    /// What JSONDecoder rejects the fast path rejects too; what only the fast path refuses
    /// still decodes.
    @Test func refusedAndBadDocuments() throws {
        let bad = [
            #"{"config":{"digest":"sha256:12","size":0}}"#,
            #"{"config":{"digest":"\#(Self.d1)"}}"#,
            #"{"config":{"digest":"\#(Self.d1)","size":"1"}}"#,
            #"{"config":null}"#,
            #"{"config":{"digest":"\#(Self.d1)","size":0},"layers":[{"digest":"\#(Self.d1)","size":0}]}"#,
        ]
        for doc in bad {
            let data = Data(doc.utf8)
            #expect(throws: FastJSONFailure.self, "\(doc)") { try SummaryDecode.fastManifest(data) }
            #expect(throws: (any Error).self, "\(doc)") { try SummaryDecode.manifest(data) }
        }
        for doc in [#"{"created":1}"#, #"{"config":{"Labels":{"a":1}}}"#, #"{"config":[]}"#] {
            let data = Data(doc.utf8)
            #expect(throws: FastJSONFailure.self, "\(doc)") { try SummaryDecode.fastCreated(data) }
            #expect(throws: (any Error).self, "\(doc)") { try SummaryDecode.created(data) }
        }
        let dup = Data(#"{"config":{"digest":"\#(Self.d1)","size":0,"size":5}}"#.utf8)
        #expect(throws: FastJSONFailure.self) { try SummaryDecode.fastManifest(dup) }
        #expect(try SummaryDecode.manifest(dup) == JSONDecoder().decode(SummaryDecode.Manifest.self, from: dup))
        let dupConfig = Data(#"{"created":"a","created":"b"}"#.utf8)
        #expect(throws: FastJSONFailure.self) { try SummaryDecode.fastCreated(dupConfig) }
        #expect(try SummaryDecode.created(dupConfig) == JSONDecoder().decode(SummaryDecode.Created.self, from: dupConfig))
    }

    /// The index, manifests and configs the store writes decode alike both ways, and
    /// `summary` reads them.
    @Test func documentsTheStoreWritesDecodeAlike() throws {
        let t = try TempStore()
        for (i, label) in ["plain", "caf\u{00e9} \"q\" \\ \u{1F600}"].enumerated() {
            let bytes = Data("layer \(i)".utf8)
            let d = try t.store.writeBlob(bytes)
            let config = ImageConfig(created: "2024-01-0\(i + 1)T00:00:00Z", platform: .host,
                                     config: ContainerConfig(cmd: ["/bin/sh"], labels: ["l": label]), rootfs: RootFS(diffIDs: [d]))
            _ = try t.store.putImage(config: config, layers: [Descriptor(mediaType: MediaType.layer, digest: d, size: Int64(bytes.count))],
                                     tag: try ImageReference(parsing: "img\(i):t"), annotations: ["a": label])
        }
        let indexData = try Data(contentsOf: URL(fileURLWithPath: t.dir + "/index.json"))
        let index = try CanonicalJSON.decode(ImageIndex.self, from: indexData, what: "image index")
        #expect(try ImageIndex.fastDecode(indexData) == index)
        #expect(index.manifests.count == 2)
        for m in index.manifests {
            let manifestData = try t.store.readBlob(m.digest)
            let manifest = try JSONDecoder().decode(SummaryDecode.Manifest.self, from: manifestData)
            #expect(try SummaryDecode.fastManifest(manifestData) == manifest)
            let configData = try t.store.readBlob(manifest.config.digest)
            let created = try JSONDecoder().decode(SummaryDecode.Created.self, from: configData)
            #expect(try SummaryDecode.fastCreated(configData) == created)
            let s = try t.store.summary(for: m)
            #expect(s.id == manifest.config.digest)
            #expect(s.labels == created.config?.Labels ?? [:])
            #expect(s.created != nil)
        }
    }
}
