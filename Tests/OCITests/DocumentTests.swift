import Foundation
import Testing
@testable import OCI

/// Model behaviour that needs no external corpus.
@Suite struct DocumentTests {
    @Test func canonicalJSONIsSortedAndUnescaped() throws {
        let d = Descriptor(mediaType: "application/vnd.oci.image.layer.v1.tar", digest: Digest.compute(Data()), size: 0,
                           annotations: ["z": "a/b", "a": "1"])
        let s = String(decoding: try CanonicalJSON.encode(d), as: UTF8.self)
        #expect(s == #"{"annotations":{"a":"1","z":"a/b"},"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","mediaType":"application/vnd.oci.image.layer.v1.tar","size":0}"#)
    }

    @Test func badDocumentsGiveClearErrors() throws {
        let missingConfig = Data(#"{"schemaVersion":2,"layers":[]}"#.utf8)
        #expect {
            try ImageManifest.decode(missingConfig)
        } throws: { e in
            "\(e)".contains("config")
        }
        let badDigest = Data(#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:xyz","size":1},"layers":[]}"#.utf8)
        #expect(throws: OCIError.self) { try ImageManifest.decode(badDigest) }
        let negative = Data(#"{"mediaType":"a","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":-1}"#.utf8)
        #expect(throws: OCIError.self) { try CanonicalJSON.decode(Descriptor.self, from: negative, what: "descriptor") }
        let wrongType = Data(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","config":{"mediaType":"a","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":1},"layers":[]}"#.utf8)
        #expect(throws: OCIError.self) { try ImageManifest.decode(wrongType) }
    }

    @Test func chainIDFollowsSpec() throws {
        let a = Digest.compute(Data("a".utf8)), b = Digest.compute(Data("b".utf8))
        #expect(ImageConfig.chainID([a]) == a)
        #expect(ImageConfig.chainID([a, b]) == Digest.compute(Data("\(a) \(b)".utf8)))
        #expect(ImageConfig.chainID([]) == nil)
    }
}
