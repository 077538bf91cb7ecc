/// JSON string literals written by hand, for output whose bytes must match another writer's
/// where a serializer costs too much per call (the event log, runc's output, json-file logs).
package enum JSONString {
    /// Whose escaping to match.
    package enum Style: Sendable {
        /// Foundation's JSONSerialization (with `.withoutEscapingSlashes`): `\b` and `\f` short,
        /// other controls as `\u00XX`, nothing else escaped.
        case foundation
        /// Go's encoding/json: controls (`\b` and `\f` included) as `\u00XX` but for `\n`, `\r`,
        /// `\t`; U+2028 and U+2029 escaped; `<`, `>` and `&` too unless `escapeHTML` is false.
        case go(escapeHTML: Bool)
    }

    /// Appends `s` as a quoted JSON string to `out`.
    package static func append(_ s: String, to out: inout String, style: Style) {
        let foundation: Bool, html: Bool
        switch style {
        case .foundation: (foundation, html) = (true, false)
        case .go(let escapeHTML): (foundation, html) = (false, escapeHTML)
        }
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}" where foundation: out += "\\b"
            case "\u{0C}" where foundation: out += "\\f"
            case "<" where html, ">" where html, "&" where html, "\u{2028}" where !foundation, "\u{2029}" where !foundation:
                appendUnicodeEscape(u.value, to: &out)
            default:
                if u.value < 0x20 { appendUnicodeEscape(u.value, to: &out) } else { out.unicodeScalars.append(u) }
            }
        }
        out += "\""
    }

    /// `s` as a quoted JSON string.
    package static func quoted(_ s: String, style: Style) -> String {
        var out = ""
        append(s, to: &out, style: style)
        return out
    }

    private static func appendUnicodeEscape(_ v: UInt32, to out: inout String) {
        let hex = String(v, radix: 16)
        out += "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}
