import Foundation

/// Compose's variable substitution in file values: `$VAR`, `${VAR}`, `${VAR:-default}`
/// (unset or empty), `${VAR-default}` (unset), `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`,
/// `${VAR+alt}`, and `$$` for a literal `$`. Defaults and alternatives are themselves
/// interpolated. An unset variable with no default becomes "" and is reported in `warnings`.
public struct Interpolator: Sendable {
    public var environment: [String: String]
    /// Variables used while unset, in first-use order.
    public private(set) var warnings: [String] = []

    public init(environment: [String: String]) { self.environment = environment }

    /// `text` with every substitution made; `mark` names the value in errors.
    public mutating func interpolate(_ text: String, at mark: SourceMark) throws -> String {
        guard text.contains("$") else { return text }
        let chars = Array(text)
        var out = ""
        var i = 0
        func isNameStart(_ c: Character) -> Bool { c == "_" || (c.isASCII && c.isLetter) }
        func isName(_ c: Character) -> Bool { isNameStart(c) || (c.isASCII && c.isNumber) }
        while i < chars.count {
            let c = chars[i]
            guard c == "$" else { out.append(c); i += 1; continue }
            guard i + 1 < chars.count else { throw invalid(text, mark) }
            let n = chars[i + 1]
            if n == "$" { out.append("$"); i += 2; continue }
            if isNameStart(n) {
                var j = i + 1
                while j < chars.count, isName(chars[j]) { j += 1 }
                out += lookup(String(chars[(i + 1)..<j]))
                i = j
                continue
            }
            guard n == "{" else { throw invalid(text, mark) }
            // the closing brace, with nested ${...} in a default skipped over
            var depth = 1, j = i + 2
            while j < chars.count {
                if chars[j] == "$", j + 1 < chars.count, chars[j + 1] == "$" { j += 2; continue }
                if chars[j] == "$", j + 1 < chars.count, chars[j + 1] == "{" { depth += 1; j += 2; continue }
                if chars[j] == "}" { depth -= 1; if depth == 0 { break } }
                j += 1
            }
            guard j < chars.count else { throw invalid(text, mark) }
            out += try braced(String(chars[(i + 2)..<j]), whole: text, mark: mark)
            i = j + 1
        }
        return out
    }

    private mutating func lookup(_ name: String) -> String {
        if let v = environment[name] { return v }
        if !warnings.contains(name) { warnings.append(name) }
        return ""
    }

    private mutating func braced(_ body: String, whole: String, mark: SourceMark) throws -> String {
        let b = Array(body)
        var k = 0
        while k < b.count, b[k] == "_" || (b[k].isASCII && (b[k].isLetter || b[k].isNumber)) { k += 1 }
        let name = String(b[..<k])
        guard !name.isEmpty, !(b[0].isASCII && b[0].isNumber) else { throw invalid(whole, mark) }
        if k == b.count { return lookup(name) }
        var op = String(b[k])
        var rest = String(b[(k + 1)...])
        if op == ":" {
            guard k + 1 < b.count else { throw invalid(whole, mark) }
            op = ":" + String(b[k + 1])
            rest = String(b[(k + 2)...])
        }
        let value = environment[name]
        switch op {
        case ":-": return (value?.isEmpty ?? true) ? try interpolate(rest, at: mark) : value ?? ""
        case "-": if let value { return value }; return try interpolate(rest, at: mark)
        case ":+": return (value?.isEmpty ?? true) ? "" : try interpolate(rest, at: mark)
        case "+": return value == nil ? "" : try interpolate(rest, at: mark)
        case ":?", "?":
            if let value, op == "?" || !value.isEmpty { return value }
            let why = try interpolate(rest, at: mark)
            throw ComposeError.invalidFile("\(mark): required variable \(name) is \(value == nil ? "missing" : "empty")"
                + (why.isEmpty ? "" : ": \(why)") + "; set it in the environment or the .env file")
        default: throw invalid(whole, mark)
        }
    }

    private func invalid(_ text: String, _ mark: SourceMark) -> ComposeError {
        .invalidFile("\(mark): invalid interpolation format in \"\(text)\": use $VAR, ${VAR}, ${VAR:-default}, ${VAR:?error}, or $$ for a literal $")
    }
}

/// A `.env` file (compose's dotenv format): `KEY=VALUE` lines, `export ` allowed, `#`
/// comments, values in single quotes (literal), double quotes (with \n, \t, \\, \" escapes
/// and ${VAR} interpolation against what came before) or bare (a ` #` starts a comment).
public enum DotEnv {
    public static func parse(_ text: String, file: String, environment: [String: String] = [:]) throws -> [(String, String)] {
        var out: [(String, String)] = []
        var known = environment
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasSuffix("\r") { line.removeLast() }
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
            let mark = SourceMark(file: file, line: n + 1)
            guard let eq = line.firstIndex(of: "=") else {
                // a bare name: its value from the environment, if any
                guard isName(line) else { throw ComposeError.invalidFile("\(mark): expected KEY=VALUE, got \"\(line)\"") }
                if let v = environment[line] { out.append((line, v)); known[line] = v }
                continue
            }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            guard isName(key) else {
                throw ComposeError.invalidFile("\(mark): \"\(key)\" is not a variable name (letters, digits, _, not starting with a digit)")
            }
            var value = String(line[line.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("'") {
                guard value.count >= 2, value.hasSuffix("'") else { throw ComposeError.invalidFile("\(mark): unterminated ' quote") }
                value = String(value.dropFirst().dropLast())
            } else if value.hasPrefix("\"") {
                guard value.count >= 2, value.hasSuffix("\"") else { throw ComposeError.invalidFile("\(mark): unterminated \" quote") }
                var s = "", esc = false
                for c in value.dropFirst().dropLast() {
                    if esc {
                        switch c { case "n": s.append("\n"); case "t": s.append("\t"); default: s.append(c) }
                        esc = false
                    } else if c == "\\" { esc = true } else { s.append(c) }
                }
                var interp = Interpolator(environment: known)
                value = try interp.interpolate(s, at: mark)
            } else {
                if let hash = value.range(of: " #") { value = String(value[..<hash.lowerBound]).trimmingCharacters(in: .whitespaces) }
                var interp = Interpolator(environment: known)
                value = try interp.interpolate(value, at: mark)
            }
            out.append((key, value))
            known[key] = value
        }
        return out
    }

    static func isName(_ s: String) -> Bool {
        guard let f = s.first, f == "_" || (f.isASCII && f.isLetter) else { return false }
        return s.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }
}
