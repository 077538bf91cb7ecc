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

/// `created` dates parse by hand (no formatter): RFC 3339 forms docker, BuildKit and Go write.
@Suite struct CreatedDateTests {
    @Test func parsesRFC3339() {
        #expect(ImageConfig.parseDate("1970-01-01T00:00:00Z")?.timeIntervalSince1970 == 0)
        #expect(ImageConfig.parseDate("2024-02-29T12:34:56Z")?.timeIntervalSince1970 == 1_709_210_096)
        #expect(ImageConfig.parseDate("2024-02-29T12:34:56.5Z")?.timeIntervalSince1970 == 1_709_210_096.5)
        #expect(ImageConfig.parseDate("2024-02-29T14:34:56+02:00")?.timeIntervalSince1970 == 1_709_210_096)
        #expect(ImageConfig.parseDate("2023-06-01T10:00:00.123456789-07:00").map { Int($0.timeIntervalSince1970) } == 1_685_638_800)
        #expect(ImageConfig.parseDate("1969-12-31T23:59:59Z")?.timeIntervalSince1970 == -1)
        for bad in ["", "2024-13-01T00:00:00Z", "2024-01-01 00:00:00", "2024-01-01T00:00:00", "2024-01-01T00:00:00.Z",
                    "2024-01-01T00:00:00+0200", "x024-01-01T00:00:00Z", "2024-01-01T00:00:00Zjunk"] {
            #expect(ImageConfig.parseDate(bad) == nil, "\(bad)")
        }
    }
}
