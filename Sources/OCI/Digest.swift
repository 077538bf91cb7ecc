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

    /// Streaming hasher over OpenSSL's SHA-256/512 functions (not EVP: the first EVP digest of
    /// a process loads OpenSSL 3's provider, ~5M instructions, a third of `dockbuild images`).
    public struct Hasher: ~Copyable {
        private let sha256: UnsafeMutablePointer<SHA256_CTX>?
        private let sha512: UnsafeMutablePointer<SHA512_CTX>?
        public let algorithm: Algorithm
        public private(set) var count: Int64 = 0

        public init(_ algorithm: Algorithm = .sha256) {
            self.algorithm = algorithm
            if algorithm == .sha256 {
                let c = UnsafeMutablePointer<SHA256_CTX>.allocate(capacity: 1)
                _ = ccrypto_sha256_init(c)
                (sha256, sha512) = (c, nil)
            } else {
                let c = UnsafeMutablePointer<SHA512_CTX>.allocate(capacity: 1)
                _ = ccrypto_sha512_init(c)
                (sha256, sha512) = (nil, c)
            }
        }

        deinit {
            sha256?.deallocate()
            sha512?.deallocate()
        }

        public mutating func update(_ buffer: UnsafeRawBufferPointer) {
            guard let base = buffer.baseAddress, buffer.count > 0 else { return }
            if let sha256 { _ = ccrypto_sha256_update(sha256, base, buffer.count) }
            if let sha512 { _ = ccrypto_sha512_update(sha512, base, buffer.count) }
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
            var len = 0
            if let sha256 { _ = ccrypto_sha256_final(&out, sha256); len = 32 }
            if let sha512 { _ = ccrypto_sha512_final(&out, sha512); len = 64 }
            let hex = Digest.hex(out.prefix(len))
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
