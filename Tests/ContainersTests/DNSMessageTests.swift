import Foundation
import Testing
@testable import Containers

/// The embedded DNS server's message reader and writer (issue #24), with what a hostile
/// container may send: truncated messages, compression pointer loops, endless names.
@Suite struct DNSMessageTests {
    /// A query for `name` of `type`, id 0x1234, RD set.
    static func query(_ name: String, type: UInt16 = 1) -> [UInt8] {
        var b: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for l in name.split(separator: ".") { b.append(UInt8(l.utf8.count)); b += Array(l.utf8) }
        return b + [0, UInt8(type >> 8), UInt8(type & 0xff), 0, 1]
    }

    @Test func readsAQueryAndAnswersItWithARecords() throws {
        let q = try #require(DNSMessage.parseQuery(Self.query("Web.Local")))
        #expect(q.id == 0x1234 && q.type == 1 && q.qclass == 1 && q.recursionDesired)
        #expect(q.name == "web.local")
        let r = DNSMessage.response(to: q, rcode: .noError, answers: [[10, 90, 0, 2], [10, 90, 0, 3]])
        // header: same id, QR AA RD RA, one question, two answers
        #expect(Array(r[0..<12]) == [0x12, 0x34, 0x85, 0x80, 0, 1, 0, 2, 0, 0, 0, 0])
        // the question as asked (case kept), then two A records pointing at it
        let question = Array(Self.query("Web.Local")[12...])
        #expect(Array(r[12..<(12 + question.count)]) == question)
        let rr = Array(r[(12 + question.count)...])
        #expect(rr.count == 32)
        #expect(Array(rr[0..<16]) == [0xc0, 12, 0, 1, 0, 1, 0, 0, 2, 0x58, 0, 4, 10, 90, 0, 2])
        #expect(Array(rr[28..<32]) == [10, 90, 0, 3])
        // and a reader of responses reads the name back through the pointer
        let (labels, next) = try #require(DNSMessage.readName(r, at: 12 + question.count))
        #expect(labels.map { String(decoding: $0, as: UTF8.self) } == ["Web", "Local"] && next == 12 + question.count + 2)
    }

    @Test func answersAreCappedToTheMessageSize() throws {
        let q = try #require(DNSMessage.parseQuery(Self.query("many")))
        let addresses = (0..<200).map { [10, 0, 0, UInt8($0)] }
        let r = DNSMessage.response(to: q, rcode: .noError, answers: addresses)
        #expect(r.count <= 512)
        let count = Int(r[6]) << 8 | Int(r[7])
        #expect(count == (512 - 12 - 10) / 16)
        #expect(DNSMessage.response(to: q, rcode: .noError, answers: addresses, maxSize: 65535).count == 12 + 10 + 200 * 16)
    }

