import Foundation
import Testing
@testable import RegistryServer

/// `dockbuild registry serve` as a child process, so the tests can kill -9 it.
final class ServeProcess {
    let process = Process()
    let port: Int
    private let stderr = Pipe()

    /// `storage` nil passes no `--storage` (S3 from flags).
    init(storage: String?, extra: [String] = []) throws {
        guard let bin = dockbuildBinary() else {
            throw RegistryServerError.invalidConfiguration("dockbuild binary not found next to the tests; run `swift build --build-tests` first")
        }
        process.executableURL = URL(fileURLWithPath: bin)
        let log = extra.contains("--log-format") ? [] : ["--log-format", "none"]
        process.arguments = ["registry", "serve", "--addr", "127.0.0.1:0"] + (storage.map { ["--storage", $0] } ?? []) + log + extra
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // First line: "dockbuild registry listening on http://127.0.0.1:PORT ..."
        var line = Data()
        let fh = stderr.fileHandleForReading
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = fh.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.contains("listening on"), let r = text.range(of: "127.0.0.1:"), let p = Int(text[r.upperBound...].prefix { $0.isNumber }) else {
            process.terminate()
            throw RegistryServerError.invalidConfiguration("serve did not report its port: \(text)")
        }
        port = p
    }

    var base: String { "http://127.0.0.1:\(port)" }

    /// Stops the server and returns what it wrote to stderr after the startup line.
    func stopAndReadLog() -> String {
        stop()
        return String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}

/// Opens a TCP connection and writes raw bytes, to leave a request half sent.
func rawConnect(port: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = UInt16(port).bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0 else { close(fd); throw RegistryServerError.io("connect", errno: errno) }
    return fd
}

func rawSend(_ fd: Int32, _ bytes: [UInt8]) {
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { return }
        done += n
    }
}

@Suite("crash recovery and the real binary", .serialized)
struct ProcessTests {
    @Test func killNineMidUploadLeavesNothingVisible() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-crash-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let storage = dir.path
        var server = try ServeProcess(storage: storage)
        defer { server.stop() }

        let kept = Data("committed before the crash".utf8)
        let keptDigest = try await pushBlob(server.base, "crash/repo", kept)
        let (_, manifest) = try await pushImage(server.base, "crash/repo", tag: "v1")

        // Half an upload: announce 8 MiB, send 1 MiB, then kill -9 the server.
        let big = [UInt8]((0..<(8 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let bigDigest = digest(Data(big))
        let post = try await http("POST", "\(server.base)/v2/crash/repo/blobs/uploads/")
        let loc = try #require(post.header("Location"))
        let fd = try rawConnect(port: server.port)
        rawSend(fd, Array("PATCH \(loc) HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: \(big.count)\r\n\r\n".utf8))
        rawSend(fd, Array(big[0..<(1 << 20)]))
        try await Task.sleep(nanoseconds: 300_000_000)
        server.kill9()
        close(fd)

        // Nothing partial is visible as a blob.
        let blobFiles = (try? FileManager.default.subpathsOfDirectory(atPath: storage + "/blobs")) ?? []
        #expect(!blobFiles.contains { $0.contains(String(bigDigest.dropFirst(7))) })

        server = try ServeProcess(storage: storage)
        #expect(try await http("HEAD", "\(server.base)/v2/crash/repo/blobs/\(bigDigest)").status == 404)
        let again = try await http("GET", "\(server.base)/v2/crash/repo/blobs/\(keptDigest)")
        #expect(again.status == 200 && again.body == kept)
        #expect(try await http("GET", "\(server.base)/v2/crash/repo/manifests/v1").header("Docker-Content-Digest") == manifest)

        // The session survived on disk: resume from where the bytes stopped.
        let status = try await http("GET", "\(server.base)\(loc)")
        #expect(status.status == 204)
        let have = Int(status.header("Range")?.split(separator: "-").last ?? "").map { $0 + 1 } ?? 0
        #expect(have > 0 && have <= 1 << 20)
        let rest = try await http("PUT", "\(server.base)\(loc)?digest=\(bigDigest)", body: Data(big[have...]),
                                  headers: ["Content-Type": "application/octet-stream", "Content-Range": "\(have)-\(big.count - 1)"])
        #expect(rest.status == 201)
        let whole = try await http("GET", "\(server.base)/v2/crash/repo/blobs/\(bigDigest)")
        #expect(whole.body == Data(big))
    }

    @Test func oneJSONLogLinePerRequest() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-log-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try ServeProcess(storage: dir.path, extra: ["--log-format", "json"])
        _ = try await http("GET", "\(server.base)/v2/")
        _ = try await http("GET", "\(server.base)/v2/nope/manifests/latest")
        let lines = server.stopAndReadLog().split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(lines.count == 2)
        let entries = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(entries.map { $0["status"] as? Int } == [200, 404])
        #expect(entries.last?["path"] as? String == "/v2/nope/manifests/latest")
        #expect(entries.last?["method"] as? String == "GET")
    }

    @Test func gcCommandDryRunThenRemove() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-gc-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try ServeProcess(storage: dir.path)
        _ = try await pushImage(server.base, "g", tag: "v1")
        let loose = try await pushBlob(server.base, "g", Data("loose".utf8))
        server.stop()
        let bin = try #require(dockbuildBinary())
        let (s1, dry) = try run(bin, ["registry", "gc", "--storage", dir.path, "--dry-run"])
        #expect(s1 == 0 && dry.contains("would remove blob \(loose)"))
        let (s2, real) = try run(bin, ["registry", "gc", "--storage", dir.path])
        #expect(s2 == 0 && real.contains("removed 1 blobs"))
        let (_, again) = try run(bin, ["registry", "gc", "--storage", dir.path, "--dry-run"])
        #expect(again.contains("would remove 0 blobs"))
    }
}
