// A decoder for config.json that avoids Codable on the container start path.
//
// JSONDecoder spends most of its ~1.5 ms per spec in the Swift runtime (generic
// metadata and conformance look-ups for ~30 Codable types), not in parsing. This
// file parses the bytes into a plain tree and maps it field by field.
//
// It is deliberately stricter than JSONDecoder: whatever it is unsure about
// (duplicate keys, numbers with a fraction or exponent for integer fields, a
// byte order mark, very deep nesting) makes it fail, and the caller then decodes
// with JSONDecoder, so results and error messages never differ from it.

import Foundation

/// A parsed JSON value. Numbers keep their text so every integer width converts exactly.
enum FastJSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([FastJSON])
    case object([String: FastJSON])
}

/// Why the fast path gave up; never shown to users (the JSONDecoder path reports instead).
struct FastJSONFailure: Error, Equatable {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}

// MARK: parser

extension FastJSON {
    /// Parses one complete JSON text (RFC 8259), with surrounding whitespace only.
    static func parse(_ data: Data) throws -> FastJSON {
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
    func integerParts() throws -> (negative: Bool, magnitude: UInt64) {
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

    func uint64() throws -> UInt64 {
        let (neg, m) = try integerParts()
        guard !neg else { throw FastJSONFailure("negative value for an unsigned field") }
        return m
    }

    func int64() throws -> Int64 {
        let (neg, m) = try integerParts()
        if neg {
            guard m <= UInt64(Int64.max) + 1 else { throw FastJSONFailure("out of Int64 range") }
            return Int64(bitPattern: 0 &- m)
        }
        guard m <= UInt64(Int64.max) else { throw FastJSONFailure("out of Int64 range") }
        return Int64(m)
    }

    /// An integer of type `T`, refused when the literal does not fit.
    func integer<T: FixedWidthInteger>() throws -> T {
        let v = T.isSigned ? T(exactly: try int64()) : T(exactly: try uint64())
        guard let v else { throw FastJSONFailure("out of \(T.self) range") }
        return v
    }

    func uint32() throws -> UInt32 { try integer() }
    func int32() throws -> Int32 { try integer() }
    func uint16() throws -> UInt16 { try integer() }
    func uint() throws -> UInt { try integer() }
    func int() throws -> Int { try integer() }

    /// The nearest Double (Swift's parser rounds correctly), finite only.
    func double() throws -> Double {
        guard case .number(let text) = self, let d = Double(text), d.isFinite else { throw FastJSONFailure("expected a finite number") }
        return d
    }

    func string() throws -> String {
        guard case .string(let s) = self else { throw FastJSONFailure("expected a string") }
        return s
    }

    func bool() throws -> Bool {
        guard case .bool(let v) = self else { throw FastJSONFailure("expected a bool") }
        return v
    }

    func array() throws -> [FastJSON] {
        guard case .array(let a) = self else { throw FastJSONFailure("expected an array") }
        return a
    }

    func object() throws -> FastObject {
        guard case .object(let o) = self else { throw FastJSONFailure("expected an object") }
        return FastObject(fields: o)
    }

    func strings() throws -> [String] {
        let a = try array()
        var out: [String] = []
        out.reserveCapacity(a.count)
        for v in a { out.append(try v.string()) }
        return out
    }

    func uint32s() throws -> [UInt32] {
        let a = try array()
        var out: [UInt32] = []
        out.reserveCapacity(a.count)
        for v in a { out.append(try v.uint32()) }
        return out
    }

    func stringMap() throws -> [String: String] {
        guard case .object(let o) = self else { throw FastJSONFailure("expected an object") }
        var out: [String: String] = [:]
        out.reserveCapacity(o.count)
        for (k, v) in o { out[k] = try v.string() }
        return out
    }
}

/// An object's fields with the lookups the spec needs. As in synthesized Codable,
/// an optional field that is absent or null is nil; a required one must be there.
struct FastObject {
    let fields: [String: FastJSON]

    /// The value of an optional field, nil when absent or null.
    subscript(_ key: String) -> FastJSON? {
        guard let v = fields[key] else { return nil }
        if case .null = v { return nil }
        return v
    }

    /// The value of a required field.
    func required(_ key: String) throws -> FastJSON {
        guard let v = self[key] else { throw FastJSONFailure("missing \(key)") }
        return v
    }

    func string(_ key: String) throws -> String? { try self[key]?.string() }
    func bool(_ key: String) throws -> Bool? { try self[key]?.bool() }
    func strings(_ key: String) throws -> [String]? { try self[key]?.strings() }
    func uint32(_ key: String) throws -> UInt32? { try self[key]?.uint32() }
    func uint64(_ key: String) throws -> UInt64? { try self[key]?.uint64() }
    func int64(_ key: String) throws -> Int64? { try self[key]?.int64() }
    func uint16(_ key: String) throws -> UInt16? { try self[key]?.uint16() }
    func int(_ key: String) throws -> Int? { try self[key]?.int() }
    func object(_ key: String) throws -> FastObject? { try self[key]?.object() }
    func array(_ key: String) throws -> [FastJSON]? { try self[key]?.array() }
}

// MARK: spec mapping (the same keys as the synthesized Codable conformances)

extension RuntimeSpec {
    /// Decodes config.json without Codable; throws `FastJSONFailure` for anything
    /// JSONDecoder should judge instead (see the top of this file).
    static func fastDecode(_ data: Data) throws -> RuntimeSpec {
        try RuntimeSpec(fast: FastJSON.parse(data))
    }

    init(fast json: FastJSON) throws {
        let o = try json.object()
        self.init(ociVersion: try o.required("ociVersion").string())
        if let v = try o.object("process") { process = try Process(fast: v) }
        if let v = try o.object("root") { root = try Root(fast: v) }
        hostname = try o.string("hostname")
        domainname = try o.string("domainname")
        if let a = try o.array("mounts") {
            var out: [Mount] = []
            out.reserveCapacity(a.count)
            for v in a { out.append(try Mount(fast: v.object())) }
            mounts = out
        }
        if let v = try o.object("hooks") { hooks = try Hooks(fast: v) }
        annotations = try o["annotations"]?.stringMap()
        if let v = try o.object("linux") { linux = try Linux(fast: v) }
    }
}

extension RuntimeSpec.Root {
    init(fast o: FastObject) throws {
        self.init(path: try o.required("path").string(), readonly: try o.bool("readonly"))
    }
}

extension RuntimeSpec.IDMapping {
    init(fast o: FastObject) throws {
        self.init(containerID: try o.required("containerID").uint32(),
                  hostID: try o.required("hostID").uint32(),
                  size: try o.required("size").uint32())
    }

    static func list(_ v: FastJSON?) throws -> [Self]? {
        guard let a = try v?.array() else { return nil }
        var out: [Self] = []
        out.reserveCapacity(a.count)
        for m in a { out.append(try Self(fast: m.object())) }
        return out
    }
}

extension RuntimeSpec.Mount {
    init(fast o: FastObject) throws {
        self.init(destination: try o.required("destination").string(), type: try o.string("type"),
                  source: try o.string("source"), options: try o.strings("options"))
        uidMappings = try RuntimeSpec.IDMapping.list(o["uidMappings"])
        gidMappings = try RuntimeSpec.IDMapping.list(o["gidMappings"])
    }
}

extension RuntimeSpec.Process {
    init(fast o: FastObject) throws {
        self.init(terminal: try o.bool("terminal"),
                  user: try RuntimeSpec.User(fast: o.required("user").object()),
                  args: try o.strings("args"),
                  env: try o.strings("env"),
                  cwd: try o.required("cwd").string(),
                  capabilities: try o.object("capabilities").map { try RuntimeSpec.Capabilities(fast: $0) },
                  noNewPrivileges: try o.bool("noNewPrivileges"),
                  oomScoreAdj: try o.int("oomScoreAdj"))
        if let c = try o.object("consoleSize") {
            consoleSize = RuntimeSpec.ConsoleSize(height: try c.required("height").uint(), width: try c.required("width").uint())
        }
        commandLine = try o.string("commandLine")
        if let a = try o.array("rlimits") {
            var out: [RuntimeSpec.Rlimit] = []
            out.reserveCapacity(a.count)
            for v in a {
                let r = try v.object()
                out.append(RuntimeSpec.Rlimit(type: try r.required("type").string(),
                                              hard: try r.required("hard").uint64(),
                                              soft: try r.required("soft").uint64()))
            }
            rlimits = out
        }
        apparmorProfile = try o.string("apparmorProfile")
        selinuxLabel = try o.string("selinuxLabel")
    }
}

extension RuntimeSpec.User {
    init(fast o: FastObject) throws {
        self.init(uid: try o.required("uid").uint32(), gid: try o.required("gid").uint32(),
                  umask: try o.uint32("umask"), additionalGids: try o["additionalGids"]?.uint32s())
        username = try o.string("username")
    }
}

extension RuntimeSpec.Capabilities {
    init(fast o: FastObject) throws {
        self.init(bounding: try o.strings("bounding"), effective: try o.strings("effective"),
                  inheritable: try o.strings("inheritable"), permitted: try o.strings("permitted"),
                  ambient: try o.strings("ambient"))
    }
}

extension RuntimeSpec.Hooks {
    init(fast o: FastObject) throws {
        self.init()
        prestart = try Self.list(o["prestart"])
        createRuntime = try Self.list(o["createRuntime"])
        createContainer = try Self.list(o["createContainer"])
        startContainer = try Self.list(o["startContainer"])
        poststart = try Self.list(o["poststart"])
        poststop = try Self.list(o["poststop"])
    }

    private static func list(_ v: FastJSON?) throws -> [RuntimeSpec.Hook]? {
        guard let a = try v?.array() else { return nil }
        var out: [RuntimeSpec.Hook] = []
        out.reserveCapacity(a.count)
        for h in a {
            let o = try h.object()
            out.append(RuntimeSpec.Hook(path: try o.required("path").string(), args: try o.strings("args"),
                                        env: try o.strings("env"), timeout: try o.int("timeout")))
        }
        return out
    }
}

extension RuntimeSpec.Linux {
    init(fast o: FastObject) throws {
        self.init()
        uidMappings = try RuntimeSpec.IDMapping.list(o["uidMappings"])
        gidMappings = try RuntimeSpec.IDMapping.list(o["gidMappings"])
        sysctl = try o["sysctl"]?.stringMap()
        if let v = try o.object("resources") { resources = try RuntimeSpec.Resources(fast: v) }
        cgroupsPath = try o.string("cgroupsPath")
        if let a = try o.array("namespaces") {
            var out: [RuntimeSpec.Namespace] = []
            out.reserveCapacity(a.count)
            for v in a {
                let n = try v.object()
                out.append(RuntimeSpec.Namespace(type: try n.required("type").string(), path: try n.string("path")))
            }
            namespaces = out
        }
        if let a = try o.array("devices") {
            var out: [RuntimeSpec.Device] = []
            out.reserveCapacity(a.count)
            for v in a {
                let d = try v.object()
                out.append(RuntimeSpec.Device(type: try d.required("type").string(), path: try d.required("path").string(),
                                              major: try d.int64("major"), minor: try d.int64("minor"),
                                              fileMode: try d.uint32("fileMode"), uid: try d.uint32("uid"),
                                              gid: try d.uint32("gid")))
            }
            devices = out
        }
        if let v = try o.object("seccomp") { seccomp = try RuntimeSpec.Seccomp(fast: v) }
        rootfsPropagation = try o.string("rootfsPropagation")
        maskedPaths = try o.strings("maskedPaths")
        readonlyPaths = try o.strings("readonlyPaths")
        mountLabel = try o.string("mountLabel")
        if let p = try o.object("personality") {
            personality = RuntimeSpec.Personality(domain: try p.required("domain").string(), flags: try p.strings("flags"))
        }
        if case .object(let offsets)? = o["timeOffsets"] {
            var out: [String: RuntimeSpec.TimeOffset] = [:]
            out.reserveCapacity(offsets.count)
            for (clock, v) in offsets {
                let t = try v.object()
                out[clock] = RuntimeSpec.TimeOffset(secs: try t.int64("secs"), nanosecs: try t.uint32("nanosecs"))
            }
            timeOffsets = out
        } else if o["timeOffsets"] != nil {
            throw FastJSONFailure("timeOffsets is not an object")
        }
    }
}

extension RuntimeSpec.Resources {
    init(fast o: FastObject) throws {
        self.init()
        if let a = try o.array("devices") {
            var out: [RuntimeSpec.DeviceCgroup] = []
            out.reserveCapacity(a.count)
            for v in a {
                let d = try v.object()
                out.append(RuntimeSpec.DeviceCgroup(allow: try d.required("allow").bool(), type: try d.string("type"),
                                                    major: try d.int64("major"), minor: try d.int64("minor"),
                                                    access: try d.string("access")))
            }
            devices = out
        }
        if let m = try o.object("memory") {
            var mem = RuntimeSpec.Memory(limit: try m.int64("limit"), reservation: try m.int64("reservation"), swap: try m.int64("swap"))
            mem.kernel = try m.int64("kernel")
            mem.kernelTCP = try m.int64("kernelTCP")
            mem.swappiness = try m.uint64("swappiness")
            mem.disableOOMKiller = try m.bool("disableOOMKiller")
            mem.useHierarchy = try m.bool("useHierarchy")
            memory = mem
        }
        if let c = try o.object("cpu") {
            var v = RuntimeSpec.CPU(shares: try c.uint64("shares"), quota: try c.int64("quota"), period: try c.uint64("period"),
                                    cpus: try c.string("cpus"), mems: try c.string("mems"))
            v.realtimeRuntime = try c.int64("realtimeRuntime")
            v.realtimePeriod = try c.uint64("realtimePeriod")
            v.idle = try c.int64("idle")
            cpu = v
        }
        if let p = try o.object("pids") { pids = RuntimeSpec.Pids(limit: try p.required("limit").int64()) }
        if let b = try o.object("blockIO") { blockIO = try RuntimeSpec.BlockIO(fast: b) }
        if let a = try o.array("hugepageLimits") {
            var out: [RuntimeSpec.HugepageLimit] = []
            out.reserveCapacity(a.count)
            for v in a {
                let h = try v.object()
                out.append(RuntimeSpec.HugepageLimit(pageSize: try h.required("pageSize").string(), limit: try h.required("limit").uint64()))
            }
            hugepageLimits = out
        }
        if let n = try o.object("network") {
            var prios: [RuntimeSpec.InterfacePriority]?
            if let a = try n.array("priorities") {
                var out: [RuntimeSpec.InterfacePriority] = []
                out.reserveCapacity(a.count)
                for v in a {
                    let p = try v.object()
                    out.append(RuntimeSpec.InterfacePriority(name: try p.required("name").string(), priority: try p.required("priority").uint32()))
                }
                prios = out
            }
            network = RuntimeSpec.Network(classID: try n.uint32("classID"), priorities: prios)
        }
        unified = try o["unified"]?.stringMap()
    }
}

extension RuntimeSpec.BlockIO {
    init(fast o: FastObject) throws {
        self.init()
        weight = try o.uint16("weight")
        leafWeight = try o.uint16("leafWeight")
        if let a = try o.array("weightDevice") {
            var out: [RuntimeSpec.WeightDevice] = []
            out.reserveCapacity(a.count)
            for v in a {
                let d = try v.object()
                out.append(RuntimeSpec.WeightDevice(major: try d.required("major").int64(), minor: try d.required("minor").int64(),
                                                    weight: try d.uint16("weight"), leafWeight: try d.uint16("leafWeight")))
            }
            weightDevice = out
        }
        throttleReadBpsDevice = try Self.throttles(o["throttleReadBpsDevice"])
        throttleWriteBpsDevice = try Self.throttles(o["throttleWriteBpsDevice"])
        throttleReadIOPSDevice = try Self.throttles(o["throttleReadIOPSDevice"])
        throttleWriteIOPSDevice = try Self.throttles(o["throttleWriteIOPSDevice"])
    }

    private static func throttles(_ v: FastJSON?) throws -> [RuntimeSpec.ThrottleDevice]? {
        guard let a = try v?.array() else { return nil }
        var out: [RuntimeSpec.ThrottleDevice] = []
        out.reserveCapacity(a.count)
        for t in a {
            let d = try t.object()
            out.append(RuntimeSpec.ThrottleDevice(major: try d.required("major").int64(), minor: try d.required("minor").int64(),
                                                  rate: try d.required("rate").uint64()))
        }
        return out
    }
}

extension RuntimeSpec.Seccomp {
    init(fast o: FastObject) throws {
        self.init(defaultAction: try o.required("defaultAction").string(), defaultErrnoRet: try o.uint32("defaultErrnoRet"),
                  architectures: try o.strings("architectures"))
        flags = try o.strings("flags")
        listenerPath = try o.string("listenerPath")
        listenerMetadata = try o.string("listenerMetadata")
        if let a = try o.array("syscalls") {
            var out: [RuntimeSpec.Syscall] = []
            out.reserveCapacity(a.count)
            for v in a {
                let s = try v.object()
                var args: [RuntimeSpec.SyscallArg]?
                if let al = try s.array("args") {
                    var list: [RuntimeSpec.SyscallArg] = []
                    list.reserveCapacity(al.count)
                    for x in al {
                        let g = try x.object()
                        list.append(RuntimeSpec.SyscallArg(index: try g.required("index").uint32(), value: try g.required("value").uint64(),
                                                           valueTwo: try g.uint64("valueTwo"), op: try g.required("op").string()))
                    }
                    args = list
                }
                out.append(RuntimeSpec.Syscall(names: try s.required("names").strings(), action: try s.required("action").string(),
                                               errnoRet: try s.uint32("errnoRet"), args: args))
            }
            syscalls = out
        }
    }
}

// MARK: state.json (start, state, kill, delete read it back in a process of their own)

extension ContainerRecord {
    /// Decodes state.json without Codable; throws `FastJSONFailure` for anything
    /// JSONDecoder should judge instead.
    static func fastDecode(_ data: Data) throws -> ContainerRecord {
        let o = try FastJSON.parse(data).object()
        return ContainerRecord(id: try o.required("id").string(), bundle: try o.required("bundle").string(),
                               rootfs: try o.required("rootfs").string(), pid: try o.required("pid").int32(),
                               startTime: try o.required("startTime").uint64(), created: try o.required("created").string(),
                               spec: try RuntimeSpec(fast: o.required("spec")),
                               cgroup: try o.object("cgroup").map { try Cgroup(fast: $0) })
    }
}

extension Cgroup {
    init(fast o: FastObject) throws {
        self.init(version: try o.required("version").string(), paths: try o.required("paths").stringMap(),
                  createdParents: try o.strings("createdParents"))
    }
}
