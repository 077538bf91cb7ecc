import Foundation

/// A template error, worded as Go's text/template words it (docker prints these as they are).
/// `parse` errors are bad input (exit 125); `exec` errors happen while printing (exit 1).
struct TemplateError: Error, CustomStringConvertible {
    enum Kind { case parse, exec }
    var kind: Kind
    var description: String
}

/// The one engine behind every `--format` (ps, images, inspect, version, info, ...): Go's
/// text/template language with docker's extra functions (`json`, `join`, `split`, `lower`,
/// `upper`, `title`, `pad`, `truncate`) over `TemplateValue` values. Parse once, run per row.
struct GoTemplate {
    /// The type name errors report, as docker's "can't evaluate field X in type T".
    var typeName = "struct"
    /// Documents docker reads as plain JSON maps (`inspect`): every missing key is an error
    /// ("map has no entry for key"), as docker's `missingkey=error`.
    var strictMaps = false
    private var nodes: [Node]
    private let source: String

    /// Parses `text`; throws `TemplateError` of kind `.parse` with Go's message.
    init(_ text: String, typeName: String = "struct", strictMaps: Bool = false) throws {
        source = text
        self.typeName = typeName
        self.strictMaps = strictMaps
        var p = Parser(source: Array(text.utf8), text: text)
        nodes = try p.parseAll()
    }

    /// Renders the template over `value`. With `header`, fields that are missing print as
    /// nothing instead of failing (docker renders table headers with the same template).
    func render(_ value: TemplateValue, header: Bool = false) throws -> String {
        var ev = Evaluator(root: value, typeName: typeName, header: header, lines: lineStarts)
        ev.strict = strictMaps
        var out = ""
        try ev.run(nodes, dot: value, into: &out)
        return out
    }

    /// Parses and renders in one call.
    static func render(_ template: String, _ value: TemplateValue, typeName: String = "struct") throws -> String {
        try GoTemplate(template, typeName: typeName).render(value)
    }

    private var lineStarts: [Int] {
        var starts = [0]
        for (i, b) in source.utf8.enumerated() where b == UInt8(ascii: "\n") { starts.append(i + 1) }
        return starts
    }

    // MARK: - Syntax tree

    fileprivate indirect enum Arg {
        case field(base: Base, path: [String], pos: Int)
        case string(String)
        case int(Int64)
        case double(Double)
        case bool(Bool)
        case null
        case function(String, pos: Int)
        case pipe(Pipeline)
        /// `(pipeline).Field.Field`: fields of a parenthesized pipeline's value (Go's chain node).
        case chain(Pipeline, path: [String], pos: Int)
    }

    fileprivate enum Base { case dot, variable(String) }

    fileprivate struct Command { var args: [Arg]; var pos: Int }

    fileprivate struct Pipeline {
        var declarations: [String] = []
        var commands: [Command] = []
        var pos = 0
    }

    fileprivate indirect enum Node {
        case text(String)
        case action(Pipeline)
        case ifNode(Pipeline, [Node], [Node])
        case rangeNode(Pipeline, [Node], [Node])
        case withNode(Pipeline, [Node], [Node])
    }

    // MARK: - Parser

