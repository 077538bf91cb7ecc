/// Where the expander looks variables up. Dictionaries conform; the builder can
/// supply its own ordered environment.
public protocol VariableLookup {
    func lookup(_ name: String) -> String?
}

extension Dictionary: VariableLookup where Key == String, Value == String {
    public func lookup(_ name: String) -> String? { self[name] }
}

/// The result of expanding one word, with the variables it referred to.
public struct ExpansionResult: Sendable, Hashable {
    public var result: String
    /// Names that were looked up and found.
    public var matched: Set<String>
    /// Names that were looked up and not set (for "undefined variable" checks).
    public var unmatched: Set<String>
}

/// Shell-word expansion with BuildKit's rules: quotes, the escape token,
/// `$v`, `${v}` and the `${v:-w}`, `${v-w}`, `${v:+w}`, `${v+w}`, `${v:?m}`,
/// `${v?m}`, `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}`, `${v//p/r}` operators.
public struct ShellLex: Sendable {
    /// `\` by default, `` ` `` under `# escape=``.
    public var escapeToken: Unicode.Scalar
    /// Keep quote characters in the output.
    public var rawQuotes = false
    /// Keep escape characters in the output.
    public var rawEscapes = false
    /// Treat quotes as ordinary characters.
    public var skipProcessQuotes = false
    /// Leave references to unset variables as written (`$x`, `${x}`).
    public var skipUnsetEnv = false

    public init(escapeToken: Unicode.Scalar = "\\") {
        self.escapeToken = escapeToken
    }

    /// Expands `word` into one string; whitespace between words is kept.
    public func processWord(_ word: String, env: some VariableLookup) throws(ExpansionError) -> String {
        try process(word, env: env).0
    }

    /// Expands `word` and reports which variables it used.
    public func processWordWithMatches(_ word: String, env: some VariableLookup) throws(ExpansionError) -> ExpansionResult {
        let sw = ShellWord(lex: self, source: word, env: env)
        let (r, _) = try sw.run()
        return ExpansionResult(result: r, matched: sw.matches, unmatched: sw.nonmatches)
    }

    /// Expands `word`, then splits it into words on unquoted whitespace.
    public func processWords(_ word: String, env: some VariableLookup) throws(ExpansionError) -> [String] {
        try process(word, env: env).1
    }

    func process(_ word: String, env: some VariableLookup) throws(ExpansionError) -> (String, [String]) {
        try ShellWord(lex: self, source: word, env: env).run()
    }
}

private struct Words {
    var list: [String] = []
    var inWord = false
}

/// One expansion run; mirrors the structure of BuildKit's shellWord, including
/// its single words buffer shared by nested `${...}` words.
private final class ShellWord<Env: VariableLookup> {
    let lex: ShellLex
    let source: String
    let s: [Unicode.Scalar]
    var i = 0
    let env: Env
    var rawEscapes: Bool
    var buffer = ScalarBuffer()
    var matches = Set<String>()
    var nonmatches = Set<String>()

    init(lex: ShellLex, source: String, env: Env) {
        self.lex = lex
        self.source = source
        self.s = Array(source.unicodeScalars)
        self.env = env
        self.rawEscapes = lex.rawEscapes
    }

    func run() throws(ExpansionError) -> (String, [String]) {
        do {
            return try processStopOn(nil, raw: lex.rawEscapes)
        } catch {
            throw ExpansionError("failed to process \(goQuote(source)): \(error.message)")
        }
    }

    @inline(__always) func peek() -> Unicode.Scalar? { i < s.count ? s[i] : nil }
    @inline(__always) @discardableResult func next() -> Unicode.Scalar? {
        guard i < s.count else { return nil }
        i += 1
        return s[i - 1]
    }

    // MARK: words

    func addChar(_ w: inout Words, _ ch: Unicode.Scalar) {
        if isGoSpace(ch) {
            if w.inWord && !buffer.isEmpty {
                w.list.append(buffer.string)
                buffer.removeAll()
                w.inWord = false
            }
        } else {
            addRawChar(&w, ch)
        }
    }

    func addRawChar(_ w: inout Words, _ ch: Unicode.Scalar) {
        buffer.append(ch)
        w.inWord = true
    }

    func addString(_ w: inout Words, _ str: String) {
        for ch in str.unicodeScalars { addChar(&w, ch) }
    }

    func addRawString(_ w: inout Words, _ str: String) {
        buffer.append(str)
        w.inWord = true
    }

    func getWords(_ w: inout Words) -> [String] {
        if !buffer.isEmpty {
            w.list.append(buffer.string)
            buffer.removeAll()
            w.inWord = false
        }
        return w.list
    }

    // MARK: scanning

