// The first layer: physical lines -> logical lines (directives, comments,
// continuations, heredocs) -> one Node per instruction, as BuildKit's parser does.

/// Maps byte offsets of a logical line back to physical lines and columns.
struct SourceMap {
    /// (offset in the logical line, physical line, column of that byte)
    var segments: [(Int, Int, Int)] = []

    func position(_ offset: Int) -> Position {
        var lo = 0, hi = segments.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if segments[mid].0 <= offset { lo = mid } else { hi = mid - 1 }
        }
        let seg = segments[lo]
        return Position(line: seg.1, column: seg.2 + (offset - seg.0))
    }

    func range(_ start: Int, _ end: Int) -> SourceRange {
        let s = position(start)
        if end <= start { return SourceRange(start: s, end: s) }
        var e = position(end - 1)
        e.column += 1
        return SourceRange(start: s, end: e)
    }
}

/// Parses a Dockerfile's text into its syntax tree (BuildKit's `parser.Parse`).
struct SyntaxParser {
    let file: String
    var escape: UInt8 = UInt8(ascii: "\\")
    // directive parser state
    var directiveLine = 0
    var directivesDone = false
    var directives: [Directive] = []
    var seenDirectives = Set<String>()

    init(file: String) {
        self.file = file
    }

    func error(_ message: String, line: Int, column: Int = 1, suggestion: String? = nil) -> DockerfileError {
        DockerfileError(file: file, position: Position(line: line, column: column), message: message, suggestion: suggestion)
    }

    // MARK: directives

