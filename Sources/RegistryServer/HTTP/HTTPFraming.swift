import Foundation

/// Limits on what one request head may hold. Anything past them is refused before a handler
/// runs, so a client cannot make the server buffer or scan without bound.
struct HTTPHeadLimits: Sendable {
    /// Longest request line (method, target, version); longer is 414 URI Too Long.
    var requestLine = 8 * 1024
    /// Longest single header field line; longer is 431.
    var fieldLine = 16 * 1024
    /// All field lines together; more is 431.
    var totalBytes = 64 * 1024
    /// Number of header fields; more is 431.
    var fieldCount = 100
    /// Empty lines tolerated before a request line (RFC 9112 section 2.2).
    var leadingEmptyLines = 4
}

/// The request head as it arrived, already checked against RFC 9112's grammar.
struct HTTPRequestHead {
    var method: String
    var target: String
    var version: String
    var headers: [(name: String, value: String)]
}

/// How the request body is delimited (RFC 9112 section 6.3).
struct HTTPBodyFraming: Equatable {
    /// The declared length; nil for chunked or absent bodies.
    var contentLength: Int64?
    var chunked: Bool
}

/// The strict parts of RFC 9112 that keep two parsers from disagreeing about where a request
/// ends (request smuggling): every rule here refuses instead of guessing.
enum HTTPFraming {
    /// `tchar` of RFC 9110 section 5.6.2.
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x61...0x7A, 0x41...0x5A:  // DIGIT, ALPHA
            return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E:  // !#$%&'*+-.^_`|~
            return true
        default:
            return false
        }
    }

    static func isToken<S: Sequence>(_ bytes: S) -> Bool where S.Element == UInt8 {
        var any = false
        for b in bytes {
            guard isTokenByte(b) else { return false }
            any = true
        }
        return any
    }

    /// Parses `method SP request-target SP HTTP-version` (RFC 9112 section 3).
    static func parseRequestLine(_ line: [UInt8]) throws -> (method: String, target: String, version: String) {
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw HTTPError.rejected(status: 400, reason: "the request line must be METHOD SP TARGET SP HTTP/1.1 with single spaces")
        }
        guard isToken(parts[0]) else { throw HTTPError.rejected(status: 400, reason: "the method is not a token") }
        let target = parts[1]
        guard !target.isEmpty, target.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
            throw HTTPError.rejected(status: 400, reason: "the request target is empty or holds control characters")
        }
        let method = String(decoding: parts[0], as: UTF8.self)
        let targetText = String(decoding: target, as: UTF8.self)
        let lower = targetText.lowercased()
        guard targetText.hasPrefix("/") || lower.hasPrefix("http://") || lower.hasPrefix("https://")
                || (targetText == "*" && method == "OPTIONS") else {
            throw HTTPError.rejected(status: 400, reason: "the request target must be an absolute path such as /v2/")
        }
        let v = Array(parts[2])
        guard v.count == 8, Array(v[0..<5]) == Array("HTTP/".utf8), v[6] == UInt8(ascii: "."),
              (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(v[5]), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(v[7]) else {
            throw HTTPError.rejected(status: 400, reason: "the HTTP version must be HTTP/1.1 or HTTP/1.0")
        }
        guard v[5] == UInt8(ascii: "1") else {
            throw HTTPError.rejected(status: 505, reason: "only HTTP/1.x is served; use HTTP/1.1")
        }
        return (method, targetText, String(decoding: v, as: UTF8.self))
    }

    /// Parses one `field-name ":" OWS field-value OWS` line (RFC 9112 section 5). Refuses
    /// obs-fold continuations, whitespace before the colon, and control characters.
    static func parseFieldLine(_ line: [UInt8]) throws -> (name: String, value: String) {
        if let first = line.first, first == 0x20 || first == 0x09 {
            throw HTTPError.rejected(status: 400, reason: "a header line starts with whitespace (obs-fold continuation lines are not accepted)")
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            throw HTTPError.rejected(status: 400, reason: "a header line has no ':'")
        }
        let name = line[..<colon]
        if let last = name.last, last == 0x20 || last == 0x09 {
            throw HTTPError.rejected(status: 400, reason: "whitespace between a header name and ':'")
        }
        guard isToken(name) else { throw HTTPError.rejected(status: 400, reason: "a header name is empty or not a token") }
        var value = line[(colon + 1)...]
        while let f = value.first, f == 0x20 || f == 0x09 { value = value.dropFirst() }
        while let l = value.last, l == 0x20 || l == 0x09 { value = value.dropLast() }
        guard value.allSatisfy({ $0 >= 0x20 && $0 != 0x7F || $0 == 0x09 }) else {
            throw HTTPError.rejected(status: 400, reason: "a header value holds control characters")
        }
        return (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
    }

    /// Decides how the body is delimited from the header fields, or refuses when the fields
    /// could be read in two ways: both Content-Length and Transfer-Encoding, differing or
    /// non-numeric lengths, codings other than one final `chunked` (RFC 9112 sections 6.1, 6.3).
    static func bodyFraming(_ headers: [(name: String, value: String)], version: String) throws -> HTTPBodyFraming {
        var lengths: [String] = []
        var codings: [String] = []
        var hosts = 0
        for h in headers {
            if h.name.equalsHeaderName("Content-Length") {
                lengths.append(h.value)
            } else if h.name.equalsHeaderName("Transfer-Encoding") {
                for c in h.value.split(separator: ",", omittingEmptySubsequences: false) {
                    codings.append(c.trimmingCharacters(in: CharacterSet(charactersIn: " \t")).lowercased())
                }
            } else if h.name.equalsHeaderName("Host") {
                hosts += 1
            }
        }
        if hosts > 1 { throw HTTPError.rejected(status: 400, reason: "more than one Host header") }
        if hosts == 0 && version != "HTTP/1.0" { throw HTTPError.rejected(status: 400, reason: "an HTTP/1.1 request needs a Host header") }
        if !codings.isEmpty {
            if !lengths.isEmpty {
                throw HTTPError.rejected(status: 400, reason: "both Content-Length and Transfer-Encoding; send only one")
            }
            if version == "HTTP/1.0" {
                throw HTTPError.rejected(status: 400, reason: "Transfer-Encoding in an HTTP/1.0 request")
            }
            if codings.contains("") { throw HTTPError.rejected(status: 400, reason: "an empty Transfer-Encoding element") }
            guard codings.last == "chunked" else {
                throw HTTPError.rejected(status: 400, reason: "Transfer-Encoding must end with chunked")
            }
            guard codings.count == 1 else {
                if codings.filter({ $0 == "chunked" }).count > 1 {
                    throw HTTPError.rejected(status: 400, reason: "chunked applied more than once")
                }
                throw HTTPError.rejected(status: 501, reason: "transfer coding \(codings.dropLast().joined(separator: ", ")) is not implemented; send the body with chunked alone or Content-Length")
            }
            return HTTPBodyFraming(contentLength: nil, chunked: true)
        }
        var length: Int64?
        for text in lengths {
            // 1*DIGIT, no sign, no list; 18 digits always fit in Int64.
            guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let n = Int64(text) else {
                throw HTTPError.rejected(status: 400, reason: "Content-Length \"\(text.prefix(40))\" is not a non-negative decimal number")
            }
            if let l = length, l != n { throw HTTPError.rejected(status: 400, reason: "Content-Length given twice with different values") }
            length = n
        }
        return HTTPBodyFraming(contentLength: length, chunked: false)
    }

    /// Parses a chunk-size line `1*HEXDIG [ chunk-ext ]` (RFC 9112 section 7.1); the size must
    /// fit in 15 hex digits (under 2^60), so it never overflows.
    static func chunkSize(_ line: [UInt8]) throws -> Int64 {
        var size: Int64 = 0
        var digits = 0
        var i = 0
        while i < line.count, let v = hexValue(line[i]) {
            digits += 1
            guard digits <= 15 else { throw HTTPError.rejected(status: 400, reason: "chunk size too large") }
            size = size << 4 | Int64(v)
            i += 1
        }
        guard digits > 0 else { throw HTTPError.rejected(status: 400, reason: "a chunk size is not hexadecimal") }
        var rest = line[i...]
        while let f = rest.first, f == 0x20 || f == 0x09 { rest = rest.dropFirst() }
        guard rest.isEmpty || rest.first == UInt8(ascii: ";") else {
            throw HTTPError.rejected(status: 400, reason: "a chunk size is followed by something other than an extension")
        }
        guard rest.allSatisfy({ $0 >= 0x20 && $0 != 0x7F || $0 == 0x09 }) else {
            throw HTTPError.rejected(status: 400, reason: "a chunk extension holds control characters")
        }
        return size
    }

    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
