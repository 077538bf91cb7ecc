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

    @Test func s3FlagsNeedBucketAndEndpointAndTakeKeysFromTheEnvironment() throws {
        let env = ["AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "ENVSECRET"]
        #expect(try RegistryServeSettings.s3(flags: S3Flags(), environment: env) == nil)
        let fromEnv = try #require(try RegistryServeSettings.s3(flags: S3Flags(endpoint: "http://127.0.0.1:1", bucket: "b"), environment: env))
        #expect(fromEnv.accessKey == "ENVKEY" && fromEnv.secretKey == "ENVSECRET" && fromEnv.forcePathStyle && fromEnv.region == "us-east-1")
        let fromFlags = try #require(try RegistryServeSettings.s3(
            flags: S3Flags(endpoint: "http://localhost:1", region: "r1", bucket: "b", accessKey: "K", secretKey: "S", virtualHost: true), environment: env))
        #expect(fromFlags.accessKey == "K" && fromFlags.secretKey == "S" && !fromFlags.forcePathStyle && fromFlags.region == "r1")
        #expect(throws: RegistryServerError.self) { try RegistryServeSettings.s3(flags: S3Flags(bucket: "b"), environment: env) }
        do {
            _ = try RegistryServeSettings.s3(flags: S3Flags(endpoint: "http://127.0.0.1:1", bucket: "b"), environment: [:])
            Issue.record("S3 without credentials accepted")
        } catch {
            #expect("\(error)".contains("--s3-access-key and --s3-secret-key-file, or set AWS_ACCESS_KEY_ID"), "\(error)")
        }
        // with a config file: flags fill in and override its keys (here the credentials it lacks)
        let path = "/var/tmp/rs-s3flagcfg-\(getpid())-\(UUID().uuidString).yml"
        try "version: 0.1\nstorage:\n  s3:\n    regionendpoint: http://127.0.0.1:1\n    bucket: old\n    forcepathstyle: true\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        let s = try RegistryServeSettings.load(file: path, environment: [:], s3Flags: S3Flags(bucket: "new", accessKey: "K", secretKey: "S", virtualHost: true))
        #expect(s.s3?.bucket == "new" && s.s3?.accessKey == "K" && s.s3?.secretKey == "S" && s.s3?.forcePathStyle == false)
    }

    /// radosgw answers `BUCKET.localhost:PORT` (ceph-dev.sh sets `rgw dns name = localhost`;
    /// curl resolves `*.localhost` to loopback itself).
    @Test func virtualHostAddressingPushesAndPulls() async throws {
        let c = try S3TestCluster.config()
        let conf = (try? String(contentsOfFile: S3TestCluster.stateDir + "/ceph.conf", encoding: .utf8)) ?? ""
        guard conf.contains("rgw dns name = localhost") else {
            // a cluster started by an older ceph-dev.sh, reused: it answers path style only
            try Test.cancel("the running Ceph in \(S3TestCluster.stateDir) predates rgw dns name; restart it (scripts/ceph-dev.sh stop)")
        }
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
