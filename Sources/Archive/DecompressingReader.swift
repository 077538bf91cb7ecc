import CArchive
import CIsal
import CZstd
import Glibc

/// Reads a possibly compressed file as its uncompressed bytes. The compression is detected from the
/// first bytes: gzip (ISA-L inflate, members concatenated), zstd, none, or — for bzip2, xz, lz4 and
/// anything else libarchive knows — libarchive's raw reader.
final class DecompressingReader {
    enum Kind: String { case plain, gzip, zstd, other }

    let path: String
    private(set) var kind: Kind = .plain
    private let fd: Int32
    private let inBuf: UnsafeMutableRawPointer
    private let inCap = 1 << 20
    private var inPos = 0
    private var inLen = 0
    private var eof = false
    private var inflater: UnsafeMutableRawPointer?
    private var memberDone = false
    private var dctx: OpaquePointer?
    private var zstdFrameOpen = false
    private var archive: OpaquePointer?
    /// Compressed bytes consumed so far (for error messages).
    private(set) var consumed: Int64 = 0

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw ArchiveError.sys(path, "open") }
        var st = stat()
        if fstat(fd, &st) != 0 {
            let e = errno
            close(fd)
            throw ArchiveError.sys(path, "stat", e)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw ArchiveError.invalidArgument("\(path) is a directory, not a layer; give a tar file (plain, gzip or zstd)")
        }
        self.fd = fd
        // From here on a throw runs deinit (every stored property is set), which closes and frees.
        inBuf = UnsafeMutableRawPointer.allocate(byteCount: inCap, alignment: 64)
        var k = Kind.plain
        do {
            try fill()
            let b = UnsafeRawBufferPointer(start: inBuf, count: inLen)
            if inLen >= 2 && b[0] == 0x1f && b[1] == 0x8b {
                k = .gzip
            } else if inLen >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd {
                k = .zstd
            } else if inLen >= 3 && ((b[0] == 0x42 && b[1] == 0x5a && b[2] == 0x68) // bzip2
                                     || (b[0] == 0xfd && b[1] == 0x37 && b[2] == 0x7a) // xz
                                     || (b[0] == 0x5d && b[1] == 0x00 && b[2] == 0x00) // lzma
                                     || (b[0] == 0x04 && b[1] == 0x22 && b[2] == 0x4d)) { // lz4
                k = .other
            }
        }
        kind = k
        switch k {
        case .gzip:
            inflater = dockbuild_isal_inflater_new()
            if inflater == nil { throw ArchiveError.compression("cannot allocate an inflate stream (out of memory)") }
        case .zstd:
            dctx = ZSTD_createDCtx()
            if dctx == nil { throw ArchiveError.compression("cannot allocate a zstd stream (out of memory)") }
        case .other:
            try openLibarchive()
        case .plain:
            break
        }
    }

    deinit {
        close(fd)
        inBuf.deallocate()
        if let inflater { dockbuild_isal_inflater_free(inflater) }
        if let dctx { ZSTD_freeDCtx(dctx) }
        if let archive { archive_read_free(archive) }
    }

    /// Moves unread input to the front and reads more from the file.
    private func fill() throws {
        if inPos > 0 {
            if inPos < inLen { memmove(inBuf, inBuf + inPos, inLen - inPos) }
            inLen -= inPos
            inPos = 0
        }
        while inLen < inCap && !eof {
            let n = Glibc.read(fd, inBuf + inLen, inCap - inLen)
            if n < 0 {
                if errno == EINTR { continue }
                throw ArchiveError.sys(path, "read")
            }
            if n == 0 { eof = true; break }
            inLen += n
            if inLen >= 65536 { break }
        }
    }

    private func openLibarchive() throws {
        guard let a = archive_read_new() else {
            throw ArchiveError.compression(libarchiveReaderFailure())
        }
        archive = a
        archive_read_support_filter_all(a)
        archive_read_support_format_raw(a)
        if lseek(fd, 0, SEEK_SET) < 0 { throw ArchiveError.sys(path, "seek") }
        inPos = 0; inLen = 0
        if archive_read_open_fd(a, fd, 1 << 20) != ARCHIVE_OK {
            throw ArchiveError.malformed(entry: nil, reason: "\(path): \(String(cString: archive_error_string(a)))")
        }
        var entry: OpaquePointer?
        if archive_read_next_header(a, &entry) != ARCHIVE_OK {
            throw ArchiveError.malformed(entry: nil, reason: "\(path): \(String(cString: archive_error_string(a)))")
        }
    }

    /// Fills `buffer` with up to its size in uncompressed bytes; 0 means the end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let out = buffer.baseAddress, buffer.count > 0 else { return 0 }
        switch kind {
        case .plain:
            if inPos < inLen {
                let n = min(buffer.count, inLen - inPos)
                out.copyMemory(from: inBuf + inPos, byteCount: n)
                inPos += n
                return n
            }
            while true {
                let n = Glibc.read(fd, out, buffer.count)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ArchiveError.sys(path, "read")
                }
                return n
            }
        case .gzip:
            return try readGzip(out, buffer.count)
        case .zstd:
            return try readZstd(out, buffer.count)
        case .other:
            guard let archive else { return 0 }
            let n = archive_read_data(archive, out, buffer.count)
            if n < 0 { throw ArchiveError.malformed(entry: nil, reason: "\(path): \(String(cString: archive_error_string(archive)))") }
            return n
        }
    }

    private func readGzip(_ out: UnsafeMutableRawPointer, _ cap: Int) throws -> Int {
        guard let inflater else { return 0 }
        var produced = 0
        while produced == 0 {
            if memberDone {
                // Another member may follow (gzip allows concatenation); trailing zero padding is tolerated.
                if inPos == inLen { try fill() }
                if inPos == inLen { return 0 }
                let b = inBuf.assumingMemoryBound(to: UInt8.self)
                if b[inPos] == 0 {
                    var allZero = true
                    while true {
                        for i in inPos..<inLen where b[i] != 0 { allZero = false; break }
                        if !allZero || eof { break }
                        inPos = inLen
                        try fill()
                        if inLen == 0 { break }
                    }
                    if allZero { inPos = inLen; return 0 }
                }
                dockbuild_isal_inflater_reset(inflater)
                memberDone = false
            }
            if inPos == inLen {
                try fill()
                if inLen == 0 {
                    throw ArchiveError.malformed(entry: nil, reason: "\(path): gzip stream is truncated after \(consumed) bytes")
                }
            }
            var used: UInt32 = 0, made: UInt32 = 0
            var done: Int32 = 0
            let rc = dockbuild_isal_inflate(inflater, inBuf.assumingMemoryBound(to: UInt8.self) + inPos, UInt32(inLen - inPos), &used,
                                            (out + produced).assumingMemoryBound(to: UInt8.self), UInt32(min(cap - produced, Int(UInt32.max))),
                                            &made, &done)
            if rc < 0 {
                let what = rc == -6 ? "checksum mismatch" : "corrupt deflate data (ISA-L error \(rc))"
                throw ArchiveError.malformed(entry: nil, reason: "\(path): gzip \(what) near byte \(consumed)")
            }
            inPos += Int(used)
            consumed += Int64(used)
            produced += Int(made)
            if done != 0 { memberDone = true }
            if used == 0 && made == 0 && done == 0 {
                if eof && inPos == inLen {
                    throw ArchiveError.malformed(entry: nil, reason: "\(path): gzip stream is truncated after \(consumed) bytes")
                }
                try fill()
            }
        }
        return produced
    }

    private func readZstd(_ out: UnsafeMutableRawPointer, _ cap: Int) throws -> Int {
        guard let dctx else { return 0 }
        while true {
            if inPos == inLen {
                try fill()
                if inLen == 0 {
                    if zstdFrameOpen {
                        throw ArchiveError.malformed(entry: nil, reason: "\(path): zstd stream is truncated after \(consumed) bytes")
                    }
                    return 0
                }
            }
            var input = ZSTD_inBuffer(src: inBuf + inPos, size: inLen - inPos, pos: 0)
            var output = ZSTD_outBuffer(dst: out, size: cap, pos: 0)
            let rc = ZSTD_decompressStream(dctx, &output, &input)
            if ZSTD_isError(rc) != 0 {
                throw ArchiveError.malformed(entry: nil, reason: "\(path): zstd: \(String(cString: ZSTD_getErrorName(rc))) near byte \(consumed)")
            }
            inPos += input.pos
            consumed += Int64(input.pos)
            zstdFrameOpen = rc != 0
            if output.pos > 0 { return output.pos }
        }
    }
}
