/// Follows the block structure of a tar stream as it goes by (before libarchive sees each block)
/// and refuses what libarchive lets pass: PAX extended headers must be well-formed records
/// (`"%d %s=%s\n"`, the length counting itself), and the values that become numbers (`uid`,
/// `gid`, `size`, times) must be numbers in range — libarchive reads `uid=abc` as 0 and skips a
/// malformed record with a warning, and a `size` it misreads makes file data parse as headers.
/// It also tells whether the stream reached its end-of-archive block.
///
/// Where the layout gets ambiguous between tar readers (GNU sparse files, data on entry types
/// that have none, unknown types, bad header checksums) it stops following and leaves the stream
/// to libarchive alone: it only ever adds errors to what libarchive accepts, never takes any away.
struct TarScanner {
    private enum State {
        case header
        case skip(Int64)
        case extended(remaining: Int, padding: Int64, global: Bool)
        case ended
        case gaveUp
    }

    private var state = State.header
    private var block: [UInt8] = []
    private var body: [UInt8] = []
    /// A PAX `size` for the next entry.
    private var pendingSize: Int64?
    private var offset: Int64 = 0
    private var headerOffset: Int64 = 0
    /// Extended headers above this size are left to libarchive (which has its own limit).
    static let maxExtendedHeader = 64 << 20

    /// The first problem found; once set, nothing more is scanned.
    private(set) var error: ArchiveError?

    /// The stream reached an all-zero header block (libarchive stops reading there).
    var reachedEnd: Bool { if case .ended = state { return true } else { return false } }
    /// The scanner stopped following the structure (see the type's comment).
    var gaveUp: Bool { if case .gaveUp = state { return true } else { return false } }

    mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        var i = 0
        let n = bytes.count
        while i < n && error == nil {
            switch state {
            case .ended, .gaveUp:
                offset += Int64(n - i)
                return
            case let .skip(left):
                let take = Int(min(left, Int64(n - i)))
                i += take
                offset += Int64(take)
                state = left - Int64(take) == 0 ? .header : .skip(left - Int64(take))
            case .header:
                if block.isEmpty { headerOffset = offset }
                let take = min(512 - block.count, n - i)
                block.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<(i + take)]))
                i += take
                offset += Int64(take)
                if block.count == 512 {
                    header()
                    block.removeAll(keepingCapacity: true)
                }
            case let .extended(remaining, padding, global):
                let take = min(remaining, n - i)
                body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<(i + take)]))
                i += take
                offset += Int64(take)
                if remaining - take > 0 {
                    state = .extended(remaining: remaining - take, padding: padding, global: global)
                } else {
                    parseRecords(global: global)
                    body.removeAll()
                    if error == nil, !gaveUp { state = padding > 0 ? .skip(padding) : .header }
                }
            }
        }
    }

    private mutating func fail(_ reason: String) {
        error = .malformed(entry: nil, reason: "tar header at byte \(headerOffset) of the uncompressed stream: \(reason)")
    }

    private mutating func header() {
        if block.allSatisfy({ $0 == 0 }) { state = .ended; return }
        // A header whose checksum is wrong is libarchive's to report.
        var sum = 0
        for (k, b) in block.enumerated() { sum += (148..<156).contains(k) ? 0x20 : Int(b) }
        guard let stored = Self.octal(block[148..<156]), stored == Int64(sum) else { state = .gaveUp; return }
        guard var size = Self.number(block[124..<136]) else { state = .gaveUp; return }
        let type = block[156]
        let isExtension = type == UInt8(ascii: "x") || type == UInt8(ascii: "X") || type == UInt8(ascii: "g")
        if !isExtension, let pending = pendingSize { size = pending }
        if !isExtension { pendingSize = nil }
        guard size <= Int64.max - 511 else { state = .gaveUp; return } // libarchive refuses such sizes itself
        let padded = size % 512 == 0 ? size : size + (512 - size % 512)
        switch type {
        case UInt8(ascii: "x"), UInt8(ascii: "X"), UInt8(ascii: "g"):
            guard size <= Int64(Self.maxExtendedHeader) else { state = .gaveUp; return }
            state = size == 0 ? .header : .extended(remaining: Int(size), padding: padded - size, global: type == UInt8(ascii: "g"))
        case 0, UInt8(ascii: "0"), UInt8(ascii: "7"), UInt8(ascii: "L"), UInt8(ascii: "K"):
            state = padded == 0 ? .header : .skip(padded)
        case UInt8(ascii: "1"), UInt8(ascii: "2"), UInt8(ascii: "3"), UInt8(ascii: "4"), UInt8(ascii: "5"), UInt8(ascii: "6"):
            // Readers disagree on whether these carry data; follow only the unambiguous case.
            state = size == 0 ? .header : .gaveUp
        default:
            state = .gaveUp // GNU sparse ('S'), volume labels, vendor types
        }
    }

    private mutating func parseRecords(global: Bool) {
        var p = 0
        let b = body
        while p < b.count {
            if b[p] == 0 && b[p...].allSatisfy({ $0 == 0 }) { return } // NUL padding after the last record
            var q = p
            var length = 0
            while q < b.count, b[q] >= 0x30, b[q] <= 0x39, q - p < 10 {
                length = length * 10 + Int(b[q] - 0x30)
                q += 1
            }
            guard q > p, q < b.count, b[q] == 0x20 else {
                return fail("a PAX record at byte \(p) of the extended header does not start with its length")
            }
            guard length > q - p + 1, p + length <= b.count, b[p + length - 1] == 0x0a else {
                return fail("a PAX record at byte \(p) of the extended header has length \(length), which does not end at a newline inside the header")
            }
            let record = b[(q + 1)..<(p + length - 1)]
            guard let eq = record.firstIndex(of: 0x3d), eq > record.startIndex else {
                return fail("a PAX record at byte \(p) of the extended header is not KEY=VALUE")
            }
            let key = String(decoding: record[record.startIndex..<eq], as: UTF8.self)
            let value = b[(eq + 1)..<record.endIndex]
            let text = String(decoding: value, as: UTF8.self)
            if key.hasPrefix("GNU.sparse.") { state = .gaveUp; return }
            if value.isEmpty { // an empty value deletes the keyword (POSIX): the header field counts again
                if key == "size" && !global { pendingSize = nil }
                p += length
                continue
            }
            switch key {
            case "uid", "gid":
                guard let v = Self.decimal(value), v <= Int64(UInt32.max) - 1 else {
                    return fail("PAX \(key)=\(text.prefix(40)) is not a number in 0-\(UInt32.max - 1)")
                }
            case "size":
                guard let v = Self.decimal(value) else { return fail("PAX size=\(text.prefix(40)) is not a number in 0-\(Int64.max)") }
                if !global { pendingSize = v }
            case "mtime", "atime", "ctime":
                guard Self.time(value) else { return fail("PAX \(key)=\(text.prefix(40)) is not a time (seconds, optional fraction)") }
            default:
                break
            }
            p += length
        }
    }

    /// Decimal digits only, no sign, no overflow.
    static func decimal(_ v: ArraySlice<UInt8>) -> Int64? {
        guard !v.isEmpty, v.count <= 19 else { return nil }
        var r: Int64 = 0
        for c in v {
            guard c >= 0x30 && c <= 0x39 else { return nil }
            r = r * 10 + Int64(c - 0x30)
        }
        return r
    }

    /// `[-]digits[.digits]`.
    static func time(_ v: ArraySlice<UInt8>) -> Bool {
        var s = v
        if s.first == 0x2d { s = s.dropFirst() }
        let parts = s.split(separator: 0x2e, maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, decimal(whole) != nil else { return false }
        if parts.count == 2 { return !parts[1].isEmpty && parts[1].allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
        return true
    }

    /// An octal field (spaces and NULs around the digits), as ustar writes them.
    static func octal(_ f: ArraySlice<UInt8>) -> Int64? {
        var r: Int64 = 0
        var digits = 0
        var ended = false
        for c in f {
            if c == 0x20 || c == 0 { if digits > 0 { ended = true }; continue }
            guard !ended, c >= 0x30, c <= 0x37, digits < 21 else { return nil }
            r = r * 8 + Int64(c - 0x30)
            digits += 1
        }
        return r
    }

    /// A size field: octal, or GNU base-256 (high bit set) when it fits a non-negative Int64.
    static func number(_ f: ArraySlice<UInt8>) -> Int64? {
        guard let first = f.first else { return nil }
        if first & 0x80 == 0 { return octal(f) }
        guard first == 0x80 else { return nil } // negative or too large
        var r: Int64 = 0
        for c in f.dropFirst() {
            guard r <= (Int64.max >> 8) else { return nil }
            r = r << 8 | Int64(c)
        }
        return r
    }
}