    @Test func truncatedAndMalformedMessagesAreRefused() {
        let good = Self.query("db")
        // every truncation of a good query
        for n in 0..<good.count { #expect(DNSMessage.parseQuery(Array(good[0..<n])) == nil, "\(n) bytes") }
        #expect(DNSMessage.parseQuery(good) != nil)
        // a response, two questions, a label running past the end, a reserved label type
        var response = good; response[2] |= 0x80
        var two = good; two[5] = 2
        var long = good; long[12] = 60
        var reserved = good; reserved[12] = 0x42
        for b in [response, two, long, reserved] { #expect(DNSMessage.parseQuery(b) == nil) }
        // a FORMERR header answers what has a header (never a response)
        #expect(DNSMessage.headerOnly(Array(good[0..<12]), rcode: .formErr)?[3] == 0x81)
        #expect(DNSMessage.headerOnly(response, rcode: .formErr) == nil)
        #expect(DNSMessage.headerOnly([1, 2, 3], rcode: .formErr) == nil)
        // random bytes never trap (a fixed seed: a failure reproduces)
        var rng = SplitMix(state: 24)
        for _ in 0..<2000 {
            var b = (0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if b.count > 5 { b[2] &= 0x7f; b[4] = 0; b[5] = 1 }
            _ = DNSMessage.parseQuery(b)
        }
    }

    @Test func compressionPointerLoopsAndForwardPointersAreRefused() {
        let header: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        // a pointer to itself, a pointer forward, two pointers to each other
        let selfLoop = header + [0xc0, 12, 0, 1, 0, 1]
        let forward = header + [0xc0, 14, 1, 0x61, 0, 0, 1, 0, 1]
        let pair = header + [1, 0x61, 0xc0, 16, 0xc0, 12, 0, 1, 0, 1]
        for b in [selfLoop, forward, pair] { #expect(DNSMessage.parseQuery(b) == nil) }
        // a pointer backwards is read (from the header bytes here: a label of length 0 ends it)
        #expect(DNSMessage.readName(header + [0xc0, 2], at: 12)?.labels == [])
        // a long chain of backward pointers stops at maxPointers
        var chain: [UInt8] = header + [1, 0x61, 0]
        for i in 0..<40 { chain += [0xc0, UInt8(12 + (i == 0 ? 0 : 3 + 2 * (i - 1)))] }
        #expect(DNSMessage.readName(chain, at: chain.count - 2) == nil)
        #expect(DNSMessage.readName(chain, at: 15)?.labels == [[0x61]])
    }

    @Test func oversizeNamesAreRefused() {
        // 5 labels of 63: 321 bytes, over 255
        let big = (0..<5).map { _ in String(repeating: "a", count: 63) }.joined(separator: ".")
        #expect(DNSMessage.parseQuery(Self.query(big)) == nil)
        let fits = (0..<3).map { _ in String(repeating: "a", count: 63) }.joined(separator: ".") + "." + String(repeating: "b", count: 61)
        #expect(DNSMessage.parseQuery(Self.query(fits))?.labels.count == 4)
        #expect(DNSMessage.encodeName([Array(repeating: 0x61, count: 64)]) == nil)
        // names with bytes no container name has match nothing
        #expect(DNSMessage.Query(id: 0, flags: 0, labels: [Array("a b".utf8)], type: 1, qclass: 1).name == nil)
        #expect(DNSMessage.Query(id: 0, flags: 0, labels: [Array("a.b".utf8)], type: 1, qclass: 1).name == nil)
    }

    @Test func tableUpstreamsAndReverseNames() {
        let t = EmbeddedDNS.table(["web:10.90.0.2", "Web:10.90.0.3", "web:10.90.0.2", "db:bad", "x"])
        #expect(t.addresses["web"] == [[10, 90, 0, 2], [10, 90, 0, 3]] && t.addresses["db"] == nil && t.addresses.count == 1)
        #expect(t.owners == [[10, 90, 0, 2]: "web", [10, 90, 0, 3]: "web"])
        #expect(EmbeddedDNS.parseUpstream("10.0.0.1") == .init(ip: "10.0.0.1", port: 53))
        #expect(EmbeddedDNS.parseUpstream("127.0.0.1:5353") == .init(ip: "127.0.0.1", port: 5353))
        #expect(EmbeddedDNS.parseUpstream("[::1]:54") == .init(ip: "::1", port: 54))
        #expect(EmbeddedDNS.parseUpstream("2001:db8::1") == .init(ip: "2001:db8::1", port: 53))
        for bad in ["dns.google", "1.2.3.4:0", "1.2.3.4:x", "[::1]x", ""] { #expect(EmbeddedDNS.parseUpstream(bad) == nil, "\(bad)") }
        #expect(EmbeddedDNS.upstreams(dns: [], environment: ["DOCKBUILD_DNS_UPSTREAM": "127.0.0.1:1, 10.0.0.1"]).map(\.description)
                == ["127.0.0.1:1", "10.0.0.1:53"])
        #expect(EmbeddedDNS.upstreams(dns: ["9.9.9.9"], environment: ["DOCKBUILD_DNS_UPSTREAM": ""]).map(\.description) == ["9.9.9.9:53"])
        #expect(EmbeddedDNS.upstreams(dns: [], environment: ["DOCKBUILD_DNS_UPSTREAM": ""]).isEmpty)
        #expect(DNSMessage.reverseIPv4("2.0.90.10.in-addr.arpa") == "10.90.0.2")
        #expect(DNSMessage.reverseIPv4("2.0.90.in-addr.arpa") == nil && DNSMessage.reverseIPv4("02.0.90.10.in-addr.arpa") == nil)
        #expect(EtcFiles.embeddedResolvConf(host: "nameserver 10.0.0.1\nsearch corp\noptions edns0\n", search: [], options: [])
                == "search corp\nnameserver 127.0.0.11\noptions ndots:0 edns0\n")
        #expect(EtcFiles.embeddedResolvConf(host: "search corp\n", search: ["."], options: ["ndots:2"]) == "nameserver 127.0.0.11\noptions ndots:2\n")
    }

    /// SplitMix64, seeded.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