    fileprivate struct Parser {
        let source: [UInt8]
        let text: String
        var i = 0
        /// Pending "-}}" trim of the next text.
        var trimNext = false

        enum Item { case text(String); case action([Token], pos: Int) }
        enum Token: Equatable {
            case word(String)   // identifier, field, variable, number, keyword
            case string(String)
            case lparen, rparen, pipe, declare, assign, comma
            /// `.Field...` written right after a `)`.
            case chain(String)
        }

        func line(_ pos: Int) -> Int { source[..<min(pos, source.count)].filter { $0 == UInt8(ascii: "\n") }.count + 1 }
        func error(_ pos: Int, _ msg: String) -> TemplateError {
            TemplateError(kind: .parse, description: "template: :\(line(pos)): \(msg)")
        }

        // Items: text between actions, and each action's tokens.
        mutating func items() throws -> [Item] {
            var items: [Item] = []
            var textStart = i
            func has(_ s: String, at k: Int) -> Bool {
                let b = Array(s.utf8)
                return k + b.count <= source.count && Array(source[k..<k + b.count]) == b
            }
            while i < source.count {
                guard has("{{", at: i) else { i += 1; continue }
                var t = String(decoding: source[textStart..<i], as: UTF8.self)
                if trimNext { t = String(t.drop(while: \.isWhitespace)); trimNext = false }
                let open = i
                i += 2
                if has("- ", at: i) || has("-\t", at: i) || has("-\n", at: i) {
                    while let last = t.last, last.isWhitespace { t.removeLast() }
                    i += 1
                }
                if !t.isEmpty { items.append(.text(t)) }
                let (tokens, _) = try lexAction(open: open)
                if !tokens.isEmpty { items.append(.action(tokens, pos: open)) }
                textStart = i
            }
            var t = String(decoding: source[textStart..<source.count], as: UTF8.self)
            if trimNext { t = String(t.drop(while: \.isWhitespace)); trimNext = false }
            if !t.isEmpty { items.append(.text(t)) }
            return items
        }

        /// Tokens of one action; `i` ends after its `}}`.
        mutating func lexAction(open: Int) throws -> ([Token], Int) {
            var tokens: [Token] = []
            while true {
                guard i < source.count else { throw error(open, "unclosed action") }
                let c = source[i]
                if c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r") {
                    // " -}}" trims what follows
                    if i + 3 < source.count + 0, source[i + 1] == UInt8(ascii: "-"), i + 3 < source.count,
                       source[i + 2] == UInt8(ascii: "}"), source[i + 3] == UInt8(ascii: "}") {
                        trimNext = true
                        i += 4
                        return (tokens, open)
                    }
                    i += 1
                    continue
                }
                if c == UInt8(ascii: "}"), i + 1 < source.count, source[i + 1] == UInt8(ascii: "}") {
                    i += 2
                    return (tokens, open)
                }
                if c == UInt8(ascii: "/"), i + 1 < source.count, source[i + 1] == UInt8(ascii: "*") {
                    guard let end = findSeq("*/", from: i + 2) else { throw error(open, "unclosed comment") }
                    i = end + 2
                    continue
                }
                switch c {
                case UInt8(ascii: "("): tokens.append(.lparen); i += 1
                case UInt8(ascii: ")"): tokens.append(.rparen); i += 1
                case UInt8(ascii: "|"): tokens.append(.pipe); i += 1
                case UInt8(ascii: ","): tokens.append(.comma); i += 1
                case UInt8(ascii: "="): tokens.append(.assign); i += 1
                case UInt8(ascii: ":"):
                    guard i + 1 < source.count, source[i + 1] == UInt8(ascii: "=") else { throw error(open, "expected :=") }
                    tokens.append(.declare); i += 2
                case UInt8(ascii: "\""):
                    var s: [UInt8] = []
                    i += 1
                    while true {
                        guard i < source.count, source[i] != UInt8(ascii: "\n") else { throw error(open, "unterminated quoted string") }
                        let d = source[i]
                        if d == UInt8(ascii: "\"") { i += 1; break }
                        if d == UInt8(ascii: "\\"), i + 1 < source.count {
                            let e = source[i + 1]
                            switch e {
                            case UInt8(ascii: "n"): s.append(10)
                            case UInt8(ascii: "t"): s.append(9)
                            case UInt8(ascii: "r"): s.append(13)
                            case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "'"): s.append(e)
                            default: throw error(open, "invalid syntax")
                            }
                            i += 2
                            continue
                        }
                        s.append(d)
                        i += 1
                    }
                    tokens.append(.string(String(decoding: s, as: UTF8.self)))
                case UInt8(ascii: "`"):
                    guard let end = findSeq("`", from: i + 1) else { throw error(open, "unterminated raw quoted string") }
                    tokens.append(.string(String(decoding: source[(i + 1)..<end], as: UTF8.self)))
                    i = end + 1
                default:
                    let start = i
                    while i < source.count {
                        let d = source[i]
                        let isWordByte = d == UInt8(ascii: ".") || d == UInt8(ascii: "$") || d == UInt8(ascii: "_")
                            || d == UInt8(ascii: "-") || d == UInt8(ascii: "+") || d >= 0x80
                            || (d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9"))
                            || (d >= UInt8(ascii: "a") && d <= UInt8(ascii: "z")) || (d >= UInt8(ascii: "A") && d <= UInt8(ascii: "Z"))
                        if !isWordByte { break }
                        if d == UInt8(ascii: "-"), i > start, source[i - 1] != UInt8(ascii: "e") && source[i - 1] != UInt8(ascii: "E") { break }
                        i += 1
                    }
                    guard i > start else {
                        throw error(open, "unexpected \"\(String(decoding: [c], as: UTF8.self))\" in command")
                    }
                    let word = String(decoding: source[start..<i], as: UTF8.self)
                    if word.hasPrefix("."), word.count > 1, start > 0, source[start - 1] == UInt8(ascii: ")") {
                        tokens.append(.chain(word))
                    } else {
                        tokens.append(.word(word))
                    }
                }
            }
        }

