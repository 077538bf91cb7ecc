import Foundation

/// One parsed HTTP/1.1 request head plus a handle on its body, which streams from the socket.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The request target's path, percent-decoded.
    public var path: String
    /// The raw query string (without `?`), empty when absent.
    public var rawQuery: String
    public var version: String
    /// Header fields in arrival order; names keep their case, lookups ignore it.
    public var headers: [(name: String, value: String)]
    public var body: HTTPRequestBody

    /// First value of a header, compared case-insensitively.
    public func header(_ name: String) -> String? {
        for h in headers where h.name.equalsHeaderName(name) { return h.value }
        return nil
    }

    /// Query parameters, percent-decoded; a repeated key keeps its first value.
    public var query: [String: String] {
        var out: [String: String] = [:]
        guard !rawQuery.isEmpty else { return out }
        for pair in rawQuery.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = HTTPRequest.formDecode(String(parts[0]))
            let value = parts.count > 1 ? HTTPRequest.formDecode(String(parts[1])) : ""
            if out[key] == nil { out[key] = value }
        }
        return out
    }

    /// All values of a query parameter, in order.
    public func queryValues(_ key: String) -> [String] {
        rawQuery.split(separator: "&").compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard HTTPRequest.formDecode(String(parts[0])) == key else { return nil }
            return parts.count > 1 ? HTTPRequest.formDecode(String(parts[1])) : ""
        }
    }

    static func formDecode(_ s: String) -> String {
        let plus = s.replacingOccurrences(of: "+", with: " ")
        return plus.removingPercentEncoding ?? plus
    }

    /// Whether the connection may stay open after this exchange.
    var keepAlive: Bool {
        let conn = header("Connection")?.lowercased() ?? ""
        if version == "HTTP/1.0" { return conn.contains("keep-alive") }
        return !conn.contains("close")
    }
}
