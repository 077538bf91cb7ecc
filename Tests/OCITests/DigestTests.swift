import Foundation
import Testing
@testable import OCI

@Suite struct DigestTests {
    @Test func sha256OfKnownInput() {
        #expect(Digest.compute(Array("abc".utf8)).description
            == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Digest.compute(Data()).description
            == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func sha512OfKnownInput() {
        #expect(Digest.compute(Array("abc".utf8), algorithm: .sha512).encoded.hasPrefix("ddaf35a193617aba"))
    }

    @Test func streamingEqualsWhole() {
        var h = Digest.Hasher()
        h.update(Array("a".utf8))
        h.update(Array("bc".utf8))
        #expect(h.count == 3)
        #expect(h.finalize() == Digest.compute(Array("abc".utf8)))
    }

    @Test(arguments: [
        "sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e", "sha256",
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "",
    ])
    func rejectsInvalid(_ s: String) {
        #expect(throws: OCIError.self) { try Digest(parsing: s) }
    }

    @Test func parsesAndPrints() throws {
        let s = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        #expect(try Digest(parsing: s).description == s)
    }
}
