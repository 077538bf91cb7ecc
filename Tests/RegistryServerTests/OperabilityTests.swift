import Foundation
import Testing
@testable import RegistryServer

/// `dockbuild registry serve` started for the operability tests, with its stderr kept so the
/// tests can read the startup line (main and debug ports) and the access log.
final class OpsServe {
    let process = Process()
    let dir: URL
    let port: Int
    let debugPort: Int?
    private let stderr = Pipe()
    private var firstLine = ""

    init(_ extra: [String] = [], debug: Bool = true) throws {
        guard let bin = dockbuildBinary() else {
            throw RegistryServerError.invalidConfiguration("dockbuild binary not found next to the tests; run `swift build --build-tests` first")
        }
        dir = URL(fileURLWithPath: "/var/tmp/rs-ops-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: bin)
        let log = extra.contains("--log-format") ? [] : ["--log-format", "none"]
        process.arguments = ["registry", "serve", "--addr", "127.0.0.1:0", "--storage", dir.path + "/storage"]
            + (debug ? ["--debug-addr", "127.0.0.1:0"] : []) + log + extra
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        var line = Data()
        let fh = stderr.fileHandleForReading
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = fh.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        func portAfter(_ marker: String) -> Int? {
            guard let r = text.range(of: marker) else { return nil }
            return Int(text[r.upperBound...].prefix { $0.isNumber })
        }
        guard let p = portAfter("listening on http://127.0.0.1:") else {
            process.terminate()
            throw RegistryServerError.invalidConfiguration("serve did not report its port: \(text)")
        }
        port = p
        debugPort = portAfter("debug=http://127.0.0.1:")
        firstLine = text
    }

    var base: String { "http://127.0.0.1:\(port)" }
    var debug: String { "http://127.0.0.1:\(debugPort ?? 0)" }
    var storage: String { dir.path + "/storage" }

    /// SIGTERM, waits for the exit, and returns stderr after the startup line.
    func stopAndReadLog() -> String {
        stop()
        return String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: dir)
    }
}

@Suite("operability: health, metrics, access log, limits", .serialized)
struct OperabilityTests {
    @Test func debugAddressServesHealthApartFromTheRegistry() async throws {
        let s = try OpsServe()
        #expect(s.debugPort != nil && s.debugPort != s.port)

        let live = try await http("GET", "\(s.debug)/livez")
        #expect(live.status == 200)
        let ready = try await http("GET", "\(s.debug)/readyz")
        #expect(ready.status == 200)
        let health = try await http("GET", "\(s.debug)/debug/health")
        #expect(health.status == 200 && String(decoding: health.body, as: UTF8.self) == "{}")
        // The registry answers on its own address, and not the probes.
        #expect(try await http("GET", "\(s.base)/v2/").status == 200)
        #expect(try await http("GET", "\(s.base)/readyz").status == 404)
        #expect(try await http("GET", "\(s.debug)/v2/").status == 404)

        // Storage gone: not ready (503 and why), unhealthy, but still alive.
        let moved = s.dir.path + "/moved"
        try FileManager.default.moveItem(atPath: s.storage, toPath: moved)
        let notReady = try await http("GET", "\(s.debug)/readyz")
        #expect(notReady.status == 503)
        #expect(String(decoding: notReady.body, as: UTF8.self).contains(s.storage))
        let sick = try await http("GET", "\(s.debug)/debug/health")
        #expect(sick.status == 503)
        #expect((sick.json?["storagedriver_filesystem"] as? String)?.contains("not reachable") == true)
        #expect(try await http("GET", "\(s.debug)/livez").status == 200)

        // Back: ready again, and the probe left no file behind.
        try FileManager.default.moveItem(atPath: moved, toPath: s.storage)
        #expect(try await http("GET", "\(s.debug)/readyz").status == 200)
        let names = try FileManager.default.contentsOfDirectory(atPath: s.storage)
        #expect(!names.contains { $0.hasPrefix(".readyz") })
    }