    func processStopOn(_ stop: Unicode.Scalar?, raw: Bool) throws(ExpansionError) -> (String, [String]) {
        var result = ScalarBuffer()
        buffer.removeAll()
        var words = Words()
        let saved = rawEscapes
        rawEscapes = raw
        defer { rawEscapes = saved }
        let escape = lex.escapeToken

        while let ch = peek() {
            if let stop, ch == stop {
                next()
                return (result.string, getWords(&words))
            }
            switch ch {
            case "$":
                let tmp = try processDollar()
                result.append(tmp)
                addString(&words, tmp)
            case "<":
                let tmp = processPossibleHeredoc()
                result.append(tmp)
                addRawString(&words, tmp)
            case "'" where !lex.skipProcessQuotes:
                let tmp = try processSingleQuote()
                result.append(tmp)
                addRawString(&words, tmp)
            case "\"" where !lex.skipProcessQuotes:
                let tmp = try processDoubleQuote()
                result.append(tmp)
                addRawString(&words, tmp)
            default:
                next()
                if ch == escape {
                    if rawEscapes {
                        addRawChar(&words, ch)
                        result.append(ch)
                    }
                    guard let c2 = next() else { break }
                    addRawChar(&words, c2)
                    result.append(c2)
                } else {
                    addChar(&words, ch)
                    result.append(ch)
                }
            }
        }
        if let stop {
            throw ExpansionError("unexpected end of statement while looking for matching \(Character(stop))")
        }
        return (result.string, getWords(&words))
    }

    func processSingleQuote() throws(ExpansionError) -> String {
        var result = ScalarBuffer()
        let q = next() ?? "'"
        if lex.rawQuotes { result.append(q) }
        while true {
            guard let ch = next() else {
                throw ExpansionError("unexpected end of statement while looking for matching single-quote")
            }
            if ch == "'" {
                if lex.rawQuotes { result.append(ch) }
                return result.string
            }
            result.append(ch)
        }
    }

    func processDoubleQuote() throws(ExpansionError) -> String {
        var result = ScalarBuffer()
        let q = next() ?? "\""
        if lex.rawQuotes { result.append(q) }
        let escape = lex.escapeToken
        while true {
            guard let p = peek() else {
                throw ExpansionError("unexpected end of statement while looking for matching double-quote")
            }
            if p == "\"" {
                next()
                if lex.rawQuotes { result.append(p) }
                return result.string
            }
            if p == "$" {
                result.append(try processDollar())
                continue
            }
            var ch = next() ?? p
            if ch == escape {
                if rawEscapes { result.append(ch) }
                guard let n = peek() else { continue }
                if n == "\"" || n == "$" || n == escape {
                    ch = next() ?? n
                }
            }
            result.append(ch)
        }
    }

    func getEnv(_ name: String) -> (String, Bool) {
        if let v = env.lookup(name) {
            matches.insert(name)
            return (v, true)
        }
        nonmatches.insert(name)
        return ("", false)
    }

    func processDollar() throws(ExpansionError) -> String {
        next()
        if peek() != "{" {
            let name = processName()
            if name.isEmpty { return "$" }
            let (value, found) = getEnv(name)
            if !found && lex.skipUnsetEnv { return "$" + name }
            return value
        }
        next()
        switch peek() {
        case nil: throw ExpansionError("syntax error: missing '}'")
        case "{", "}", ":": throw ExpansionError("syntax error: bad substitution")
        default: break
        }
        let name = processName()
        var ch = next()
        var chs = ch.map { String(Character($0)) } ?? "\u{FFFD}"
        var nullIsUnset = false

        if ch == "}" {
            let (value, set) = getEnv(name)
            if !set && lex.skipUnsetEnv { return "${\(name)}" }
            return value
        }
        if ch == ":" {
            nullIsUnset = true
            ch = next()
            chs += ch.map { String(Character($0)) } ?? "\u{FFFD}"
        }
        if nullIsUnset || ch == "+" || ch == "-" || ch == "?" || ch == "#" || ch == "%" {
            let raw = ch == "#" || ch == "%"
            if nullIsUnset && raw {
                throw ExpansionError("unsupported modifier (\(chs)) in substitution")
            }
            var word: String
            do {
                word = try processStopOn("}", raw: raw).0
            } catch {
                if peek() == nil { throw ExpansionError("syntax error: missing '}'") }
                throw error
            }
            let (value, set) = getEnv(name)
            if lex.skipUnsetEnv && !set { return "${\(name)\(chs)\(word)}" }
            switch ch {
            case "-":
                if !set || (nullIsUnset && value.isEmpty) { return word }
                return value
            case "+":
                if !set || (nullIsUnset && value.isEmpty) { return "" }
                return word
            case "?":
                if !set {
                    throw ExpansionError("\(name): \(word.isEmpty ? "is not allowed to be unset" : word)")
                }
                if nullIsUnset && value.isEmpty {
                    throw ExpansionError("\(name): \(word.isEmpty ? "is not allowed to be empty" : word)")
                }
                return value
            case "%", "#":
                var greedy = false
                if let f = word.unicodeScalars.first, f == ch {
                    greedy = true
                    word = String(word.unicodeScalars.dropFirst())
                }
                if ch == "%" { return try ShellPattern.trimSuffix(pattern: word, value: value, greedy: greedy) }
                return try ShellPattern.trimPrefix(pattern: word, value: value, greedy: greedy)
            default:
                throw ExpansionError("unsupported modifier (\(chs)) in substitution")
            }
        }
        if ch == "/" {
            let replaceAll = peek() == "/"
            if replaceAll { next() }
            let pattern: String
            do {
                pattern = try processStopOn("/", raw: true).0
            } catch {
                if peek() == nil { throw ExpansionError("syntax error: missing '/' in ${}") }
                throw error
            }
            let replacement: String
            do {
                replacement = try processStopOn("}", raw: true).0
            } catch {
                if peek() == nil { throw ExpansionError("syntax error: missing '}'") }
                throw error
            }
            let (value, set) = getEnv(name)
            if lex.skipUnsetEnv && !set { return "${\(name)/\(pattern)/\(replacement)}" }
            return try ShellPattern.replace(pattern: pattern, value: value, replacement: replacement, all: replaceAll)
        }
        throw ExpansionError("unsupported modifier (\(chs)) in substitution")
    }

