import Foundation
import Yams

/// A compose file as read, before it is typed: scalars stay text (YAML 1.1 would read
/// `8080:80` as a number, compose means a string), mappings keep their order, and every node
/// keeps where it came from so that errors can name the file and line.
indirect enum YNode: Sendable {
    case scalar(String, SourceMark)
    case null(SourceMark)
    case seq([YNode], SourceMark)
    case map([(key: String, value: YNode)], SourceMark)

    var mark: SourceMark {
        switch self {
        case let .scalar(_, m), let .null(m), let .seq(_, m), let .map(_, m): return m
        }
    }

    /// The value of `key` in a mapping.
    subscript(key: String) -> YNode? {
        guard case let .map(pairs, _) = self else { return nil }
        return pairs.last { $0.key == key }?.value
    }

    var kind: String {
        switch self {
        case .scalar: return "a string"
        case .null: return "null"
        case .seq: return "a list"
        case .map: return "a mapping"
        }
    }

    /// Parses YAML text; errors name the file, line and column.
    static func parse(_ text: String, file: String) throws -> YNode {
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch let e as YamlError {
            throw ComposeError.invalidFile("\(file): invalid YAML: \(describe(e)); fix the file's syntax")
        }
        guard let node else { return .null(SourceMark(file: file, line: 1)) }
        return try convert(node, file: file)
    }

    static func describe(_ e: YamlError) -> String {
        switch e {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            let ctx = context.map { "\($0.text) " } ?? ""
            return "line \(mark.line) column \(mark.column): \(ctx)\(problem)"
        case let .reader(problem, _, _, _): return problem
        default: return "\(e)"
        }
    }

    private static func convert(_ n: Node, file: String) throws -> YNode {
        let mark = SourceMark(file: file, line: n.mark?.line ?? 0)
        switch n {
        case let .scalar(s):
            if s.style == .plain, ["", "~", "null", "Null", "NULL"].contains(s.string) { return .null(mark) }
            return .scalar(s.string, mark)
        case let .sequence(s):
            return .seq(try s.map { try convert($0, file: file) }, mark)
        case let .mapping(m):
            var pairs: [(key: String, value: YNode)] = []
            var merged: [(key: String, value: YNode)] = []
            for (k, v) in m {
                guard case let .scalar(ks) = k else {
                    throw ComposeError.invalidFile("\(mark): a mapping key must be a string")
                }
                let value = try convert(v, file: file)
                if ks.string == "<<" {
                    // YAML merge keys: the referenced mappings' keys, under the explicit ones
                    let sources: [YNode]
                    if case let .seq(items, _) = value { sources = items } else { sources = [value] }
                    for s in sources {
                        guard case let .map(p, _) = s else {
                            throw ComposeError.invalidFile("\(value.mark): `<<` merges mappings only, not \(s.kind)")
                        }
                        merged += p
                    }
                    continue
                }
                if pairs.contains(where: { $0.key == ks.string }) {
                    throw ComposeError.invalidFile("\(SourceMark(file: file, line: k.mark?.line ?? 0)): key \"\(ks.string)\" is given twice; keep one")
                }
                pairs.append((ks.string, value))
            }
            for p in merged where !pairs.contains(where: { $0.key == p.key }) { pairs.append(p) }
            return .map(pairs, mark)
        }
    }

    /// Replaces every scalar through `f` (interpolation); keys are left as they are.
    func mapScalars(_ f: (String, SourceMark) throws -> String) rethrows -> YNode {
        switch self {
        case let .scalar(s, m): return .scalar(try f(s, m), m)
        case .null: return self
        case let .seq(items, m): return .seq(try items.map { try $0.mapScalars(f) }, m)
        case let .map(pairs, m): return .map(try pairs.map { ($0.key, try $0.value.mapScalars(f)) }, m)
        }
    }
}
