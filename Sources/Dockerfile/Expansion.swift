// Applying ARG/ENV values to instructions, as BuildKit's dispatcher does
// (each instruction's Expand method in BuildKit's instructions package).

extension Instruction {
    /// The instruction with its expandable words expanded by `expand` (one word at a
    /// time: ENV/LABEL keys and values, ADD/COPY sources, destination, --chown,
    /// --chmod, ADD --checksum, WORKDIR, USER, VOLUME, STOPSIGNAL, ARG names and
    /// defaults, RUN --mount option values). RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK
    /// commands are left to the shell; EXPOSE is split into words by `exposedPorts`.
    public func expanded(_ expand: (String) throws(ExpansionError) -> String) throws(ExpansionError) -> Instruction {
        func opt(_ s: String?) throws(ExpansionError) -> String? {
            guard let s else { return nil }
            let v = try expand(s)
            return v.isEmpty ? nil : v
        }
        func pairs(_ kv: [KeyValuePair]) throws(ExpansionError) -> [KeyValuePair] {
            var out: [KeyValuePair] = []
            for p in kv {
                out.append(KeyValuePair(key: try expand(p.key), value: try expand(p.value), noDelimiter: p.noDelimiter))
            }
            return out
        }
        func list(_ l: [String]) throws(ExpansionError) -> [String] {
            var out: [String] = []
            for s in l { out.append(try expand(s)) }
            return out
        }
        switch self {
        case .env(var i):
            i.env = try pairs(i.env)
            return .env(i)
        case .label(var i):
            i.labels = try pairs(i.labels)
            return .label(i)
        case .add(var i):
            i.chown = try opt(i.chown)
            i.chmod = try opt(i.chmod)
            i.checksum = try opt(i.checksum)
            i.sources = try list(i.sources)
            i.destination = try expand(i.destination)
            for k in i.sourceContents.indices where i.sourceContents[k].expand {
                i.sourceContents[k].data = try expand(i.sourceContents[k].data)
            }
            return .add(i)
        case .copy(var i):
            i.chown = try opt(i.chown)
            i.chmod = try opt(i.chmod)
            i.sources = try list(i.sources)
            i.destination = try expand(i.destination)
            for k in i.sourceContents.indices where i.sourceContents[k].expand {
                i.sourceContents[k].data = try expand(i.sourceContents[k].data)
            }
            return .copy(i)
        case .workdir(var i):
            i.path = try expand(i.path)
            return .workdir(i)
        case .user(var i):
            i.user = try expand(i.user)
            return .user(i)
        case .volume(var i):
            i.volumes = try list(i.volumes)
            return .volume(i)
        case .stopSignal(var i):
            i.signal = try expand(i.signal)
            return .stopSignal(i)
        case .arg(var i):
            var out: [ArgDeclaration] = []
            for a in i.args {
                out.append(ArgDeclaration(key: try expand(a.key), value: try a.value.map { (v: String) throws(ExpansionError) -> String in try expand(v) }))
            }
            i.args = out
            return .arg(i)
        case .run(var i):
            var mounts: [Mount] = []
            for spec in i.mountSpecs { mounts.append(try Mount.parse(spec, expand: expand)) }
            i.mounts = mounts
            return .run(i)
        default:
            return self
        }
    }
}

/// A port exposed by EXPOSE, as the image config records it (`80/tcp`).
public struct ExposedPort: Sendable, Hashable, CustomStringConvertible {
    public var port: Int
    /// `tcp`, `udp` or `sctp`.
    public var proto: String
    public var description: String { "\(port)/\(proto)" }
}

extension ExposeInstruction {
    /// Expands the port words with `lex` and `env`, splits ranges (`8000-8002/udp`)
    /// and checks ports and protocols, with BuildKit's messages.
    public func exposedPorts(lex: ShellLex = ShellLex(), env: some VariableLookup) throws(ExpansionError) -> [ExposedPort] {
        var words: [String] = []
        for p in ports { words += try lex.processWords(p, env: env) }
        var out: [ExposedPort] = []
        for raw in words {
            let parts = raw.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            let container = parts.last ?? ""
            let slash = container.firstIndex(of: "/")
            let portText = slash.map { String(container[..<$0]) } ?? container
            let proto = slash.map { String(container[container.index(after: $0)...]) } ?? ""
            if portText.isEmpty { throw ExpansionError("invalid port: \(goQuote(raw)): no port specified") }
            let p = proto.lowercased()
            guard ["", "tcp", "udp", "sctp"].contains(p) else {
                throw ExpansionError("invalid port: \(goQuote(raw)): invalid proto: \(proto)")
            }
            func number(_ s: Substring) -> Int? {
                guard let v = Int(s), v >= 0, v <= 65535 else { return nil }
                return v
            }
            let bounds = portText.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            guard let start = number(bounds[0]) else { throw ExpansionError("invalid containerPort: \(portText)") }
            var end = start
            if bounds.count == 2 && bounds[1] != bounds[0] {
                guard let e = number(bounds[1]), e >= start else { throw ExpansionError("invalid containerPort: \(portText)") }
                end = e
            }
            for port in start...end { out.append(ExposedPort(port: port, proto: p.isEmpty ? "tcp" : p)) }
        }
        return out
    }
}

extension StageEnvironment {
    /// The instruction expanded with the variables visible at this point.
    public func expand(_ instruction: Instruction) throws(ExpansionError) -> Instruction {
        let vars = variables
        let lex = self.lex
        return try instruction.expanded { (word: String) throws(ExpansionError) -> String in
            try lex.processWord(word, env: vars)
        }
    }
}

extension OnbuildInstruction {
    /// Parses the trigger as the child build will run it (BuildKit re-parses
    /// `expression` when an image built FROM this one is built).
    public func trigger(fileName: String = "ONBUILD") throws -> Instruction {
        let tree = try SyntaxTree.parse(expression, fileName: fileName)
        guard tree.instructions.count == 1 else {
            throw DockerfileError(file: fileName, position: source.range.start,
                                  message: "onbuild trigger should be a single expression")
        }
        return try Instruction.parse(tree.instructions[0], fileName: fileName)
    }
}
