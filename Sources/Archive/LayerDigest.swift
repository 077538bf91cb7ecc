import OCI

/// A layer's diffID without unpacking it: the uncompressed stream read end to end through the
/// same decompressors that `LayerApplier` uses, so every integrity check they make applies here
/// too (gzip CRC-32 and ISIZE trailers, zstd frame checksums, truncation). `load` and `pull` use
/// it to refuse an image whose layers do not match its config before anything is named.
public enum LayerDigest {
    /// Digest (of `algorithm`, sha256 by default) and size of the uncompressed stream of the
    /// layer file at `path` (plain tar, gzip, zstd, or any compression libarchive knows).
    /// sha256 is computed on another thread than the decompression (the two overlap, as when
    /// layers are written).
    public static func diffID(ofLayer path: String, algorithm: Digest.Algorithm = .sha256) throws -> (diffID: Digest, size: Int64) {
        guard algorithm == .sha256 else {
            var hasher = Digest.Hasher(algorithm)
            var size: Int64 = 0
            try read(layer: path) { buf in
                hasher.update(buf)
                size += Int64(buf.count)
            }
            return (hasher.finalize(), size)
        }
        let reader = try DecompressingReader(path: path)
        let hasher = try BackgroundHasher()
        var size: Int64 = 0
        do {
            var end = false
            while !end {
                let c = Chunk()
                while c.free > 0 {
                    let n = try reader.read(into: UnsafeMutableRawBufferPointer(start: c.base + c.count, count: c.free))
                    if n == 0 { end = true; break }
                    c.count += n
                }
                if c.count > 0 {
                    size += Int64(c.count)
                    hasher.push(c)
                }
            }
        } catch {
            hasher.abandon()
            throw error
        }
        return (hasher.finish(), size)
    }

    /// Streams the uncompressed bytes of the layer file at `path` into `sink`, in order; the
    /// decompressor's integrity checks run to the last byte (a stream that fails them throws).
    public static func read(layer path: String, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        let reader = try DecompressingReader(path: path)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { buffer.deallocate() }
        while true {
            let n = try reader.read(into: buffer)
            if n == 0 { break }
            try sink(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
    }

    /// Throws `ArchiveError.diffIDMismatch` (naming `layer`, e.g. its blob digest) unless the
    /// uncompressed stream of the file at `path` hashes to `expected`.
    public static func verify(layer path: String, named layer: String, expected: Digest) throws {
        let (actual, _) = try diffID(ofLayer: path, algorithm: expected.algorithm)
        if actual != expected { throw ArchiveError.diffIDMismatch(layer: layer, expected: expected, actual: actual) }
    }
}
