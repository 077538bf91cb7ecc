import CTLS
import Foundation

/// Docker token auth with an external token service, as distribution's `auth: token`:
/// clients are sent to `realm`, and the registry accepts JWTs (RS256/384/512, ES256) issued
/// by `issuer` for `service` and signed by a trusted key. Keys are trusted as distribution
/// trusts them:
/// - a token whose header carries an `x5c` certificate chain is checked with the chain's
///   leaf key, and only when that chain leads to a certificate in `rootCertBundle`;
/// - otherwise the token's `kid` picks among the keys of the `jwks` file (a JSON Web Key
///   Set), and any key of the bundle's certificates or of the JWKS may sign it.
public final class ExternalTokenAuthorizer: RegistryAuthorizer, @unchecked Sendable {
    public let realm: String
    public let service: String
    public let issuer: String
    /// Public keys with the key id they are known by (JWKS `kid`; nil for certificates).
    private let keys: [(kid: String?, key: OpaquePointer)]
    /// The bundle's certificates as a trust store for `x5c` chains; nil without a bundle.
    private let trust: OpaquePointer?

    public convenience init(realm: String, service: String, issuer: String, rootCertBundle: String) throws {
        try self.init(realm: realm, service: service, issuer: issuer, rootCertBundle: rootCertBundle, jwks: nil)
    }

    /// `rootCertBundle` (PEM certificates) or `jwks` (a JSON Web Key Set file), or both.
    public init(realm: String, service: String, issuer: String, rootCertBundle: String?, jwks: String?) throws {
        self.realm = realm
        self.service = service
        self.issuer = issuer
        guard rootCertBundle != nil || jwks != nil else {
            throw RegistryServerError.invalidConfiguration("external token auth needs --token-rootcert or --token-jwks")
        }
        var keys: [(kid: String?, key: OpaquePointer)] = []
        var trust: OpaquePointer?
        if let rootCertBundle {
            guard let bio = BIO_new_file(rootCertBundle, "r") else {
                throw RegistryServerError.auth("cannot read token root certificate bundle \(rootCertBundle)")
            }
            defer { BIO_free(bio) }
            let store = X509_STORE_new()
            while let cert = PEM_read_bio_X509(bio, nil, nil, nil) {
                if let key = X509_get_pubkey(cert) { keys.append((nil, key)) }
                if let store { X509_STORE_add_cert(store, cert) }
                X509_free(cert)
            }
            ERR_clear_error()
            guard !keys.isEmpty else {
                X509_STORE_free(store)
                throw RegistryServerError.auth("no PEM certificates in \(rootCertBundle); it must hold the token signer's certificate")
            }
            trust = store
        }
        if let jwks {
            let set = try JWKS.load(jwks)
            guard !set.isEmpty else { throw RegistryServerError.auth("no usable keys in the JWKS file \(jwks) (RSA, or EC on P-256)") }
            keys += set
        }
        self.keys = keys
        self.trust = trust
    }

    deinit {
        keys.forEach { EVP_PKEY_free($0.key) }
        if let trust { X509_STORE_free(trust) }
    }

    /// The keys that may have signed a token with this header: the `x5c` leaf's when the chain
    /// is trusted (none when it is not), else those with the header's `kid`, else all.
    func candidateKeys(_ header: [String: Any]) -> (keys: [OpaquePointer], owned: [OpaquePointer]) {
        if let chain = header["x5c"] as? [String] {
            guard let trust, !chain.isEmpty else { return ([], []) }
            var certs: [OpaquePointer?] = []
            defer { certs.forEach { X509_free($0) } }
            for b64 in chain {
                guard let der = Data(base64Encoded: b64) else { return ([], []) }
                let cert: OpaquePointer? = der.withUnsafeBytes { raw in
                    var p = raw.bindMemory(to: UInt8.self).baseAddress
                    return d2i_X509(nil, &p, raw.count)
                }
                guard let cert else { ERR_clear_error(); return ([], []) }
                certs.append(cert)
            }
            var intermediates = Array(certs.dropFirst())
            let ok = intermediates.withUnsafeMutableBufferPointer { buf in
                ctls_verify_chain(trust, certs[0], buf.baseAddress, Int32(buf.count))
            }
            ERR_clear_error()
            guard ok == 1, let key = X509_get_pubkey(certs[0]) else { return ([], []) }
            return ([key], [key])
        }
        if let kid = header["kid"] as? String {
            let matching = keys.filter { $0.kid == kid }.map(\.key)
            if !matching.isEmpty { return (matching, []) }
        }
        return (keys.map(\.key), [])
    }

    func verifySignature(_ input: [UInt8], _ sig: [UInt8], alg: String, keys: [OpaquePointer]) -> Bool {
        let md: OpaquePointer?
        var signature = sig
        switch alg {
        case "RS256": md = EVP_sha256()
        case "RS384": md = EVP_sha384()
        case "RS512": md = EVP_sha512()
        case "ES256":
            guard sig.count == 64 else { return false }
            md = EVP_sha256()
            signature = ES256Key.rawToDER(sig)
        default: return false
        }
        for key in keys {
            guard let ctx = EVP_MD_CTX_new() else { return false }
            defer { EVP_MD_CTX_free(ctx) }
            if EVP_DigestVerifyInit(ctx, nil, md, nil, key) == 1,
               EVP_DigestVerify(ctx, signature, signature.count, input, input.count) == 1 { return true }
            ERR_clear_error()
        }
        return false
    }

    func verify(_ token: String) -> [String: Any]? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let hb = Base64URL.decode(parts[0]), let cb = Base64URL.decode(parts[1]),
              let sig = Base64URL.decode(parts[2]),
              let header = try? JSONSerialization.jsonObject(with: Data(hb)) as? [String: Any],
              let alg = header["alg"] as? String else { return nil }
        let candidates = candidateKeys(header)
        defer { candidates.owned.forEach { EVP_PKEY_free($0) } }
        guard verifySignature(Array("\(parts[0]).\(parts[1])".utf8), sig, alg: alg, keys: candidates.keys),
              let claims = try? JSONSerialization.jsonObject(with: Data(cb)) as? [String: Any] else { return nil }
        let now = Date().timeIntervalSince1970
        guard claims["iss"] as? String == issuer,
              let exp = (claims["exp"] as? NSNumber)?.doubleValue, exp > now - 60 else { return nil }
        if let nbf = (claims["nbf"] as? NSNumber)?.doubleValue, nbf > now + 60 { return nil }
        let aud = (claims["aud"] as? String).map { [$0] } ?? (claims["aud"] as? [String] ?? [])
        guard aud.contains(service) else { return nil }
        return claims
    }

    public func authorize(_ request: HTTPRequest, context: HTTPRequestContext, scope: AccessScope?) -> HTTPResponse? {
        var insufficient = false
        if let h = request.header("Authorization"), h.lowercased().hasPrefix("bearer "),
           let claims = verify(String(h.dropFirst(7)).trimmingCharacters(in: .whitespaces)) {
            guard let scope else { return nil }
            if TokenAuthorizer.allows(claims, scope) { return nil }
            insufficient = true
        }
        return TokenAuthorizer.challenge(realm: realm, service: service, scope: scope, insufficient: insufficient)
    }

    public func tokenResponse(_ request: HTTPRequest, context: HTTPRequestContext) -> HTTPResponse? { nil }
}
