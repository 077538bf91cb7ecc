import CCrypto
import Foundation

/// Presigned S3 URLs (AWS Signature V4 in the query string, as distribution's `redirect`
/// does): anyone holding the URL may `GET` that one object until it expires, without keys.
/// Blob GETs are answered with a redirect to such a URL, so the bytes flow from S3 to the
/// client without passing through the registry.
enum S3Presign {
    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var size: UInt32 = 0
        _ = bytes.withUnsafeBytes { b in out.withUnsafeMutableBytes { o in
            EVP_Digest(b.baseAddress, b.count, o.baseAddress?.assumingMemoryBound(to: UInt8.self), &size, EVP_sha256(), nil)
        } }
        return out
    }

    /// HMAC-SHA256 (RFC 2104) over the SHA-256 above.
    static func hmac(_ key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var k = key.count > 64 ? sha256(key) : key
        k += [UInt8](repeating: 0, count: 64 - k.count)
        let inner = sha256(k.map { $0 ^ 0x36 } + message)
        return sha256(k.map { $0 ^ 0x5c } + inner)
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// The URL that lets its holder `method` the object `key` for `expires` seconds from `now`.
    static func url(_ client: S3Client, key: String, method: String = "GET", expires: Int, now: Date = Date()) -> String? {
        let objectURL = client.url(key, query: [])
        guard let parts = URLComponents(string: objectURL), let host = parts.host else { return nil }
        let hostHeader = parts.port.map { "\(host):\($0)" } ?? host
        let path = parts.percentEncodedPath.isEmpty ? "/" : parts.percentEncodedPath
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let amzDate = f.string(from: now)
        let day = String(amzDate.prefix(8))
        let region = client.config.region
        let scope = "\(day)/\(region)/s3/aws4_request"
        let query = [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", "\(client.config.accessKey)/\(scope)"),
            ("X-Amz-Date", amzDate),
            ("X-Amz-Expires", String(expires)),
            ("X-Amz-SignedHeaders", "host"),
        ].sorted { $0.0 < $1.0 }
            .map { S3Client.encode($0.0, keepSlash: false) + "=" + S3Client.encode($0.1, keepSlash: false) }
            .joined(separator: "&")
        let canonical = [method, path, query, "host:\(hostHeader)", "", "host", "UNSIGNED-PAYLOAD"].joined(separator: "\n")
        let toSign = ["AWS4-HMAC-SHA256", amzDate, scope, hex(sha256(Array(canonical.utf8)))].joined(separator: "\n")
        var key = hmac(Array("AWS4\(client.config.secretKey)".utf8), Array(day.utf8))
        for part in [region, "s3", "aws4_request"] { key = hmac(key, Array(part.utf8)) }
        let signature = hex(hmac(key, Array(toSign.utf8)))
        return objectURL + "?" + query + "&X-Amz-Signature=" + signature
    }
}