        func findSeq(_ s: String, from: Int) -> Int? {
            let b = Array(s.utf8)
            var k = from
            while k + b.count <= source.count {
                if Array(source[k..<k + b.count]) == b { return k }
                k += 1
            }
            return nil
        }

        // Tree building over the items.
        var list: [Item] = []
        var at = 0

        mutating func parseAll() throws -> [Node] {
            list = try items()
            let (nodes, end) = try parseNodes()
            if let end { throw error(end.pos, "unexpected {{\(end.word)}}") }
            return nodes
        }

        struct End { var word: String; var rest: [Token]; var pos: Int }

        /// Nodes until `{{end}}`/`{{else ...}}` (returned) or the end of input (nil).
        mutating func parseNodes() throws -> ([Node], End?) {
            var nodes: [Node] = []
            while at < list.count {
                let item = list[at]
                at += 1
                switch item {
                case let .text(t): nodes.append(.text(t))
                case let .action(tokens, pos):
                    if case let .word(w) = tokens[0] {
                        switch w {
                        case "end", "else": return (nodes, End(word: w, rest: Array(tokens.dropFirst()), pos: pos))
                        case "if", "range", "with":
                            nodes.append(try parseControl(w, Array(tokens.dropFirst()), pos: pos))
                            continue
                        case "define", "template", "block", "break", "continue":
                            throw error(pos, "{{\(w)}} is not supported in --format")
                        default: break
                        }
                    }
                    nodes.append(.action(try parsePipeline(tokens, pos: pos, allowDecl: true)))
                }
            }
            return (nodes, nil)
        }

        mutating func parseControl(_ kind: String, _ tokens: [Token], pos: Int) throws -> Node {
            guard !tokens.isEmpty else { throw error(pos, "missing value for \(kind)") }
            let pipe = try parsePipeline(tokens, pos: pos, allowDecl: true)
            let (body, end) = try parseNodes()
            guard let end else { throw error(pos, "unexpected EOF") }
            var elseBody: [Node] = []
            if end.word == "else" {
                if !end.rest.isEmpty {
                    // {{else if ...}} / {{else with ...}}: a nested control that shares our {{end}}.
                    guard case let .word(w) = end.rest[0], w == kind || w == "if" else {
                        throw error(end.pos, "unexpected \(end.rest) in else")
                    }
                    elseBody = [try parseControl(w, Array(end.rest.dropFirst()), pos: end.pos)]
                    return make(kind, pipe, body, elseBody)
                }
                let (e, end2) = try parseNodes()
                guard let end2, end2.word == "end" else { throw error(pos, "expected end; found \(end2?.word ?? "EOF")") }
                elseBody = e
            }
            return make(kind, pipe, body, elseBody)
        }

