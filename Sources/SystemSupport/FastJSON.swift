// A strict JSON parser into a plain tree, for decoders that avoid Codable on hot paths.
//
// JSONDecoder spends most of its time in the Swift runtime (generic metadata and
// conformance look-ups for each Codable type), not in parsing. A fast path parses the
// bytes into `FastJSON` and maps the fields by hand.
//
// It is deliberately stricter than JSONDecoder: whatever it is unsure about (duplicate
// keys, numbers with a fraction or exponent for integer fields, a byte order mark, very
// deep nesting) makes it fail, and the caller then decodes with JSONDecoder, so results
// and error messages never differ from it.

import Foundation

/// A parsed JSON value. Numbers keep their text so every integer width converts exactly.
package enum FastJSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([FastJSON])
    case object([String: FastJSON])
}

/// Why the fast path gave up; never shown to users (the JSONDecoder path reports instead).
package struct FastJSONFailure: Error, Equatable {
    package let reason: String
    package init(_ reason: String) { self.reason = reason }
}

// MARK: parser

extension FastJSON {
    /// Parses one complete JSON text (RFC 8259), with surrounding whitespace only.
    package static func parse(_ data: Data) throws -> FastJSON {
        try data.withUnsafeBytes { raw -> FastJSON in
            var p = FastJSONParser(raw.bindMemory(to: UInt8.self))
            p.skipSpace()
            let v = try p.value(depth: 0)
            p.skipSpace()
            guard p.i == p.b.count else { throw FastJSONFailure("data after the JSON value at byte \(p.i)") }
            return v
        }
    }
}

private struct FastJSONParser {
    let b: UnsafeBufferPointer<UInt8>
    var i = 0
    static let maxDepth = 256

    init(_ b: UnsafeBufferPointer<UInt8>) { self.b = b }

    mutating func skipSpace() {
        while i < b.count {
            let c = b[i]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            i += 1
        }
    }

    mutating func expect(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        guard b.count - i >= n else { throw FastJSONFailure("truncated literal at byte \(i)") }
        let w = word.utf8Start
        for k in 0..<n where b[i + k] != w[k] { throw FastJSONFailure("bad literal at byte \(i)") }
        i += n
    }

