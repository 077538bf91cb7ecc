import Foundation
import Testing
@testable import ImageStore

/// Issue #19: the event log's line is written by hand; it is the JSON document JSONSerialization
/// wrote (the same bytes for the events the commands record, the same value for any text).
@Suite struct EventLineTests {
    static func serialized(_ e: StoreEvent) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: e.document, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
    }

    @Test func sameBytesAsJSONSerializationForTheUsualEvents() throws {
        let events = [
            StoreEvent(type: "container", action: "create", id: String(repeating: "ab", count: 32),
                       attributes: ["image": "bench/img:1", "name": "calm_turing", "com.example.label": "v/1"], timeNano: 1_733_433_600_123_456_789),
            StoreEvent(type: "container", action: "die", id: "c1", attributes: ["exitCode": "0", "image": "busybox:test", "name": "x"]),
            StoreEvent(type: "image", action: "tag", id: "sha256:0123", attributes: ["name": "docker.io/library/busybox:latest"]),
            StoreEvent(type: "volume", action: "create", id: "data", attributes: ["driver": "local"]),
            StoreEvent(type: "network", action: "connect", id: "n1"),
            StoreEvent(type: "container", action: "start", id: "c2", attributes: ["Zeta": "1", "alpha": "2", "Beta": "3", "image": "i", "com.docker.compose.project": "p"]),
        ]
        for e in events { let theirs = try Self.serialized(e); #expect(e.jsonLine == theirs) }
    }

    @Test func anyTextIsTheSameValue() throws {
        let odd = "q\"b\\s/\n\r\t\u{08}\u{0C}\u{01}\u{1F} é ✓ 😀"
        let e = StoreEvent(type: "container", action: "start", id: odd, attributes: [odd: odd, "Z": "1", "a": "", "é": "x"], timeNano: 5)
        let mine = try #require(try JSONSerialization.jsonObject(with: Data(e.jsonLine.utf8)) as? NSDictionary)
        let theirs = try #require(try JSONSerialization.jsonObject(with: Data(try Self.serialized(e).utf8)) as? NSDictionary)
        #expect(mine == theirs)
        #expect(StoreEvent(document: mine as? [String: Any] ?? [:]) == e)
    }
}
