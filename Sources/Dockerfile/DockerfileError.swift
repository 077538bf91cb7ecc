/// A position in a Dockerfile: 1-based line and 1-based column (in UTF-8 bytes of that line).
public struct Position: Sendable, Hashable, Codable, Comparable {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public static func < (a: Position, b: Position) -> Bool {
        (a.line, a.column) < (b.line, b.column)
    }
}

/// A span of source text; `end` is the position just past the last byte.
public struct SourceRange: Sendable, Hashable, Codable {
    public var start: Position
    public var end: Position

    public init(start: Position, end: Position) {
        self.start = start
        self.end = end
    }

    /// A range covering whole lines, used where BuildKit only knows lines.
    public init(lines first: Int, _ last: Int) {
        start = Position(line: first, column: 1)
        end = Position(line: last, column: 1)
    }
}

/// The one error type of the Dockerfile library. Its description reads
/// `FILE:LINE:COLUMN: message (did you mean X?)` so a user can jump to the spot.
public struct DockerfileError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file name given to the parser (used only in messages).
    public var file: String
    /// Where the problem is; nil when it is not tied to one place (e.g. unknown --target).
    public var position: Position?
    /// What is wrong, worded as BuildKit words it, so messages can be compared.
    public var message: String
    /// A likely fix: the nearest valid name (edit distance), when one is close.
    public var suggestion: String?
    /// What to do, when the fix is not a near name.
    public var hint: String?

    public init(file: String, position: Position?, message: String, suggestion: String? = nil, hint: String? = nil) {
        self.file = file
        self.position = position
        self.message = message
        self.suggestion = suggestion
        self.hint = hint
    }

    /// The message with its suggestion, without the location (BuildKit's error text).
    public var text: String {
        var out = message
        if let suggestion { out += " (did you mean \(suggestion)?)" }
        if let hint { out += " (hint: \(hint))" }
        return out
    }

    public var description: String {
        guard let position else { return "\(file): \(text)" }
        return "\(file):\(position.line):\(position.column): \(text)"
    }
}

/// An error of the shell-word expander; the instruction layer adds file and line.
public struct ExpansionError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
