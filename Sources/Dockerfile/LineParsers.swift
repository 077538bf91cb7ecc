// Per-instruction argument parsers (BuildKit's line_parsers.go), over the
// bytes of one logical line, keeping the source range of every argument.

struct LineContext {
    let b: [UInt8]
    let map: SourceMap
    let escape: UInt8
    let parser: SyntaxParser
    let startLine: Int

    func fail(_ message: String, at offset: Int) -> DockerfileError {
        let p = map.position(offset)
        return parser.error(message, line: p.line, column: p.column)
    }

    func node(_ value: String, _ s: Int, _ e: Int) -> Node {
        Node(value: value, range: map.range(s, e))
    }

    /// BuildKit's newNodeFromLine for the bytes [lo, hi).
    func newNode(_ lo: Int, _ hi: Int) throws -> Node {
        let (s, e) = trimSpaceBounds(b, lo, hi)
        var i = s
        while i < e, !isRegexWhitespace(b[i]) { i += 1 }
        let cmd = string(b[s..<i])
        var flags: [String] = []
        var flagRanges: [SourceRange] = []
        var argLo = e, argHi = e
        if i < e {
            var j = i
            while j < e, isRegexWhitespace(b[j]) { j += 1 }
            let (rest, found) = extractBuilderFlags(j, e)
            for (f, fs, fe) in found {
                flags.append(f)
                flagRanges.append(map.range(fs, fe))
            }
            (argLo, argHi) = trimSpaceBounds(b, rest, e)
        }
        var result = Node(value: cmd, original: string(b[lo..<hi]), range: map.range(s, e))
        result.flags = flags
        result.flagRanges = flagRanges
        let (next, json) = try dispatch(cmd.lowercased(), argLo, argHi)
        result.next = next
        result.isJSON = json
        return result
    }

    func dispatch(_ cmd: String, _ lo: Int, _ hi: Int) throws -> ([Node], Bool) {
        switch cmd {
        case "add", "copy", "volume": return try parseMaybeJSONToList(lo, hi)
        case "arg": return (parseNameOrNameVal(lo, hi), false)
        case "cmd", "entrypoint", "run", "shell": return try parseMaybeJSON(lo, hi)
        case "env": return (try parseNameVal(lo, hi, key: "ENV"), false)
        case "label": return (try parseNameVal(lo, hi, key: "LABEL"), false)
        case "expose", "from": return (parseStringsWhitespaceDelimited(lo, hi), false)
        case "healthcheck": return try parseHealthConfig(lo, hi)
        case "maintainer", "stopsignal", "user", "workdir": return (parseString(lo, hi), false)
        case "onbuild":
            if lo == hi { return ([], false) }
            let child = try newNode(lo, hi)
            var holder = Node(value: "", range: child.range)
            holder.children = [child]
            return ([holder], false)
        default:
            // BuildKit keeps unknown instructions with one empty argument; the
            // instruction layer reports them.
            return ([Node(value: "", range: map.range(lo, lo))], false)
        }
    }

    @inline(__always) func isSpaceByte(_ c: UInt8) -> Bool {
        // unicode.IsSpace(rune(byte)): BuildKit reads flags byte by byte
        c == 0x20 || (c >= 0x09 && c <= 0x0D) || c == 0x85 || c == 0xA0
    }

    /// Leading `--flag` words; returns where the arguments start and the flags.
    func extractBuilderFlags(_ lo: Int, _ hi: Int) -> (Int, [(String, Int, Int)]) {
        enum Phase { case spaces, word, quote }
        var words: [(String, Int, Int)] = []
        var phase = Phase.spaces
        var sb = ScalarBuffer()
        var quote: UInt8 = 0
        var blankOK = false
        var wordStart = lo
        var pos = lo
        var ch: UInt8 = 0
        func isDashDash() -> Bool { sb.bytes == [0x2D, 0x2D] }
        while pos <= hi {
            if pos != hi { ch = b[pos] }
            if phase == .spaces {
                if pos == hi { break }
                if isSpaceByte(ch) { pos += 1; continue }
                if ch != UInt8(ascii: "-") || pos + 1 == hi || b[pos + 1] != UInt8(ascii: "-") {
                    return (pos, words)
                }
                phase = .word
                wordStart = pos
            }
            if phase != .spaces && pos == hi {
                if !isDashDash() && (blankOK || !sb.isEmpty) { words.append((sb.string, wordStart, pos)) }
                break
            }
            if phase == .word {
                if isSpaceByte(ch) {
                    phase = .spaces
                    if isDashDash() { return (pos, words) }
                    if blankOK || !sb.isEmpty { words.append((sb.string, wordStart, pos)) }
                    sb.removeAll()
                    blankOK = false
                    pos += 1
                    continue
                }
                if ch == UInt8(ascii: "'") || ch == UInt8(ascii: "\"") {
                    quote = ch
                    blankOK = true
                    phase = .quote
                    pos += 1
                    continue
                }
                if ch == escape {
                    if pos + 1 == hi { pos += 1; continue }
                    pos += 1
                    ch = b[pos]
                }
                sb.append(Unicode.Scalar(ch))
                pos += 1
                continue
            }
            // quote
            if ch == quote {
                phase = .word
                pos += 1
                continue
            }
            if ch == escape {
                if pos + 1 == hi {
                    phase = .word
                    pos += 1
                    continue
                }
                pos += 1
                ch = b[pos]
            }
            sb.append(Unicode.Scalar(ch))
            pos += 1
        }
        return (hi, words)
    }

