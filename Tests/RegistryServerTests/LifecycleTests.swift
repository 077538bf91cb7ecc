import Foundation
import Testing
import OCI
@testable import RegistryServer

/// Rolling a registry: SIGTERM drains what is in flight, SIGHUP re-reads the htpasswd file,
/// and a distribution `config.yml` starts the real server.
@Suite("lifecycle: drain, reload, distribution config", .serialized)
struct LifecycleTests {
    /// A slow monolithic blob upload through curl, in the background: `bytes` at `rate` per second.
    final class SlowUpload {
        let process = Process()
        let out = Pipe()
        let dir: URL

        init(_ base: String, bytes: Int, rate: String) throws {
            guard let curl = which("curl") else { throw RegistryServerError.invalidConfiguration("curl is not installed (make deps)") }
            dir = URL(fileURLWithPath: "/var/tmp/rs-slow-\(getpid())-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            var data = Data(count: bytes)
            for i in stride(from: 0, to: bytes, by: 4096) { data[i] = UInt8(truncatingIfNeeded: i / 4096) }
            let file = dir.appendingPathComponent("blob")
            try data.write(to: file)
            let digest = Digest.compute(data).description
            process.executableURL = URL(fileURLWithPath: curl)
            process.arguments = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--limit-rate", rate, "-X", "POST",
                                 "-H", "Content-Type: application/octet-stream", "--data-binary", "@" + file.path,
                                 "\(base)/v2/lifecycle/slow/blobs/uploads/?digest=\(digest)"]
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
        }

        /// curl's status line: the HTTP code, `000` when the connection was cut.
        func finish() -> String {
            process.waitUntilExit()
            try? FileManager.default.removeItem(at: dir)
            return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }
    }

    static func waitForExit(_ p: Process, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        return !p.isRunning
    }

