import Foundation
import Testing
@testable import RegistryServer

/// `registry serve --config` with distribution's `storage.s3` on the Ceph radosgw of
/// `scripts/ceph-dev.sh` (issue #23): images pushed and pulled, state kept in the bucket only.
@Suite("registry serve on S3")
struct S3ServeTests {
    /// distribution's config for the cluster; blob GETs are served through the registry
    /// (`redirect.disable: true`) unless `redirect`.
    static func configFile(_ c: S3Config, accessKey: String? = nil, redirect: Bool = false) throws -> String {
        let path = "/var/tmp/rs-s3cfg-\(getpid())-\(UUID().uuidString).yml"
        let yaml = """
            version: 0.1
            storage:
              s3:
                region: \(c.region)
                regionendpoint: \(c.endpoint)
                bucket: \(c.bucket)
                accesskey: \(accessKey ?? c.accessKey)
                secretkey: \(c.secretKey)
                rootdirectory: /\(c.rootDirectory)
                forcepathstyle: true
              redirect:
                disable: \(!redirect)
              delete:
                enabled: true
            """
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func pushAndPullThroughServeOnS3() async throws {
        let c = try S3TestCluster.config()
        let cfg = try Self.configFile(c)
        let unused = "/var/tmp/rs-s3-unused-\(getpid())-\(UUID().uuidString)"
        defer {
            unlink(cfg)
            try? FileManager.default.removeItem(atPath: unused)
            try? S3Driver(config: c).delete("")
        }
        var serve = try ServeProcess(storage: unused, extra: ["--config", cfg])
        let (manifest, _) = try await pushImage(serve.base, "s3/app", tag: "v1", seed: "s3")

        // a chunked upload over S3's 5 MiB part minimum: the second PATCH appends to a stored object
        let big = Data((0..<(6 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ ($0 >> 12)) })
        let start = try await http("POST", "\(serve.base)/v2/s3/app/blobs/uploads/")
        #expect(start.status == 202)
        let loc = try #require(start.header("Location"))
        let url = loc.hasPrefix("http") ? loc : serve.base + loc
        let half = big.count / 2 + 12345
        let p1 = try await http("PATCH", url, body: big.prefix(half), headers: ["Content-Range": "0-\(half - 1)"])
        #expect(p1.status == 202)
        let loc2 = try #require(p1.header("Location"))
        let url2 = loc2.hasPrefix("http") ? loc2 : serve.base + loc2
        let p2 = try await http("PATCH", url2, body: big.suffix(from: half), headers: ["Content-Range": "\(half)-\(big.count - 1)"])
        #expect(p2.status == 202)
        let loc3 = try #require(p2.header("Location"))
        let url3 = (loc3.hasPrefix("http") ? loc3 : serve.base + loc3)
        let d = digest(big)
        let put = try await http("PUT", url3 + (url3.contains("?") ? "&" : "?") + "digest=\(d)")
        #expect(put.status == 201, "\(String(decoding: put.body, as: UTF8.self))")

        // a second server on the same bucket (a restart, or another replica) serves it all
        serve.stop()
        serve = try ServeProcess(storage: unused, extra: ["--config", cfg])
        defer { serve.stop() }
        let m = try await http("GET", "\(serve.base)/v2/s3/app/manifests/v1", headers: ["Accept": ParsedManifest.ociManifest])
        #expect(m.status == 200 && m.body == manifest)
        let b = try await http("GET", "\(serve.base)/v2/s3/app/blobs/\(d)")
        #expect(b.status == 200 && b.body == big)
        let tags = try await http("GET", "\(serve.base)/v2/s3/app/tags/list")
        #expect((tags.json?["tags"] as? [String]) == ["v1"])
    }

    /// Peak resident memory of a process (VmHWM), in bytes.
    static func peakMemory(_ pid: Int32) -> Int64 {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kb = Int64(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kb * 1024
    }

    @Test func blobGETsStreamRangesFromS3InsteadOfLoadingTheBlob() async throws {
        let c = try S3TestCluster.config()
        let cfg = try Self.configFile(c)
        let unused = "/var/tmp/rs-s3-unused-\(getpid())-\(UUID().uuidString)"
        defer {
            unlink(cfg)
            try? FileManager.default.removeItem(atPath: unused)
            try? S3Driver(config: c).delete("")
        }
        let serve = try ServeProcess(storage: unused, extra: ["--config", cfg])
        defer { serve.stop() }
        var big = Data(count: 48 << 20)
        big.withUnsafeMutableBytes { b in for i in stride(from: 0, to: b.count, by: 8) { b[i] = UInt8(truncatingIfNeeded: i >> 9) } }
        let d = try await pushBlob(serve.base, "s3/big", big)

        let before = Self.peakMemory(serve.process.processIdentifier)
        let whole = try await http("GET", "\(serve.base)/v2/s3/big/blobs/\(d)")
        #expect(whole.status == 200 && whole.body.count == big.count && whole.body == big)
        let tail = try await http("GET", "\(serve.base)/v2/s3/big/blobs/\(d)", headers: ["Range": "bytes=-100"])
        #expect(tail.status == 206 && tail.body == big.suffix(100))
        #expect(tail.header("Content-Range") == "bytes \(big.count - 100)-\(big.count - 1)/\(big.count)")
        let mid = try await http("GET", "\(serve.base)/v2/s3/big/blobs/\(d)", headers: ["Range": "bytes=1000000-1999999"])
        #expect(mid.status == 206 && mid.body == big[1_000_000..<2_000_000])
        let head = try await http("HEAD", "\(serve.base)/v2/s3/big/blobs/\(d)")
        #expect(head.status == 200 && head.header("Content-Length") == String(big.count))
        #expect(try await http("GET", "\(serve.base)/v2/s3/big/blobs/\(d)", headers: ["Range": "bytes=\(big.count)-"]).status == 416)
        // The 48 MiB went out in pieces: the server's peak memory hardly moved (loading the
        // blob would have raised it by the blob's size at least).
        let grew = Self.peakMemory(serve.process.processIdentifier) - before
        #expect(before > 0 && grew < 16 << 20, "peak memory grew by \(grew >> 20) MiB while serving a 48 MiB blob")
    }

    @Test func wrongCredentialsFailTheStartWithWhatToFix() throws {
        let c = try S3TestCluster.config()
        let cfg = try Self.configFile(c, accessKey: "NOSUCHKEY")
        defer { unlink(cfg) }
        do {
            let s = try ServeProcess(storage: "/var/tmp/rs-s3-unused", extra: ["--config", cfg])
            s.stop()
            Issue.record("serve started with wrong credentials")
        } catch {
            let text = "\(error)"
            #expect(text.contains("HTTP 403") && text.contains("AWS_ACCESS_KEY_ID"), "\(text)")
        }
    }

    @Test func missingBucketAndUnreachableEndpointAreNamed() throws {
        var c = try S3TestCluster.config()
        c.bucket = "no-such-bucket-\(getpid())"
        #expect(throws: RegistryServerError.self) { try S3Driver(config: c).checkBucket() }
        do { try S3Driver(config: c).checkBucket() } catch {
            #expect("\(error)".contains("bucket \(c.bucket) does not exist"), "\(error)")
        }
        var far = try S3TestCluster.config()
        far.endpoint = "http://127.0.0.1:9"  // discard port: nothing listens
        do { try S3Driver(config: far).checkBucket(); Issue.record("an unreachable endpoint answered") } catch {
            #expect("\(error)".contains("cannot reach the S3 endpoint http://127.0.0.1:9"), "\(error)")
        }
    }
}
