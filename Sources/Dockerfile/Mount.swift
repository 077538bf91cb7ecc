/// A `RUN --mount=...` specification (Dockerfile reference, "RUN --mount").
public struct Mount: Sendable, Hashable {
    public enum MountType: String, Sendable, Hashable, CaseIterable {
        case bind, cache, tmpfs, secret, ssh
    }

    public enum Sharing: String, Sendable, Hashable, CaseIterable {
        case shared, `private`, locked
    }

    public var type: MountType = .bind
    /// Stage, image or named context to mount from (bind, cache).
    public var from: String?
    public var source: String?
    public var target: String?
    public var readOnly = false
    /// tmpfs size in bytes (0: no limit).
    public var sizeLimit: Int64 = 0
    public var cacheID: String?
    public var sharing: Sharing?
    public var required = false
    /// secret: also expose the secret as this environment variable.
    public var env: String?
    public var mode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?

    public init() {}

    /// Parses one `--mount` value (comma-separated, CSV quoting) after variable expansion.
    /// - Throws: `ExpansionError` with BuildKit's message.
    public static func parse(_ spec: String) throws(ExpansionError) -> Mount {
        try parse(spec, expand: { $0 })
    }

    /// Parses one `--mount` value, expanding each option value with `expand` first
    /// (as BuildKit does: the values, not the keys or the commas).
    public static func parse(_ spec: String, expand: (String) throws(ExpansionError) -> String) throws(ExpansionError) -> Mount {
        do {
            return try parseSpec(spec, expand: expand)
        } catch let error as ExpansionError {
            throw error
        } catch let error as InstructionError {
            throw ExpansionError(error.suggestion.map { "\(error.message) (did you mean \($0)?)" } ?? error.message)
        } catch {
            throw ExpansionError("\(error)")
        }
    }

