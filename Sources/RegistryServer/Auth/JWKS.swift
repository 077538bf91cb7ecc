import CTLS
import Foundation

/// A JSON Web Key Set file (RFC 7517), as distribution's `auth.token.jwks` reads it: the public
/// keys a token service signs with, each with its `kid`. RSA keys and EC keys on P-256 are
/// taken; others are skipped. Keys are turned into OpenSSL keys through their DER
/// SubjectPublicKeyInfo, so no deprecated low-level key API is needed.
enum JWKS {
    static func load(_ path: String) throws -> [(kid: String?, key: OpaquePointer)] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RegistryServerError.auth("cannot read the JWKS file \(path)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let list = object["keys"] as? [[String: Any]] else {
            throw RegistryServerError.auth("\(path) is not a JSON Web Key Set: expected {\"keys\": [...]}")
        }
        var out: [(kid: String?, key: OpaquePointer)] = []
        for (i, jwk) in list.enumerated() {
            if let use = jwk["use"] as? String, use != "sig" { continue }
            let kid = jwk["kid"] as? String
            let spki: [UInt8]
            switch jwk["kty"] as? String {
            case "RSA":
                guard let n = (jwk["n"] as? String).flatMap({ Base64URL.decode(Substring($0)) }),
                      let e = (jwk["e"] as? String).flatMap({ Base64URL.decode(Substring($0)) }) else {
                    throw RegistryServerError.auth("\(path): key \(i) (RSA) needs n and e in base64url")
                }
                spki = rsaSPKI(n: n, e: e)
            case "EC":
                guard jwk["crv"] as? String == "P-256" else { continue }
                guard let x = (jwk["x"] as? String).flatMap({ Base64URL.decode(Substring($0)) }),
                      let y = (jwk["y"] as? String).flatMap({ Base64URL.decode(Substring($0)) }), x.count == 32, y.count == 32 else {
                    throw RegistryServerError.auth("\(path): key \(i) (EC P-256) needs 32-byte x and y in base64url")
                }
                spki = p256SPKI(x: x, y: y)
            default:
                continue
            }
            let key: OpaquePointer? = spki.withUnsafeBufferPointer { buf in
                var p = buf.baseAddress
                return d2i_PUBKEY(nil, &p, buf.count)
            }
            guard let key else {
                ERR_clear_error()
                throw RegistryServerError.auth("\(path): key \(i) is not a valid public key")
            }
            out.append((kid, key))
        }
        return out
    }

    // DER: tag, length, contents.
    static func der(_ tag: UInt8, _ body: [UInt8]) -> [UInt8] {
        var out = [tag]
        let n = body.count
        if n < 0x80 {
            out.append(UInt8(n))
        } else {
            var len: [UInt8] = []
            var v = n
            while v > 0 { len.insert(UInt8(v & 0xff), at: 0); v >>= 8 }
            out.append(0x80 | UInt8(len.count))
            out += len
        }
        return out + body
    }

    /// A positive INTEGER from big-endian bytes.
    static func integer(_ bytes: [UInt8]) -> [UInt8] {
        var b = Array(bytes.drop { $0 == 0 })
        if b.isEmpty { b = [0] }
        if b[0] & 0x80 != 0 { b.insert(0, at: 0) }
        return der(0x02, b)
    }

    static let rsaEncryption: [UInt8] = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]
    static let ecPublicKey: [UInt8] = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]
    static let prime256v1: [UInt8] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]

    static func rsaSPKI(n: [UInt8], e: [UInt8]) -> [UInt8] {
        let algorithm = der(0x30, rsaEncryption + [0x05, 0x00])
        let key = der(0x30, integer(n) + integer(e))
        return der(0x30, algorithm + der(0x03, [0x00] + key))
    }

    static func p256SPKI(x: [UInt8], y: [UInt8]) -> [UInt8] {
        let algorithm = der(0x30, ecPublicKey + prime256v1)
        return der(0x30, algorithm + der(0x03, [0x00, 0x04] + x + y))
    }
}
