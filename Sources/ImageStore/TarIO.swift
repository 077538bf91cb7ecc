// Tar in and out for save/load: a small deterministic ustar writer (the entries of an image
// archive are blobs and JSON files with short names) and a reader over libarchive, which
// reads every tar dialect and compression.
import Archive
import CArchive
import Foundation
import OCI
#if canImport(Glibc)
import Glibc
#endif

/// Writes a ustar stream to a file descriptor: sorted, fixed metadata (mtime 0, root:root),
/// so the same images always give the same archive.
final class TarWriter {
    let fd: Int32
    let path: String
    private var written: Int64 = 0

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    private func header(name: String, size: Int64, directory: Bool) throws -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        var nameBytes = Array(name.utf8)
        var prefix: [UInt8] = []
        if nameBytes.count > 100 {
            // Split at a '/' so that prefix <= 155 and name <= 100.
            guard let cut = nameBytes.indices.last(where: { nameBytes[$0] == 0x2F && $0 <= 155 && nameBytes.count - $0 - 1 <= 100 }) else {
                throw ImageStoreError.invalidContent("tar entry name too long: \(name)")
            }
            prefix = Array(nameBytes[..<cut])
            nameBytes = Array(nameBytes[(cut + 1)...])
        }
        func put(_ bytes: [UInt8], at off: Int) { for (i, b) in bytes.enumerated() { h[off + i] = b } }
        func octal(_ v: Int64, width: Int) -> [UInt8] {
            let s = String(v, radix: 8)
            return Array((String(repeating: "0", count: max(0, width - 1 - s.count)) + s).utf8)
        }
        put(nameBytes, at: 0)
        put(octal(directory ? 0o755 : 0o644, width: 8), at: 100)
        put(octal(0, width: 8), at: 108)
        put(octal(0, width: 8), at: 116)
        if size < 0o77777777777 {
            put(octal(size, width: 12), at: 124)
        } else {  // base-256 for sizes of 8 GiB and more
            h[124] = 0x80
            var v = size
            for i in stride(from: 135, to: 124, by: -1) { h[i] = UInt8(v & 0xFF); v >>= 8 }
        }
        put(octal(0, width: 12), at: 136)
        put(Array("        ".utf8), at: 148)
        h[156] = directory ? 0x35 : 0x30
        put(Array("ustar\u{0}00".utf8), at: 257)
        put(Array("root".utf8), at: 265)
        put(Array("root".utf8), at: 297)
        put(prefix, at: 345)
        let sum = h.reduce(0) { $0 + Int($1) }
        put(octal(Int64(sum), width: 7) + [0], at: 148)
        return h
    }

    private func emit(_ bytes: UnsafeRawBufferPointer) throws {
        try FileOps.writeAll(fd: fd, bytes, path: path)
        written += Int64(bytes.count)
    }

    private func pad() throws {
        let r = Int(written % 512)
        if r != 0 { try [UInt8](repeating: 0, count: 512 - r).withUnsafeBytes { try emit($0) } }
    }

    func addDirectory(_ name: String) throws {
        try header(name: name.hasSuffix("/") ? name : name + "/", size: 0, directory: true).withUnsafeBytes { try emit($0) }
    }

    func addFile(_ name: String, data: Data) throws {
        try header(name: name, size: Int64(data.count), directory: false).withUnsafeBytes { try emit($0) }
        try data.withUnsafeBytes { try emit($0) }
        try pad()
    }

    /// Copies the file at `source` into the archive as `name`.
    func addFile(_ name: String, contentsOf source: String) throws {
        guard let size = FileOps.fileSize(source) else { throw ImageStoreError.io("cannot stat", path: source, errno: errno) }
        try header(name: name, size: size, directory: false).withUnsafeBytes { try emit($0) }
        let src = open(source, O_RDONLY | O_CLOEXEC)
        guard src >= 0 else { throw ImageStoreError.io("cannot open", path: source, errno: errno) }
        defer { close(src) }
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buf.deallocate() }
        var left = size
        while left > 0 {
            let n = read(src, buf.baseAddress, min(buf.count, Int(left)))
            if n < 0 {
                if errno == EINTR { continue }
                throw ImageStoreError.io("cannot read", path: source, errno: errno)
            }
            if n == 0 { throw ImageStoreError.invalidContent("\(source) shrank while it was being archived") }
            try emit(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
            left -= Int64(n)
        }
        try pad()
    }

    func finish() throws {
        try [UInt8](repeating: 0, count: 1024).withUnsafeBytes { try emit($0) }
    }
}