        func make(_ kind: String, _ p: Pipeline, _ a: [Node], _ b: [Node]) -> Node {
            switch kind {
            case "if": return .ifNode(p, a, b)
            case "range": return .rangeNode(p, a, b)
            default: return .withNode(p, a, b)
            }
        }

        func parsePipeline(_ tokens: [Token], pos: Int, allowDecl: Bool) throws -> Pipeline {
            var p = Pipeline(pos: pos)
            var toks = tokens[...]
            // $x := / $i, $e :=
            if allowDecl, let declEnd = toks.firstIndex(where: { $0 == .declare || $0 == .assign }) {
                let names = toks[..<declEnd].filter { $0 != .comma }
                if names.allSatisfy({ if case let .word(w) = $0 { return w.hasPrefix("$") } else { return false } }) {
                    p.declarations = names.compactMap { if case let .word(w) = $0 { return w } else { return nil } }
                    toks = toks[(declEnd + 1)...]
                }
            }
            var current: [Arg] = []
            while let t = toks.first {
                toks = toks.dropFirst()
                switch t {
                case .pipe:
                    guard !current.isEmpty else { throw error(pos, "missing command") }
                    p.commands.append(Command(args: current, pos: pos))
                    current = []
                case .lparen:
                    var depth = 1
                    var inner: [Token] = []
                    while let u = toks.first {
                        toks = toks.dropFirst()
                        if u == .lparen { depth += 1 }
                        if u == .rparen { depth -= 1; if depth == 0 { break } }
                        inner.append(u)
                    }
                    guard depth == 0 else { throw error(pos, "unclosed left paren") }
                    var sub = try parsePipeline(inner, pos: pos, allowDecl: false)
                    sub.pos = pos
                    if case let .chain(w)? = toks.first {
                        // (x).Field.Field
                        toks = toks.dropFirst()
                        let path = w.dropFirst().split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                        guard !path.contains(where: \.isEmpty) else { throw error(pos, "bad field \(w)") }
                        current.append(.chain(sub, path: path, pos: pos + 2))
                    } else {
                        current.append(.pipe(sub))
                    }
                case .rparen: throw error(pos, "unexpected right paren")
                case .comma, .declare, .assign: throw error(pos, "unexpected \(t) in command")
                case let .chain(w): throw error(pos, "unexpected \(w) in operand")
                case let .string(s): current.append(.string(s))
                case let .word(w): current.append(try arg(w, pos: pos))
                }
            }
            if !current.isEmpty { p.commands.append(Command(args: current, pos: pos)) }
            guard !p.commands.isEmpty else { throw error(pos, "missing value for command") }
            return p
        }