    func processName() -> String {
        var name = ScalarBuffer()
        while let ch = peek() {
            if name.isEmpty && isGoDigit(ch) {
                while let c = peek(), isGoDigit(c) {
                    next()
                    name.append(c)
                }
                return name.string
            }
            if name.isEmpty && isSpecialParam(ch) {
                next()
                return String(Character(ch))
            }
            if !isGoLetter(ch) && !isGoDigit(ch) && ch != "_" { break }
            next()
            name.append(ch)
        }
        return name.string
    }

    func processPossibleHeredoc() -> String {
        next()
        if peek() != "<" { return "<" }
        next()
        var result = "<<"
        while let c = peek(), c == "\t" || c == "\r" || c == " " {
            result.unicodeScalars.append(c)
            next()
        }
        return result
    }
}

@inline(__always)
private func isSpecialParam(_ c: Unicode.Scalar) -> Bool {
    switch c {
    case "@", "*", "#", "?", "-", "$", "!", "0": return true
    default: return false
    }
}

@inline(__always)
func isGoDigit(_ c: Unicode.Scalar) -> Bool {
    if c.value < 0x80 { return c.value >= 0x30 && c.value <= 0x39 }
    return c.properties.generalCategory == .decimalNumber
}

@inline(__always)
func isGoLetter(_ c: Unicode.Scalar) -> Bool {
    if c.value < 0x80 {
        return (c.value >= 0x41 && c.value <= 0x5A) || (c.value >= 0x61 && c.value <= 0x7A)
    }
    switch c.properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
    default: return false
    }
}

/// Shell patterns of `${v#p}`, `${v%p}` and `${v/p/r}`: `*`, `?` and `\` escapes,
/// matched with the same preference order as BuildKit's regular expressions.
enum ShellPattern {
    enum Token: Equatable {
        case star
        case any
        case literal(Unicode.Scalar)
    }

    static func compile(_ pattern: String) throws(ExpansionError) -> [Token] {
        let p = Array(pattern.unicodeScalars)
        var out: [Token] = []
        var k = 0
        while k < p.count {
            let tok = p[k]
            k += 1
            switch tok {
            case "*": out.append(.star)
            case "?": out.append(.any)
            case "\\":
                if k < p.count, p[k] == "}" || p[k] == "/" { continue }
                let t: Unicode.Scalar = k < p.count ? p[k] : "\u{FFFD}"
                k += 1
                if t != "*" && t != "?" && t != "\\" {
                    throw ExpansionError("invalid pattern (\(pattern)) in substitution: invalid escape '\\\(Character(t))'")
                }
                out.append(.literal(t))
            default:
                out.append(.literal(tok))
            }
        }
        return out
    }

