extension SyntaxTree {
    /// Parses Dockerfile text into its syntax tree, exactly as BuildKit's parser
    /// does (directives, escapes, continuations, comments, heredocs, JSON form).
    /// Unknown instructions are kept here; `Dockerfile.parse` rejects them.
    /// - Throws: `DockerfileError` naming the file, line and column.
    public static func parse(_ text: String, fileName: String = "Dockerfile") throws -> SyntaxTree {
        var parser = SyntaxParser(file: fileName)
        return try parser.parse(text)
    }
}