        func arg(_ w: String, pos: Int) throws -> Arg {
            let col = pos + 2
            if w == "." { return .field(base: .dot, path: [], pos: col) }
            if w.hasPrefix(".") {
                let path = w.dropFirst().split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                guard !path.contains(where: \.isEmpty) else { throw error(pos, "bad field \(w)") }
                return .field(base: .dot, path: path, pos: col)
            }
            if w.hasPrefix("$") {
                let parts = w.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                return .field(base: .variable(parts[0]), path: Array(parts.dropFirst()), pos: col)
            }
            if w == "true" { return .bool(true) }
            if w == "false" { return .bool(false) }
            if w == "nil" { return .null }
            if let f = w.first, f.isNumber || f == "-" || f == "+" {
                if let n = Int64(w) { return .int(n) }
                if let d = Double(w) { return .double(d) }
                throw error(pos, "bad number syntax: \"\(w)\"")
            }
            guard Evaluator.functions.contains(w) else { throw error(pos, "function \"\(w)\" not defined") }
            return .function(w, pos: col)
        }
    }

    // MARK: - Evaluation

    fileprivate struct Evaluator {
        static let functions: Set<String> = [
            "json", "join", "split", "lower", "upper", "title", "pad", "truncate", "println", "print", "printf",
            "index", "len", "and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "slice",
        ]
        let root: TemplateValue
        let typeName: String
        let header: Bool
        let lines: [Int]
        var strict = false
        var vars: [(String, TemplateValue)] = []

        init(root: TemplateValue, typeName: String, header: Bool, lines: [Int]) {
            self.root = root
            self.typeName = typeName
            self.header = header
            self.lines = lines
            vars = [("$", root)]
        }

        func where_(_ pos: Int) -> String {
            let line = (lines.lastIndex { $0 <= pos } ?? 0)
            return ":\(line + 1):\(pos - lines[line])"
        }

        func fail(_ pos: Int, _ node: String, _ msg: String) -> TemplateError {
            TemplateError(kind: .exec, description: "template: \(where_(pos)): executing \"\" at <\(node)>: \(msg)")
        }

        mutating func run(_ nodes: [Node], dot: TemplateValue, into out: inout String) throws {
            for n in nodes {
                switch n {
                case let .text(t): out += t
                case let .action(p):
                    let v = try pipeline(p, dot: dot)
                    if p.declarations.isEmpty { out += Evaluator.print(v) }
                case let .ifNode(p, a, b):
                    let mark = vars.count
                    let v = try pipeline(p, dot: dot)
                    try run(Evaluator.truth(v) ? a : b, dot: dot, into: &out)
                    vars.removeLast(vars.count - mark)
                case let .withNode(p, a, b):
                    let mark = vars.count
                    let v = try pipeline(p, dot: dot)
                    if Evaluator.truth(v) { try run(a, dot: v, into: &out) } else { try run(b, dot: dot, into: &out) }
                    vars.removeLast(vars.count - mark)
                case let .rangeNode(p, a, b):
                    var plain = p
                    plain.declarations = []
                    let v = try pipeline(plain, dot: dot)
                    var elements: [(TemplateValue, TemplateValue)] = []
                    switch v {
                    case let .array(arr): elements = arr.enumerated().map { (.int(Int64($0.offset)), $0.element) }
                    case let .object(o): elements = o.sorted { $0.0 < $1.0 }.map { (.string($0.0), $0.1) }
                    case .int(let n): elements = (0..<max(0, n)).map { (.int($0), .int($0)) }
                    case .null, .missing: break
                    default: throw fail(p.pos + 2, "range", "range can't iterate over \(Evaluator.print(v))")
                    }
                    if elements.isEmpty { try run(b, dot: dot, into: &out); continue }
                    for (k, e) in elements {
                        let mark = vars.count
                        if p.declarations.count == 1 { vars.append((p.declarations[0], e)) }
                        if p.declarations.count >= 2 { vars.append((p.declarations[0], k)); vars.append((p.declarations[1], e)) }
                        try run(a, dot: e, into: &out)
                        vars.removeLast(vars.count - mark)
                    }
                }
            }
        }

        mutating func pipeline(_ p: Pipeline, dot: TemplateValue) throws -> TemplateValue {
            var value: TemplateValue?
            for c in p.commands { value = try command(c, dot: dot, piped: value) }
            let v = value ?? .null
            for d in p.declarations { vars.append((d, v)) }
            return v
        }

        mutating func command(_ c: Command, dot: TemplateValue, piped: TemplateValue?) throws -> TemplateValue {
            guard let first = c.args.first else { return .null }
            if case let .function(name, pos) = first {
                var args: [TemplateValue] = []
                for a in c.args.dropFirst() { args.append(try value(a, dot: dot)) }
                if let piped { args.append(piped) }
                return try call(name, args, pos: pos)
            }
            // docker's list contexts have a `Label` method: {{.Label "key"}} over "k=v,k2=v2" Labels
            if case let .field(base, path, _) = first, path.last == "Label", c.args.count + (piped == nil ? 0 : 1) == 2 {
                let owner = try value(.field(base: base, path: Array(path.dropLast()), pos: c.pos + 2), dot: dot)
                if case let .object(o) = owner, o.first(where: { $0.0 == "Label" }) == nil,
                   case let .string(labels)? = o.first(where: { $0.0 == "Labels" })?.1 {
                    let key = Evaluator.string(c.args.count == 2 ? try value(c.args[1], dot: dot) : (piped ?? .null))
                    for pair in labels.split(separator: ",") {
                        let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
                        if kv.first == key { return .string(kv.count > 1 ? kv[1] : "") }
                    }
                    return .string("")
                }
            }
            guard c.args.count == 1, piped == nil else {
                throw fail(c.pos + 2, describe(first), "can't give argument to non-function \(describe(first))")
            }
            return try value(first, dot: dot)
        }

        func describe(_ a: Arg) -> String {
            switch a {
            case let .field(.dot, path, _): return "." + path.joined(separator: ".")
            case let .field(.variable(v), path, _): return ([v] + path).joined(separator: ".")
            case let .string(s): return TemplateValue.quote(s)
            case let .int(i): return String(i)
            case let .double(d): return String(d)
            case let .bool(b): return String(b)
            case .null: return "nil"
            case let .function(f, _): return f
            case .pipe: return "(...)"
            case let .chain(_, path, _): return "(...)." + path.joined(separator: ".")
            }
        }

        mutating func value(_ a: Arg, dot: TemplateValue) throws -> TemplateValue {
            switch a {
            case let .string(s): return .string(s)
            case let .int(i): return .int(i)
            case let .double(d): return .double(d)
            case let .bool(b): return .bool(b)
            case .null: return .null
            case let .function(name, pos): return try call(name, [], pos: pos)
            case let .pipe(p): return try pipeline(p, dot: dot)
            case let .chain(p, path, pos):
                // the fields of the pipeline's value, read as fields of a dot that is that value
                return try value(.field(base: .dot, path: path, pos: pos), dot: try pipeline(p, dot: dot))
            case let .field(base, path, pos):
                var cur: TemplateValue
                switch base {
                case .dot: cur = dot
                case let .variable(name):
                    guard let v = vars.last(where: { $0.0 == name })?.1 else {
                        throw TemplateError(kind: .exec, description: "template: \(where_(pos)): undefined variable: \(name)")
                    }
                    cur = v
                }
                var parent = typeName
                for k in path {
                    switch cur {
                    case let .object(o):
                        if let next = o.first(where: { $0.0 == k })?.1 {
                            cur = next
                        } else if header {
                            return .string("")
                        } else if strict {
                            throw fail(pos, describe(a), "map has no entry for key \"\(k)\"")
                        } else if Evaluator.mapFields.contains(parent) || Evaluator.mapFields.contains(k) {
                            // a map's missing key, or a map field left out of the document
                            cur = .missing
                        } else {
                            throw fail(pos, describe(a), "can't evaluate field \(k) in type \(parent)")
                        }
                    case .null, .missing:
                        if header { return .string("") }
                        // a nil map (no labels) reads as an empty one
                        if !strict, Evaluator.mapFields.contains(parent) { return .missing }
                        throw fail(pos, describe(a), "nil pointer evaluating interface {}.\(k)")
                    default:
                        if header { return .string("") }
                        throw fail(pos, describe(a), "can't evaluate field \(k) in type \(Evaluator.goType(cur))")
                    }
                    parent = k
                }
                return cur
            }
        }

        /// Objects that are Go maps in docker's types: a missing key prints `<no value>`, not an error.
        static let mapFields: Set<String> = [
            "Labels", "Annotations", "Options", "DriverOpts", "Volumes", "ExposedPorts", "Ports", "Networks",
            "Env", "Data", "Platforms", "Registries", "Plugins",
        ]

        static func goType(_ v: TemplateValue) -> String {
            switch v {
            case .null, .missing: "interface {}"
            case .bool: "bool"
            case .int: "int"
            case .double: "float64"
            case .string: "string"
            case .array: "[]interface {}"
            case .object: "map[string]interface {}"
            }
        }

        static func truth(_ v: TemplateValue) -> Bool {
            switch v {
            case .null, .missing: false
            case let .bool(b): b
            case let .int(i): i != 0
            case let .double(d): d != 0
            case let .string(s): !s.isEmpty
            case let .array(a): !a.isEmpty
            case let .object(o): !o.isEmpty
            }
        }

        /// Go's fmt %v for a value, with `<no value>` for a missing one as text/template prints it.
        static func print(_ v: TemplateValue) -> String {
            switch v {
            case .missing, .null: return "<no value>"
            default: return v.goString
            }
        }

        static func string(_ v: TemplateValue) -> String {
            if case let .string(s) = v { return s }
            return v.goString
        }

        func int(_ v: TemplateValue, _ fn: String, pos: Int) throws -> Int {
            switch v {
            case let .int(i): return Int(i)
            case let .double(d) where d == d.rounded(): return Int(d)
            case let .string(s) where Int(s) != nil: return Int(s) ?? 0
            default: throw fail(pos, fn, "error calling \(fn): expected an integer, got \(Evaluator.print(v))")
            }
        }

        func call(_ name: String, _ args: [TemplateValue], pos: Int) throws -> TemplateValue {
            func need(_ n: Int) throws {
                guard args.count == n else {
                    throw fail(pos, name, "wrong number of args for \(name): want \(n) got \(args.count)")
                }
            }
            switch name {
            case "json":
                try need(1)
                return .string(args[0].goJSON)
            case "join":
                try need(2)
                guard case let .array(a) = args[0] else { return .string(Evaluator.string(args[0])) }
                return .string(a.map(Evaluator.string).joined(separator: Evaluator.string(args[1])))
            case "split":
                try need(2)
                let s = Evaluator.string(args[0]), sep = Evaluator.string(args[1])
                let parts = sep.isEmpty ? s.map(String.init) : s.components(separatedBy: sep)
                return .array(parts.map(TemplateValue.string))
            case "lower": try need(1); return .string(Evaluator.string(args[0]).lowercased())
            case "upper": try need(1); return .string(Evaluator.string(args[0]).uppercased())
            case "title":
                try need(1)
                var out = ""
                var startOfWord = true
                for ch in Evaluator.string(args[0]) {
                    out += startOfWord ? ch.uppercased() : String(ch)
                    startOfWord = ch.isWhitespace || ch.isPunctuation
                }
                return .string(out)
            case "pad":
                try need(3)
                let before = try int(args[1], name, pos: pos), after = try int(args[2], name, pos: pos)
                return .string(String(repeating: " ", count: max(0, before)) + Evaluator.string(args[0])
                               + String(repeating: " ", count: max(0, after)))
            case "truncate":
                try need(2)
                let s = Evaluator.string(args[0]), n = try int(args[1], name, pos: pos)
                return .string(s.count > n ? String(s.prefix(max(0, n))) : s)
            case "println":
                return .string(args.map(Evaluator.print).joined(separator: " ") + "\n")
            case "print":
                var out = ""
                for (k, a) in args.enumerated() {
                    let isString: (TemplateValue) -> Bool = { if case .string = $0 { return true } else { return false } }
                    if k > 0, !isString(a), !isString(args[k - 1]) { out += " " }
                    out += Evaluator.print(a)
                }
                return .string(out)
            case "printf":
                guard let f = args.first else { throw fail(pos, name, "wrong number of args for printf: want at least 1 got 0") }
                return .string(printf(Evaluator.string(f), Array(args.dropFirst())))
            case "len":
                try need(1)
                switch args[0] {
                case let .array(a): return .int(Int64(a.count))
                case let .object(o): return .int(Int64(o.count))
                case let .string(s): return .int(Int64(s.utf8.count))
                default: throw fail(pos, name, "error calling len: len of type \(Evaluator.goType(args[0]))")
                }
            case "index":
                guard var cur = args.first else { throw fail(pos, name, "wrong number of args for index: want at least 1 got 0") }
                for k in args.dropFirst() {
                    switch cur {
                    case let .array(a):
                        let n = try int(k, name, pos: pos)
                        guard n >= 0, n < a.count else { throw fail(pos, name, "error calling index: index out of range: \(n)") }
                        cur = a[n]
                    case let .object(o):
                        cur = o.first(where: { $0.0 == Evaluator.string(k) })?.1 ?? .missing
                    case .null, .missing:
                        cur = .missing
                    default:
                        throw fail(pos, name, "error calling index: can't index item of type \(Evaluator.goType(cur))")
                    }
                }
                return cur
            case "slice":
                guard let s = args.first else { throw fail(pos, name, "wrong number of args for slice") }
                let from = args.count > 1 ? try int(args[1], name, pos: pos) : 0
                switch s {
                case let .string(str):
                    let b = Array(str.utf8), to = args.count > 2 ? try int(args[2], name, pos: pos) : b.count
                    guard from >= 0, from <= to, to <= b.count else { throw fail(pos, name, "error calling slice: index out of range") }
                    return .string(String(decoding: b[from..<to], as: UTF8.self))
                case let .array(a):
                    let to = args.count > 2 ? try int(args[2], name, pos: pos) : a.count
                    guard from >= 0, from <= to, to <= a.count else { throw fail(pos, name, "error calling slice: index out of range") }
                    return .array(Array(a[from..<to]))
                default: throw fail(pos, name, "error calling slice: can't slice item of type \(Evaluator.goType(s))")
                }
            case "not": try need(1); return .bool(!Evaluator.truth(args[0]))
            case "and":
                for a in args where !Evaluator.truth(a) { return a }
                return args.last ?? .null
            case "or":
                for a in args where Evaluator.truth(a) { return a }
                return args.last ?? .null
            case "eq", "ne", "lt", "le", "gt", "ge":
                guard args.count >= 2 else { throw fail(pos, name, "missing argument for comparison") }
                if name == "eq" { return .bool(args.dropFirst().contains { Evaluator.compare($0, args[0]) == 0 }) }
                try need(2)
                guard let c = Evaluator.compare(args[0], args[1]) else {
                    throw fail(pos, name, "error calling \(name): incompatible types for comparison")
                }
                switch name {
                case "ne": return .bool(c != 0)
                case "lt": return .bool(c < 0)
                case "le": return .bool(c <= 0)
                case "gt": return .bool(c > 0)
                default: return .bool(c >= 0)
                }
            default:
                throw fail(pos, name, "function \"\(name)\" not defined")
            }
        }

        static func compare(_ a: TemplateValue, _ b: TemplateValue) -> Int? {
            func num(_ v: TemplateValue) -> Double? {
                switch v {
                case let .int(i): Double(i)
                case let .double(d): d
                default: nil
                }
            }
            if let x = num(a), let y = num(b) { return x < y ? -1 : (x > y ? 1 : 0) }
            switch (a, b) {
            case let (.string(x), .string(y)): return x < y ? -1 : (x > y ? 1 : 0)
            case let (.bool(x), .bool(y)): return x == y ? 0 : 1
            case (.null, .null), (.missing, .missing), (.null, .missing), (.missing, .null): return 0
            default: return a.compact == b.compact ? 0 : nil
            }
        }

        func printf(_ format: String, _ args: [TemplateValue]) -> String {
            var out = ""
            var k = 0
            var it = format.makeIterator()
            while let ch = it.next() {
                guard ch == "%" else { out.append(ch); continue }
                guard let verb = it.next() else { out += "%!(NOVERB)"; break }
                if verb == "%" { out += "%"; continue }
                guard k < args.count else { out += "%!\(verb)(MISSING)"; continue }
                let a = args[k]
                k += 1
                switch verb {
                case "q": out += TemplateValue.quote(Evaluator.string(a))
                case "d":
                    if case let .int(i) = a { out += String(i) } else { out += "%!d(\(Evaluator.print(a)))" }
                default: out += Evaluator.print(a)
                }
            }
            return out
        }
    }
}

extension TemplateValue {
    /// JSON as Go's encoding/json writes it: compact, with <, > and & escaped.
    var goJSON: String {
        compact.replacingOccurrences(of: "<", with: "\\u003c").replacingOccurrences(of: ">", with: "\\u003e")
            .replacingOccurrences(of: "&", with: "\\u0026")
    }
}
