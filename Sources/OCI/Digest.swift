// OCI image-spec v1.1 "Digests" (descriptor.md#digests).
import CCrypto
import Foundation

/// A content address, `algorithm:encoded`, validated on construction.
///
/// Only `sha256` and `sha512` are accepted: those are the algorithms the image-spec registers,
/// and anything else cannot be verified.
public struct Digest: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public enum Algorithm: String, Sendable, Codable, CaseIterable {
        case sha256, sha512
        /// Length of the lowercase hex encoding.
        public var hexLength: Int { self == .sha256 ? 64 : 128 }
    }

    public let algorithm: Algorithm
    /// Lowercase hex.
    public let encoded: String

    public init(algorithm: Algorithm, encoded: String) throws {
        guard encoded.utf8.count == algorithm.hexLength,
              encoded.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        else {
            throw OCIError.invalidDigest("\(algorithm.rawValue):\(encoded)",
                reason: "expected \(algorithm.hexLength) lowercase hex characters after '\(algorithm.rawValue):'")
        }
        self.algorithm = algorithm
        self.encoded = encoded
    }

    /// Parses `sha256:<64 hex>` or `sha512:<128 hex>`.
    public init(parsing string: String) throws {
        guard let colon = string.firstIndex(of: ":") else {
            throw OCIError.invalidDigest(string, reason: "expected 'algorithm:hex', e.g. sha256:<64 hex characters>")
        }
        let alg = String(string[..<colon])
        guard let algorithm = Algorithm(rawValue: alg) else {
            throw OCIError.invalidDigest(string, reason: "unsupported algorithm '\(alg)' (sha256 and sha512 are supported)")
        }
        try self.init(algorithm: algorithm, encoded: String(string[string.index(after: colon)...]))
    }

    public var description: String { "\(algorithm.rawValue):\(encoded)" }

    public static func < (a: Digest, b: Digest) -> Bool { a.description < b.description }

    public init(from decoder: any Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        try self.init(parsing: s)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// Digest of a whole buffer.
    public static func compute<D: DataProtocol>(_ data: D, algorithm: Algorithm = .sha256) -> Digest {
        var h = Hasher(algorithm)
        h.update(data)
        return h.finalize()
    }

    /// Streaming hasher over OpenSSL's EVP interface.
    public struct Hasher: ~Copyable {
        private let ctx: OpaquePointer
        public let algorithm: Algorithm
        public private(set) var count: Int64 = 0

        public init(_ algorithm: Algorithm = .sha256) {
            self.algorithm = algorithm
            ctx = EVP_MD_CTX_new()
            EVP_DigestInit_ex(ctx, algorithm == .sha256 ? Self.sha256 : Self.sha512, nil)
        }

        // The algorithms fetched once per process: with OpenSSL 3, `EVP_sha256()` passed to
        // `EVP_DigestInit_ex` is fetched from the provider again at every init (~35K
        // instructions, more than hashing a small document; `images` hashes 200, issue #19).
        // A fetched EVP_MD is immutable and may be shared by threads; nil (no provider) falls
        // back to the built-in one.
        nonisolated(unsafe) private static let sha256: OpaquePointer? = EVP_MD_fetch(nil, "SHA256", nil) ?? EVP_sha256()
        nonisolated(unsafe) private static let sha512: OpaquePointer? = EVP_MD_fetch(nil, "SHA512", nil) ?? EVP_sha512()

        deinit { EVP_MD_CTX_free(ctx) }

        public mutating func update(_ buffer: UnsafeRawBufferPointer) {
            guard let base = buffer.baseAddress, buffer.count > 0 else { return }
            EVP_DigestUpdate(ctx, base, buffer.count)
            count += Int64(buffer.count)
        }

        public mutating func update<D: DataProtocol>(_ data: D) {
            for region in data.regions {
                region.withUnsafeBytes { update($0) }
            }
        }

        /// Ends the hash; the hasher must not be used afterwards.
        public consuming func finalize() -> Digest {
            var out = [UInt8](repeating: 0, count: 64)
            var len: UInt32 = 0
            EVP_DigestFinal_ex(ctx, &out, &len)
            let hex = Digest.hex(out.prefix(Int(len)))
            // Valid by construction.
            return Digest(trusted: algorithm, hex)
        }
    }

    private init(trusted algorithm: Algorithm, _ encoded: String) {
        self.algorithm = algorithm
        self.encoded = encoded
    }

    static func hex<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let table = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(table[Int(b >> 4)])
            out.append(table[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
