// Small helpers that reproduce Go's standard library behaviour where the
// Dockerfile syntax depends on it (unicode.IsSpace, strconv.Quote, ...).

@inline(__always)
func isGoSpace(_ s: Unicode.Scalar) -> Bool {
    switch s.value {
    case 0x20, 0x09, 0x0A, 0x0B, 0x0C, 0x0D: return true
    case 0..<0x80: return false
    case 0x85, 0xA0: return true
    default: return s.properties.isWhitespace
    }
}

/// Byte-level `[\t\v\f\r ]` (BuildKit's reWhitespace).
@inline(__always)
func isRegexWhitespace(_ b: UInt8) -> Bool {
    b == 0x20 || b == 0x09 || b == 0x0B || b == 0x0C || b == 0x0D
}

/// Decodes the scalar at `i` of UTF-8 bytes; invalid bytes decode as U+FFFD of width 1, as in Go.
@inline(__always)
func decodeScalar(_ b: [UInt8], _ i: Int) -> (Unicode.Scalar, Int) {
    let c0 = b[i]
    if c0 < 0x80 { return (Unicode.Scalar(c0), 1) }
    let n = b.count
    func cont(_ k: Int) -> UInt32? {
        guard k < n, b[k] & 0xC0 == 0x80 else { return nil }
        return UInt32(b[k] & 0x3F)
    }
    if c0 & 0xE0 == 0xC0, let c1 = cont(i + 1) {
        let v = (UInt32(c0 & 0x1F) << 6) | c1
        if v >= 0x80, let s = Unicode.Scalar(v) { return (s, 2) }
    } else if c0 & 0xF0 == 0xE0, let c1 = cont(i + 1), let c2 = cont(i + 2) {
        let v = (UInt32(c0 & 0x0F) << 12) | (c1 << 6) | c2
        if v >= 0x800, let s = Unicode.Scalar(v) { return (s, 3) }
    } else if c0 & 0xF8 == 0xF0, let c1 = cont(i + 1), let c2 = cont(i + 2), let c3 = cont(i + 3) {
        let v = (UInt32(c0 & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3
        if v >= 0x10000, v <= 0x10FFFF, let s = Unicode.Scalar(v) { return (s, 4) }
    }
    return ("\u{FFFD}", 1)
}

@inline(__always)
func string(_ b: ArraySlice<UInt8>) -> String { String(decoding: b, as: UTF8.self) }

@inline(__always)
func string(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

/// Go's strings.TrimSpace over bytes: the trimmed bounds.
func trimSpaceBounds(_ b: [UInt8], _ lo: Int, _ hi: Int) -> (Int, Int) {
    var s = lo
    while s < hi {
        let (c, w) = decodeScalar(b, s)
        if !isGoSpace(c) { break }
        s += w
    }
    var e = hi
    while e > s {
        // step back one scalar
        var k = e - 1
        while k > s && b[k] & 0xC0 == 0x80 { k -= 1 }
        let (c, _) = decodeScalar(b, k)
        if !isGoSpace(c) { break }
        e = k
    }
    return (s, e)
}

func goTrimSpace(_ s: String) -> String {
    let b = Array(s.utf8)
    let (lo, hi) = trimSpaceBounds(b, 0, b.count)
    return string(b[lo..<hi])
}

/// Go's unicode.IsPrint, close enough for quoting: letters, marks, numbers,
/// punctuation, symbols and the ASCII space.
private func isGoPrint(_ s: Unicode.Scalar) -> Bool {
    if s.value < 0x80 { return s.value >= 0x20 && s.value < 0x7F }
    switch s.properties.generalCategory {
    case .control, .format, .privateUse, .surrogate, .unassigned,
         .lineSeparator, .paragraphSeparator, .spaceSeparator:
        return false
    default:
        return true
    }
}

/// Go's text rules for other modules: `GoString.quote` is strconv.Quote (`%q`), as BuildKit
/// writes strings in image history.
public enum GoString {
    public static func quote(_ s: String) -> String { goQuote(s) }
}

/// Go's strconv.Quote.
func goQuote(_ s: String) -> String {
    var out = "\""
    out.reserveCapacity(s.utf8.count + 2)
    for sc in s.unicodeScalars {
        switch sc {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\u{07}": out += "\\a"
        case "\u{08}": out += "\\b"
        case "\u{0C}": out += "\\f"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\u{0B}": out += "\\v"
        default:
            if isGoPrint(sc) {
                out.unicodeScalars.append(sc)
            } else if sc.value < 0x80 {
                out += "\\x" + hex(sc.value, 2)
            } else if sc.value < 0x10000 {
                out += "\\u" + hex(sc.value, 4)
            } else {
                out += "\\U" + hex(sc.value, 8)
            }
        }
    }
    out += "\""
    return out
}

private func hex(_ v: UInt32, _ width: Int) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, width - s.count)) + s
}

/// Levenshtein distance over Unicode scalars.
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var prev = Array(0...y.count)
    var cur = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        cur[0] = i
        for j in 1...y.count {
            let cost = x[i - 1] == y[j - 1] ? 0 : 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
        }
        swap(&prev, &cur)
    }
    return prev[y.count]
}

/// The closest option within distance 2 (BuildKit's suggest.Search); nil on an exact match.
func suggest(_ value: String, among options: [String], caseSensitive: Bool) -> String? {
    let val = caseSensitive ? value : value.lowercased()
    var best: String?
    var bestDistance = 3
    for option in options.sorted() {
        let opt = caseSensitive ? option : option.lowercased()
        if opt == val { return nil }
        let d = editDistance(val, opt)
        if d < bestDistance {
            bestDistance = d
            if caseSensitive {
                best = opt
            } else if value == value.lowercased() {
                best = opt.lowercased()
            } else if value == value.uppercased() {
                best = opt.uppercased()
            } else {
                best = opt
            }
        }
    }
    return best
}

/// A UTF-8 byte buffer that scalars are appended to; much cheaper than
/// appending to a String scalar by scalar.
struct ScalarBuffer {
    var bytes: [UInt8] = []

    @inline(__always) var isEmpty: Bool { bytes.isEmpty }

    @inline(__always) mutating func append(_ s: Unicode.Scalar) {
        let v = s.value
        if v < 0x80 {
            bytes.append(UInt8(v))
        } else if v < 0x800 {
            bytes.append(UInt8(0xC0 | (v >> 6)))
            bytes.append(UInt8(0x80 | (v & 0x3F)))
        } else if v < 0x10000 {
            bytes.append(UInt8(0xE0 | (v >> 12)))
            bytes.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            bytes.append(UInt8(0x80 | (v & 0x3F)))
        } else {
            bytes.append(UInt8(0xF0 | (v >> 18)))
            bytes.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
            bytes.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            bytes.append(UInt8(0x80 | (v & 0x3F)))
        }
    }

    @inline(__always) mutating func append(_ s: String) {
        bytes.append(contentsOf: s.utf8)
    }

    @inline(__always) mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
    }

    var string: String { String(decoding: bytes, as: UTF8.self) }
}