    mutating func value(depth: Int) throws -> FastJSON {
        guard depth < Self.maxDepth else { throw FastJSONFailure("nesting deeper than \(Self.maxDepth)") }
        guard i < b.count else { throw FastJSONFailure("unexpected end of data") }
        switch b[i] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw FastJSONFailure("unexpected byte \(b[i]) at byte \(i)")
        }
    }

    mutating func object(depth: Int) throws -> FastJSON {
        i += 1
        var fields: [String: FastJSON] = [:]
        skipSpace()
        if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(fields) }
        while true {
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw FastJSONFailure("expected a key at byte \(i)") }
            let key = try string()
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: ":") else { throw FastJSONFailure("expected ':' at byte \(i)") }
            i += 1
            skipSpace()
            let v = try value(depth: depth + 1)
            // JSONDecoder's choice between duplicates is its own business: leave those to it.
            guard fields.updateValue(v, forKey: key) == nil else { throw FastJSONFailure("duplicate key \"\(key)\"") }
            skipSpace()
            guard i < b.count else { throw FastJSONFailure("unterminated object") }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            if b[i] == UInt8(ascii: "}") { i += 1; return .object(fields) }
            throw FastJSONFailure("expected ',' or '}' at byte \(i)")
        }
    }

    mutating func array(depth: Int) throws -> FastJSON {
        i += 1
        var items: [FastJSON] = []
        skipSpace()
        if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
        while true {
            skipSpace()
            items.append(try value(depth: depth + 1))
            skipSpace()
            guard i < b.count else { throw FastJSONFailure("unterminated array") }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            if b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            throw FastJSONFailure("expected ',' or ']' at byte \(i)")
        }
    }

    /// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? ; returns the text as written.
    mutating func number() throws -> String {
        let start = i
        if b[i] == UInt8(ascii: "-") { i += 1 }
        guard i < b.count, isDigit(b[i]) else { throw FastJSONFailure("bad number at byte \(start)") }
        if b[i] == UInt8(ascii: "0") {
            i += 1
        } else {
            while i < b.count, isDigit(b[i]) { i += 1 }
        }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            guard i < b.count, isDigit(b[i]) else { throw FastJSONFailure("bad fraction at byte \(start)") }
            while i < b.count, isDigit(b[i]) { i += 1 }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard i < b.count, isDigit(b[i]) else { throw FastJSONFailure("bad exponent at byte \(start)") }
            while i < b.count, isDigit(b[i]) { i += 1 }
        }
        return String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
    }

    func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    /// A string starting at the opening quote; validates UTF-8 and decodes every escape.
    mutating func string() throws -> String {
        i += 1
        let start = i
        // Common case: no escapes, so the bytes are the string.
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                let s = UnsafeBufferPointer(rebasing: b[start..<i])
                try validateUTF8(s, at: start)
                i += 1
                return String(decoding: s, as: UTF8.self)
            }
            if c == UInt8(ascii: "\\") { break }
            guard c >= 0x20 else { throw FastJSONFailure("control character in string at byte \(i)") }
            i += 1
        }
        guard i < b.count else { throw FastJSONFailure("unterminated string at byte \(start)") }
        var out: [UInt8] = []
        out.reserveCapacity(i - start + 16)
        try validateUTF8(UnsafeBufferPointer(rebasing: b[start..<i]), at: start)
        out.append(contentsOf: UnsafeBufferPointer(rebasing: b[start..<i]))
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                return String(decoding: out, as: UTF8.self)
            }
            if c == UInt8(ascii: "\\") {
                i += 1
                guard i < b.count else { break }
                let e = b[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if scalar >= 0xD800 && scalar <= 0xDBFF {
                        // A high surrogate must be followed by an escaped low one.
                        guard b.count - i >= 6, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else {
                            throw FastJSONFailure("lone high surrogate at byte \(i)")
                        }
                        i += 2
                        let low = try hex4()
                        guard low >= 0xDC00 && low <= 0xDFFF else { throw FastJSONFailure("bad low surrogate at byte \(i)") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                        throw FastJSONFailure("lone low surrogate at byte \(i)")
                    }
                    try appendUTF8(scalar, to: &out)
                default:
                    throw FastJSONFailure("bad escape at byte \(i - 1)")
                }
                continue
            }
            // A run of plain bytes up to the next quote or backslash.
            let run = i
            while i < b.count, b[i] != UInt8(ascii: "\""), b[i] != UInt8(ascii: "\\") {
                guard b[i] >= 0x20 else { throw FastJSONFailure("control character in string at byte \(i)") }
                i += 1
            }
            let s = UnsafeBufferPointer(rebasing: b[run..<i])
            try validateUTF8(s, at: run)
            out.append(contentsOf: s)
        }
        throw FastJSONFailure("unterminated string at byte \(start)")
    }

    mutating func hex4() throws -> UInt32 {
        guard b.count - i >= 4 else { throw FastJSONFailure("truncated \\u escape at byte \(i)") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw FastJSONFailure("bad hex digit at byte \(i)")
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }

    func appendUTF8(_ s: UInt32, to out: inout [UInt8]) throws {
        guard let scalar = Unicode.Scalar(s) else { throw FastJSONFailure("U+\(String(s, radix: 16)) is not a scalar value") }
        UTF8.encode(scalar) { out.append($0) }
    }

    /// Well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
    func validateUTF8(_ s: UnsafeBufferPointer<UInt8>, at base: Int) throws {
        var k = 0
        let n = s.count
        while k < n {
            let c = s[k]
            if c < 0x80 { k += 1; continue }
            let len: Int
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            switch c {
            case 0xC2...0xDF: len = 2
            case 0xE0: len = 3; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: len = 3
            case 0xED: len = 3; hi = 0x9F
            case 0xF0: len = 4; lo = 0x90
            case 0xF1...0xF3: len = 4
            case 0xF4: len = 4; hi = 0x8F
            default: throw FastJSONFailure("invalid UTF-8 at byte \(base + k)")
            }
            guard n - k >= len, s[k + 1] >= lo, s[k + 1] <= hi else { throw FastJSONFailure("invalid UTF-8 at byte \(base + k)") }
            for j in 2..<max(2, len) where s[k + j] & 0xC0 != 0x80 {
                throw FastJSONFailure("invalid UTF-8 at byte \(base + k)")
            }
            k += len
        }
    }
}

// MARK: typed access

extension FastJSON {
    /// Sign and magnitude of an integer literal; fractions and exponents are refused
    /// (JSONDecoder decides about those on the slow path).
    package func integerParts() throws -> (negative: Bool, magnitude: UInt64) {
        guard case .number(let text) = self else { throw FastJSONFailure("expected a number") }
        var negative = false
        var m: UInt64 = 0
        var digits = 0
        for c in text.utf8 {
            if c == UInt8(ascii: "-") { negative = true; continue }
            guard c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") else { throw FastJSONFailure("\(text) is not an integer") }
            let (m10, o1) = m.multipliedReportingOverflow(by: 10)
            let (sum, o2) = m10.addingReportingOverflow(UInt64(c - UInt8(ascii: "0")))
            guard !o1, !o2 else { throw FastJSONFailure("\(text) is out of range") }
            m = sum
            digits += 1
        }
        guard digits > 0 else { throw FastJSONFailure("expected digits") }
        // "-0" is left to JSONDecoder.
        guard !(negative && m == 0) else { throw FastJSONFailure("-0") }
        return (negative, m)
    }

    package func uint64() throws -> UInt64 {
        let (neg, m) = try integerParts()
        guard !neg else { throw FastJSONFailure("negative value for an unsigned field") }
        return m
    }

    package func int64() throws -> Int64 {
        let (neg, m) = try integerParts()
        if neg {
            guard m <= UInt64(Int64.max) + 1 else { throw FastJSONFailure("out of Int64 range") }
            return Int64(bitPattern: 0 &- m)
        }
        guard m <= UInt64(Int64.max) else { throw FastJSONFailure("out of Int64 range") }
        return Int64(m)
    }

