import Foundation
import Testing
import OCI
@testable import RegistryServer

/// A registry served in-process on a free loopback port, over a temp directory.
/// Where a `TestRegistry` stores: a temporary directory, or a fresh root directory in the
/// Ceph bucket of `S3TestCluster` (skipped where there is none).
enum ServedStorage: String, CaseIterable, CustomTestStringConvertible {
    case filesystem, s3
    var testDescription: String { rawValue }
}

final class TestRegistry: @unchecked Sendable {
    let dir: URL
    let server: RegistryServer
    private var s3: S3Config?
    var base: String { "\(scheme)://127.0.0.1:\(server.port)" }

    var scheme = "http"

    init(htpasswd: String? = nil, tokenAuth: Bool = false, readOnly: Bool = false, tls: (cert: String, key: String)? = nil,
         externalToken: (realm: String, service: String, issuer: String, rootCertBundle: String)? = nil,
         storage: ServedStorage = .filesystem) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-test-\(UUID().uuidString)")
        var cfg = RegistryServerConfiguration(root: dir.path + "/storage")
        if storage == .s3 {
            s3 = try S3TestCluster.config()
            cfg.s3 = s3
        }
        cfg.address = "127.0.0.1:0"
        cfg.logFormat = .none
        cfg.readOnly = readOnly
        cfg.tokenAuth = tokenAuth
        if let htpasswd {
            let file = dir.path + "/htpasswd"
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try htpasswd.write(toFile: file, atomically: true, encoding: .utf8)
            cfg.htpasswd = file
        }
        cfg.externalToken = externalToken
        if let tls {
            cfg.tlsCertificate = tls.cert
            cfg.tlsKey = tls.key
            scheme = "https"
        }
        server = try RegistryServer(configuration: cfg)
        try server.start()
    }

    func stop() {
        server.stop()
        try? FileManager.default.removeItem(at: dir)
        if let s3 { try? S3Driver(config: s3).delete("") }
    }
}

struct Reply {
    var status: Int
    var headers: [String: String]
    var body: Data
    func header(_ name: String) -> String? {
        headers.first { $0.key.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
    var json: [String: Any]? { try? JSONSerialization.jsonObject(with: body) as? [String: Any] }
    var errorCode: String? { ((json?["errors"] as? [[String: Any]])?.first?["code"]) as? String }
}

/// HTTP through the real `curl` (FoundationNetworking's URLSession stalls on 401 challenges).
func http(_ method: String, _ url: String, body: Data? = nil, headers: [String: String] = [:], cacert: String? = nil) async throws -> Reply {
    guard let curl = which("curl") else { throw RegistryServerError.invalidConfiguration("curl is not installed (make deps)") }
    let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("rs-http-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: tmp) }
    var args = ["-s", "-S", "-g", "-D", tmp.path + "/h", "-o", tmp.path + "/b", "-X", method]
    if method == "HEAD" { args = ["-s", "-S", "-g", "-I", "-D", tmp.path + "/h", "-o", tmp.path + "/b"] }
    if let cacert { args += ["--cacert", cacert] }
    for (k, v) in headers { args += ["-H", "\(k): \(v)"] }
    if let body {
        try body.write(to: tmp.appendingPathComponent("in"))
        args += ["--data-binary", "@" + tmp.path + "/in"]
        if headers["Content-Type"] == nil { args += ["-H", "Content-Type: application/octet-stream"] }
    }
    args.append(url)
    let (status, out) = try run(curl, args)
    guard status == 0 else { throw RegistryServerError.invalidConfiguration("curl \(method) \(url) failed: \(out)") }
    let raw = String(decoding: (try? Data(contentsOf: tmp.appendingPathComponent("h"))) ?? Data(), as: UTF8.self)
    // Several blocks when the server sent 100 Continue: the last one is the answer.
    let blocks = raw.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }
    guard let last = blocks.last else { throw RegistryServerError.invalidConfiguration("no response headers from \(url)") }
    let lines = last.components(separatedBy: "\r\n")
    let code = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
    var hs: [String: String] = [:]
    for l in lines.dropFirst() {
        guard let c = l.firstIndex(of: ":") else { continue }
        hs[String(l[..<c])] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
    }
    let data = (try? Data(contentsOf: tmp.appendingPathComponent("b"))) ?? Data()
    return Reply(status: code, headers: hs, body: data)
}

func digest(_ data: Data) -> String { Digest.compute(data).description }

/// Pushes a blob in one POST.
@discardableResult
func pushBlob(_ base: String, _ repo: String, _ data: Data) async throws -> String {
    let d = digest(data)
    let r = try await http("POST", "\(base)/v2/\(repo)/blobs/uploads/?digest=\(d)", body: data,
                           headers: ["Content-Type": "application/octet-stream"])
    guard r.status == 201 else { throw RegistryServerError.invalidConfiguration("blob push got \(r.status)") }
    return d
}

/// A small image: config + one layer, returns (manifest bytes, digest, config digest, layer digest).
func pushImage(_ base: String, _ repo: String, tag: String, seed: String = "a", extra: [String: Any] = [:]) async throws -> (Data, String) {
    let layer = Data("layer-\(seed)".utf8)
    let config = Data("{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"\(seed)\"}".utf8)
    let ld = try await pushBlob(base, repo, layer)
    let cd = try await pushBlob(base, repo, config)
    var m: [String: Any] = [
        "schemaVersion": 2, "mediaType": ParsedManifest.ociManifest,
        "config": ["mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.count],
        "layers": [["mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": layer.count]],
    ]
    for (k, v) in extra { m[k] = v }
    let bytes = try JSONSerialization.data(withJSONObject: m, options: [.sortedKeys])
    let r = try await http("PUT", "\(base)/v2/\(repo)/manifests/\(tag)", body: bytes,
                           headers: ["Content-Type": ParsedManifest.ociManifest])
    guard r.status == 201 else { throw RegistryServerError.invalidConfiguration("manifest push got \(r.status): \(String(decoding: r.body, as: UTF8.self))") }
    return (bytes, digest(bytes))
}

/// Runs a program, returns (status, stdout+stderr).
@discardableResult
func run(_ path: String, _ args: [String]) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let out = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: out, as: UTF8.self))
}

func which(_ tool: String) -> String? {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin", "/usr/sbin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(tool)") {
        return "\(dir)/\(tool)"
    }
    return nil
}

/// The `dockbuild` binary next to the test bundle (built by `swift build --build-tests`).
func dockbuildBinary() -> String? {
    var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? "").deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("dockbuild").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    let cwd = FileManager.default.currentDirectoryPath + "/.build/debug/dockbuild"
    return FileManager.default.isExecutableFile(atPath: cwd) ? cwd : nil
}
