/// The few DNS messages the embedded resolver reads and writes (RFC 1035 section 4): a query's
/// header and single question, and a response of A (or PTR) records to it. Everything read
/// comes from a container, so every read is bounds-checked and a malformed message is `nil`,
/// never a trap.
enum DNSMessage {
    static let typeA: UInt16 = 1
    static let typePTR: UInt16 = 12
    static let typeAAAA: UInt16 = 28
    static let typeANY: UInt16 = 255
    static let classIN: UInt16 = 1

    /// Response codes (RFC 1035 4.1.1).
    enum RCode: UInt8 { case noError = 0, formErr = 1, servFail = 2, nxDomain = 3, notImp = 4, refused = 5 }

    /// Longest name on the wire (RFC 1035 3.1), and the most compression pointers followed in
    /// one name (more is a loop or an attack).
    static let maxNameLength = 255
    static let maxPointers = 16

    /// A query: its id and flags, and its question.
    struct Query: Equatable {
        var id: UInt16
        /// The header's second 16 bits (QR, opcode, AA, TC, RD, RA, Z, RCODE).
        var flags: UInt16
        /// The question's labels, as sent (case kept: a response repeats them).
        var labels: [[UInt8]]
        var type: UInt16
        var qclass: UInt16

        var opcode: UInt8 { UInt8(flags >> 11 & 0xf) }
        var recursionDesired: Bool { flags & 0x0100 != 0 }

