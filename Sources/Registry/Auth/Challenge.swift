import Foundation

/// A parsed `WWW-Authenticate` challenge (RFC 7235): scheme plus parameters.
public struct AuthChallenge: Sendable, Equatable {
    public enum Scheme: Sendable, Equatable {
        case basic, bearer
        case other(String)
    }

    public var scheme: Scheme
    /// Parameter names are lowercased.
    public var parameters: [String: String]

    public var realm: String? { parameters["realm"] }
    public var service: String? { parameters["service"] }
    public var scope: String? { parameters["scope"] }

    public init(scheme: Scheme, parameters: [String: String]) {
        self.scheme = scheme
        self.parameters = parameters
    }

    /// Parses every challenge in one or more header values; unknown syntax is skipped.
    public static func parse(_ headerValues: [String]) -> [AuthChallenge] {
        headerValues.flatMap { parse(value: $0) }
    }

    static func parse(value: String) -> [AuthChallenge] {
        var out: [AuthChallenge] = []
        let chars = Array(value.unicodeScalars)
        var i = 0
        func skipSpaces() { while i < chars.count, chars[i] == " " || chars[i] == "\t" { i += 1 } }
        func token() -> String {
            var s = String.UnicodeScalarView()
            while i < chars.count, !" \t,=\"".unicodeScalars.contains(chars[i]) { s.append(chars[i]); i += 1 }
            return String(s)
        }
        while i < chars.count {
            skipSpaces()
            while i < chars.count, chars[i] == "," { i += 1; skipSpaces() }
            let schemeName = token()
            if schemeName.isEmpty { i += 1; continue }
            var params: [String: String] = [:]
            // Parameters until the next bare token that is not followed by '='.
            while i < chars.count {
                skipSpaces()
                while i < chars.count, chars[i] == "," { i += 1; skipSpaces() }
                let save = i
                let name = token()
                skipSpaces()
                guard !name.isEmpty, i < chars.count, chars[i] == "=" else { i = save; break }
                i += 1
                skipSpaces()
                var v = String.UnicodeScalarView()
                if i < chars.count, chars[i] == "\"" {
                    i += 1
                    while i < chars.count, chars[i] != "\"" {
                        if chars[i] == "\\", i + 1 < chars.count { i += 1 }
                        v.append(chars[i]); i += 1
                    }
                    i += 1
                } else {
                    v = token().unicodeScalars
                    // token68 padding such as "abc==" for other schemes
                    while i < chars.count, chars[i] == "=" { v.append("="); i += 1 }
                }
                params[name.lowercased()] = String(v)
            }
            let scheme: Scheme = switch schemeName.lowercased() {
            case "basic": .basic
            case "bearer": .bearer
            default: .other(schemeName)
            }
            out.append(AuthChallenge(scheme: scheme, parameters: params))
        }
        return out
    }
}
