import Foundation
import Testing
@testable import OCI
import SystemSupport

/// The Codable-free index decoder gives exactly what JSONDecoder gives, or refuses, and
/// `ImageIndex.decode` then gives JSONDecoder's result or error.
@Suite struct ImageIndexFastDecodeTests {
    static let d1 = "sha256:" + String(repeating: "a1", count: 32)
    static let d2 = "sha256:" + String(repeating: "b2", count: 32)
    static let d3 = "sha512:" + String(repeating: "c3", count: 64)

    static let full = #"""
    {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "artifactType": "application/x.t+json",
     "manifests": [
       {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "\#(d1)", "size": 9223372036854775807,
        "annotations": {"org.opencontainers.image.ref.name": "docker.io/library/b\u00fcsybox:latest", "esc\"aped": "a\nb\\c", "": ""},
        "platform": {"architecture": "arm", "os": "linux", "variant": "v7", "os.version": "10.0.1", "os.features": ["win32k"],
                     "features": ["sse4"]},
        "unknown": [1, 2.5e3, null, {"x": "\ud83d\ude00"}]},
       {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": "\#(d3)", "size": 0,
        "annotations": null, "platform": null, "artifactType": null},
       {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "\#(d2)", "size": 12, "artifactType": "application/x.a+json"}
     ],
     "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "\#(d2)", "size": 1},
     "annotations": {"k": "\u65e5\u672c"}, "extra": true}
    """#

    static let documents = [
        full,
        #"{"schemaVersion":2,"manifests":[]}"#,
        #"{"schemaVersion":2,"mediaType":null,"manifests":[],"subject":null,"annotations":null}"#,
        #"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#,
    ]

    @Test func decodesAlikeBothWays() throws {
        for doc in Self.documents {
            let data = Data(doc.utf8)
            let slow = try CanonicalJSON.decode(ImageIndex.self, from: data, what: "image index")
            #expect(try ImageIndex.fastDecode(data) == slow, "\(doc)")
            // and as the store writes it (canonical form)
            let written = try CanonicalJSON.encode(slow)
            #expect(try ImageIndex.fastDecode(written) == slow)
            #expect(try ImageIndex.decode(written) == slow)
        }
    }

    /// Refused by the fast path, accepted by JSONDecoder: `decode` still reads them alike.
    @Test func refusedDocumentsStillDecode() throws {
        let refused = [
            Self.full.replacingOccurrences(of: #""size": 12,"#, with: #""size": 12, "urls": ["https://example.com/b"],"#),
            Self.full.replacingOccurrences(of: #""size": 1}"#, with: #""size": 1, "size": 1}"#),
            "\u{FEFF}" + Self.full,
        ]
        for doc in refused {
            let data = Data(doc.utf8)
            #expect(throws: FastJSONFailure.self) { try ImageIndex.fastDecode(data) }
            guard let slow = try? CanonicalJSON.decode(ImageIndex.self, from: data, what: "image index") else { continue }
            #expect(try ImageIndex.decode(data) == slow)
        }
    }

    /// What JSONDecoder rejects the fast path rejects too, so the error is JSONDecoder's.
    @Test func badDocumentsGiveJSONDecodersError() throws {
        let bad = [
            #"{"schemaVersion":1,"manifests":[]}"#,
            #"{"schemaVersion":"2","manifests":[]}"#,
            #"{"schemaVersion":2,"mediaType":"text/plain","manifests":[]}"#,
            #"{"schemaVersion":2}"#,
            #"{"schemaVersion":2,"manifests":null}"#,
            #"{"schemaVersion":2,"manifests":[{"mediaType":"nope","digest":"\#(Self.d1)","size":1}]}"#,
            #"{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"sha256:abc","size":1}]}"#,
            #"{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"\#(Self.d1)","size":-1}]}"#,
            #"{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"\#(Self.d1)","size":1,"platform":{"os":"linux"}}]}"#,
            #"{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"\#(Self.d1)","size":1,"annotations":{"k":1}}]}"#,
            #"{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"\#(Self.d1)","size":1,"artifactType":"x"}]}"#,
        ]
        for doc in bad {
            let data = Data(doc.utf8)
            #expect(throws: FastJSONFailure.self, "\(doc)") { try ImageIndex.fastDecode(data) }
            var expected = ""
            do { _ = try CanonicalJSON.decode(ImageIndex.self, from: data, what: "image index") } catch { expected = "\(error)" }
            #expect(!expected.isEmpty, "\(doc)")
            #expect(throws: (any Error).self) { try ImageIndex.decode(data) }
            do { _ = try ImageIndex.decode(data) } catch { #expect("\(error)" == expected) }
        }
    }
}
