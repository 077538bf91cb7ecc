import Foundation
import Testing
@testable import RegistryServer

/// The RFC 9112 rules of `HTTPFraming` one by one; the attacks over real sockets are in
/// Tests/SecurityTests/RegistryServerHTTPTests.swift.
@Suite("HTTP/1.1 framing rules")
struct HTTPFramingTests {
    static func status(_ body: () throws -> Void) -> Int? {
        do { try body(); return nil } catch HTTPError.rejected(let s, _) { return s } catch { return -1 }
    }

    enum Outcome: Equatable {
        case success(HTTPBodyFraming)
        case failure(Int)
    }

    static func framing(_ fields: [(String, String)], version: String = "HTTP/1.1") -> Outcome {
        do {
            return .success(try HTTPFraming.bodyFraming([("Host", "x")] + fields.map { (name: $0.0, value: $0.1) }, version: version))
        } catch HTTPError.rejected(let s, _) { return .failure(s) } catch { return .failure(-1) }
    }

    @Test func bodyFramingAcceptsOneClearAnswer() {
        #expect(Self.framing([]) == .success(HTTPBodyFraming(contentLength: nil, chunked: false)))
        #expect(Self.framing([("Content-Length", "42")]) == .success(HTTPBodyFraming(contentLength: 42, chunked: false)))
        #expect(Self.framing([("content-length", "7"), ("Content-Length", "7")]) == .success(HTTPBodyFraming(contentLength: 7, chunked: false)))
        #expect(Self.framing([("Transfer-Encoding", "Chunked")]) == .success(HTTPBodyFraming(contentLength: nil, chunked: true)))
    }

    @Test func bodyFramingRefusesAmbiguity() {
        #expect(Self.framing([("Content-Length", "1"), ("Transfer-Encoding", "chunked")]) == .failure(400))
        #expect(Self.framing([("Content-Length", "1"), ("Content-Length", "2")]) == .failure(400))
        for bad in ["-1", "+1", "1.0", "0x1", "1 1", "", "1,1", "9999999999999999999"] {
            #expect(Self.framing([("Content-Length", bad)]) == .failure(400), "Content-Length \(bad)")
        }
        #expect(Self.framing([("Transfer-Encoding", "chunked, gzip")]) == .failure(400))
        #expect(Self.framing([("Transfer-Encoding", "gzip, chunked")]) == .failure(501))
        #expect(Self.framing([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")]) == .failure(400))
        #expect(Self.framing([("Transfer-Encoding", "chunked,")]) == .failure(400))
        #expect(Self.framing([("Transfer-Encoding", "chunked")], version: "HTTP/1.0") == .failure(400))
        #expect(Self.framing([("Host", "y")]) == .failure(400))
        #expect((try? HTTPFraming.bodyFraming([], version: "HTTP/1.1")) == nil)
        #expect((try? HTTPFraming.bodyFraming([], version: "HTTP/1.0")) != nil)
    }

    @Test func requestAndFieldLines() throws {
        let ok = try HTTPFraming.parseRequestLine(Array("GET /v2/ HTTP/1.1".utf8))
        #expect(ok.method == "GET" && ok.target == "/v2/" && ok.version == "HTTP/1.1")
        #expect(Self.status { _ = try HTTPFraming.parseRequestLine(Array("GET  /v2/ HTTP/1.1".utf8)) } == 400)
        #expect(Self.status { _ = try HTTPFraming.parseRequestLine(Array("GET /v2/ HTTP/2.0".utf8)) } == 505)
        #expect(Self.status { _ = try HTTPFraming.parseRequestLine(Array("GET v2 HTTP/1.1".utf8)) } == 400)
        #expect(Self.status { _ = try HTTPFraming.parseRequestLine(Array("G(T /v2/ HTTP/1.1".utf8)) } == 400)
        let field = try HTTPFraming.parseFieldLine(Array("X-A: \t value \t".utf8))
        #expect(field.name == "X-A" && field.value == "value")
        #expect(Self.status { _ = try HTTPFraming.parseFieldLine(Array("X-A : v".utf8)) } == 400)
        #expect(Self.status { _ = try HTTPFraming.parseFieldLine(Array(" folded".utf8)) } == 400)
        #expect(Self.status { _ = try HTTPFraming.parseFieldLine(Array("X-A: a\u{1}b".utf8)) } == 400)
        #expect(Self.status { _ = try HTTPFraming.parseFieldLine(Array(": v".utf8)) } == 400)
    }

    @Test func chunkSizes() throws {
        #expect(try HTTPFraming.chunkSize(Array("1aF".utf8)) == 0x1AF)
        #expect(try HTTPFraming.chunkSize(Array("10 ; name=value".utf8)) == 16)
        #expect(try HTTPFraming.chunkSize(Array("fffffffffffffff".utf8)) == 0xFFF_FFFF_FFFF_FFFF)
        for bad in ["ffffffffffffffffff", "", "+1", "-1", "0x10", "1 2", " 1", "g"] {
            #expect(Self.status { _ = try HTTPFraming.chunkSize(Array(bad.utf8)) } == 400, "chunk size \(bad)")
        }
    }

    @Test func processStampsTellLiveFromDead() throws {
        let me = ProcessStamp.current
        #expect(me.isAlive && ProcessStamp(Substring(me.description)) == me)
        var other = me
        other.startTicks += 1
        #expect(!other.isAlive, "same pid, other start time: a reused pid")
        other = me
        other.boot = "00000000" == me.boot ? "11111111" : "00000000"
        #expect(!other.isAlive, "another boot")
        #expect(ProcessStamp("1.2") == nil && ProcessStamp("x.2.12345678") == nil)
        let name = "link" + FilesystemDriver.tempSuffix()
        #expect(FilesystemDriver.tempStamp(name) == .some(me))
        #expect(!FilesystemDriver.isDeadTemporary(name, modified: .distantPast, unstampedAge: 1))
        #expect(FilesystemDriver.tempStamp("link") == nil)
        let legacy = "link.tmp-0B5E7E1E-0000-4000-8000-000000000000"
        #expect(FilesystemDriver.isDeadTemporary(legacy, modified: Date(timeIntervalSinceNow: -10), unstampedAge: 5))
        #expect(!FilesystemDriver.isDeadTemporary(legacy, modified: Date(), unstampedAge: 5))
    }
}
