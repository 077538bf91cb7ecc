// A strict JSON reader with Go's encoding/json rules, used to decide whether
// an instruction's arguments are in exec form (`["a", "b"]`).

enum JSONArrayResult {
    /// A valid array of strings: each value with its byte range in the line.
    case strings([(String, Int, Int)])
    /// Valid JSON, but an element is not a string (a hard error in BuildKit).
    case notStrings
    /// Not valid JSON: the arguments are taken in shell form.
    case invalid
}

struct JSONArrayReader {
    let b: [UInt8]
    var i: Int
    let end: Int
    var depth = 0
    var strings: [(String, Int, Int)] = []
    var allStrings = true

    init(_ b: [UInt8], _ lo: Int, _ hi: Int) {
        self.b = b
        self.i = lo
        self.end = hi
    }

    static func parse(_ b: [UInt8], _ lo: Int, _ hi: Int) -> JSONArrayResult {
        var r = JSONArrayReader(b, lo, hi)
        guard r.topLevel() else { return .invalid }
        return r.allStrings ? .strings(r.strings) : .notStrings
    }

    mutating func skipWS() {
        while i < end {
            switch b[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    mutating func topLevel() -> Bool {
        skipWS()
        guard i < end, b[i] == UInt8(ascii: "[") else { return false }
        i += 1
        skipWS()
        if i < end, b[i] == UInt8(ascii: "]") {
            i += 1
        } else {
            while true {
                skipWS()
                guard i < end else { return false }
                if b[i] == UInt8(ascii: "\"") {
                    let start = i
                    guard let s = readString() else { return false }
                    strings.append((s, start, i))
                } else {
                    allStrings = false
                    guard value() else { return false }
                }
                skipWS()
                guard i < end else { return false }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "]") { i += 1; break }
                return false
            }
        }
        skipWS()
        return i == end
    }

    mutating func value() -> Bool {
        skipWS()
        guard i < end else { return false }
        switch b[i] {
        case UInt8(ascii: "\""): return readString() != nil
        case UInt8(ascii: "["): return container(close: UInt8(ascii: "]"), object: false)
        case UInt8(ascii: "{"): return container(close: UInt8(ascii: "}"), object: true)
        case UInt8(ascii: "t"): return literal("true")
        case UInt8(ascii: "f"): return literal("false")
        case UInt8(ascii: "n"): return literal("null")
        default: return number()
        }
    }

    mutating func container(close: UInt8, object: Bool) -> Bool {
        depth += 1
        defer { depth -= 1 }
        if depth > 2000 { return false }
        i += 1
        skipWS()
        if i < end, b[i] == close { i += 1; return true }
        while true {
            skipWS()
            if object {
                guard i < end, b[i] == UInt8(ascii: "\""), readString() != nil else { return false }
                skipWS()
                guard i < end, b[i] == UInt8(ascii: ":") else { return false }
                i += 1
            }
            guard value() else { return false }
            skipWS()
            guard i < end else { return false }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            if b[i] == close { i += 1; return true }
            return false
        }
    }

    mutating func literal(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard end - i >= n else { return false }
        let p = word.utf8Start
        for k in 0..<n where b[i + k] != p[k] { return false }
        i += n
        return true
    }

    mutating func digits() -> Int {
        let s = i
        while i < end, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
        return i - s
    }

    mutating func number() -> Bool {
        if i < end, b[i] == UInt8(ascii: "-") { i += 1 }
        guard i < end else { return false }
        if b[i] == UInt8(ascii: "0") {
            i += 1
        } else if b[i] >= 0x31, b[i] <= 0x39 {
            _ = digits()
        } else {
            return false
        }
        if i < end, b[i] == UInt8(ascii: ".") {
            i += 1
            guard digits() > 0 else { return false }
        }
        if i < end, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            if i < end, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { return false }
        }
        return true
    }

    mutating func hex4() -> UInt32? {
        guard end - i >= 4 else { return nil }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: return nil
            }
            v = v * 16 + d
            i += 1
        }
        return v
    }

    /// Reads a string starting at the opening quote; nil on a syntax error.
    mutating func readString() -> String? {
        i += 1
        var out = String.UnicodeScalarView()
        while i < end {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                return String(out)
            }
            if c < 0x20 { return nil }
            if c == UInt8(ascii: "\\") {
                i += 1
                guard i < end else { return nil }
                let e = b[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append("\"")
                case UInt8(ascii: "\\"): out.append("\\")
                case UInt8(ascii: "/"): out.append("/")
                case UInt8(ascii: "b"): out.append("\u{08}")
                case UInt8(ascii: "f"): out.append("\u{0C}")
                case UInt8(ascii: "n"): out.append("\n")
                case UInt8(ascii: "r"): out.append("\r")
                case UInt8(ascii: "t"): out.append("\t")
                case UInt8(ascii: "u"):
                    guard let v = hex4() else { return nil }
                    if v >= 0xD800 && v < 0xDC00 {
                        // a high surrogate: combine with a following low one if present
                        let save = i
                        if end - i >= 6, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") {
                            i += 2
                            if let lo = hex4(), lo >= 0xDC00, lo < 0xE000,
                               let s = Unicode.Scalar(0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)) {
                                out.append(s)
                                continue
                            }
                        }
                        i = save
                        out.append("\u{FFFD}")
                    } else if let s = Unicode.Scalar(v) {
                        out.append(s)
                    } else {
                        out.append("\u{FFFD}")
                    }
                default:
                    return nil
                }
                continue
            }
            let (s, w) = decodeScalar(b, i)
            out.append(s)
            i += w
        }
        return nil
    }
}
