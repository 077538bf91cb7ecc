import Foundation
import SystemSupport

/// A JSON value whose objects keep their keys in the order given, so that output can follow
/// runc's (Go's struct field order) byte for byte; Foundation's encoders sort keys or scramble them.
public indirect enum OrderedJSON: Sendable, Equatable {
    case object([(String, OrderedJSON)])
    case array([OrderedJSON])
    case string(String)
    case uint(UInt64)
    case int(Int64)
    case bool(Bool)
    case null

    public static func == (a: OrderedJSON, b: OrderedJSON) -> Bool { a.rendered == b.rendered }

    /// The value as JSONSerialization would give it: dictionaries, arrays, NSNumber, NSNull.
    public var foundationValue: Any {
        switch self {
        case .object(let fields): return Dictionary(fields.map { ($0.0, $0.1.foundationValue) }, uniquingKeysWith: { _, b in b })
        case .array(let items): return items.map(\.foundationValue)
        case .string(let s): return s
        case .uint(let v): return NSNumber(value: v)
        case .int(let v): return NSNumber(value: v)
        case .bool(let v): return NSNumber(value: v)
        case .null: return NSNull()
        }
    }

    /// Indented JSON text, as Go's json.MarshalIndent(v, "", indent) writes it (runc's
    /// `features` and `state`): `"key": value`, one element per line, `[]` and `{}` when empty.
    /// `escapeHTML: false` leaves `<`, `>` and `&` as they are (Go's `SetEscapeHTML(false)`, as
    /// docker's API and `inspect` write JSON).
    public func indented(_ indent: String = "    ", escapeHTML: Bool = true) -> String {
        var out = ""
        writeIndented(into: &out, indent: indent, level: 0, escapeHTML: escapeHTML)
        return out
    }

    func writeIndented(into out: inout String, indent: String, level: Int, escapeHTML: Bool = true) {
        let pad = String(repeating: indent, count: level + 1), end = String(repeating: indent, count: level)
        switch self {
        case .object(let fields) where !fields.isEmpty:
            out += "{\n"
            for (i, (k, v)) in fields.enumerated() {
                out += pad
                OrderedJSON.quote(k, into: &out, escapeHTML: escapeHTML)
                out += ": "
                v.writeIndented(into: &out, indent: indent, level: level + 1, escapeHTML: escapeHTML)
                out += i == fields.count - 1 ? "\n" : ",\n"
            }
            out += end + "}"
        case .array(let items) where !items.isEmpty:
            out += "[\n"
            for (i, v) in items.enumerated() {
                out += pad
                v.writeIndented(into: &out, indent: indent, level: level + 1, escapeHTML: escapeHTML)
                out += i == items.count - 1 ? "\n" : ",\n"
            }
            out += end + "]"
        default:
            write(into: &out, escapeHTML: escapeHTML)
        }
    }

    /// Compact JSON text, as Go's encoding/json writes it (no spaces; `<`, `>`, `&` escaped).
    public var rendered: String {
        var out = ""
        write(into: &out)
        return out
    }

    func write(into out: inout String, escapeHTML: Bool = true) {
        switch self {
        case .object(let fields):
            out += "{"
            for (i, (k, v)) in fields.enumerated() {
                if i > 0 { out += "," }
                OrderedJSON.quote(k, into: &out, escapeHTML: escapeHTML)
                out += ":"
                v.write(into: &out, escapeHTML: escapeHTML)
            }
            out += "}"
        case .array(let items):
            out += "["
            for (i, v) in items.enumerated() {
                if i > 0 { out += "," }
                v.write(into: &out, escapeHTML: escapeHTML)
            }
            out += "]"
        case .string(let s): OrderedJSON.quote(s, into: &out, escapeHTML: escapeHTML)
        case .uint(let v): out += String(v)
        case .int(let v): out += String(v)
        case .bool(let v): out += v ? "true" : "false"
        case .null: out += "null"
        }
    }

    /// `s` as a JSON string the way Go's encoding/json writes it (`<`, `>`, `&`, U+2028 and
    /// U+2029 escaped): runc's output and docker's json-file log lines both use it.
    public static func quote(_ s: String) -> String {
        var out = ""
        quote(s, into: &out)
        return out
    }

    public static func quote(_ s: String, into out: inout String, escapeHTML: Bool = true) {
        JSONString.append(s, to: &out, style: .go(escapeHTML: escapeHTML))
    }
}