    @Test func sigtermLetsAnUploadInFlightFinishAndStopsAccepting() async throws {
        let s = try OpsServe(["--drain-timeout", "60"])
        let upload = try SlowUpload(s.base, bytes: 1 << 20, rate: "400k")
        // The upload is in flight (about 2.5 s in all) when the stop begins.
        try await Task.sleep(nanoseconds: 800_000_000)
        kill(s.process.processIdentifier, SIGTERM)
        var notReady = false
        for _ in 0..<50 {
            if let r = try? await http("GET", "\(s.debug)/readyz"), r.status == 503 { notReady = true; break }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        #expect(notReady, "/readyz must say 503 while the server drains")
        // A new client is not accepted any more.
        await #expect(throws: (any Error).self) { try await http("GET", "\(s.base)/v2/") }
        #expect(upload.finish() == "201", "the upload in flight must be finished, not cut")
        #expect(Self.waitForExit(s.process, seconds: 10))
        #expect(s.process.terminationStatus == 0)
        let log = s.stopAndReadLog()
        #expect(log.contains("stopped: every request finished"), "\(log)")
    }

    @Test func theDrainTimeoutCutsWhatIsStillBusy() async throws {
        let s = try OpsServe(["--drain-timeout", "0.5"], debug: false)
        let upload = try SlowUpload(s.base, bytes: 1 << 20, rate: "64k")
        try await Task.sleep(nanoseconds: 800_000_000)
        let stopped = Date()
        kill(s.process.processIdentifier, SIGTERM)
        #expect(Self.waitForExit(s.process, seconds: 10))
        #expect(Date().timeIntervalSince(stopped) < 8, "the server must stop soon after the drain timeout")
        #expect(upload.finish() != "201")
        let log = s.stopAndReadLog()
        #expect(log.contains("stopped: cut 1 connections still busy after the drain timeout"), "\(log)")
    }

    @Test func sighupReloadsTheHtpasswdFile() async throws {
        let dir = URL(fileURLWithPath: "/var/tmp/rs-hup-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let users = dir.appendingPathComponent("htpasswd")
        let alice = try htpasswdLine("alice", "a-secret")
        try Data((alice + "\n").utf8).write(to: users)
        let s = try OpsServe(["--htpasswd", users.path], debug: false)
        func status(_ user: String, _ password: String) async throws -> Int {
            let token = Data("\(user):\(password)".utf8).base64EncodedString()
            return try await http("GET", "\(s.base)/v2/", headers: ["Authorization": "Basic \(token)"]).status
        }
        #expect(try await status("alice", "a-secret") == 200)
        #expect(try await status("bob", "b-secret") == 401)

        try Data((alice + "\n" + (try htpasswdLine("bob", "b-secret")) + "\n").utf8).write(to: users)
        kill(s.process.processIdentifier, SIGHUP)
        var bob = 0
        for _ in 0..<100 {
            bob = try await status("bob", "b-secret")
            if bob == 200 { break }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        #expect(bob == 200, "bob, added to the file, must get in after SIGHUP")

        // A broken file is not taken: the users stay as they were.
        try Data("bob:plaintext\n".utf8).write(to: users)
        kill(s.process.processIdentifier, SIGHUP)
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(try await status("alice", "a-secret") == 200)
        #expect(s.process.isRunning)
        let log = s.stopAndReadLog()
        #expect(log.contains("SIGHUP: reloaded \(users.path): 2 users"), "\(log)")
        #expect(log.contains("SIGHUP: kept the users as they were"), "\(log)")
    }

    @Test func aDistributionConfigFileStartsTheServer() async throws {
        let dir = URL(fileURLWithPath: "/var/tmp/rs-cfg-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("config.yml")
        try Data("""
        version: 0.1
        log:
          accesslog:
            disabled: true
        storage:
          filesystem:
            rootdirectory: \(dir.path)/storage
        http:
          addr: 127.0.0.1:0
          headers:
            X-Content-Type-Options: [nosniff]
        """.utf8).write(to: config)
        let s = try OpsServe(["--config", config.path], debug: false)
        let base = try await http("GET", "\(s.base)/v2/")
        #expect(base.status == 200)
        #expect(base.headers["x-content-type-options"] == "nosniff" || base.headers["X-Content-Type-Options"] == "nosniff", "\(base.headers)")
        // distribution's default: deleting is off unless storage.delete.enabled.
        let digest = "sha256:" + String(repeating: "a", count: 64)
        let delete = try await http("DELETE", "\(s.base)/v2/some/repo/manifests/\(digest)")
        #expect(delete.status == 405)
        #expect(String(decoding: delete.body, as: UTF8.self).contains("storage.delete.enabled"))
    }
}

/// A webhook listener on loopback (this project's own HTTP server): records each envelope,
/// answering the first `failFirst` deliveries with 500.
final class EventListener: HTTPHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var envelopes: [[String: Any]] = []
    private var contentTypes: [String] = []
    private var failuresLeft: Int
    private var attemptCount = 0
    private var server: HTTPServer?

    init(failFirst: Int = 0) throws {
        failuresLeft = failFirst
        let s = HTTPServer(handler: self)
        try s.start(address: "127.0.0.1:0")
        server = s
    }

    var url: String { "http://127.0.0.1:\(server?.port ?? 0)/events" }
    var attempts: Int { lock.lock(); defer { lock.unlock() }; return attemptCount }

    func handle(_ request: HTTPRequest, context: HTTPRequestContext) -> HTTPResponse {
        let body = (try? request.body.readAll(limit: 1 << 20)) ?? []
        lock.lock()
        defer { lock.unlock() }
        attemptCount += 1
        if failuresLeft > 0 {
            failuresLeft -= 1
            return HTTPResponse(status: 500)
        }
        if let obj = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] { envelopes.append(obj) }
        contentTypes.append(request.header("Content-Type") ?? "")
        return HTTPResponse(status: 200)
    }

    /// Every event received, in order.
    var events: [[String: Any]] {
        lock.lock()
        defer { lock.unlock() }
        return envelopes.flatMap { ($0["events"] as? [[String: Any]]) ?? [] }
    }

    var types: [String] { lock.lock(); defer { lock.unlock() }; return contentTypes }

    func waitFor(_ count: Int) async throws -> [[String: Any]] {
        for _ in 0..<250 where events.count < count { try await Task.sleep(nanoseconds: 20_000_000) }
        return events
    }

    deinit { server?.stop() }
}

@Suite("notifications: webhooks for push, pull, mount and delete", .serialized)
struct NotificationTests {
    @Test func pushesAndDeletesReachTheEndpointInDistributionsEnvelope() async throws {
        let listener = try EventListener(failFirst: 2)
        let dir = URL(fileURLWithPath: "/var/tmp/rs-notify-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("config.yml")
        try Data("""
        version: 0.1
        log:
          accesslog:
            disabled: true
        storage:
          filesystem:
            rootdirectory: \(dir.path)/storage
          delete:
            enabled: true
        http:
          addr: 127.0.0.1:0
        notifications:
          endpoints:
            - name: listener
              url: \(listener.url)
              headers:
                Authorization: [Bearer hook-secret]
              timeout: 2s
              threshold: 5
              backoff: 100ms
              ignore:
                actions: [pull]
        """.utf8).write(to: config)
        let s = try OpsServe(["--config", config.path])

        let layer = Data("layer bytes for the webhook test\n".utf8)
        let layerDigest = Digest.compute(layer).description
        let put = try await http("POST", "\(s.base)/v2/hooks/app/blobs/uploads/?digest=\(layerDigest)", body: layer)
        #expect(put.status == 201)
        let configBlob = Data("{}".utf8)
        let configDigest = Digest.compute(configBlob).description
        #expect(try await http("POST", "\(s.base)/v2/hooks/app/blobs/uploads/?digest=\(configDigest)", body: configBlob).status == 201)
        let manifest = Data("""
        {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(configDigest)","size":\(configBlob.count)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(layerDigest)","size":\(layer.count)}]}
        """.utf8)
        let manifestDigest = Digest.compute(manifest).description
        let pm = try await http("PUT", "\(s.base)/v2/hooks/app/manifests/v1", body: manifest,
                                headers: ["Content-Type": "application/vnd.oci.image.manifest.v1+json"])
        #expect(pm.status == 201)
        // A pull is ignored by this endpoint's `ignore.actions`.
        #expect(try await http("GET", "\(s.base)/v2/hooks/app/manifests/v1").status == 200)
        #expect(try await http("DELETE", "\(s.base)/v2/hooks/app/manifests/\(manifestDigest)").status == 202)

        let events = try await listener.waitFor(4)
        #expect(listener.attempts >= 3, "the first two deliveries failed and were retried")
        let summary = events.map { e -> String in
            let t = e["target"] as? [String: Any] ?? [:]
            return "\(e["action"] ?? "") \(t["repository"] ?? "") \(t["digest"] ?? "") \(t["tag"] ?? "-") \(t["size"] ?? "-")"
        }
        #expect(summary == [
            "push hooks/app \(layerDigest) - \(layer.count)",
            "push hooks/app \(configDigest) - \(configBlob.count)",
            "push hooks/app \(manifestDigest) v1 \(manifest.count)",
            "delete hooks/app \(manifestDigest) - -",
        ], "\(summary)")
        let push = events[2]
        #expect((push["target"] as? [String: Any])?["mediaType"] as? String == "application/vnd.oci.image.manifest.v1+json")
        #expect(((push["request"] as? [String: Any])?["method"] as? String) == "PUT")
        #expect(((push["source"] as? [String: Any])?["instanceID"] as? String)?.isEmpty == false)
        #expect(listener.types.allSatisfy { $0 == "application/vnd.docker.distribution.events.v1+json" })
        let scrape = try await opsScrape(s)
        #expect(scrape.values[#"registry_notifications_events{endpoint="listener",state="delivered"}"#] == 4)
        #expect((scrape.values[#"registry_notifications_events{endpoint="listener",state="failed"}"#] ?? 0) >= 2)
    }

    @Test func aBadEndpointURLIsRefusedAtStart() throws {
        var s = RegistryServeSettings()
        s.notifications = [NotificationEndpoint(name: "x", url: "ftp://example/")]
        #expect(throws: RegistryServerError.invalidConfiguration("--notify ftp://example/: a notification endpoint must be an http:// or https:// URL")) {
            try s.configuration(defaultStorage: "/x")
        }
    }
}
