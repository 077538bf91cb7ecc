// Node -> Instruction, with BuildKit's checks and messages (instructions/parse.go).

extension Instruction {
    /// Types one syntax node. - Throws: `DockerfileError` at the node (or the flag at fault).
    public static func parse(_ node: Node, fileName: String = "Dockerfile") throws -> Instruction {
        var parser = InstructionParser(node: node)
        do throws(InstructionError) {
            return try parser.parse()
        } catch {
            var position = node.range.start
            if let i = error.flagIndex, i < node.flagRanges.count { position = node.flagRanges[i].start }
            throw DockerfileError(file: fileName, position: position, message: error.message, suggestion: error.suggestion)
        }
    }
}

struct InstructionParser {
    let node: Node
    let args: [String]
    var flags: BFlags
    let source: InstructionSource

    init(node: Node) {
        self.node = node
        self.args = node.arguments
        self.flags = BFlags(node.flags)
        self.source = InstructionSource(keyword: node.value, original: node.original, range: node.range,
                                        startLine: node.startLine, endLine: node.endLine, comments: node.comments)
    }

    static func atLeastOne(_ c: String) -> InstructionError { InstructionError("\(c) requires at least one argument") }
    static func exactlyOne(_ c: String) -> InstructionError { InstructionError("\(c) requires exactly one argument") }
    static func noDestination(_ c: String) -> InstructionError {
        InstructionError("\(c) requires at least two arguments, but only one was provided. Destination could not be determined")
    }