    /// BuildKit's DirectiveParser.ParseLine; true when the line was a directive.
    mutating func possibleDirective(_ b: [UInt8], _ lo: Int, _ hi: Int) throws -> Bool {
        directiveLine += 1
        if directivesDone { return false }
        guard lo < hi, b[lo] == UInt8(ascii: "#") else {
            directivesDone = true
            return false
        }
        var i = lo + 1
        while i < hi {
            let (c, w) = decodeScalar(b, i)
            if !isGoSpace(c) { break }
            i += w
        }
        // ^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$
        func isAlpha(_ c: UInt8) -> Bool { (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A }
        func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
        func isS(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0C || c == 0x0D }
        let nameStart = i
        guard i < hi, isAlpha(b[i]) else { directivesDone = true; return false }
        while i < hi, isAlpha(b[i]) || isDigit(b[i]) { i += 1 }
        let name = string(b[nameStart..<i]).lowercased()
        while i < hi, isS(b[i]) { i += 1 }
        guard i < hi, b[i] == UInt8(ascii: "=") else { directivesDone = true; return false }
        i += 1
        let afterEq = i
        while i < hi, isS(b[i]) { i += 1 }
        var valueStart = i
        if valueStart == hi {
            if hi == afterEq { directivesDone = true; return false }
            valueStart = hi - 1  // the regex backtracks one whitespace into the value
        }
        var valueEnd = hi
        while valueEnd > valueStart + 1, isS(b[valueEnd - 1]) { valueEnd -= 1 }
        let value = string(b[valueStart..<valueEnd])
        guard ["syntax", "escape", "check"].contains(name) else {
            directivesDone = true
            return false
        }
        if seenDirectives.contains(name) {
            throw error("only one \(name) parser directive can be used", line: directiveLine)
        }
        seenDirectives.insert(name)
        directives.append(Directive(name: name, value: value, line: directiveLine))
        if name == "escape" {
            guard value == "`" || value == "\\" else {
                throw error("invalid escape token '\(value)' does not match ` or \\", line: directiveLine)
            }
            escape = value.utf8.first ?? escape
            return true
        }
        return true
    }

    // MARK: lines

    static func trimNewline(_ b: [UInt8], _ lo: Int, _ hi: Int) -> Int {
        var e = hi
        while e > lo, b[e - 1] == 0x0A || b[e - 1] == 0x0D { e -= 1 }
        return e
    }

    static func trimLeadingWhitespace(_ b: [UInt8], _ lo: Int, _ hi: Int) -> Int {
        var s = lo
        while s < hi {
            let (c, w) = decodeScalar(b, s)
            if !isGoSpace(c) { break }
            s += w
        }
        return s
    }

    static func isComment(_ b: [UInt8], _ lo: Int, _ hi: Int) -> Bool {
        let s = trimLeadingWhitespace(b, lo, hi)
        return s < hi && b[s] == UInt8(ascii: "#")
    }

    /// The continuation regex: the new end when the line ends in the escape token.
    func continuation(_ b: [UInt8], _ lo: Int, _ hi: Int) -> Int? {
        var e = hi
        while e > lo, b[e - 1] == 0x20 || b[e - 1] == 0x09 { e -= 1 }
        guard e > lo, b[e - 1] == escape else { return nil }
        let esc = e - 1
        if esc == lo { return lo }
        if b[esc - 1] == escape { return nil }
        return esc
    }

    // MARK: parse

    mutating func parse(_ text: String) throws -> SyntaxTree {
        let b = Array(text.utf8)
        var lines: [(Int, Int)] = []  // [start, end) including the newline
        lines.reserveCapacity(b.count / 24 + 1)
        var start = 0
        var k = 0
        while k < b.count {
            if b[k] == 0x0A {
                lines.append((start, k + 1))
                start = k + 1
            }
            k += 1
        }
        if start < b.count { lines.append((start, b.count)) }

        var nodes: [Node] = []
        var warnings: [Warning] = []
        var comments: [String] = []
        var currentLine = 0
        var li = 0
        var buf: [UInt8] = []

        while li < lines.count {
            var (lo, hi) = lines[li]
            li += 1
            if hi - lo > 65536 {
                throw error("dockerfile line greater than max allowed size of 65535", line: currentLine + 1)
            }
            if currentLine == 0, hi - lo >= 3, b[lo] == 0xEF, b[lo + 1] == 0xBB, b[lo + 2] == 0xBF { lo += 3 }
            if Self.isComment(b, lo, hi) {
                let c = goTrimSpace(string(b[(lo + 1)..<hi]))
                if c.isEmpty { comments = [] } else { comments.append(c) }
            }
            // processLine(strip: true)
            let lineEnd = Self.trimNewline(b, lo, hi)
            let contentStart = Self.trimLeadingWhitespace(b, lo, lineEnd)
            let isDirective = try possibleDirective(b, contentStart, lineEnd)
            if isDirective, !comments.isEmpty { comments.removeLast() }
            currentLine += 1
            let startLine = currentLine
            var segEnd = lineEnd
            if Self.isComment(b, contentStart, lineEnd) { segEnd = contentStart }
            var isEnd = true
            if let c = continuation(b, contentStart, segEnd) {
                segEnd = c
                isEnd = false
            }
            if isEnd && segEnd == contentStart { continue }
            buf.removeAll(keepingCapacity: true)
            var map = SourceMap()
            map.segments.append((0, currentLine, contentStart - lines[li - 1].0 + 1))
            buf.append(contentsOf: b[contentStart..<segEnd])

            var hasEmptyContinuation = false
            while !isEnd && li < lines.count {
                let (clo, chi) = lines[li]
                li += 1
                let cEnd = Self.trimNewline(b, clo, chi)
                _ = try possibleDirective(b, clo, cEnd)
                currentLine += 1
                if Self.isComment(b, clo, chi) { continue }
                if Self.trimLeadingWhitespace(b, clo, cEnd) == cEnd {
                    hasEmptyContinuation = true
                    continue
                }
                var e = cEnd
                if let c = continuation(b, clo, cEnd) { e = c } else { isEnd = true }
                map.segments.append((buf.count, currentLine, 1))
                buf.append(contentsOf: b[clo..<e])
            }

            if hasEmptyContinuation {
                warnings.append(Warning(message: "Empty continuation line found in: " + string(buf), line: currentLine))
            }

            let ctx = LineContext(b: buf, map: map, escape: escape, parser: self, startLine: startLine)
            var child = try ctx.newNode(0, buf.count)
            child.comments = comments

            if child.canContainHeredoc, Self.containsHeredocMarker(buf) {
                let heredocs: [Heredoc]
                do {
                    heredocs = try Self.heredocs(in: string(buf))
                } catch {
                    throw self.error(error.message, line: startLine)
                }
                for var heredoc in heredocs {
                    let terminator = Array(heredoc.name.utf8)
                    var terminated = false
                    var content: [UInt8] = []
                    let first = currentLine + 1
                    while li < lines.count {
                        let (hlo, hhi) = lines[li]
                        li += 1
                        currentLine += 1
                        let pe = Self.trimNewline(b, hlo, hhi)
                        var ps = hlo
                        if heredoc.chomp {
                            while ps < pe, b[ps] == 0x09 { ps += 1 }
                        }
                        if b[ps..<pe].elementsEqual(terminator) {
                            terminated = true
                            break
                        }
                        content.append(contentsOf: b[hlo..<hhi])
                    }
                    if !terminated {
                        throw self.error("unterminated heredoc", line: startLine)
                    }
                    heredoc.content = string(content)
                    heredoc.range = SourceRange(lines: first, currentLine)
                    child.heredocs.append(heredoc)
                }
            }
            child.startLine = startLine
            child.endLine = currentLine
            nodes.append(child)
            comments = []
        }
        if nodes.isEmpty {
            throw error("file with no instructions", line: max(currentLine, 1))
        }
        return SyntaxTree(instructions: nodes, escapeToken: Character(Unicode.Scalar(escape)),
                          directives: directives, warnings: warnings)
    }

    // MARK: heredocs

    static func containsHeredocMarker(_ b: [UInt8]) -> Bool {
        var i = 1
        while i < b.count {
            if b[i] == UInt8(ascii: "<") && b[i - 1] == UInt8(ascii: "<") { return true }
            i += 1
        }
        return false
    }

    /// Heredoc words of an instruction line (BuildKit's heredocsFromLine).
    static func heredocs(in line: String) throws(ExpansionError) -> [Heredoc] {
        var lex = ShellLex(escapeToken: "\\")
        lex.rawQuotes = true
        lex.rawEscapes = true
        lex.skipUnsetEnv = true
        let words = (try? lex.processWords(line, env: [String: String]())) ?? []
        var docs: [Heredoc] = []
        for word in words {
            if let h = try parseHeredoc(word) { docs.append(h) }
        }
        return docs
    }

    /// Parses one `[n]<<[-]WORD` word; nil when the word is not a heredoc.
    static func parseHeredoc(_ src: String) throws(ExpansionError) -> Heredoc? {
        // ^(\d*)<<(-?)\s*([^<]*)$
        let b = Array(src.utf8)
        var i = 0
        while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
        let fdText = string(b[0..<i])
        guard i + 1 < b.count, b[i] == UInt8(ascii: "<"), b[i + 1] == UInt8(ascii: "<") else { return nil }
        i += 2
        var chomp = false
        if i < b.count, b[i] == UInt8(ascii: "-") {
            chomp = true
            i += 1
        }
        while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0C || b[i] == 0x0D { i += 1 }
        let rest = b[i...]
        if rest.contains(UInt8(ascii: "<")) { return nil }
        if rest.isEmpty { return nil }
        let restText = string(rest)
        var lex = ShellLex(escapeToken: "\\")
        lex.skipUnsetEnv = true
        let words = try lex.processWords(restText, env: [String: String]())
        guard words.count == 1 else { return nil }
        lex.rawQuotes = true
        let raw = try lex.processWords(restText, env: [String: String]())
        guard raw.count == words.count else {
            throw ExpansionError("internal lexing of heredoc produced inconsistent results: \(restText)")
        }
        func quotes(_ s: String) -> Int { s.utf8.reduce(0) { $0 + ($1 == 0x27 || $1 == 0x22 ? 1 : 0) } }
        var fd = 0
        if !fdText.isEmpty { fd = Int(fdText) ?? Int(UInt32.max) }
        return Heredoc(name: words[0], fileDescriptor: fd, expand: quotes(words[0]) == quotes(raw[0]),
                       chomp: chomp, content: "", range: nil)
    }
}

extension Node {
    /// RUN, COPY and ADD in shell form (also under ONBUILD) may carry heredocs.
    var canContainHeredoc: Bool {
        var node = self
        if node.value.lowercased() == "onbuild", let first = node.next.first, let inner = first.children.first {
            node = inner
        }
        switch node.value.lowercased() {
        case "add", "copy", "run": return !node.isJSON
        default: return false
        }
    }
}