    /// The end of the first match starting at `start`, in BuildKit's preference order.
    static func match(_ tokens: [Token], _ value: [Unicode.Scalar], from start: Int, greedy: Bool) -> Int? {
        let n = value.count
        let width = n + 1
        // memo of failures: (token index, value index) pairs that cannot match
        var failed = [Bool](repeating: false, count: (tokens.count + 1) * width)
        func go(_ t: Int, _ v: Int) -> Int? {
            if t == tokens.count { return v }
            if failed[t * width + v] { return nil }
            switch tokens[t] {
            case .literal(let c):
                if v < n && value[v] == c, let e = go(t + 1, v + 1) { return e }
            case .any:
                if v < n && value[v] != "\n", let e = go(t + 1, v + 1) { return e }
            case .star:
                var limit = v
                while limit < n && value[limit] != "\n" { limit += 1 }
                if greedy {
                    var k = limit
                    while k >= v {
                        if let e = go(t + 1, k) { return e }
                        k -= 1
                    }
                } else {
                    for k in v...limit {
                        if let e = go(t + 1, k) { return e }
                    }
                }
            }
            failed[t * width + v] = true
            return nil
        }
        return go(0, start)
    }

    static func trimPrefix(pattern: String, value: String, greedy: Bool) throws(ExpansionError) -> String {
        let tokens = try compile(pattern)
        let v = Array(value.unicodeScalars)
        guard let end = match(tokens, v, from: 0, greedy: greedy) else { return value }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: v[end...])
        return String(out)
    }

    static func reversePattern(_ pattern: String) -> String {
        let p = Array(pattern.unicodeScalars)
        var out = p
        let last = p.count - 1
        var k = 0
        while k <= last {
            let tok = p[k]
            let o = last - k
            if tok == "\\" && k != last {
                out[o - 1] = tok
                out[o] = p[k + 1]
                k += 2
            } else {
                out[o] = tok
                k += 1
            }
        }
        var s = String.UnicodeScalarView()
        s.append(contentsOf: out)
        return String(s)
    }

    static func reversed(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        out.append(contentsOf: s.unicodeScalars.reversed())
        return String(out)
    }

    static func trimSuffix(pattern: String, value: String, greedy: Bool) throws(ExpansionError) -> String {
        let r = try trimPrefix(pattern: reversePattern(pattern), value: reversed(value), greedy: greedy)
        return reversed(r)
    }

    static func replace(pattern: String, value: String, replacement: String, all: Bool) throws(ExpansionError) -> String {
        let tokens = try compile(pattern)
        let v = Array(value.unicodeScalars)
        func find(from: Int) -> (Int, Int)? {
            var s = from
            while s <= v.count {
                if let e = match(tokens, v, from: s, greedy: true) { return (s, e) }
                s += 1
            }
            return nil
        }
        var out = String.UnicodeScalarView()
        if !all {
            guard let (a, b) = find(from: 0) else { return value }
            out.append(contentsOf: v[0..<a])
            out.append(contentsOf: replacement.unicodeScalars)
            out.append(contentsOf: v[b...])
            return String(out)
        }
        var lastEnd = 0
        var searchPos = 0
        while searchPos <= v.count {
            guard let (a, b) = find(from: searchPos) else { break }
            out.append(contentsOf: v[lastEnd..<a])
            if b > lastEnd || a == 0 {
                out.append(contentsOf: expandTemplate(replacement, match: v[a..<b]).unicodeScalars)
            }
            lastEnd = b
            if searchPos + 1 > b {
                searchPos += 1
            } else {
                searchPos = b
            }
        }
        out.append(contentsOf: v[lastEnd...])
        return String(out)
    }

    /// Go's Regexp.Expand for a pattern without groups: `$0`/`${0}` is the match,
    /// `$$` a dollar, other names expand to nothing.
    static func expandTemplate(_ template: String, match: ArraySlice<Unicode.Scalar>) -> String {
        guard template.unicodeScalars.contains("$") else { return template }
        let t = Array(template.unicodeScalars)
        var out = String.UnicodeScalarView()
        var k = 0
        while k < t.count {
            if t[k] != "$" {
                out.append(t[k])
                k += 1
                continue
            }
            k += 1
            if k < t.count && t[k] == "$" {
                out.append("$")
                k += 1
                continue
            }
            var j = k
            let brace = j < t.count && t[j] == "{"
            if brace { j += 1 }
            let nameStart = j
            while j < t.count, isGoLetter(t[j]) || isGoDigit(t[j]) || t[j] == "_" { j += 1 }
            let name = Array(t[nameStart..<j])
            if name.isEmpty || (brace && (j >= t.count || t[j] != "}")) {
                out.append("$")
                continue
            }
            if brace { j += 1 }
            k = j
            var num = 0
            for c in name {
                if c.value < 0x30 || c.value > 0x39 || num >= 100_000_000 { num = -1; break }
                num = num * 10 + Int(c.value - 0x30)
            }
            if name[0] == "0" && name.count > 1 { num = -1 }
            if num == 0 { out.append(contentsOf: match) }
        }
        return String(out)
    }
}
