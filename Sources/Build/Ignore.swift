import Foundation

/// `.dockerignore` matching as docker does it: patterns with `*`, `?`, `[...]` and `**`,
/// `!` to re-include, the last matching pattern wins, and a match on a parent directory
/// covers everything under it.
public struct IgnoreMatcher: Sendable {
    struct Rule: Sendable { var regex: NSRegularExpressionBox; var negate: Bool; var text: String }
    var rules: [Rule] = []

    /// Reads patterns one per line; `#` starts a comment line.
    public init(text: String) throws {
        for var line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map(String.init) {
            line = line.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            var negate = false
            if line.hasPrefix("!") { negate = true; line = String(line.dropFirst()).trimmingCharacters(in: .whitespaces) }
            let cleaned = cleanPath(line)
            if cleaned.isEmpty || cleaned == "." { continue }
            rules.append(Rule(regex: try NSRegularExpressionBox(globToRegex(cleaned, doubleStar: true)), negate: negate, text: line))
        }
    }

    public init(patterns: [String]) throws { try self.init(text: patterns.joined(separator: "\n")) }

    public var isEmpty: Bool { rules.isEmpty }

    /// True when the context-relative path `rel` is left out of the context.
    public func excludes(_ rel: String) -> Bool {
        if rules.isEmpty { return false }
        // The path and each of its parents, longest last (a parent match covers its children).
        let parts = rel.split(separator: "/")
        var candidates: [String] = []
        var acc = ""
        for p in parts { acc = acc.isEmpty ? String(p) : acc + "/" + p; candidates.append(acc) }
        var excluded = false
        for rule in rules {
            if candidates.contains(where: { rule.regex.matches($0) }) { excluded = !rule.negate }
        }
        return excluded
    }
}

/// A Sendable wrapper over a compiled regular expression.
struct NSRegularExpressionBox: @unchecked Sendable {
    let re: NSRegularExpression
    init(_ pattern: String) throws {
        do { re = try NSRegularExpression(pattern: pattern) } catch {
            throw BuildError.invalidOption("bad pattern `\(pattern)`: \(error)")
        }
    }
    func matches(_ s: String) -> Bool {
        re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }
}

/// `filepath.Clean` for slash paths, without a leading `/`.
func cleanPath(_ p: String) -> String {
    var out: [Substring] = []
    for part in p.split(separator: "/") {
        if part == "." || part.isEmpty { continue }
        if part == ".." { if !out.isEmpty { out.removeLast() }; continue }
        out.append(part)
    }
    return out.joined(separator: "/")
}

/// Glob to an anchored regular expression. `doubleStar` makes `**` cross directories.
func globToRegex(_ glob: String, doubleStar: Bool) -> String {
    var r = "^"
    let cs = Array(glob)
    var i = 0
    while i < cs.count {
        let c = cs[i]
        switch c {
        case "*":
            if doubleStar, i + 1 < cs.count, cs[i + 1] == "*" {
                i += 1
                if i + 1 < cs.count, cs[i + 1] == "/" { i += 1; r += "(.*/)?" } else { r += ".*" }
            } else { r += "[^/]*" }
        case "?": r += "[^/]"
        case "[":
            var j = i + 1
            var cls = "["
            if j < cs.count, cs[j] == "^" || cs[j] == "!" { cls += "^"; j += 1 }
            while j < cs.count, cs[j] != "]" {
                if cs[j] == "\\", j + 1 < cs.count { cls += "\\" + String(cs[j + 1]); j += 2; continue }
                cls += cs[j] == "[" ? "\\[" : String(cs[j]); j += 1
            }
            if j < cs.count { r += cls + "]"; i = j } else { r += "\\[" }
        case "\\":
            if i + 1 < cs.count { i += 1; r += NSRegularExpression.escapedPattern(for: String(cs[i])) }
        default: r += NSRegularExpression.escapedPattern(for: String(c))
        }
        i += 1
    }
    return r + "$"
}

/// True when a path pattern uses glob characters.
func hasWildcard(_ s: String) -> Bool { s.contains(where: { $0 == "*" || $0 == "?" || $0 == "[" }) }