    static func csvFields(_ s: String) throws(InstructionError) -> [String] {
        var fields: [String] = []
        let c = Array(s.utf8)
        let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ",")
        var i = 0
        while true {
            var field: [UInt8] = []
            if i < c.count && c[i] == quote {
                i += 1
                var closed = false
                while i < c.count {
                    if c[i] == quote {
                        if i + 1 < c.count && c[i + 1] == quote {
                            field.append(quote)
                            i += 2
                            continue
                        }
                        i += 1
                        closed = true
                        break
                    }
                    field.append(c[i])
                    i += 1
                }
                if !closed || (i < c.count && c[i] != comma) {
                    throw InstructionError("failed to parse csv mounts: extraneous or missing \" in quoted-field")
                }
            } else {
                let start = i
                while i < c.count && c[i] != comma {
                    if c[i] == quote {
                        throw InstructionError("failed to parse csv mounts: bare \" in non-quoted-field")
                    }
                    i += 1
                }
                field.append(contentsOf: c[start..<i])
            }
            fields.append(String(decoding: field, as: UTF8.self))
            if i >= c.count { break }
            i += 1  // the comma
        }
        return fields
    }

    static func parseSpec(_ spec: String) throws(InstructionError) -> Mount {
        do {
            return try parseSpec(spec, expand: { $0 })
        } catch let error as InstructionError {
            throw error
        } catch {
            throw InstructionError("\(error)")
        }
    }

    static func parseSpec(_ spec: String, expand: (String) throws(ExpansionError) -> String) throws -> Mount {
        var m = Mount()
        var roAuto = true
        for field in try csvFields(spec) {
            let key: String, value: String
            if let eq = field.firstIndex(of: "=") {
                key = field[..<eq].lowercased()
                value = try expand(String(field[field.index(after: eq)...]))
            } else {
                switch field.lowercased() {
                case "readonly", "ro":
                    m.readOnly = true
                    roAuto = false
                case "readwrite", "rw":
                    m.readOnly = false
                    roAuto = false
                case "required":
                    guard m.type == .secret || m.type == .ssh else {
                        throw InstructionError("unexpected key 'required' for mount type '\(m.type.rawValue)'")
                    }
                    m.required = true
                default:
                    throw InstructionError("invalid field '\(field)' must be a key=value pair")
                }
                continue
            }
            switch key {
            case "type":
                guard let t = MountType(rawValue: value.lowercased()) else {
                    throw InstructionError("unsupported mount type \(goQuote(value))",
                                           suggestion: suggest(value, among: MountType.allCases.map(\.rawValue), caseSensitive: true))
                }
                m.type = t
            case "from": m.from = value
            case "source", "src": m.source = value
            case "target", "dst", "destination": m.target = value
            case "readonly", "ro":
                guard let b = parseGoBool(value) else { throw InstructionError("invalid value for \(key): \(value)") }
                m.readOnly = b
                roAuto = false
            case "readwrite", "rw":
                guard let b = parseGoBool(value) else { throw InstructionError("invalid value for \(key): \(value)") }
                m.readOnly = !b
                roAuto = false
            case "required":
                guard m.type == .secret || m.type == .ssh else {
                    throw InstructionError("unexpected key '\(key)' for mount type '\(m.type.rawValue)'")
                }
                guard let b = parseGoBool(value) else { throw InstructionError("invalid value for \(key): \(value)") }
                m.required = b
            case "size":
                guard m.type == .tmpfs else {
                    throw InstructionError("unexpected key '\(key)' for mount type '\(m.type.rawValue)'")
                }
                guard let size = parseRAMInBytes(value) else { throw InstructionError("invalid value for \(key): \(value)") }
                m.sizeLimit = size
            case "id": m.cacheID = value
            case "sharing":
                guard let s = Sharing(rawValue: value.lowercased()) else {
                    throw InstructionError("unsupported sharing value \(goQuote(value))",
                                           suggestion: suggest(value, among: Sharing.allCases.map(\.rawValue), caseSensitive: true))
                }
                m.sharing = s
            case "mode":
                guard let v = UInt32(value, radix: 8) else { throw InstructionError("invalid value \(value) for mode") }
                m.mode = v
            case "uid":
                guard let v = UInt32(value) else { throw InstructionError("invalid value \(value) for uid") }
                m.uid = v
            case "gid":
                guard let v = UInt32(value) else { throw InstructionError("invalid value \(value) for gid") }
                m.gid = v
            case "env": m.env = value
            default:
                let keys = ["type", "from", "source", "target", "readonly", "id", "sharing", "required", "size", "mode",
                            "uid", "gid", "src", "dst", "destination", "ro", "rw", "readwrite", "env"]
                throw InstructionError("unexpected key '\(key)' in '\(field)'", suggestion: suggest(key, among: keys, caseSensitive: true))
            }
        }
        let fileInfoAllowed = m.type == .secret || m.type == .ssh || m.type == .cache
        if !fileInfoAllowed {
            if m.mode != nil { throw InstructionError("mode not allowed for \(goQuote(m.type.rawValue)) type mounts") }
            if m.uid != nil { throw InstructionError("uid not allowed for \(goQuote(m.type.rawValue)) type mounts") }
            if m.gid != nil { throw InstructionError("gid not allowed for \(goQuote(m.type.rawValue)) type mounts") }
        }
        if roAuto {
            m.readOnly = !(m.type == .cache || m.type == .tmpfs)
        }
        if m.type == .secret {
            if m.from != nil { throw InstructionError("secret mount should not have a from") }
            if m.sharing != nil { throw InstructionError("secret mount should not define sharing") }
            if m.source == nil && m.target == nil && m.cacheID == nil {
                throw InstructionError("invalid secret mount. one of source, target required")
            }
            if m.source != nil && m.cacheID != nil { throw InstructionError("both source and id can't be set") }
        }
        if m.sharing != nil && m.type != .cache {
            throw InstructionError("invalid cache sharing set for \(m.type.rawValue) mount")
        }
        return m
    }
}

/// docker/go-units RAMInBytes: `512`, `64k`, `1.5g`, `100MiB` (binary multiples).
func parseRAMInBytes(_ s: String) -> Int64? {
    var digits = ""
    var rest = Substring(s)
    while let c = rest.first, c.isASCII, c.isNumber || c == "." {
        digits.append(c)
        rest = rest.dropFirst()
    }
    guard !digits.isEmpty, let v = Double(digits) else { return nil }
    if rest.first == " " { rest = rest.dropFirst() }
    var mult: Double = 1
    if let c = rest.first?.lowercased() {
        let units: [String: Double] = ["k": 1024, "m": 1_048_576, "g": 1_073_741_824, "t": 1_099_511_627_776, "p": 1_125_899_906_842_624]
        if let u = units[c] {
            mult = u
            rest = rest.dropFirst()
        }
    }
    if rest.first?.lowercased() == "i" { rest = rest.dropFirst() }
    if rest.first?.lowercased() == "b" { rest = rest.dropFirst() }
    guard rest.isEmpty else { return nil }
    return Int64(v * mult)
}
