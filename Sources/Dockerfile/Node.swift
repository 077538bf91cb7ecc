/// A here-document attached to RUN, COPY or ADD (`<<EOF ... EOF`).
public struct Heredoc: Sendable, Hashable, Codable {
    /// The delimiter word with quotes removed; COPY/ADD use it as the file name.
    public var name: String
    /// The file descriptor number written before `<<` (0 when absent).
    public var fileDescriptor: Int
    /// False when any part of the delimiter was quoted: the body is then not expanded.
    public var expand: Bool
    /// True for `<<-`: leading tabs are removed from the body and the terminator.
    public var chomp: Bool
    /// The body, each line with its newline, without the terminator line.
    public var content: String
    /// Lines of the body (first and last), 1-based.
    public var range: SourceRange?
}

/// A node of the syntax tree, shaped like BuildKit's `parser.Node`: an
/// instruction node holds its keyword in `value`, its `--flags`, and its
/// arguments in `next`; an ONBUILD argument node holds the nested instruction in `children`.
public struct Node: Sendable, Hashable {
    /// The keyword as written (instruction nodes) or the argument text.
    public var value: String
    /// The argument nodes, in order (BuildKit's `Next` chain).
    public var next: [Node]
    /// Nested instructions: the root's instructions, or ONBUILD's trigger.
    public var children: [Node]
    /// `--name=value` flags exactly as written after the keyword, quotes removed.
    public var flags: [String]
    /// Where each flag is, parallel to `flags`.
    public var flagRanges: [SourceRange]
    /// Here-documents whose bodies follow this instruction.
    public var heredocs: [Heredoc]
    /// True when the arguments were given in JSON (exec) form.
    public var isJSON: Bool
    /// The logical line after continuations were joined and comments removed.
    public var original: String
    /// First and last physical line, 1-based (0 for argument nodes).
    public var startLine: Int
    public var endLine: Int
    /// Where this node's text is.
    public var range: SourceRange
    /// Comment lines directly above the instruction (without `#`).
    public var comments: [String]

    public init(value: String, next: [Node] = [], children: [Node] = [], flags: [String] = [],
                flagRanges: [SourceRange] = [], heredocs: [Heredoc] = [], isJSON: Bool = false,
                original: String = "", startLine: Int = 0, endLine: Int = 0,
                range: SourceRange = SourceRange(lines: 0, 0), comments: [String] = []) {
        self.value = value
        self.next = next
        self.children = children
        self.flags = flags
        self.flagRanges = flagRanges
        self.heredocs = heredocs
        self.isJSON = isJSON
        self.original = original
        self.startLine = startLine
        self.endLine = endLine
        self.range = range
        self.comments = comments
    }

    /// The node as BuildKit's `Node.Dump` prints it, byte for byte.
    public func dump() -> String {
        var out = value.lowercased()
        if !flags.isEmpty {
            out += " [" + flags.map(goQuote).joined(separator: " ") + "]"
        }
        for child in children {
            out += "(" + child.dump() + ")\n"
        }
        for n in next {
            out += " "
            if !n.children.isEmpty {
                out += n.dump()
            } else {
                out += goQuote(n.value)
            }
        }
        return goTrimSpace(out)
    }

    /// The argument values, with ONBUILD's nested instruction flattened as BuildKit's nodeArgs does.
    public var arguments: [String] {
        var result: [String] = []
        for arg in next {
            if arg.children.isEmpty {
                result.append(arg.value)
            } else if arg.children.count == 1 {
                result.append(arg.children[0].value)
                result += arg.children[0].arguments
            }
        }
        return result
    }
}

/// The parsed syntax tree of a Dockerfile, before instructions are typed.
public struct SyntaxTree: Sendable, Hashable {
    /// One node per instruction, in file order.
    public var instructions: [Node]
    /// The escape character in effect (`\` or `` ` ``).
    public var escapeToken: Character
    /// Parser directives found at the top (`syntax`, `escape`, `check`), lower-cased keys.
    public var directives: [Directive]
    /// Non-fatal findings, e.g. empty continuation lines.
    public var warnings: [Warning]

    /// BuildKit's AST dump: one `(keyword ...)` line per instruction, no trailing newline.
    public func dump() -> String {
        var out = ""
        for child in instructions {
            out += "(" + child.dump() + ")\n"
        }
        return goTrimSpace(out)
    }
}

/// A parser directive such as `# syntax=docker/dockerfile:1`.
public struct Directive: Sendable, Hashable, Codable {
    public var name: String
    public var value: String
    public var line: Int
}

/// A non-fatal finding of the parser.
public struct Warning: Sendable, Hashable, Codable {
    public var message: String
    public var line: Int
}

extension Node: Encodable {
    private enum CodingKeys: String, CodingKey {
        case keyword, value, flags, args, json, heredocs, range, startLine, endLine, original, instruction
    }

    private struct Located: Encodable {
        var value: String
        var range: SourceRange
    }

    /// Instruction nodes encode keyword, flags, args (with ranges), heredocs;
    /// an ONBUILD argument encodes its nested instruction.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if value.isEmpty, let inner = children.first {
            try c.encode(inner, forKey: .instruction)
            try c.encode(range, forKey: .range)
            return
        }
        try c.encode(value, forKey: .keyword)
        try c.encode(zip(flags, flagRanges).map { Located(value: $0.0, range: $0.1) }, forKey: .flags)
        var args: [ArgumentJSON] = []
        for n in next {
            if let inner = n.children.first {
                args.append(ArgumentJSON(value: nil, range: n.range, instruction: inner))
            } else {
                args.append(ArgumentJSON(value: n.value, range: n.range, instruction: nil))
            }
        }
        try c.encode(args, forKey: .args)
        try c.encode(isJSON, forKey: .json)
        if !heredocs.isEmpty { try c.encode(heredocs, forKey: .heredocs) }
        try c.encode(range, forKey: .range)
        if startLine > 0 {
            try c.encode(startLine, forKey: .startLine)
            try c.encode(endLine, forKey: .endLine)
            try c.encode(original, forKey: .original)
        }
    }

    private struct ArgumentJSON: Encodable {
        var value: String?
        var range: SourceRange
        var instruction: Node?
    }
}

extension SyntaxTree: Encodable {
    private enum CodingKeys: String, CodingKey { case escapeToken, directives, instructions, warnings }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(String(escapeToken), forKey: .escapeToken)
        try c.encode(directives, forKey: .directives)
        try c.encode(instructions, forKey: .instructions)
        try c.encode(warnings, forKey: .warnings)
    }
}
