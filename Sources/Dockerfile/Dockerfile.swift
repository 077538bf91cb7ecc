/// A build stage: a FROM and the instructions up to the next FROM.
public struct Stage: Sendable, Hashable {
    /// Position among the stages, 0-based (what `COPY --from=0` refers to).
    public var index: Int
    /// The FROM that opens the stage.
    public var from: FromInstruction
    /// The instructions after FROM.
    public var instructions: [Instruction]

    /// `AS name`, lower-cased; nil for unnamed stages.
    public var name: String? { from.stageName }
    /// The name BuildKit uses in messages: the stage name or `stage-N`.
    public var displayName: String { name ?? "stage-\(index)" }
}

/// A parsed and validated Dockerfile: typed instructions grouped into stages.
public struct Dockerfile: Sendable {
    public var fileName: String
    /// The syntax tree the instructions were read from (`syntax.dump()` is BuildKit's AST dump).
    public var syntax: SyntaxTree
    /// ARG instructions before the first FROM (the global scope of FROM lines).
    public var metaArgs: [ArgInstruction]
    public var stages: [Stage]
    /// Every instruction in file order, FROMs and meta ARGs included.
    public var instructions: [Instruction]

    /// The escape token in effect, for building a matching `ShellLex`.
    public var escapeToken: Unicode.Scalar { syntax.escapeToken.unicodeScalars.first ?? "\\" }
    /// A shell lexer with this file's escape token.
    public var shellLex: ShellLex { ShellLex(escapeToken: escapeToken) }

    /// Parses Dockerfile text: syntax, typed instructions, stages.
    /// - Throws: `DockerfileError` with file, line, column and a suggested fix.
    public static func parse(_ text: String, fileName: String = "Dockerfile") throws -> Dockerfile {
        let tree = try SyntaxTree.parse(text, fileName: fileName)
        var meta: [ArgInstruction] = []
        var stages: [Stage] = []
        var all: [Instruction] = []
        all.reserveCapacity(tree.instructions.count)
        for node in tree.instructions {
            let instruction = try Instruction.parse(node, fileName: fileName)
            all.append(instruction)
            switch instruction {
            case .from(let from):
                stages.append(Stage(index: stages.count, from: from, instructions: []))
            case .arg(let arg) where stages.isEmpty:
                meta.append(arg)
            default:
                guard !stages.isEmpty else {
                    throw DockerfileError(file: fileName, position: node.range.start,
                                          message: "no build stage in current context",
                                          hint: "only ARG may come before the first FROM")
                }
                stages[stages.count - 1].instructions.append(instruction)
            }
        }
        if stages.isEmpty {
            throw DockerfileError(file: fileName, position: nil, message: "dockerfile contains no stages to build",
                                  hint: "add a FROM instruction")
        }
        return Dockerfile(fileName: fileName, syntax: tree, metaArgs: meta, stages: stages, instructions: all)
    }

    /// The stage called `name` (case-insensitive), if any.
    public func stage(named name: String) -> Stage? {
        let lower = name.lowercased()
        return stages.first { $0.name == lower }
    }
}
