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
