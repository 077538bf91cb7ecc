// Canonical JSON for the documents dockbuild writes: the same value always gives the same
// bytes, so the same image always has the same digest.
import Foundation

/// Encoding with sorted keys, no insignificant whitespace and no escaping of '/'.
public enum CanonicalJSON {
    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try e.encode(value)
    }

    /// Pretty form for people (`inspect`): sorted keys, 4-space indents like docker's output.
    public static func encodePretty<T: Encodable>(_ value: T) throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
        return try e.encode(value)
    }

    /// Decodes `T`, turning Foundation's decoding errors into an `OCIError` that names the
    /// document and the JSON path of the problem.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let e as OCIError {
            throw e
        } catch let e as DecodingError {
            throw OCIError.invalidDocument("\(what): \(describe(e))")
        } catch {
            throw OCIError.invalidDocument("\(what): \(error)")
        }
    }

    static func describe(_ e: DecodingError) -> String {
        func path(_ p: [any CodingKey]) -> String {
            p.isEmpty ? "top level" : p.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch e {
        case let .typeMismatch(t, c): return "at \(path(c.codingPath)): expected \(t)"
        case let .valueNotFound(t, c): return "at \(path(c.codingPath)): missing \(t) value"
        case let .keyNotFound(k, c): return "at \(path(c.codingPath)): missing required field \"\(k.stringValue)\""
        case let .dataCorrupted(c):
            if let u = c.underlyingError as? OCIError { return "at \(path(c.codingPath)): \(u)" }
            return "at \(path(c.codingPath)): \(c.debugDescription)"
        @unknown default: return "\(e)"
        }
    }
}
