import CCrypto
import Foundation

/// An ES256 (ECDSA P-256 with SHA-256) key for signing and checking JSON Web Tokens (RFC 7515/7518).
final class ES256Key: @unchecked Sendable {
    private let pkey: OpaquePointer

    /// A fresh key; tokens die with the process, and clients simply log in again.
    init() throws {
        guard let ctx = EVP_PKEY_CTX_new_from_name(nil, "EC", nil) else { throw RegistryServerError.auth("cannot create an EC key context") }
        defer { EVP_PKEY_CTX_free(ctx) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(ctx) == 1, EVP_PKEY_CTX_set_group_name(ctx, "P-256") == 1,
              EVP_PKEY_keygen(ctx, &key) == 1, let key else {
            throw RegistryServerError.auth("cannot generate a P-256 key for tokens")
        }
        pkey = key
    }

    deinit { EVP_PKEY_free(pkey) }

    func sign(_ message: [UInt8]) throws -> [UInt8] {
        guard let md = EVP_MD_CTX_new() else { throw RegistryServerError.auth("EVP_MD_CTX_new failed") }
        defer { EVP_MD_CTX_free(md) }
        guard EVP_DigestSignInit(md, nil, EVP_sha256(), nil, pkey) == 1 else { throw RegistryServerError.auth("signing init failed") }
        var len = 0
        guard EVP_DigestSign(md, nil, &len, message, message.count) == 1 else { throw RegistryServerError.auth("signing failed") }
        var der = [UInt8](repeating: 0, count: len)
        guard EVP_DigestSign(md, &der, &len, message, message.count) == 1 else { throw RegistryServerError.auth("signing failed") }
        guard let raw = ES256Key.derToRaw(Array(der.prefix(len))) else { throw RegistryServerError.auth("unexpected signature encoding") }
        return raw
    }

    func verify(_ message: [UInt8], signature raw: [UInt8]) -> Bool {
        guard raw.count == 64, let md = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(md) }
        let der = ES256Key.rawToDER(raw)
        guard EVP_DigestVerifyInit(md, nil, EVP_sha256(), nil, pkey) == 1 else { return false }
        return EVP_DigestVerify(md, der, der.count, message, message.count) == 1
    }

    /// DER `SEQUENCE { INTEGER r, INTEGER s }` to JWS's fixed 32+32 bytes.
    static func derToRaw(_ der: [UInt8]) -> [UInt8]? {
        var i = 0
        func byte() -> UInt8? { guard i < der.count else { return nil }; defer { i += 1 }; return der[i] }
        guard byte() == 0x30, var len = byte() else { return nil }
        if len == 0x81 { guard let l = byte() else { return nil }; len = l }
        var out: [UInt8] = []
        for _ in 0..<2 {
            guard byte() == 0x02, let n = byte(), i + Int(n) <= der.count else { return nil }
            var int = Array(der[i..<(i + Int(n))])
            i += Int(n)
            while int.count > 32, int.first == 0 { int.removeFirst() }
            guard int.count <= 32 else { return nil }
            out += [UInt8](repeating: 0, count: 32 - int.count) + int
        }
        return out
    }

    static func rawToDER(_ raw: [UInt8]) -> [UInt8] {
        func integer(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
            var b = Array(bytes.drop { $0 == 0 })
            if b.isEmpty { b = [0] }
            if b[0] & 0x80 != 0 { b.insert(0, at: 0) }
            return [0x02, UInt8(b.count)] + b
        }
        let body = integer(raw[0..<32]) + integer(raw[32..<64])
        return [0x30, UInt8(body.count)] + body
    }
}

enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ s: Substring) -> [UInt8]? {
        var t = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while t.count % 4 != 0 { t += "=" }
        return Data(base64Encoded: t).map { [UInt8]($0) }
    }
}