    mutating func parse() throws(InstructionError) -> Instruction {
        switch node.value.lowercased() {
        case "env":
            try flags.parse()
            return .env(EnvInstruction(source: source, env: try keyValues("ENV")))
        case "maintainer":
            guard args.count == 1 else { throw Self.exactlyOne("MAINTAINER") }
            try flags.parse()
            return .maintainer(MaintainerInstruction(source: source, maintainer: args[0]))
        case "label":
            try flags.parse()
            return .label(LabelInstruction(source: source, labels: try keyValues("LABEL")))
        case "add": return try parseAdd()
        case "copy": return try parseCopy()
        case "from": return try parseFrom()
        case "onbuild": return try parseOnbuild()
        case "workdir":
            guard args.count == 1 else { throw Self.exactlyOne("WORKDIR") }
            try flags.parse()
            return .workdir(WorkdirInstruction(source: source, path: args[0]))
        case "run": return try parseRun()
        case "cmd":
            try flags.parse()
            return .cmd(CmdInstruction(source: source, command: commandLine()))
        case "entrypoint":
            try flags.parse()
            return .entrypoint(EntrypointInstruction(source: source, command: commandLine()))
        case "healthcheck": return try parseHealthcheck()
        case "expose":
            guard !args.isEmpty else { throw Self.atLeastOne("EXPOSE") }
            try flags.parse()
            return .expose(ExposeInstruction(source: source, ports: args.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }))
        case "user":
            guard args.count == 1 else { throw Self.exactlyOne("USER") }
            try flags.parse()
            return .user(UserInstruction(source: source, user: args[0]))
        case "volume":
            guard !args.isEmpty else { throw Self.atLeastOne("VOLUME") }
            try flags.parse()
            var volumes: [String] = []
            for v in args {
                let t = goTrimSpace(v)
                if t.isEmpty { throw InstructionError("VOLUME specified can not be an empty string") }
                volumes.append(t)
            }
            return .volume(VolumeInstruction(source: source, volumes: volumes))
        case "stopsignal":
            guard args.count == 1 else { throw Self.exactlyOne("STOPSIGNAL") }
            return .stopSignal(StopSignalInstruction(source: source, signal: args[0]))
        case "arg": return try parseArg()
        case "shell":
            try flags.parse()
            let shell = jsonArgs()
            if shell.isEmpty { throw Self.atLeastOne("SHELL") }
            guard node.isJSON else {
                throw InstructionError("SHELL requires the arguments to be in JSON form")
            }
            return .shell(ShellInstruction(source: source, shell: shell))
        default:
            throw InstructionError("unknown instruction: \(node.value)",
                                   suggestion: suggest(node.value, among: Instruction.keywords, caseSensitive: false))
        }
    }

    func jsonArgs() -> [String] {
        if args.isEmpty { return [] }
        if node.isJSON { return args }
        return [args.joined(separator: " ")]
    }

    func commandLine() -> CommandLine {
        CommandLine(arguments: jsonArgs(), prependShell: !node.isJSON, files: node.heredocs)
    }

    func keyValues(_ command: String) throws(InstructionError) -> [KeyValuePair] {
        if args.isEmpty { throw Self.atLeastOne(command) }
        if args.count % 3 != 0 { throw InstructionError("Bad input to \(command), too many arguments") }
        var out: [KeyValuePair] = []
        var j = 0
        while j < args.count {
            if args[j].isEmpty { throw InstructionError("\(command) names can not be blank") }
            out.append(KeyValuePair(key: args[j], value: args[j + 1], noDelimiter: args[j + 2].isEmpty))
            j += 3
        }
        return out
    }

    func sourcesAndDest(_ command: String) throws(InstructionError) -> ([String], [SourceContent], String) {
        let srcs = args.dropLast()
        let dest = args[args.count - 1]
        if (try? SyntaxParser.parseHeredoc(dest)) ?? nil != nil {
            throw InstructionError("\(command) cannot accept a heredoc as a destination")
        }
        var lookup: [String: Heredoc] = [:]
        for h in node.heredocs { lookup[h.name] = h }
        var paths: [String] = []
        var contents: [SourceContent] = []
        for src in srcs {
            if let h = (try? SyntaxParser.parseHeredoc(src)) ?? nil {
                var content = lookup[h.name]?.content ?? ""
                if h.chomp { content = chompHeredoc(content) }
                contents.append(SourceContent(path: h.name, data: content, expand: h.expand))
            } else {
                paths.append(src)
            }
        }
        return (paths, contents, dest)
    }

    mutating func parseAdd() throws(InstructionError) -> Instruction {
        guard args.count >= 2 else { throw Self.noDestination("ADD") }
        flags.addString("chown")
        flags.addString("chmod")
        flags.addBool("link")
        flags.addBool("keep-git-dir")
        flags.addString("checksum")
        flags.addBool("unpack")
        flags.addStrings("exclude")
        try flags.parse()
        let (paths, contents, dest) = try sourcesAndDest("ADD")
        return .add(AddInstruction(
            source: source, sources: paths, sourceContents: contents, destination: dest,
            chown: flags.optionalString("chown"), chmod: flags.optionalString("chmod"), link: flags.bool("link"),
            keepGitDir: flags.isUsed("keep-git-dir") ? flags.bool("keep-git-dir") : nil,
            checksum: flags.optionalString("checksum"),
            unpack: flags.isUsed("unpack") ? flags.bool("unpack") : nil,
            excludes: flags.strings("exclude")))
    }

    mutating func parseCopy() throws(InstructionError) -> Instruction {
        guard args.count >= 2 else { throw Self.noDestination("COPY") }
        flags.addString("chown")
        flags.addString("from")
        flags.addString("chmod")
        flags.addBool("link")
        flags.addStrings("exclude")
        flags.addBool("parents")
        try flags.parse()
        let (paths, contents, dest) = try sourcesAndDest("COPY")
        return .copy(CopyInstruction(
            source: source, sources: paths, sourceContents: contents, destination: dest,
            from: flags.optionalString("from"), chown: flags.optionalString("chown"),
            chmod: flags.optionalString("chmod"), link: flags.bool("link"), parents: flags.bool("parents"),
            excludes: flags.strings("exclude")))
    }

    mutating func parseFrom() throws(InstructionError) -> Instruction {
        var stageName: String?
        if args.count == 3 && args[1].lowercased() == "as" {
            let name = args[2].lowercased()
            guard isValidStageName(name) else {
                throw InstructionError("invalid name for build stage: \(goQuote(args[2])), name can't start with a number or contain symbols")
            }
            stageName = name
        } else if args.count != 1 {
            throw InstructionError("FROM requires either one or three arguments")
        }
        flags.addString("platform")
        try flags.parse()
        return .from(FromInstruction(source: source, baseName: args[0], stageName: stageName,
                                     platform: flags.optionalString("platform")))
    }

    mutating func parseOnbuild() throws(InstructionError) -> Instruction {
        guard !args.isEmpty else { throw Self.atLeastOne("ONBUILD") }
        try flags.parse()
        let trigger = goTrimSpace(args[0]).uppercased()
        switch trigger {
        case "ONBUILD": throw InstructionError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        case "MAINTAINER", "FROM": throw InstructionError("\(trigger) isn't allowed as an ONBUILD trigger")
        default: break
        }
        // drop the leading "ONBUILD" keyword and the whitespace after it
        var original = Substring(node.original)
        while let c = original.unicodeScalars.first, isGoSpace(c) { original = original.dropFirst() }
        if original.prefix(7).lowercased() == "onbuild" { original = original.dropFirst(7) }
        while let c = original.unicodeScalars.first, isGoSpace(c) { original = original.dropFirst() }
        var expression = String(original)
        for h in node.heredocs {
            expression += "\n" + h.content + h.name
        }
        return .onbuild(OnbuildInstruction(source: source, expression: expression, triggerKeyword: trigger))
    }

    mutating func parseRun() throws(InstructionError) -> Instruction {
        flags.addStrings("mount")
        flags.addString("network", "default")
        flags.addString("security", "sandbox")
        try flags.parse()
        let specs = flags.strings("mount")
        var mounts: [Mount] = []
        for (n, spec) in specs.enumerated() {
            var flagIndex: Int? {
                let idx = node.flags.indices.filter { node.flags[$0].hasPrefix("--mount=") }
                return n < idx.count ? idx[n] : nil
            }
            if spec.utf8.contains(UInt8(ascii: "$")) {
                // from= cannot use variables; the rest is checked after expansion
                if let from = try Mount.csvFields(spec).first(where: { $0.lowercased().hasPrefix("from=") }) {
                    let value = from.dropFirst(5)
                    if let idx = value.firstIndex(of: "$"), value.index(after: idx) != value.endIndex {
                        throw InstructionError("'from' doesn't support variable expansion, define alias stage instead",
                                               flagIndex: flagIndex)
                    }
                }
                continue
            }
            do throws(InstructionError) {
                mounts.append(try Mount.parseSpec(spec))
            } catch {
                var e = error
                e.flagIndex = flagIndex
                throw e
            }
        }
        let network = flags.string("network")
        guard ["default", "none", "host"].contains(network) else {
            throw InstructionError("invalid network mode \(goQuote(network))")
        }
        let security = flags.string("security")
        guard ["sandbox", "insecure"].contains(security) else {
            throw InstructionError("security \(goQuote(security)) is not valid")
        }
        return .run(RunInstruction(source: source, command: commandLine(), mountSpecs: specs, mounts: mounts,
                                   network: network, security: security, flagsUsed: flags.used))
    }

    mutating func parseHealthcheck() throws(InstructionError) -> Instruction {
        guard !args.isEmpty else { throw Self.atLeastOne("HEALTHCHECK") }
        var typ = args[0].uppercased()
        let rest = Array(args.dropFirst())
        if typ == "NONE" {
            guard rest.isEmpty else { throw InstructionError("HEALTHCHECK NONE takes no arguments") }
            return .healthcheck(HealthcheckInstruction(source: source, test: ["NONE"], interval: 0, timeout: 0,
                                                       startPeriod: 0, startInterval: 0, retries: 0))
        }
        for name in ["interval", "timeout", "start-period", "start-interval", "retries"] { flags.addString(name) }
        try flags.parse()
        guard typ == "CMD" else {
            throw InstructionError("Unknown type \(goQuote(typ)) in HEALTHCHECK (try CMD)")
        }
        let cmd: [String] = rest.isEmpty ? [] : (node.isJSON ? rest : [rest.joined(separator: " ")])
        guard !cmd.isEmpty else { throw InstructionError("Missing command after HEALTHCHECK CMD") }
        if !node.isJSON { typ = "CMD-SHELL" }
        func interval(_ name: String) throws(InstructionError) -> Int64 {
            let s = flags.string(name)
            if s.isEmpty { return 0 }
            let d = try parseGoDuration(s)
            if d == 0 { return 0 }
            if d < 1_000_000 { throw InstructionError("Interval \(goQuote(name)) cannot be less than 1ms") }
            return d
        }
        var retries = 0
        let r = flags.string("retries")
        if !r.isEmpty {
            guard let v = Int32(r) else {
                let allDigits = r.drop(while: { $0 == "-" || $0 == "+" }).allSatisfy { $0.isASCII && $0.isNumber }
                throw InstructionError("strconv.ParseInt: parsing \(goQuote(r)): \(allDigits && !r.isEmpty ? "value out of range" : "invalid syntax")")
            }
            if v < 0 { throw InstructionError("--retries cannot be negative (\(v))") }
            retries = Int(v)
        }
        return .healthcheck(HealthcheckInstruction(
            source: source, test: [typ] + cmd, interval: try interval("interval"), timeout: try interval("timeout"),
            startPeriod: try interval("start-period"), startInterval: try interval("start-interval"), retries: retries))
    }

    func parseArg() throws(InstructionError) -> Instruction {
        guard !args.isEmpty else { throw Self.atLeastOne("ARG") }
        var out: [ArgDeclaration] = []
        for arg in args {
            if let eq = arg.firstIndex(of: "=") {
                let key = String(arg[..<eq])
                if key.isEmpty { throw InstructionError("ARG names can not be blank") }
                out.append(ArgDeclaration(key: key, value: String(arg[arg.index(after: eq)...])))
            } else {
                out.append(ArgDeclaration(key: arg, value: nil))
            }
        }
        return .arg(ArgInstruction(source: source, args: out))
    }
}

/// `^[a-z][a-z0-9-_.]*$`
func isValidStageName(_ name: String) -> Bool {
    let u = Array(name.utf8)
    guard let f = u.first, f >= 0x61, f <= 0x7A else { return false }
    return u.dropFirst().allSatisfy { c in
        (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2D || c == 0x5F || c == 0x2E
    }
}

/// Removes leading tabs from every line of a `<<-` heredoc body.
public func chompHeredoc(_ content: String) -> String {
    var out = ""
    var atLineStart = true
    for c in content.unicodeScalars {
        if atLineStart && c == "\t" { continue }
        atLineStart = c == "\n"
        out.unicodeScalars.append(c)
    }
    return out
}
