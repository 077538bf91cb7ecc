import Foundation
import Testing
@testable import RegistryServer

/// Reads from a raw socket until `marker` has arrived `count` times or the peer closes.
func rawReadUntil(_ fd: Int32, _ marker: String, count: Int = 1, timeout: Int = 5) -> String {
    var tv = timeval(tv_sec: timeout, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var out = [UInt8]()
    var buf = [UInt8](repeating: 0, count: 65536)
    while String(decoding: out, as: UTF8.self).components(separatedBy: marker).count - 1 < count {
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

@Suite("HTTP/1.1 layer")
struct HTTPLayerTests {
    @Test func keepAliveServesSeveralRequestsOnOneConnection() throws {
        let reg = try TestRegistry()
        defer { reg.stop() }
        let fd = try rawConnect(port: reg.server.port)
        defer { close(fd) }
        rawSend(fd, Array("GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: x\r\n\r\nHEAD /v2/ HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let reply = rawReadUntil(fd, "HTTP/1.1 200 OK", count: 3)
        #expect(reply.components(separatedBy: "HTTP/1.1 200 OK").count - 1 == 3)
    }

    @Test func chunkedBodyAndExpectContinue() throws {
        let reg = try TestRegistry()
        defer { reg.stop() }
        let body = "hello chunked world"
        let d = digest(Data(body.utf8))
        let fd = try rawConnect(port: reg.server.port)
        defer { close(fd) }
        rawSend(fd, Array("POST /v2/raw/blobs/uploads/?digest=\(d) HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n".utf8))
        // The server asks for the body before reading it.
        #expect(rawReadUntil(fd, "\r\n\r\n").hasPrefix("HTTP/1.1 100 Continue"))
        rawSend(fd, Array("5\r\nhello\r\ne;ext=1\r\n chunked world\r\n0\r\n\r\n".utf8))
        #expect(rawReadUntil(fd, "\r\n\r\n").hasPrefix("HTTP/1.1 201 Created"))
        // And the connection is still usable.
        rawSend(fd, Array("GET /v2/raw/blobs/\(d) HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let get = rawReadUntil(fd, body)
        #expect(get.hasPrefix("HTTP/1.1 200 OK") && get.hasSuffix(body))
    }

    @Test func refusedRequestNeverReceivesTheBody() throws {
        let reg = try TestRegistry(readOnly: true)
        defer { reg.stop() }
        let fd = try rawConnect(port: reg.server.port)
        defer { close(fd) }
        rawSend(fd, Array("POST /v2/raw/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\nExpect: 100-continue\r\n\r\n".utf8))
        let reply = rawReadUntil(fd, "}]}")
        #expect(reply.hasPrefix("HTTP/1.1 405"))
        #expect(!reply.contains("100 Continue"))
        #expect(reply.contains("Connection: close"))
    }

    @Test func malformedAndOversizedRequests() throws {
        let reg = try TestRegistry()
        defer { reg.stop() }
        let fd = try rawConnect(port: reg.server.port)
        rawSend(fd, Array("NONSENSE\r\n\r\n".utf8))
        #expect(rawReadUntil(fd, "\r\n\r\n").hasPrefix("HTTP/1.1 400"))
        close(fd)
        let fd2 = try rawConnect(port: reg.server.port)
        rawSend(fd2, Array("GET /v2/ HTTP/1.1\r\nX-Big: \(String(repeating: "a", count: 70_000))\r\n\r\n".utf8))
        #expect(rawReadUntil(fd2, "\r\n\r\n").hasPrefix("HTTP/1.1 431"))
        close(fd2)
        // The server keeps serving.
        let fd3 = try rawConnect(port: reg.server.port)
        defer { close(fd3) }
        rawSend(fd3, Array("GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(rawReadUntil(fd3, "{}").hasPrefix("HTTP/1.1 200"))
    }

    @Test func routesNamesWithSlashesAndKeywords() {
        if case .manifest(let n, let r)? = RegistryHandler.route("/v2/a/b/c/manifests/latest") { #expect(n == "a/b/c" && r == "latest") } else { Issue.record("manifest route") }
        if case .uploads(let n)? = RegistryHandler.route("/v2/x/blobs/uploads/") { #expect(n == "x") } else { Issue.record("uploads route") }
        if case .upload(let n, let id)? = RegistryHandler.route("/v2/x/y/blobs/uploads/abc") { #expect(n == "x/y" && id == "abc") } else { Issue.record("upload route") }
        if case .tags(let n)? = RegistryHandler.route("/v2/tags/tags/list") { #expect(n == "tags") } else { Issue.record("tags route") }
        // every shape of path routes as the component split it replaced did
        func reference(_ path: String) -> String {
            guard path.hasPrefix("/v2/"), path != "/v2/", path != "/v2/token", path != "/v2/_catalog" else { return "-" }
            let c = path.dropFirst(4).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            let n = c.count
            func name(_ k: Int) -> String? { k > 0 ? c[0..<k].joined(separator: "/") : nil }
            if n >= 3, c[n - 2] == "tags", c[n - 1] == "list" { return "tags \(name(n - 2)!)" }
            if n >= 3, c[n - 3] == "blobs", c[n - 2] == "uploads" {
                guard let nm = name(n - 3) else { return "nil" }
                return c[n - 1].isEmpty ? "uploads \(nm)" : "upload \(nm) \(c[n - 1])"
            }
            if n >= 3, c[n - 2] == "blobs", c[n - 1] == "uploads" { return "uploads \(name(n - 2)!)" }
            if n >= 3, c[n - 2] == "manifests", !c[n - 1].isEmpty { return "manifest \(name(n - 2)!) \(c[n - 1])" }
            if n >= 3, c[n - 2] == "blobs", !c[n - 1].isEmpty { return "blob \(name(n - 2)!) \(c[n - 1])" }
            if n >= 3, c[n - 2] == "referrers", !c[n - 1].isEmpty { return "referrers \(name(n - 2)!) \(c[n - 1])" }
            return "nil"
        }
        func describe(_ r: RegistryHandler.Route?) -> String {
            switch r {
            case nil: "nil"
            case .tags(let n): "tags \(n)"
            case .uploads(let n): "uploads \(n)"
            case .upload(let n, let id): "upload \(n) \(id)"
            case .manifest(let n, let ref): "manifest \(n) \(ref)"
            case .blob(let n, let d): "blob \(n) \(d)"
            case .referrers(let n, let d): "referrers \(n) \(d)"
            case .base, .catalog, .token: "-"
            }
        }
        let words = ["a", "", "blobs", "uploads", "tags", "list", "manifests", "referrers", "x-y"]
        var paths: [String] = []
        for a in words { for b in words { for c in words { paths.append("/v2/\(a)/\(b)/\(c)"); for d in ["", "q", "uploads"] { paths.append("/v2/\(a)/\(b)/\(c)/\(d)") } } } }
        paths += ["/v2/", "/v2/a", "/v2/a/", "/v2/a/b", "/v2/é/manifests/ü", "/v2//manifests/x"]
        for p in paths { #expect(describe(RegistryHandler.route(p)) == reference(p), "\(p)") }
        var ms: [UInt8] = []
        for (micros, text) in [(0, "0.0"), (42, "0.042"), (1_500, "1.5"), (12_000, "12.0"), (1_234_567, "1234.567"), (100, "0.1"), (10, "0.01")] as [(Int64, String)] {
            ms.removeAll()
            RegistryServer.appendMillis(micros, to: &ms)
            #expect(String(decoding: ms, as: UTF8.self) == text)
            #expect(text == String((Double(micros) / 1000 * 1000).rounded() / 1000))
        }
        #expect(Names.isValidRepository("a/b-c/d__e.f"))
        #expect(!Names.isValidRepository("a//b") && !Names.isValidRepository("-a") && !Names.isValidRepository("A"))
        for valid in ["a", "a--b", "a__b", "a.b_c-d", "0/1/2", "ab/c-----d"] { #expect(Names.isValidRepository(valid), "\(valid)") }
        for invalid in ["a/", "/a", "a___b", "a._b", "a-", "a..b", "a\nb", "é", "a/B", ""] { #expect(!Names.isValidRepository(invalid), "\(invalid)") }
        #expect(Names.isValidTag("v1.0_rc-1") && !Names.isValidTag(".v1") && !Names.isValidTag(String(repeating: "a", count: 129)))
    }
}
