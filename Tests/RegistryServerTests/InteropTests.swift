import Foundation
import OCI
import Testing
@testable import RegistryServer

/// Writes a one-layer OCI image layout tagged `v1`; returns the manifest digest.
func makeOCILayout(at dir: URL, seed: String) throws -> String {
    let fm = FileManager.default
    let blobs = dir.appendingPathComponent("blobs/sha256")
    try fm.createDirectory(at: blobs, withIntermediateDirectories: true)
    func put(_ data: Data) throws -> (String, Int) {
        let d = Digest.compute(data)
        try data.write(to: blobs.appendingPathComponent(d.encoded))
        return (d.description, data.count)
    }
    // A real gzip'd tar layer made with GNU tar.
    let src = dir.appendingPathComponent("src")
    try fm.createDirectory(at: src, withIntermediateDirectories: true)
    try Data("hello from \(seed)\n".utf8).write(to: src.appendingPathComponent("hello.txt"))
    guard let tar = which("tar") else { throw RegistryServerError.invalidConfiguration("tar is not installed") }
    let tgz = dir.appendingPathComponent("layer.tgz").path
    let (st, out) = try run(tar, ["-czf", tgz, "-C", src.path, "--mtime=@0", "--owner=0", "--group=0", "hello.txt"])
    guard st == 0 else { throw RegistryServerError.invalidConfiguration("tar failed: \(out)") }
    let (ld, ls) = try put(try Data(contentsOf: URL(fileURLWithPath: tgz)))
    try fm.removeItem(at: src)
    try fm.removeItem(atPath: tgz)
    let config = try JSONSerialization.data(withJSONObject: [
        "architecture": "amd64", "os": "linux", "config": ["Env": ["SEED=\(seed)"]],
        "rootfs": ["type": "layers", "diff_ids": ["sha256:" + String(repeating: "0", count: 64)]],
    ], options: [.sortedKeys])
    let (cd, cs) = try put(config)
    let manifest = try JSONSerialization.data(withJSONObject: [
        "schemaVersion": 2, "mediaType": ParsedManifest.ociManifest,
        "config": ["mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs],
        "layers": [["mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ls]],
    ], options: [.sortedKeys])
    let (md, ms) = try put(manifest)
    let index = try JSONSerialization.data(withJSONObject: [
        "schemaVersion": 2, "mediaType": ParsedManifest.ociIndex,
        "manifests": [["mediaType": ParsedManifest.ociManifest, "digest": md, "size": ms,
                       "annotations": ["org.opencontainers.image.ref.name": "v1"]]],
    ], options: [.sortedKeys])
    try index.write(to: dir.appendingPathComponent("index.json"))
    try Data("{\"imageLayoutVersion\":\"1.0.0\"}".utf8).write(to: dir.appendingPathComponent("oci-layout"))
    return md
}

@Suite("interop with skopeo", .serialized)
struct InteropTests {
    func skopeo() throws -> String {
        guard let s = which("skopeo") else {
            throw RegistryServerError.invalidConfiguration("skopeo is not installed; `make deps` installs it")
        }
        return s
    }

    @Test func skopeoPushesAndPullsWithTheSameDigests() async throws {
        let skopeo = try skopeo()
        let reg = try TestRegistry()
        defer { reg.stop() }
        let src = reg.dir.appendingPathComponent("src-layout")
        let manifestDigest = try makeOCILayout(at: src, seed: "skopeo")
        let host = "127.0.0.1:\(reg.server.port)"
        let (s1, o1) = try run(skopeo, ["--insecure-policy", "copy", "--dest-tls-verify=false",
                                        "oci:\(src.path):v1", "docker://\(host)/interop/img:v1"])
        #expect(s1 == 0, "skopeo push: \(o1)")
        let m = try await http("GET", "\(reg.base)/v2/interop/img/manifests/v1", headers: ["Accept": ParsedManifest.ociManifest])
        #expect(m.header("Docker-Content-Digest") == manifestDigest)

        let (s2, raw) = try run(skopeo, ["inspect", "--raw", "--tls-verify=false", "docker://\(host)/interop/img:v1"])
        #expect(s2 == 0)
        #expect(Digest.compute(Data(raw.utf8)).description == manifestDigest)

        let dst = reg.dir.appendingPathComponent("dst-layout")
        let (s3, o3) = try run(skopeo, ["--insecure-policy", "copy", "--src-tls-verify=false",
                                        "docker://\(host)/interop/img:v1", "oci:\(dst.path):v1"])
        #expect(s3 == 0, "skopeo pull: \(o3)")
        let pulled = try JSONSerialization.jsonObject(with: Data(contentsOf: dst.appendingPathComponent("index.json"))) as? [String: Any]
        let desc = (pulled?["manifests"] as? [[String: Any]])?.first
        #expect(desc?["digest"] as? String == manifestDigest)
    }

    @Test func skopeoLogsInThroughTokenAuth() async throws {
        let skopeo = try skopeo()
        let reg = try TestRegistry(htpasswd: try htpasswdLine("ci", "pa55"), tokenAuth: true)
        defer { reg.stop() }
        let src = reg.dir.appendingPathComponent("src-layout")
        let manifestDigest = try makeOCILayout(at: src, seed: "token")
        let host = "127.0.0.1:\(reg.server.port)"
        let (denied, _) = try run(skopeo, ["--insecure-policy", "copy", "--dest-tls-verify=false",
                                           "oci:\(src.path):v1", "docker://\(host)/secure/img:v1"])
        #expect(denied != 0)
        let (s1, o1) = try run(skopeo, ["--insecure-policy", "copy", "--dest-tls-verify=false", "--dest-creds", "ci:pa55",
                                        "oci:\(src.path):v1", "docker://\(host)/secure/img:v1"])
        #expect(s1 == 0, "skopeo push with token auth: \(o1)")
        let (s2, raw) = try run(skopeo, ["inspect", "--raw", "--tls-verify=false", "--creds", "ci:pa55", "docker://\(host)/secure/img:v1"])
        #expect(s2 == 0)
        #expect(Digest.compute(Data(raw.utf8)).description == manifestDigest)
    }
}