/// Reading archives and compressed streams with libarchive.
enum TarReader {
    final class Handle {
        let a: OpaquePointer
        init(raw: Bool) throws {
            guard let a = archive_read_new() else {
                throw ImageStoreError.unsupported(libarchiveReaderFailure())
            }
            self.a = a
            if raw {
                archive_read_support_format_raw(a)
            } else {
                archive_read_support_format_tar(a)
                archive_read_support_format_gnutar(a)
            }
            archive_read_support_filter_all(a)
        }
        deinit { archive_read_free(a) }
        var error: String { archive_error_string(a).map { String(cString: $0) } ?? "unknown error" }
    }

    struct Entry {
        var path: String
        var isRegular: Bool
        var isDirectory: Bool
        var size: Int64
        /// Target of a symlink or hard link.
        var linkTarget: String?
        var isHardlink = false
    }

    /// Calls `body` for each entry of the tar at `path` (or fd 0 when `path` is "-"); `read`
    /// streams the entry's bytes. Truncated or damaged archives throw, naming `what`.
    static func forEachEntry(path: String, what: String, allowEmpty: Bool = false,
                             _ body: (Entry, (_ sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws -> Void) throws {
        let h = try Handle(raw: false)
        let rc = path == "-" ? archive_read_open_fd(h.a, 0, 1 << 20) : archive_read_open_filename(h.a, path, 1 << 20)
        guard rc == ARCHIVE_OK else {
            let hint = h.error.contains("Unrecognized") ? " (expected a tar archive, plain or compressed)" : ""
            throw ImageStoreError.invalidContent("cannot read \(what): \(h.error)\(hint)")
        }
        var count = 0
        while true {
            var entry: OpaquePointer?
            let r = archive_read_next_header(h.a, &entry)
            if r == ARCHIVE_EOF { break }
            guard r == ARCHIVE_OK || r == ARCHIVE_WARN, let entry else {
                throw ImageStoreError.invalidContent("\(what) is damaged or truncated after \(count) entries: \(h.error)")
            }
            count += 1
            let name = archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
            let type = archive_entry_filetype(entry)
            var e = Entry(path: name, isRegular: type == 0o100000, isDirectory: type == 0o040000,
                          size: archive_entry_size(entry))
            if let hl = archive_entry_hardlink(entry) {
                e.linkTarget = String(cString: hl)
                e.isHardlink = true
            } else if type == 0o120000, let sl = archive_entry_symlink(entry) {
                e.linkTarget = String(cString: sl)
            }
            var consumed = false
            try body(e) { sink in
                consumed = true
                try drain(h, what: "\(what), entry \(name)", sink)
            }
            if !consumed {
                // Skipping seeks over data in plain files; a truncated archive still fails at the next header.
                let sr = archive_read_data_skip(h.a)
                guard sr == ARCHIVE_OK || sr == ARCHIVE_WARN else {
                    throw ImageStoreError.invalidContent("\(what) is damaged or truncated in entry \(name): \(h.error)")
                }
            }
        }
        if count == 0 && !allowEmpty { throw ImageStoreError.invalidContent("\(what) holds no files; is it a tar archive?") }
    }

    static func drain(_ h: Handle, what: String, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        var buf: UnsafeRawPointer?
        var size = 0
        var offset: Int64 = 0
        while true {
            let r = archive_read_data_block(h.a, &buf, &size, &offset)
            if r == ARCHIVE_EOF { return }
            guard r == ARCHIVE_OK || r == ARCHIVE_WARN else {
                throw ImageStoreError.invalidContent("\(what) is damaged or truncated: \(h.error)")
            }
            if let buf, size > 0 { try sink(UnsafeRawBufferPointer(start: buf, count: size)) }
        }
    }

    /// Streams the decompressed bytes of `path` (gzip, zstd, ... or plain) into `sink`, through
    /// Archive's decompressors, which check gzip CRC-32/ISIZE and zstd checksums (libarchive's
    /// gzip filter does not check the trailer).
    static func decompress(path: String, what: String, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        do {
            try LayerDigest.read(layer: path, sink)
        } catch let e as ArchiveError {
            throw ImageStoreError.invalidContent("\(what) is damaged: \(e)")
        }
    }

    /// The compression of the file at `path`, from its first bytes.
    static func sniffCompression(_ path: String) -> MediaType.LayerCompression {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .uncompressed }
        defer { close(fd) }
        var b = [UInt8](repeating: 0, count: 4)
        let n = read(fd, &b, 4)
        if n >= 2, b[0] == 0x1F, b[1] == 0x8B { return .gzip }
        if n >= 4, b == [0x28, 0xB5, 0x2F, 0xFD] { return .zstd }
        return .uncompressed
    }
}
