import Foundation
import Testing
@testable import RegistryServer

/// `registry serve --s3-*` (issue #23: S3 settings and credentials from flags) and virtual-host
/// addressing, through the real CLI against the Ceph radosgw of `scripts/ceph-dev.sh`.
@Suite("registry serve --s3-* flags")
struct S3FlagsTests {
    /// The secret key in a private file, for `--s3-secret-key-file`.
    static func secretFile(_ c: S3Config) throws -> String {
        let path = "/var/tmp/rs-s3secret-\(getpid())-\(UUID().uuidString)"
        try (c.secretKey + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func flags(_ c: S3Config, secret: String, endpoint: String? = nil) -> [String] {
        ["--s3-endpoint", endpoint ?? c.endpoint, "--s3-region", c.region, "--s3-bucket", c.bucket,
         "--s3-root-directory", c.rootDirectory, "--s3-access-key", c.accessKey, "--s3-secret-key-file", secret]
    }

    /// Pushes an image and a blob, reads them back (following a redirect of the blob GET to
    /// its presigned URL), and checks the blob is an object under the root directory.
    static func pushAndPull(_ serve: ServeProcess, _ c: S3Config) async throws {
        let (manifest, _) = try await pushImage(serve.base, "flags/app", tag: "v1", seed: "flags-\(UUID().uuidString)")
        let m = try await http("GET", "\(serve.base)/v2/flags/app/manifests/v1", headers: ["Accept": ParsedManifest.ociManifest])
        #expect(m.status == 200 && m.body == manifest)
        let blob = Data("blob through flags \(UUID().uuidString)".utf8)
        let d = try await pushBlob(serve.base, "flags/app", blob)
        var got = try await http("GET", "\(serve.base)/v2/flags/app/blobs/\(d)")
        if got.status == 307, let location = got.header("Location") {
            got = try await http("GET", location)
        }
        #expect(got.status == 200 && got.body == blob)
        // in the bucket, read back path-style with the driver itself
        let hex = d.split(separator: ":").last.map(String.init) ?? ""
        let driver = try S3Driver(config: c)
        #expect(driver.stat("blobs/sha256/\(hex.prefix(2))/\(hex)/data")?.size == Int64(blob.count))
    }

    @Test func serveOnS3FromFlagsAlone() async throws {
        let c = try S3TestCluster.config()
        let secret = try Self.secretFile(c)
        defer { unlink(secret); try? S3Driver(config: c).delete("") }
        let serve = try ServeProcess(storage: nil, extra: Self.flags(c, secret: secret))
        defer { serve.stop() }
        try await Self.pushAndPull(serve, c)
    }

    @Test func flagsOverrideTheConfigFile() async throws {
        let c = try S3TestCluster.config()
        var wrong = c
        wrong.bucket = "no-such-bucket-\(getpid())"
        let cfg = try S3ServeTests.configFile(wrong)
        defer { unlink(cfg); try? S3Driver(config: c).delete("") }
        // the file alone names a missing bucket: the start fails
        do {
            let s = try ServeProcess(storage: nil, extra: ["--config", cfg])
            s.stop()
            Issue.record("serve started on a missing bucket")
        } catch {
            #expect("\(error)".contains("does not exist"), "\(error)")
        }
        let serve = try ServeProcess(storage: nil, extra: ["--config", cfg, "--s3-bucket", c.bucket])
        defer { serve.stop() }
        try await Self.pushAndPull(serve, c)
    }

    @Test func storageAndS3FlagsExcludeEachOther() throws {
        do {
            let s = try ServeProcess(storage: "/var/tmp/rs-s3-unused", extra: ["--s3-bucket", "b", "--s3-endpoint", "http://127.0.0.1:9"])
            s.stop()
            Issue.record("serve started with --storage and --s3-bucket")
        } catch {
            let text = "\(error)"
            #expect(text.contains("--storage /var/tmp/rs-s3-unused") && text.contains("--s3-bucket") && text.contains("exclude each other"), "\(text)")
        }
    }

    /// radosgw answers `BUCKET.localhost:PORT` (ceph-dev.sh sets `rgw dns name = localhost`;
    /// curl resolves `*.localhost` to loopback itself).
    @Test func virtualHostAddressingPushesAndPulls() async throws {
        let c = try S3TestCluster.config()
        let secret = try Self.secretFile(c)
        defer { unlink(secret); try? S3Driver(config: c).delete("") }
        let endpoint = c.endpoint.replacingOccurrences(of: "127.0.0.1", with: "localhost")
        let serve = try ServeProcess(storage: nil, extra: Self.flags(c, secret: secret, endpoint: endpoint) + ["--s3-virtual-host"])
        defer { serve.stop() }
        try await Self.pushAndPull(serve, c)
        // blob GETs redirect to a presigned virtual-host URL
        let d = try await pushBlob(serve.base, "flags/app", Data("vhost".utf8))
        let r = try await http("GET", "\(serve.base)/v2/flags/app/blobs/\(d)")
        #expect(r.status == 307 && (r.header("Location") ?? "").hasPrefix(endpoint.replacingOccurrences(of: "://", with: "://\(c.bucket).")), "\(r.header("Location") ?? "no Location")")
    }
}
