import CTLS
import Foundation

/// Docker token auth with an external token service, as distribution's `auth: token`:
/// clients are sent to `realm`, and the registry accepts JWTs (RS256/ES256) signed by a key
/// whose certificate is in `rootCertBundle`, issued by `issuer` for `service`.
public final class ExternalTokenAuthorizer: RegistryAuthorizer, @unchecked Sendable {
    public let realm: String
    public let service: String
    public let issuer: String
    private let keys: [OpaquePointer]

    public init(realm: String, service: String, issuer: String, rootCertBundle: String) throws {
        self.realm = realm
        self.service = service
        self.issuer = issuer
        guard let bio = BIO_new_file(rootCertBundle, "r") else {
            throw RegistryServerError.auth("cannot read token root certificate bundle \(rootCertBundle)")
        }
        defer { BIO_free(bio) }
        var keys: [OpaquePointer] = []
        while let cert = PEM_read_bio_X509(bio, nil, nil, nil) {
            if let key = X509_get_pubkey(cert) { keys.append(key) }
            X509_free(cert)
        }
        ERR_clear_error()
        guard !keys.isEmpty else {
            throw RegistryServerError.auth("no PEM certificates in \(rootCertBundle); it must hold the token signer's certificate")
        }
        self.keys = keys
    }

    deinit { keys.forEach { EVP_PKEY_free($0) } }

    func verifySignature(_ input: [UInt8], _ sig: [UInt8], alg: String) -> Bool {
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
              let alg = header["alg"] as? String,
              verifySignature(Array("\(parts[0]).\(parts[1])".utf8), sig, alg: alg),
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
        var challenge = "Bearer realm=\"\(realm)\",service=\"\(service)\""
        if let scope {
            let actions = scope.action == "pull" || scope.action == "*" ? scope.action : "pull,\(scope.action)"
            challenge += ",scope=\"\(scope.type):\(scope.name):\(actions)\""
        }
        if insufficient { challenge += ",error=\"insufficient_scope\"" }
        var r = RegistryHandler.error(DistributionError(401, .unauthorized, "authentication required",
                                                        detail: scope.map { "\($0.type):\($0.name):\($0.action)" }))
        r.headers.append(("WWW-Authenticate", challenge))
        return r
    }

    public func tokenResponse(_ request: HTTPRequest, context: HTTPRequestContext) -> HTTPResponse? { nil }
}
