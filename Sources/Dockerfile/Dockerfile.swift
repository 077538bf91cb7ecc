/// A parsed Dockerfile. (Typed instructions and stages come in the next layer.)
public struct Dockerfile: Sendable {
    /// The syntax tree the instructions were read from.
    public var syntax: SyntaxTree

    /// Parses and validates a Dockerfile.
    public static func parse(_ text: String, fileName: String = "Dockerfile") throws -> Dockerfile {
        Dockerfile(syntax: try SyntaxTree.parse(text, fileName: fileName))
    }
}
