// Any JSON value, so documents keep fields the model does not name (old docker configs carry
// container_config, AttachStdin, ...) and re-encode without losing them.

/// A JSON value of any shape.
public enum JSONValue: Codable, Hashable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int64.self) { self = .int(i); return }
        if let d = try? c.decode(Double.self) { self = .double(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        self = .object(try c.decode([String: JSONValue].self))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case let .bool(b): try c.encode(b)
        case let .int(i): try c.encode(i)
        case let .double(d): try c.encode(d)
        case let .string(s): try c.encode(s)
        case let .array(a): try c.encode(a)
        case let .object(o): try c.encode(o)
        }
    }
}

/// A coding key for any string, for the fields a model keeps in `extra`.
struct DynamicKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Decoder {
    /// Fields of the current object whose names are not in `known`.
    func unknownFields(known: Set<String>) throws -> [String: JSONValue]? {
        let c = try container(keyedBy: DynamicKey.self)
        var out: [String: JSONValue] = [:]
        for k in c.allKeys where !known.contains(k.stringValue) {
            out[k.stringValue] = try c.decode(JSONValue.self, forKey: k)
        }
        return out.isEmpty ? nil : out
    }
}

extension Encoder {
    func encodeExtra(_ extra: [String: JSONValue]?) throws {
        guard let extra else { return }
        var c = container(keyedBy: DynamicKey.self)
        for (k, v) in extra { try c.encode(v, forKey: DynamicKey(k)) }
    }
}