    @Test func configFileNamesTheDebugAddressAsDistributionDoes() async throws {
        let cfgDir = URL(fileURLWithPath: "/var/tmp/rs-ops-cfg-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: cfgDir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: cfgDir) }
        let file = cfgDir.path + "/config.json"
        try Data(#"{"http": {"debug": {"addr": "127.0.0.1:0"}}, "log": {"formatter": "json"}}"#.utf8).write(to: URL(fileURLWithPath: file))
        let settings = try RegistryServeSettings.load(file: file)
        #expect(settings.debugAddress == "127.0.0.1:0")
        #expect(settings.logFormat == "json")
        let s = try OpsServe(["--config", file], debug: false)
        #expect(s.debugPort != nil)
        #expect(try await http("GET", "\(s.debug)/livez").status == 200)
    }

    @Test func metricsMoveByWhatWasPushedAndPulled() async throws {
        let s = try OpsServe()
        let before = try await opsScrape(s)
        #expect(before.type["registry_http_received_bytes_total"] == "counter")
        #expect(before.type["registry_http_open_connections"] == "gauge")

        let blob = Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let blobDigest = try await pushBlob(s.base, "ops/metrics", blob)
        let manifest = try JSONSerialization.data(withJSONObject: [
            "schemaVersion": 2, "mediaType": ParsedManifest.ociManifest,
            "config": ["mediaType": "application/vnd.oci.image.config.v1+json", "digest": blobDigest, "size": blob.count],
            "layers": [] as [Any],
        ] as [String: Any], options: [.sortedKeys])
        let put = try await http("PUT", "\(s.base)/v2/ops/metrics/manifests/v1", body: manifest,
                                 headers: ["Content-Type": ParsedManifest.ociManifest])
        #expect(put.status == 201)
        #expect(try await http("GET", "\(s.base)/v2/ops/metrics/blobs/\(blobDigest)").body == blob)
        #expect(try await http("GET", "\(s.base)/v2/ops/metrics/manifests/nope").status == 404)
        // An upload session left open shows in the gauge.
        let session = try await http("POST", "\(s.base)/v2/ops/metrics/blobs/uploads/")
        #expect(session.status == 202)

        let after = try await opsScrape(s)
        #expect(after.type["registry_http_requests_total"] == "counter")
        #expect(after.type["registry_http_request_duration_seconds"] == "histogram")
        func delta(_ key: String) -> Double { (after.values[key] ?? 0) - (before.values[key] ?? 0) }
        #expect(delta(#"registry_http_requests_total{method="POST",route="blob_upload",code="201"}"#) == 1)
        #expect(delta(#"registry_http_requests_total{method="POST",route="blob_upload",code="202"}"#) == 1)
        #expect(delta(#"registry_http_requests_total{method="PUT",route="manifest",code="201"}"#) == 1)
        #expect(delta(#"registry_http_requests_total{method="GET",route="blob",code="200"}"#) == 1)
        #expect(delta(#"registry_http_requests_total{method="GET",route="manifest",code="404"}"#) == 1)
        #expect(delta(#"registry_http_request_duration_seconds_count{route="manifest"}"#) == 2)
        #expect(delta(#"registry_http_request_duration_seconds_count{route="blob_upload"}"#) == 2)
        #expect(delta("registry_http_received_bytes_total") == Double(blob.count + manifest.count))
        // Sent: the blob, the 404's error body; 201 and 202 answers have none.
        let notFoundBody = try await http("GET", "\(s.base)/v2/ops/metrics/manifests/nope").body.count
        #expect(delta("registry_http_sent_bytes_total") == Double(blob.count + notFoundBody))
        #expect(after.values["registry_storage_upload_sessions"] == 1)
        // Storage actions are timed by driver and action: the upload's writer, the manifest's write.
        #expect(after.type["registry_storage_action_seconds"] == "histogram")
        #expect(delta(#"registry_storage_action_seconds_count{driver="filesystem",action="writer"}"#) >= 1)
        #expect(delta(#"registry_storage_action_seconds_count{driver="filesystem",action="put_content"}"#) >= 1)

        // A connection held open counts while it is open.
        let fd = try rawConnect(port: s.port)
        try await Task.sleep(nanoseconds: 200_000_000)
        #expect((try await opsScrape(s).values["registry_http_open_connections"] ?? 0) >= 1)
        close(fd)
        // Cancelling the session takes it out of the gauge.
        let loc = try #require(session.header("Location"))
        #expect(try await http("DELETE", "\(s.base)\(loc)").status == 204)
        #expect(try await opsScrape(s).values["registry_storage_upload_sessions"] == 0)
    }

    @Test func jsonAccessLogCarriesIdRouteRepositoryAndUser() async throws {
        let pwDir = URL(fileURLWithPath: "/var/tmp/rs-ops-pw-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: pwDir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: pwDir) }
        try Data(try htpasswdLine("alice", "s3cret").utf8).write(to: pwDir.appendingPathComponent("htpasswd"))
        let s = try OpsServe(["--log-format", "json", "--htpasswd", pwDir.path + "/htpasswd"], debug: false)
        let anon = try await http("GET", "\(s.base)/v2/")
        #expect(anon.status == 401)
        let put = try await http("PUT", "\(s.base)/v2/team/app/manifests/v1", body: Data("{}".utf8),
                                 headers: ["Authorization": basic("alice", "s3cret"), "Content-Type": ParsedManifest.ociManifest])
        #expect(put.status == 400)
        let lines = s.stopAndReadLog().split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(lines.count == 2)
        let entries = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        try #require(entries.count == 2)
        let (first, second) = (entries[0], entries[1])
        #expect(first["status"] as? Int == 401 && first["route"] as? String == "base" && first["method"] as? String == "GET")
        #expect(first["user"] == nil && first["repository"] == nil)
        #expect(second["status"] as? Int == 400 && second["method"] as? String == "PUT")
        #expect(second["route"] as? String == "manifest" && second["repository"] as? String == "team/app")
        #expect(second["user"] as? String == "alice")
        #expect(second["bytes_received"] as? Int == 2)
        #expect((second["bytes"] as? Int ?? 0) > 0 && second["duration_ms"] is Double)
        #expect((second["remote"] as? String)?.hasPrefix("127.0.0.1:") == true)
        // The request id is the one the client was given, and unique per request.
        #expect(second["request_id"] as? String == put.header("X-Request-Id"))
        #expect(first["request_id"] as? String == anon.header("X-Request-Id"))
        #expect(first["request_id"] as? String != second["request_id"] as? String)
    }

    /// The running server's purge of idle upload sessions is counted: runs, sessions removed,
    /// bytes freed.
    @Test func uploadPurgesAreCountedInMetrics() async throws {
        let s = try OpsServe(["--upload-lifetime", "1"])
        let session = try await http("POST", "\(s.base)/v2/ops/purge/blobs/uploads/")
        #expect(session.status == 202)
        guard let location = session.header("Location") else { Issue.record("no Location"); return }
        let url = location.hasPrefix("http") ? location : s.base + location
        let chunk = Data(repeating: 7, count: 5000)
        let patch = try await http("PATCH", url, body: chunk, headers: ["Content-Range": "0-4999"])
        #expect(patch.status == 202, "\(patch.status)")
        var removed = 0.0, bytes = 0.0
        for _ in 0..<60 {
            try await Task.sleep(nanoseconds: 100_000_000)
            let m = try await opsScrape(s)
            removed = m.values[#"registry_gc_removed_total{kind="uploads"}"#] ?? 0
            bytes = m.values[#"registry_gc_reclaimed_bytes_total{kind="uploads"}"#] ?? 0
            if removed >= 1 { break }
        }
        #expect(removed == 1, "the idle session is swept within a few seconds")
        #expect(bytes == Double(chunk.count))
        #expect((try await opsScrape(s).values[#"registry_gc_runs_total{kind="uploads"}"#] ?? 0) >= 1)
    }

    @Test func headerAndManifestSizeLimitsAreConfigurable() async throws {
        let s = try OpsServe(["--max-header-bytes", "2048", "--max-manifest-bytes", "2048"], debug: false)
        let big = String(repeating: "x", count: 3000)
        #expect(try await http("GET", "\(s.base)/v2/", headers: ["X-Big": big]).status == 431)
        #expect(try await http("GET", "\(s.base)/v2/", headers: ["X-Small": "y"]).status == 200)
        let manifest = Data(("{\"schemaVersion\":2,\"pad\":\"" + big + "\"}").utf8)
        let put = try await http("PUT", "\(s.base)/v2/ops/limits/manifests/v1", body: manifest,
                                 headers: ["Content-Type": "application/vnd.oci.image.manifest.v1+json"])
        #expect(put.status == 413)
        // The defaults take both.
        let d = try OpsServe([], debug: false)
        #expect(try await http("GET", "\(d.base)/v2/", headers: ["X-Big": big]).status == 200)
    }

    @Test func textAccessLogEscapesWhatCouldForgeALine() async throws {
        let s = try OpsServe(["--log-format", "text"], debug: false)
        let fd = try rawConnect(port: s.port)
        rawSend(fd, Array("GET /v2/a%0A2026-01-01T00:00:00Z%20forged/tags/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        var buf = [UInt8](repeating: 0, count: 4096)
        _ = recv(fd, &buf, buf.count, 0)
        close(fd)
        try await Task.sleep(nanoseconds: 300_000_000)  // the line is written after the answer is sent
        // The server's own lines ("dockbuild registry: stopping ...") are not access-log lines.
        let lines = s.stopAndReadLog().split(separator: "\n").filter { !$0.hasPrefix("dockbuild registry: ") }
        #expect(lines.count == 1)
        #expect(lines.first?.contains("/v2/a%0A2026-01-01T00:00:00Z%20forged/tags/list") == true)
        #expect(lines.first?.contains(" route=tags ") == true)
    }
}

/// One scrape of `/metrics`: sample values by `name{labels}` and `# TYPE` by family.
struct OpsScrape {
    var values: [String: Double] = [:]
    var type: [String: String] = [:]
}

func opsScrape(_ s: OpsServe) async throws -> OpsScrape {
    let r = try await http("GET", "\(s.debug)/metrics")
    guard r.status == 200, r.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true else {
        throw RegistryServerError.invalidConfiguration("scrape got \(r.status) \(r.header("Content-Type") ?? "")")
    }
    var out = OpsScrape()
    for line in String(decoding: r.body, as: UTF8.self).split(separator: "\n") {
        if line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            if parts.count == 4 { out.type[String(parts[2])] = String(parts[3]) }
            continue
        }
        if line.hasPrefix("#") { continue }
        guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else { continue }
        out.values[String(line[..<space])] = v
    }
    return out
}
