// BuildKit's BFlags: `--name=value` flags of one instruction, checked against
// the names that instruction accepts.

struct InstructionError: Error {
    var message: String
    var suggestion: String?
    /// Index of the flag at fault, to point at it.
    var flagIndex: Int?
    init(_ message: String, suggestion: String? = nil, flagIndex: Int? = nil) {
        self.message = message
        self.suggestion = suggestion
        self.flagIndex = flagIndex
    }
}

struct BFlags {
    enum Kind { case bool, string, strings }

    struct Flag {
        var kind: Kind
        var value: String
        var values: [String] = []
        var used = false
    }

    let args: [String]
    /// Few flags per instruction: parallel arrays beat a dictionary here.
    var order: [String] = []
    var flags: [Flag] = []

    init(_ args: [String]) {
        self.args = args
    }

    func position(of name: String) -> Int? {
        for i in order.indices where order[i] == name { return i }
        return nil
    }

    mutating func addBool(_ name: String, _ def: Bool = false) {
        order.append(name)
        flags.append(Flag(kind: .bool, value: def ? "true" : "false"))
    }

    mutating func addString(_ name: String, _ def: String = "") {
        order.append(name)
        flags.append(Flag(kind: .string, value: def))
    }

    mutating func addStrings(_ name: String) {
        order.append(name)
        flags.append(Flag(kind: .strings, value: ""))
    }

    mutating func parse() throws(InstructionError) {
        for (index, a) in args.enumerated() {
            if a == "--" { return }
            guard a.hasPrefix("--") else {
                throw InstructionError("arg should start with -- : \(a)", flagIndex: index)
            }
            let flagName: String, value: String, hasValue: Bool
            if let eq = a.firstIndex(of: "=") {
                flagName = String(a[..<eq])
                value = String(a[a.index(after: eq)...])
                hasValue = true
            } else {
                flagName = a
                value = ""
                hasValue = false
            }
            let name = String(flagName.dropFirst(2))
            guard let fi = position(of: name) else {
                throw InstructionError("unknown flag: \(flagName)",
                                       suggestion: suggest(name, among: order, caseSensitive: true),
                                       flagIndex: index)
            }
            var flag = flags[fi]
            if flag.used && flag.kind != .strings {
                throw InstructionError("duplicate flag specified: \(flagName)", flagIndex: index)
            }
            flag.used = true
            switch flag.kind {
            case .bool:
                if hasValue && value.isEmpty {
                    throw InstructionError("missing a value on flag: \(flagName)", flagIndex: index)
                }
                switch value.lowercased() {
                case "true", "": flag.value = "true"
                case "false": flag.value = "false"
                default:
                    throw InstructionError("expecting boolean value for flag \(flagName), not: \(value)", flagIndex: index)
                }
            case .string:
                guard hasValue else { throw InstructionError("missing a value on flag: \(flagName)", flagIndex: index) }
                flag.value = value
            case .strings:
                guard hasValue else { throw InstructionError("missing a value on flag: \(flagName)", flagIndex: index) }
                flag.values.append(value)
            }
            flags[fi] = flag
        }
    }

    func flag(_ name: String) -> Flag? { position(of: name).map { flags[$0] } }
    func string(_ name: String) -> String { flag(name)?.value ?? "" }
    func optionalString(_ name: String) -> String? {
        guard let f = flag(name), !f.value.isEmpty else { return nil }
        return f.value
    }
    func bool(_ name: String) -> Bool { flag(name)?.value == "true" }
    func strings(_ name: String) -> [String] { flag(name)?.values ?? [] }
    func isUsed(_ name: String) -> Bool { flag(name)?.used ?? false }
    var used: [String] { order.indices.filter { flags[$0].used }.map { order[$0] } }
}

/// Go's time.ParseDuration, in nanoseconds.
func parseGoDuration(_ orig: String) throws(InstructionError) -> Int64 {
    var s = Substring(orig)
    var neg = false
    if let c = s.first, c == "-" || c == "+" {
        neg = c == "-"
        s = s.dropFirst()
    }
    if s == "0" { return 0 }
    let invalid = InstructionError("time: invalid duration \(goQuote(orig))")
    if s.isEmpty { throw invalid }
    let units: [String: Double] = [
        "ns": 1, "us": 1e3, "\u{b5}s": 1e3, "\u{3bc}s": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9,
    ]
    var total: Double = 0
    while !s.isEmpty {
        guard let c = s.first, c == "." || c.isASCII && c.isNumber else { throw invalid }
        var intPart = ""
        while let c = s.first, c.isASCII, c.isNumber { intPart.append(c); s = s.dropFirst() }
        var fracPart = ""
        var hadDot = false
        if s.first == "." {
            hadDot = true
            s = s.dropFirst()
            while let c = s.first, c.isASCII, c.isNumber { fracPart.append(c); s = s.dropFirst() }
        }
        if intPart.isEmpty && fracPart.isEmpty { throw invalid }
        _ = hadDot
        var unit = ""
        while let c = s.first, !(c == "." || (c.isASCII && c.isNumber)) { unit.append(c); s = s.dropFirst() }
        if unit.isEmpty { throw InstructionError("time: missing unit in duration \(goQuote(orig))") }
        guard let scale = units[unit] else {
            throw InstructionError("time: unknown unit \(goQuote(unit)) in duration \(goQuote(orig))")
        }
        let v = (Double(intPart.isEmpty ? "0" : intPart) ?? 0) + (Double("0." + (fracPart.isEmpty ? "0" : fracPart)) ?? 0)
        total += v * scale
        if total > 9.223372036854775e18 { throw invalid }
    }
    return Int64(neg ? -total : total)
}

/// Go's strconv.ParseBool.
func parseGoBool(_ s: String) -> Bool? {
    switch s {
    case "1", "t", "T", "TRUE", "true", "True": true
    case "0", "f", "F", "FALSE", "false", "False": false
    default: nil
    }
}
