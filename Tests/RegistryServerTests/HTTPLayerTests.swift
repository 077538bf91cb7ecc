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

    /// An HTTP/1.0 client (ab -k, old proxies) keeps a connection only when the answer says
    /// `Connection: keep-alive`; without it the client waits for the close to end the response.
    @Test func http10KeepAliveIsAnsweredAndPlainHTTP10Closes() throws {
        let reg = try TestRegistry()
        defer { reg.stop() }
        let fd = try rawConnect(port: reg.server.port)
        defer { close(fd) }
        rawSend(fd, Array("GET /v2/ HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n".utf8))
        let first = rawReadUntil(fd, "\r\n\r\n")
        #expect(first.hasPrefix("HTTP/1.1 200 OK") && first.contains("Connection: keep-alive\r\n"), "\(first)")
        // the same connection serves a second request, then closes after a plain HTTP/1.0 one
        rawSend(fd, Array("GET /v2/ HTTP/1.0\r\n\r\n".utf8))
        let second = rawReadUntil(fd, "never arrives", timeout: 5)
        #expect(second.contains("HTTP/1.1 200 OK") && second.contains("Connection: close\r\n"), "\(second)")
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

@Suite("access-log lines")
struct AccessLogLineTests {
    func exchange(path: String, query: String = "", method: String = "GET", agent: String? = nil, user: String? = nil)
        -> (HTTPRequest, HTTPResponse, HTTPRequestContext) {
        let request = HTTPRequest(method: method, path: path, rawQuery: query, version: "HTTP/1.1",
                                  headers: [("Host", "x")] + (agent.map { [("user-agent", $0)] } ?? []), body: .empty)
        var response = HTTPResponse(status: 404, body: .bytes(Array("nope".utf8)))
        response.requestID = "id-1"
        response.user = user
        return (request, response, HTTPRequestContext(remoteAddress: "127.0.0.1:5000", isTLS: false))
    }

    /// The JSON line is one object with the fields in sorted order, whatever bytes the request
    /// carried: quotes, backslashes, controls and non-ASCII in the path, query, agent and user.
    @Test func jsonLineEscapesAndKeepsItsFields() throws {
        let path = "/v2/a\"b\\c\n\u{1}\u{7f}/é/manifests/x"
        let (request, response, context) = exchange(path: path, query: "n=1&q=\"", agent: "curl/8 \"x\"\t", user: "al\u{0}ice")
        let line = RegistryServer.logLine(.json, request, response, context, 0.0015, route: ("manifest", "a/b"))
        #expect(line.last == UInt8(ascii: "\n") && line.filter { $0 == UInt8(ascii: "\n") }.count == 1)
        let text = String(decoding: line.dropLast(), as: UTF8.self)
        #expect(text.hasPrefix(#"{"bytes":4,"bytes_received":0,"duration_ms":1.5,"method":"GET","path":"/v2/a\"b\\c\n\u0001\u007f/é/manifests/x?n=1&q=\"","remote":"127.0.0.1:5000","repository":"a/b","request_id":"id-1","route":"manifest","status":404,"time":""#))
        #expect(text.hasSuffix(#"Z","user":"al\u0000ice","user_agent":"curl/8 \"x\"\t"}"#))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
        #expect(object["path"] as? String == path + "?n=1&q=\"")
        #expect(object["user"] as? String == "al\u{0}ice" && object["user_agent"] as? String == "curl/8 \"x\"\t")
        let time = try #require(object["time"] as? String)
        #expect(time.count == 24 && time.hasSuffix("Z"))
        // An invalid name is not logged as a repository; no agent is an empty one.
        let (r2, s2, c2) = exchange(path: "/v2/A/tags/list")
        let plain = String(decoding: RegistryServer.logLine(.json, r2, s2, c2, 0, route: ("tags", "A")), as: UTF8.self)
        #expect(!plain.contains("repository") && plain.contains(#""duration_ms":0.0,"#) && plain.hasSuffix(#""user_agent":""}"# + "\n"))
    }

    /// Header names compare ignoring ASCII case only, by length first.
    @Test func headerNamesCompareIgnoringASCIICase() {
        #expect("User-Agent".equalsHeaderName("user-agent") && "ACCEPT".equalsHeaderName("accept"))
        #expect(!"User-Agent".equalsHeaderName("User-Agenx") && !"Accept".equalsHeaderName("Accept-Encoding"))
        #expect(!"a[".equalsHeaderName("A{") && !"é".equalsHeaderName("É") && "".equalsHeaderName(""))
        // A bridged string (not contiguous UTF-8) compares the same.
        let bridged = NSString(string: "X-Request-Id") as String
        #expect(bridged.equalsHeaderName("x-request-id") && !bridged.equalsHeaderName("x-request-ix"))
    }

    /// The text line percent-escapes what could end or forge a line, in every field a client
    /// chooses.
    @Test func textLinePercentEscapes() {
        let (request, response, context) = exchange(path: "/v2/a b/tags/list", query: "x=%\n", method: "G\"ET", user: "bob smith")
        let line = String(decoding: RegistryServer.logLine(.text, request, response, context, 0.012, route: ("tags", "a b")), as: UTF8.self)
        let afterTime = line.drop { $0 != " " }
        #expect(afterTime == #" 127.0.0.1:5000 "G%22ET /v2/a%20b/tags/list?x=%25%0A HTTP/1.1" 404 4 12.0ms id=id-1 route=tags repo=- user=bob%20smith in=0"# + "\n")
        #expect(line.prefix(24).hasSuffix("Z") && line.prefix(24).contains("T"))
    }
}

@Suite("lock-free histograms")
struct AtomicHistogramTests {
    /// Samples recorded from many threads (each adding to its own shard) all show in one
    /// exposition: cumulative buckets, the sum in seconds, the count as the buckets' total.
    @Test func shardsAddUpAtAScrape() {
        let h = AtomicHistogram(bounds: [.milliseconds(1), .milliseconds(10)])
        DispatchQueue.concurrentPerform(iterations: 32) { i in
            for _ in 0..<100 { h.record(nanoseconds: i % 2 == 0 ? 500_000 : 5_000_000) }
            if i == 0 { h.record(nanoseconds: 2_000_000_000) }
        }
        var text = ""
        h.emit(name: "x_seconds", labels: "route=\"a\"", into: &text)
        #expect(text == """
            x_seconds_bucket{route="a",le="0.001"} 1600
            x_seconds_bucket{route="a",le="0.01"} 3200
            x_seconds_bucket{route="a",le="+Inf"} 3201
            x_seconds_sum{route="a"} 10.8
            x_seconds_count{route="a"} 3201

            """)
    }
}

@Suite("sharded request counters")
struct ShardedCountersTests {
    /// Adds from many threads (each to its own copy) all show in the totals.
    @Test func copiesAddUp() {
        let c = ShardedCounters(slots: 3)
        DispatchQueue.concurrentPerform(iterations: 32) { i in
            for _ in 0..<1000 { c.add(i % 2) }
            c.add(2, 1_000_000 + i)
        }
        #expect(c.total(0) == 16_000)
        #expect(c.total(1) == 16_000)
        #expect(c.total(2) == 32_000_000 + (0..<32).reduce(0, +))
    }

    /// Requests counted by connection threads reach the exposition at each scrape, cumulative
    /// across scrapes (each adds only what was counted since the one before), with the bytes.
    @Test func requestsReachTheExpositionAtEachScrape() {
        let m = RegistryMetrics()
        func text() -> String { String(decoding: m.scrape(openConnections: 0, uploadSessions: 0), as: UTF8.self) }
        func value(_ series: String, in t: String) -> String? {
            t.split(separator: "\n").first { $0.hasPrefix(series + " ") }.map { String($0.dropFirst(series.count + 1)) }
        }
        let manifest = RegistryMetrics.routes.firstIndex(of: "manifest")!
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            for _ in 0..<100 {
                m.observe(method: "GET", routeIndex: manifest, status: i == 0 ? 404 : 200, received: 0, sent: 10, nanoseconds: 1000)
            }
        }
        var t = text()
        let ok = "registry_http_requests_total{method=\"GET\",route=\"manifest\",code=\"200\"}"
        let missing = "registry_http_requests_total{method=\"GET\",route=\"manifest\",code=\"404\"}"
        #expect(value(ok, in: t) == "1500")
        #expect(value(missing, in: t) == "100")
        #expect(value("registry_http_sent_bytes_total", in: t) == "16000")
        #expect(!t.contains("code=\"201\""))
        m.observe(method: "PUT", routeIndex: manifest, status: 201, received: 7, sent: 0, nanoseconds: 1000)
        m.observe(method: "GET", routeIndex: manifest, status: 200, received: 0, sent: 5, nanoseconds: 1000)
        t = text()
        #expect(value(ok, in: t) == "1501")
        #expect(value("registry_http_requests_total{method=\"PUT\",route=\"manifest\",code=\"201\"}", in: t) == "1")
        #expect(value("registry_http_sent_bytes_total", in: t) == "16005")
        #expect(value("registry_http_received_bytes_total", in: t) == "7")
        // A scrape with nothing new changes nothing.
        #expect(value(ok, in: text()) == "1501")
    }
}

@Suite("access-log writer")
struct AccessLogWriterTests {
    func tempFile() throws -> (path: String, fd: Int32) {
        let path = "/var/tmp/rs-alw-\(getpid())-\(UUID().uuidString)"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        try #require(fd >= 0)
        return (path, fd)
    }

    func lines(_ path: String) -> [String] {
        (try? String(contentsOfFile: path, encoding: .utf8))?.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) ?? []
    }

    /// A line reaches the file within a bounded time without a stop (the writer's timer), and
    /// lines appended one after another from different threads keep their order.
    @Test func aLineIsWrittenSoonAndInOrder() throws {
        let (path, fd) = try tempFile()
        defer { close(fd); unlink(path) }
        let writer = AccessLogWriter(fd: fd, interval: 0.05)
        defer { writer.stop() }
        for i in 0..<4 {
            let t = Thread { writer.append(Array("line \(i)\n".utf8)) }
            t.start()
            while !t.isFinished { usleep(1000) }
        }
        let deadline = Date().addingTimeInterval(3)
        while lines(path).count < 5 && Date() < deadline { usleep(10_000) }
        #expect(lines(path) == ["line 0", "line 1", "line 2", "line 3", ""])
    }

    /// Lines from many threads at once: after a stop every one is in the file, whole, and each
    /// thread's lines in the order it appended them.
    @Test func everyLineIsWrittenWholeByTheStop() throws {
        let (path, fd) = try tempFile()
        defer { close(fd); unlink(path) }
        let writer = AccessLogWriter(fd: fd, interval: 0.05)
        DispatchQueue.concurrentPerform(iterations: 16) { t in
            for k in 0..<500 { writer.append(Array("t\(t) \(k) \(String(repeating: "x", count: k % 90))\n".utf8)) }
        }
        writer.stop()
        let all = lines(path).dropLast()
        #expect(all.count == 16 * 500)
        var next = [Int](repeating: 0, count: 16)
        for line in all {
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 3, let t = Int(parts[0].dropFirst()), let k = Int(parts[1]), t < 16 else {
                Issue.record("a broken line: \(line)"); return
            }
            #expect(k == next[t] && parts[2].count == k % 90)
            next[t] = k + 1
        }
    }
}