    /// Words split on whitespace, quotes and escapes kept (BuildKit's parseWords).
    func parseWords(_ lo: Int, _ hi: Int) -> [(String, Int, Int)] {
        enum Phase { case spaces, word, quote }
        var words: [(String, Int, Int)] = []
        var phase = Phase.spaces
        var quote: Unicode.Scalar = "\0"
        var blankOK = false
        var sb = ScalarBuffer()
        var wordStart = lo
        let esc = Unicode.Scalar(escape)
        var pos = lo
        var ch: Unicode.Scalar = "\0"
        var w = 0
        while pos <= hi {
            if pos != hi { (ch, w) = decodeScalar(b, pos) }
            if phase == .spaces {
                if pos == hi { break }
                if isGoSpace(ch) { pos += w; continue }
                phase = .word
                wordStart = pos
            }
            if phase != .spaces && pos == hi {
                if blankOK || !sb.isEmpty { words.append((sb.string, wordStart, pos)) }
                break
            }
            if phase == .word {
                if isGoSpace(ch) {
                    phase = .spaces
                    if blankOK || !sb.isEmpty { words.append((sb.string, wordStart, pos)) }
                    sb.removeAll()
                    blankOK = false
                    pos += w
                    continue
                }
                if ch == "'" || ch == "\"" {
                    quote = ch
                    blankOK = true
                    phase = .quote
                }
                if ch == esc {
                    if pos + w == hi { pos += w; continue }
                    sb.append(ch)
                    pos += w
                    (ch, w) = decodeScalar(b, pos)
                }
                sb.append(ch)
                pos += w
                continue
            }
            // quote
            if ch == quote { phase = .word }
            if ch == esc && quote != "'" {
                if pos + w == hi {
                    phase = .word
                    pos += w
                    continue
                }
                pos += w
                sb.append(ch)
                (ch, w) = decodeScalar(b, pos)
            }
            sb.append(ch)
            pos += w
        }
        return words
    }

    /// ENV and LABEL: `key value` (old form) or `key=value ...`.
    func parseNameVal(_ lo: Int, _ hi: Int, key: String) throws -> [Node] {
        let words = parseWords(lo, hi)
        guard let first = words.first else { return [] }
        if !first.0.utf8.contains(UInt8(ascii: "=")) {
            var i = lo
            while i < hi, !isRegexWhitespace(b[i]) { i += 1 }
            guard i < hi else { throw fail("\(key) must have two arguments", at: lo) }
            var j = i
            while j < hi, isRegexWhitespace(b[j]) { j += 1 }
            return [node(string(b[lo..<i]), lo, i), node(string(b[j..<hi]), j, hi), node("", hi, hi)]
        }
        var out: [Node] = []
        for (word, s, e) in words {
            let u = word.utf8
            guard let eq = u.firstIndex(of: UInt8(ascii: "=")) else {
                throw fail("Syntax error - can't find = in \(goQuote(word)). Must be of the form: name=value", at: s)
            }
            let k = String(decoding: u[..<eq], as: UTF8.self)
            let v = String(decoding: u[u.index(after: eq)...], as: UTF8.self)
            let keyEnd = s + k.utf8.count
            out.append(node(k, s, keyEnd))
            out.append(node(v, keyEnd + 1, e))
            out.append(node("=", keyEnd, keyEnd + 1))
        }
        return out
    }

    func parseNameOrNameVal(_ lo: Int, _ hi: Int) -> [Node] {
        parseWords(lo, hi).map { node($0.0, $0.1, $0.2) }
    }

    func parseStringsWhitespaceDelimited(_ lo: Int, _ hi: Int) -> [Node] {
        if lo == hi { return [] }
        var out: [Node] = []
        var s = lo
        var i = lo
        while i <= hi {
            if i == hi || isRegexWhitespace(b[i]) {
                out.append(node(string(b[s..<i]), s, i))
                if i == hi { break }
                while i < hi, isRegexWhitespace(b[i]) { i += 1 }
                s = i
                continue
            }
            i += 1
        }
        return out
    }

    func parseString(_ lo: Int, _ hi: Int) -> [Node] {
        if lo == hi { return [] }
        return [node(string(b[lo..<hi]), lo, hi)]
    }

    func parseJSON(_ lo: Int, _ hi: Int) -> JSONArrayResult {
        let s = SyntaxParser.trimLeadingWhitespace(b, lo, hi)
        guard s < hi, b[s] == UInt8(ascii: "[") else { return .invalid }
        return JSONArrayReader.parse(b, s, hi)
    }

    static let notStringArray = "when using JSON array syntax, arrays must be comprised of strings only"

    func parseMaybeJSON(_ lo: Int, _ hi: Int) throws -> ([Node], Bool) {
        if lo == hi { return ([], false) }
        switch parseJSON(lo, hi) {
        case .strings(let items): return (items.map { node($0.0, $0.1, $0.2) }, true)
        case .notStrings: throw fail(Self.notStringArray, at: lo)
        case .invalid: return ([node(string(b[lo..<hi]), lo, hi)], false)
        }
    }

    func parseMaybeJSONToList(_ lo: Int, _ hi: Int) throws -> ([Node], Bool) {
        switch parseJSON(lo, hi) {
        case .strings(let items): return (items.map { node($0.0, $0.1, $0.2) }, true)
        case .notStrings: throw fail(Self.notStringArray, at: lo)
        case .invalid: return (parseStringsWhitespaceDelimited(lo, hi), false)
        }
    }

    func parseHealthConfig(_ lo: Int, _ hi: Int) throws -> ([Node], Bool) {
        var sep = lo
        while sep < hi, !isSpaceByte(b[sep]) { sep += 1 }
        var next = sep
        while next < hi, isSpaceByte(b[next]) { next += 1 }
        if sep == lo { return ([], false) }
        let (cmd, json) = try parseMaybeJSON(next, hi)
        return ([node(string(b[lo..<sep]), lo, sep)] + cmd, json)
    }
}