        /// The name in lower case, without a trailing dot; nil when a label holds a byte that no
        /// container name or alias has (a dot, a space, a non-ASCII byte...).
        var name: String? {
            var parts: [String] = []
            for label in labels {
                guard label.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a)
                    || $0 == 0x2d || $0 == 0x5f }) else { return nil }
                parts.append(String(decoding: label, as: UTF8.self).lowercased())
            }
            return parts.joined(separator: ".")
        }
    }

    /// The id of a message of at least a header's length (to answer FORMERR to), else nil.
    static func id(_ b: [UInt8]) -> UInt16? { b.count >= 12 ? UInt16(b[0]) << 8 | UInt16(b[1]) : nil }

    /// Reads a query (QR clear, exactly one question); nil for anything else or anything
    /// malformed. Records after the question (EDNS) are not read.
    static func parseQuery(_ b: [UInt8]) -> Query? {
        guard b.count >= 12, b.count <= 65535 else { return nil }
        let flags = UInt16(b[2]) << 8 | UInt16(b[3])
        guard flags & 0x8000 == 0 else { return nil }   // a response, not a query
        let qdcount = UInt16(b[4]) << 8 | UInt16(b[5])
        guard qdcount == 1, let (labels, next) = readName(b, at: 12), next + 4 <= b.count else { return nil }
        let type = UInt16(b[next]) << 8 | UInt16(b[next + 1])
        let qclass = UInt16(b[next + 2]) << 8 | UInt16(b[next + 3])
        return Query(id: UInt16(b[0]) << 8 | UInt16(b[1]), flags: flags, labels: labels, type: type, qclass: qclass)
    }

    /// Reads the name at `start`: its labels, and the offset after it (after the first pointer
    /// when it is compressed). Pointers must point backwards, at most `maxPointers` of them, and
    /// the name is at most `maxNameLength` bytes: a loop or an endless name is nil.
    static func readName(_ b: [UInt8], at start: Int) -> (labels: [[UInt8]], next: Int)? {
        var labels: [[UInt8]] = []
        var pos = start
        var next: Int?
        var jumps = 0
        var length = 1   // the root label's zero byte
        while true {
            guard pos >= 0, pos < b.count else { return nil }
            let len = Int(b[pos])
            switch len & 0xc0 {
            case 0:
                if len == 0 { return (labels, next ?? pos + 1) }
                guard pos + 1 + len <= b.count else { return nil }
                length += len + 1
                guard length <= maxNameLength else { return nil }
                labels.append(Array(b[(pos + 1)..<(pos + 1 + len)]))
                pos += 1 + len
            case 0xc0:
                guard pos + 1 < b.count else { return nil }
                let target = (len & 0x3f) << 8 | Int(b[pos + 1])
                jumps += 1
                guard jumps <= maxPointers, target < pos else { return nil }
                if next == nil { next = pos + 2 }
                pos = target
            default:
                return nil   // 0x40 and 0x80: extended label types, not used
            }
        }
    }

    /// Encodes `labels` uncompressed (nil when too long).
    static func encodeName(_ labels: [[UInt8]]) -> [UInt8]? {
        var out: [UInt8] = []
        for l in labels {
            guard !l.isEmpty, l.count <= 63 else { return nil }
            out.append(UInt8(l.count))
            out += l
        }
        out.append(0)
        return out.count <= maxNameLength ? out : nil
    }

    /// The labels of a dotted name ("web.local" -> ["web", "local"]).
    static func labels(_ name: String) -> [[UInt8]] {
        name.split(separator: ".").map { Array($0.utf8) }
    }

    /// A response to `q`: its question repeated, then `answers` (each an A record's 4 address
    /// bytes, or a PTR record's name when `type` is PTR), TTL `ttl`. Records that would make
    /// the message longer than `maxSize` are left out (the first ones are kept).
    static func response(to q: Query, rcode: RCode, answers: [[UInt8]] = [], type: UInt16 = typeA,
                         ttl: UInt32 = 600, maxSize: Int = 512) -> [UInt8] {
        // QR, the query's opcode and RD, RA; AA for the names it knows
        var flags: UInt16 = 0x8000 | (q.flags & 0x7900) | 0x0080 | UInt16(rcode.rawValue)
        if rcode == .noError || rcode == .nxDomain { flags |= 0x0400 }
        var out: [UInt8] = [UInt8(q.id >> 8), UInt8(q.id & 0xff), UInt8(flags >> 8), UInt8(flags & 0xff)]
        guard let qname = encodeName(q.labels) else {
            // (a parsed question always encodes; an empty response if not)
            return out + [0, 0, 0, 0, 0, 0, 0, 0]
        }
        var body = qname + [UInt8(q.type >> 8), UInt8(q.type & 0xff), UInt8(q.qclass >> 8), UInt8(q.qclass & 0xff)]
        var count: UInt16 = 0
        for a in answers {
            // the owner name: a pointer to the question's (offset 12)
            var rr: [UInt8] = [0xc0, 12, UInt8(type >> 8), UInt8(type & 0xff), 0, 1]
            rr += [UInt8(ttl >> 24), UInt8(ttl >> 16 & 0xff), UInt8(ttl >> 8 & 0xff), UInt8(ttl & 0xff)]
            rr += [UInt8(a.count >> 8 & 0xff), UInt8(a.count & 0xff)] + a
            guard 12 + body.count + rr.count <= maxSize, count < UInt16.max else { break }
            body += rr
            count += 1
        }
        out += [0, 1, UInt8(count >> 8), UInt8(count & 0xff), 0, 0, 0, 0]
        return out + body
    }

    /// A header-only error response (FORMERR, NOTIMP) to a message whose question could not be
    /// read, with the id of `b`.
    static func headerOnly(_ b: [UInt8], rcode: RCode) -> [UInt8]? {
        guard let id = id(b) else { return nil }
        let flags = UInt16(b[2]) << 8 | UInt16(b[3])
        guard flags & 0x8000 == 0 else { return nil }   // never answer a response
        let out = 0x8000 | (flags & 0x7900) | 0x0080 | UInt16(rcode.rawValue)
        return [UInt8(id >> 8), UInt8(id & 0xff), UInt8(out >> 8), UInt8(out & 0xff), 0, 0, 0, 0, 0, 0, 0, 0]
    }

    /// The IPv4 address of a reverse name (`4.3.2.1.in-addr.arpa` -> "1.2.3.4"), else nil.
    static func reverseIPv4(_ name: String) -> String? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 6, parts[4] == "in-addr", parts[5] == "arpa",
              parts.prefix(4).allSatisfy({ UInt8($0) != nil && ($0 == "0" || !$0.hasPrefix("0")) }) else { return nil }
        return parts.prefix(4).reversed().joined(separator: ".")
    }
}
