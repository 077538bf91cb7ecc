import Foundation
import OCI
import Registry
import Synchronization
import Testing
@testable import RegistryServer

/// Collects a blob in memory for `RegistryClient.fetchBlob`.
final class MemoryBlobWriter: BlobWriter, @unchecked Sendable {
    var bytes = Data()
    func write(_ b: UnsafeRawBufferPointer) throws { bytes.append(contentsOf: b) }
    func abort() {}
}

/// distribution's `storage.redirect` on S3 (issue #23): blob GETs answer 307 to a presigned
/// radosgw URL, so the bytes flow from the bucket to the client.
@Suite("registry blob redirects to presigned S3 URLs")
struct S3RedirectTests {
    @Test func blobGETsRedirectToPresignedURLsThatClientsFollow() async throws {
        let c = try S3TestCluster.config()
        let cfg = try S3ServeTests.configFile(c, redirect: true)
        let unused = "/var/tmp/rs-s3-unused-\(getpid())-\(UUID().uuidString)"
        defer {
            unlink(cfg)
            try? FileManager.default.removeItem(atPath: unused)
            try? S3Driver(config: c).delete("")
        }
        let serve = try ServeProcess(storage: unused, extra: ["--config", cfg])
        defer { serve.stop() }
        let blob = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })
        let d = try await pushBlob(serve.base, "redir/app", blob)

        let r = try await http("GET", "\(serve.base)/v2/redir/app/blobs/\(d)")
        #expect(r.status == 307 && r.header("Docker-Content-Digest") == d)
        let location = try #require(r.header("Location"))
        #expect(location.hasPrefix("\(c.endpoint)/\(c.bucket)/\(c.rootDirectory)/blobs/sha256/"), "\(location)")
        #expect(location.contains("X-Amz-Algorithm=AWS4-HMAC-SHA256") && location.contains("X-Amz-Expires=1200")
                && location.contains("X-Amz-Signature=") && !location.contains(c.secretKey))
        // the presigned URL works with no credentials, for this object only and only for GET
        let direct = try await http("GET", location)
        #expect(direct.status == 200 && direct.body == blob)
        let ranged = try await http("GET", location, headers: ["Range": "bytes=100-199"])
        #expect(ranged.status == 206 && ranged.body == blob[100..<200])
        let other = location.replacingOccurrences(of: String(d.dropFirst(7)), with: String(repeating: "0", count: 64))
        #expect(try await http("GET", other).status == 403)
        #expect(try await http("DELETE", location).status == 403)
        // HEAD is answered by the registry itself
        let head = try await http("HEAD", "\(serve.base)/v2/redir/app/blobs/\(d)")
        #expect(head.status == 200 && head.header("Content-Length") == String(blob.count))

        // curl following the redirect
        guard let curl = which("curl") else { throw RegistryServerError.invalidConfiguration("curl is not installed (make deps)") }
        let out = "/var/tmp/rs-redir-\(getpid())-\(UUID().uuidString)"
        defer { unlink(out) }
        let (status, log) = try run(curl, ["-sSfL", "-o", out, "\(serve.base)/v2/redir/app/blobs/\(d)"])
        #expect(status == 0, "\(log)")
        #expect(FileManager.default.contents(atPath: out) == blob)

        // our registry client follows it too (and sends no registry credentials to S3)
        let client = RegistryClient(registry: "127.0.0.1:\(serve.port)", credentials: .none)
        let writer = try await client.fetchBlob("redir/app", try Digest(parsing: d), expectedSize: Int64(blob.count)) { MemoryBlobWriter() }
        #expect((writer as? MemoryBlobWriter)?.bytes == blob)
    }

    @Test func redirectDisableKeepsServingThroughTheRegistry() async throws {
        let c = try S3TestCluster.config()
        let cfg = try S3ServeTests.configFile(c, redirect: false)
        let unused = "/var/tmp/rs-s3-unused-\(getpid())-\(UUID().uuidString)"
        defer {
            unlink(cfg)
            try? FileManager.default.removeItem(atPath: unused)
            try? S3Driver(config: c).delete("")
        }
        #expect(try String(contentsOfFile: cfg, encoding: .utf8).contains("disable: true"))
        let serve = try ServeProcess(storage: unused, extra: ["--config", cfg])
        defer { serve.stop() }
        let blob = Data("served by the registry".utf8)
        let d = try await pushBlob(serve.base, "redir/app", blob)
        let r = try await http("GET", "\(serve.base)/v2/redir/app/blobs/\(d)")
        #expect(r.status == 200 && r.body == blob && r.header("Location") == nil)
    }

    @Test func presignedURLsMatchAWSsDocumentedExample() {
        // The GET example of AWS's SigV4 query-string authentication documentation.
        let c = S3Config(endpoint: "https://s3.amazonaws.com", region: "us-east-1", bucket: "examplebucket",
                         accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                         forcePathStyle: false)
        let url = S3Presign.url(S3Client(config: c), key: "test.txt", expires: 86400, now: Date(timeIntervalSince1970: 1_369_353_600))
        #expect(url == "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                + "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z"
                + "&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                + "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    }
}