    /// An integer of type `T`, refused when the literal does not fit.
    package func integer<T: FixedWidthInteger>() throws -> T {
        let v = T.isSigned ? T(exactly: try int64()) : T(exactly: try uint64())
        guard let v else { throw FastJSONFailure("out of \(T.self) range") }
        return v
    }

    package func uint32() throws -> UInt32 { try integer() }
    package func int32() throws -> Int32 { try integer() }
    package func uint16() throws -> UInt16 { try integer() }
    package func uint() throws -> UInt { try integer() }
    package func int() throws -> Int { try integer() }

    /// The nearest Double (Swift's parser rounds correctly), finite only.
    package func double() throws -> Double {
        guard case .number(let text) = self, let d = Double(text), d.isFinite else { throw FastJSONFailure("expected a finite number") }
        return d
    }

    package func string() throws -> String {
        guard case .string(let s) = self else { throw FastJSONFailure("expected a string") }
        return s
    }

    package func bool() throws -> Bool {
        guard case .bool(let v) = self else { throw FastJSONFailure("expected a bool") }
        return v
    }

    package func array() throws -> [FastJSON] {
        guard case .array(let a) = self else { throw FastJSONFailure("expected an array") }
        return a
    }

    package func object() throws -> FastObject {
        guard case .object(let o) = self else { throw FastJSONFailure("expected an object") }
        return FastObject(fields: o)
    }

    package func strings() throws -> [String] {
        let a = try array()
        var out: [String] = []
        out.reserveCapacity(a.count)
        for v in a { out.append(try v.string()) }
        return out
    }

    package func uint32s() throws -> [UInt32] {
        let a = try array()
        var out: [UInt32] = []
        out.reserveCapacity(a.count)
        for v in a { out.append(try v.uint32()) }
        return out
    }

    package func stringMap() throws -> [String: String] {
        guard case .object(let o) = self else { throw FastJSONFailure("expected an object") }
        var out: [String: String] = [:]
        out.reserveCapacity(o.count)
        for (k, v) in o { out[k] = try v.string() }
        return out
    }
}

/// An object's fields with the lookups the spec needs. As in synthesized Codable,
/// an optional field that is absent or null is nil; a required one must be there.
package struct FastObject: Sendable {
    package let fields: [String: FastJSON]

    /// The value of an optional field, nil when absent or null.
    package subscript(_ key: String) -> FastJSON? {
        guard let v = fields[key] else { return nil }
        if case .null = v { return nil }
        return v
    }

    /// The value of a required field.
    package func required(_ key: String) throws -> FastJSON {
        guard let v = self[key] else { throw FastJSONFailure("missing \(key)") }
        return v
    }

    package func string(_ key: String) throws -> String? { try self[key]?.string() }
    package func bool(_ key: String) throws -> Bool? { try self[key]?.bool() }
    package func strings(_ key: String) throws -> [String]? { try self[key]?.strings() }
    package func uint32(_ key: String) throws -> UInt32? { try self[key]?.uint32() }
    package func uint64(_ key: String) throws -> UInt64? { try self[key]?.uint64() }
    package func int64(_ key: String) throws -> Int64? { try self[key]?.int64() }
    package func uint16(_ key: String) throws -> UInt16? { try self[key]?.uint16() }
    package func int(_ key: String) throws -> Int? { try self[key]?.int() }
    package func object(_ key: String) throws -> FastObject? { try self[key]?.object() }
    package func array(_ key: String) throws -> [FastJSON]? { try self[key]?.array() }
    package func int32(_ key: String) throws -> Int32? { try self[key]?.int32() }
    package func stringMap(_ key: String) throws -> [String: String]? { try self[key]?.stringMap() }

    /// An optional array whose elements `element` maps (nil when absent or null).
    package func list<T>(_ key: String, _ element: (FastJSON) throws -> T) throws -> [T]? {
        guard let a = try self[key]?.array() else { return nil }
        var out: [T] = []
        out.reserveCapacity(a.count)
        for v in a { out.append(try element(v)) }
        return out
    }

    /// An optional string-keyed map whose values `value` maps (nil when absent or null).
    package func map<T>(_ key: String, _ value: (FastJSON) throws -> T) throws -> [String: T]? {
        guard let v = self[key] else { return nil }
        guard case .object(let o) = v else { throw FastJSONFailure("\(key) is not an object") }
        var out: [String: T] = [:]
        out.reserveCapacity(o.count)
        for (k, x) in o { out[k] = try value(x) }
        return out
    }

    /// A raw-value enum case; a value the enum does not know is refused.
    package func rawValue<T: RawRepresentable>(_ key: String, as: T.Type = T.self) throws -> T? where T.RawValue == String {
        guard let s = try string(key) else { return nil }
        guard let v = T(rawValue: s) else { throw FastJSONFailure("\(key): unknown value \(s)") }
        return v
    }
}

