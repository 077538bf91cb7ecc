import Dockerfile

/// One instruction of the Dockerfile with its flags split out, before variable expansion.
struct Instruction: Sendable {
    var keyword: String          // lower-cased
    var flags: [String: [String]] // name -> values, in order ("--link" gives [""])
    var args: [String]           // raw argument words (ENV/LABEL: key, value, sep triples)
    var isJSON: Bool
    var heredocs: [Heredoc]
    var original: String         // the logical line
    var line: Int
    var onbuildTrigger: String?  // ONBUILD: the nested instruction's text

    init(node: Node) {
        keyword = node.value.lowercased()
        var f: [String: [String]] = [:]
        for raw in node.flags {
            var s = Substring(raw)
            while s.hasPrefix("-") { s = s.dropFirst() }
            if let eq = s.firstIndex(of: "=") {
                f[String(s[..<eq]).lowercased(), default: []].append(String(s[s.index(after: eq)...]))
            } else {
                f[String(s).lowercased(), default: []].append("")
            }
        }
        flags = f
        args = node.next.map(\.value)
        isJSON = node.isJSON
        heredocs = node.heredocs
        original = node.original
        line = node.startLine
        if keyword == "onbuild" {
            var text = node.original.drop(while: { $0 == " " || $0 == "\t" })
            text = text.drop(while: { $0 != " " && $0 != "\t" }).drop(while: { $0 == " " || $0 == "\t" })
            onbuildTrigger = String(text)
        }
    }

    func flag(_ name: String) -> String? { flags[name]?.last }
    func has(_ name: String) -> Bool { flags[name] != nil }
    /// A boolean flag: present without value, or `=true`.
    func bool(_ name: String) -> Bool {
        guard let v = flags[name]?.last else { return false }
        return v.isEmpty || v.lowercased() == "true"
    }

    /// The instruction text as docker records it in `created_by` after the keyword.
    var text: String {
        var t = original.drop(while: { $0 == " " || $0 == "\t" })
        t = t.drop(while: { $0 != " " && $0 != "\t" }).drop(while: { $0 == " " || $0 == "\t" })
        return String(t)
    }
}

/// A `FROM` block.
struct Stage: Sendable {
    var index: Int
    var name: String?
    var baseRaw: String          // before expansion with global args
    var platformRaw: String?
    var instructions: [Instruction]
    var line: Int
}

/// The parsed Dockerfile: global ARGs before the first FROM, then stages.
struct Plan: Sendable {
    var globalArgs: [Instruction]
    var stages: [Stage]
    var escape: Unicode.Scalar
    var fileName: String

    init(tree: SyntaxTree, fileName: String) throws {
        self.fileName = fileName
        escape = tree.escapeToken.unicodeScalars.first ?? "\\"
        var globals: [Instruction] = []
        var stages: [Stage] = []
        for node in tree.instructions {
            let ins = Instruction(node: node)
            if ins.keyword == "from" {
                let words = ins.args
                guard let base = words.first else {
                    throw BuildError.dockerfile(file: fileName, line: ins.line, message: "FROM needs an image name")
                }
                var name: String?
                if words.count == 3, words[1].lowercased() == "as" {
                    name = words[2].lowercased()
                } else if words.count != 1 {
                    throw BuildError.dockerfile(file: fileName, line: ins.line,
                                                message: "FROM takes `image [AS name]`, got `\(words.joined(separator: " "))`")
                }
                stages.append(Stage(index: stages.count, name: name, baseRaw: base, platformRaw: ins.flag("platform"),
                                    instructions: [], line: ins.line))
            } else if stages.isEmpty {
                guard ins.keyword == "arg" else {
                    throw BuildError.dockerfile(file: fileName, line: ins.line,
                                                message: "\(ins.keyword.uppercased()) before the first FROM; only ARG may come before FROM")
                }
                globals.append(ins)
            } else {
                stages[stages.count - 1].instructions.append(ins)
            }
        }
        if stages.isEmpty {
            throw BuildError.dockerfile(file: fileName, line: 0, message: "no FROM instruction: a Dockerfile needs at least one stage")
        }
        globalArgs = globals
        self.stages = stages
    }

    /// The stage a name or index refers to.
    func stage(named ref: String) -> Stage? {
        let l = ref.lowercased()
        if let s = stages.first(where: { $0.name == l }) { return s }
        if let i = Int(ref), i >= 0, i < stages.count { return stages[i] }
        return nil
    }
}
