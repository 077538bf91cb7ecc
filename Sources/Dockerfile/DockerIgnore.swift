import Foundation

/// `.dockerignore` rules with the semantics of moby/patternmatcher: Go
/// `filepath.Match` patterns, `**` for any number of directories, and `!`
/// exceptions applied in order (the last matching line wins). A path is ignored
/// when it or one of its parent directories matches.
public struct DockerIgnore: Sendable, Hashable {
    struct Pattern: Sendable, Hashable {
        enum Kind: Sendable, Hashable { case exact, prefix, suffix, regexp }
        enum Node: Sendable, Hashable {
            case literal(Unicode.Scalar)
            case notSlashStar      // [^/]*
            case notSlashOne       // [^/]
            case anyStar           // .*
            case optionalDirs      // (.*/)?
            case set([ClosedRange<UInt32>], negated: Bool)
        }
        var text: String
        var exclusion: Bool
        var dirs: Int
        var kind: Kind
        var nodes: [Node]
    }

    /// The patterns as given (after cleaning), `!` kept on exceptions.
    public let patterns: [String]
    let compiled: [Pattern]

    /// Reads the lines of a .dockerignore file as BuildKit does: `#` comments,
    /// blank lines skipped, paths cleaned, a leading `/` removed.
    public static func readPatterns(_ text: String) -> [String] {
        var out: [String] = []
        var first = true
        for rawLine in text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false) {
            var line = String(decoding: rawLine, as: UTF8.self)
            if first, line.hasPrefix("\u{FEFF}") { line.removeFirst() }
            first = false
            if line.utf8.last == 0x0D { line = String(decoding: line.utf8.dropLast(), as: UTF8.self) }
            if line.hasPrefix("#") { continue }
            var p = goTrimSpace(line)
            if p.isEmpty { continue }
            let invert = p.hasPrefix("!")
            if invert { p = goTrimSpace(String(p.dropFirst())) }
            if !p.isEmpty {
                p = cleanPath(p)
                if p.utf8.count > 1 && p.hasPrefix("/") { p.removeFirst() }
            }
            out.append(invert ? "!" + p : p)
        }
        return out
    }

    /// Builds a matcher from .dockerignore text.
    public init(contents: String, fileName: String = ".dockerignore") throws {
        try self.init(patterns: Self.readPatterns(contents), fileName: fileName)
    }

    /// Builds a matcher from patterns, in order.
    /// - Throws: `DockerfileError` for `!` alone or a malformed pattern (`[a-`).
    public init(patterns: [String], fileName: String = ".dockerignore") throws {
        var compiled: [Pattern] = []
        var kept: [String] = []
        for raw in patterns {
            var p = goTrimSpace(raw)
            if p.isEmpty { continue }
            p = Self.cleanPath(p)
            var exclusion = false
            if p.hasPrefix("!") {
                if p == "!" {
                    throw DockerfileError(file: fileName, position: nil, message: "illegal exclusion pattern: \"!\"",
                                          hint: "write !path to re-include a path")
                }
                exclusion = true
                p.removeFirst()
            }
            guard Self.validGlob(p) else {
                throw DockerfileError(file: fileName, position: nil, message: "syntax error in pattern: \(p)",
                                      hint: "check [ ] ranges and \\ escapes")
            }
            compiled.append(Self.compile(p, exclusion: exclusion))
            kept.append((exclusion ? "!" : "") + p)
        }
        self.patterns = kept
        self.compiled = compiled
    }

    /// True when `path` (relative to the context, `/`-separated) is excluded from the context.
    public func matches(_ path: String) -> Bool {
        if compiled.isEmpty { return false }   // no .dockerignore: nothing to clean or match
        let file = Self.cleanPath(path)
        if file == "." { return false }
        var parentDirs: [Substring] = []
        if let slash = file.lastIndex(of: "/") {
            parentDirs = file[..<slash].split(separator: "/", omittingEmptySubsequences: false)
        }
        var matched = false
        for pattern in compiled {
            if pattern.exclusion != matched { continue }
            var match = Self.match(pattern, file)
            if !match && !parentDirs.isEmpty {
                var prefix = ""
                for (i, dir) in parentDirs.enumerated() {
                    prefix += (i == 0 ? "" : "/") + dir
                    if Self.match(pattern, prefix) {
                        match = true
                        break
                    }
                }
            }
            if match { matched = !pattern.exclusion }
        }
        return matched
    }

    /// True when an exception (`!pattern`) could re-include something below the excluded
    /// directory `dir`: a walker must then descend into `dir` instead of pruning it
    /// (`*` then `!dist/app.jar` keeps `dist/app.jar`).
    public func mayIncludeBelow(_ dir: String) -> Bool {
        let dirParts = Self.cleanPath(dir).split(separator: "/").map(String.init)
        for p in patterns where p.hasPrefix("!") {
            let parts = p.dropFirst().split(separator: "/").map(String.init)
            var ok = true
            for (i, d) in dirParts.enumerated() {
                guard i < parts.count else { ok = false; break }
                if parts[i] == "**" { return true }
                if (try? Self.globMatch(parts[i], d)) != true { ok = false; break }
            }
            if ok && parts.count > dirParts.count { return true }
        }
        return false
    }

    /// True when some pattern is an exception (`!`): a walker may then not skip
    /// an excluded directory wholesale.
    public var hasExceptions: Bool { compiled.contains { $0.exclusion } }

    /// Finds and reads the ignore file for a build: `<Dockerfile>.dockerignore`
    /// beside the Dockerfile first, then `.dockerignore` at the context root.
    /// Returns nil when neither exists.
    public static func load(contextDirectory: String, dockerfilePath: String? = nil) throws -> DockerIgnore? {
        var candidates: [String] = []
        if let dockerfilePath { candidates.append(dockerfilePath + ".dockerignore") }
        candidates.append((contextDirectory as NSString).appendingPathComponent(".dockerignore"))
        for path in candidates {
            if let data = FileManager.default.contents(atPath: path) {
                return try DockerIgnore(contents: String(decoding: data, as: UTF8.self), fileName: path)
            }
        }
        return nil
    }

    /// Go's `filepath.Match` for one path: `*`, `?`, `[...]` and `\\` escapes, never
    /// crossing a `/` (no `**`). COPY and ADD expand source wildcards with it.
    /// - Throws: `DockerfileError` for a malformed pattern (`[a-`).
    public static func globMatch(_ pattern: String, _ name: String) throws -> Bool {
        guard validGlob(pattern) else {
            throw DockerfileError(file: "Dockerfile", position: nil, message: "syntax error in pattern: \(pattern)",
                                  hint: "check [ ] ranges and \\ escapes")
        }
        let compiled = compile(pattern, exclusion: false, doubleStar: false)
        return compiled.kind == .exact ? name == pattern : regexMatch(compiled.nodes, Array(name.unicodeScalars))
    }

    /// True when `path` holds a wildcard (`*`, `?`, `[`) that `globMatch` would expand.
    public static func containsWildcards(_ path: String) -> Bool {
        path.contains { $0 == "*" || $0 == "?" || $0 == "[" }
    }

    // MARK: internals

    /// Go's filepath.Clean for `/` paths.
    static func cleanPath(_ path: String) -> String {
        if path.isEmpty { return "." }
        // Already clean (the common case, a path a walk built): no empty, `.` or `..` component.
        if Self.isClean(path) { return path }
        let rooted = path.hasPrefix("/")
        var parts: [Substring] = []
        for comp in path.split(separator: "/", omittingEmptySubsequences: true) {
            if comp == "." { continue }
            if comp == ".." {
                if let last = parts.last, last != ".." {
                    parts.removeLast()
                } else if !rooted {
                    parts.append(comp)
                }
                continue
            }
            parts.append(comp)
        }
        let joined = parts.joined(separator: "/")
        if rooted { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }

    static func isClean(_ path: String) -> Bool {
        var prev: UInt8 = 47   // as if after a "/": a leading "/" is fine, "//" is not
        var dots = 0            // dots since the last "/", -1 once another byte came
        var first = true
        for c in path.utf8 {
            if c == 47 {
                if (prev == 47 && !first) || dots == 1 || dots == 2 { return false }
                dots = 0
            } else if c == 46 {
                if dots >= 0 { dots += 1 }
            } else {
                dots = -1
            }
            prev = c
            first = false
        }
        return prev != 47 && dots != 1 && dots != 2
    }

    /// filepath.Match's syntax check.
    static func validGlob(_ p: String) -> Bool {
        let s = Array(p.unicodeScalars)
        var i = 0
        while i < s.count {
            switch s[i] {
            case "\\":
                i += 1
                if i >= s.count { return false }
                i += 1
            case "[":
                i += 1
                if i < s.count && s[i] == "^" { i += 1 }
                var first = true
                while true {
                    guard i < s.count else { return false }
                    if s[i] == "]" && !first { i += 1; break }
                    first = false
                    // lo
                    if s[i] == "\\" { i += 1; guard i < s.count else { return false } }
                    else if s[i] == "-" || s[i] == "]" && !first { return false }
                    i += 1
                    if i < s.count && s[i] == "-" {
                        i += 1
                        guard i < s.count, s[i] != "]" else { return false }
                        if s[i] == "\\" { i += 1; guard i < s.count else { return false } }
                        i += 1
                    }
                }
            default:
                i += 1
            }
        }
        return true
    }

    static func compile(_ p: String, exclusion: Bool, doubleStar: Bool = true) -> Pattern {
        let s = Array(p.unicodeScalars)
        var nodes: [Pattern.Node] = []
        var kind = Pattern.Kind.exact
        var i = 0
        var iteration = 0
        while i < s.count {
            let ch = s[i]
            i += 1
            defer { iteration += 1 }
            if ch == "*" {
                if doubleStar && i < s.count && s[i] == "*" {
                    i += 1
                    if i < s.count && s[i] == "/" { i += 1 }
                    if i >= s.count {
                        if kind == .exact {
                            kind = .prefix
                        } else {
                            nodes.append(.anyStar)
                            kind = .regexp
                        }
                    } else {
                        nodes.append(.optionalDirs)
                        kind = .regexp
                    }
                    if iteration == 0 { kind = .suffix }
                } else {
                    nodes.append(.notSlashStar)
                    kind = .regexp
                }
            } else if ch == "?" {
                nodes.append(.notSlashOne)
                kind = .regexp
            } else if ch == "\\" {
                if i < s.count {
                    nodes.append(.literal(s[i]))
                    i += 1
                    kind = .regexp
                } else {
                    nodes.append(.literal("\\"))
                }
            } else if ch == "[" {
                kind = .regexp
                var negated = false
                if i < s.count && s[i] == "^" { negated = true; i += 1 }
                var ranges: [ClosedRange<UInt32>] = []
                var first = true
                while i < s.count && (s[i] != "]" || first) {
                    first = false
                    var lo = s[i]
                    if lo == "\\" && i + 1 < s.count { i += 1; lo = s[i] }
                    i += 1
                    var hi = lo
                    if i + 1 < s.count && s[i] == "-" && s[i + 1] != "]" {
                        i += 1
                        hi = s[i]
                        if hi == "\\" && i + 1 < s.count { i += 1; hi = s[i] }
                        i += 1
                    }
                    if lo.value <= hi.value { ranges.append(lo.value...hi.value) }
                }
                if i < s.count { i += 1 }  // ]
                nodes.append(.set(ranges, negated: negated))
            } else {
                nodes.append(.literal(ch))
            }
        }
        let dirs = p.split(separator: "/", omittingEmptySubsequences: false).count
        return Pattern(text: p, exclusion: exclusion, dirs: dirs, kind: kind, nodes: nodes)
    }

    static func match(_ p: Pattern, _ path: String) -> Bool {
        switch p.kind {
        case .exact:
            return path == p.text
        case .prefix:
            return path.hasPrefix(String(p.text.dropLast(2)))
        case .suffix:
            let suffix = String(p.text.dropFirst(2))
            if path.hasSuffix(suffix) { return true }
            return suffix.hasPrefix("/") && path == String(suffix.dropFirst())
        case .regexp:
            return regexMatch(p.nodes, Array(path.unicodeScalars))
        }
    }

    static func regexMatch(_ nodes: [Pattern.Node], _ v: [Unicode.Scalar]) -> Bool {
        let width = v.count + 1
        var failed = [Bool](repeating: false, count: (nodes.count + 1) * width)
        func go(_ n: Int, _ i: Int) -> Bool {
            if n == nodes.count { return i == v.count }
            if failed[n * width + i] { return false }
            var ok = false
            switch nodes[n] {
            case .literal(let c):
                ok = i < v.count && v[i] == c && go(n + 1, i + 1)
            case .notSlashOne:
                ok = i < v.count && v[i] != "/" && go(n + 1, i + 1)
            case .notSlashStar:
                var k = i
                while true {
                    if go(n + 1, k) { ok = true; break }
                    if k < v.count && v[k] != "/" { k += 1 } else { break }
                }
            case .anyStar:
                var k = i
                while true {
                    if go(n + 1, k) { ok = true; break }
                    if k < v.count && v[k] != "\n" { k += 1 } else { break }
                }
            case .optionalDirs:
                if go(n + 1, i) {
                    ok = true
                } else {
                    var k = i
                    while k < v.count && v[k] != "\n" {
                        if v[k] == "/" && go(n + 1, k + 1) { ok = true; break }
                        k += 1
                    }
                }
            case .set(let ranges, let negated):
                if i < v.count {
                    let inSet = ranges.contains { $0.contains(v[i].value) }
                    ok = inSet != negated && go(n + 1, i + 1)
                }
            }
            if !ok { failed[n * width + i] = true }
            return ok
        }
        return go(0, 0)
    }
}
