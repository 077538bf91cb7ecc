import Foundation
import OCI
import Testing
@testable import RegistryServer

/// Two `registry serve` processes on one bucket behave as one registry (issue #23): upload
/// sessions, tags and links live only in S3, so any replica continues what another started,
/// and a replica killed mid-upload loses nothing committed.
@Suite("registry replicas on one S3 bucket")
struct S3ReplicaTests {
    /// The absolute URL of an upload's `Location` answer.
    static func location(_ r: Reply, _ base: String) throws -> String {
        let loc = try #require(r.header("Location"))
        return loc.hasPrefix("http") ? loc : base + loc
    }

    /// The same upload path on another replica.
    static func on(_ base: String, _ url: String) -> String {
        guard let r = url.range(of: "/v2/") else { return url }
        return base + url[r.lowerBound...]
    }

    static func withDigest(_ url: String, _ d: String) -> String { url + (url.contains("?") ? "&" : "?") + "digest=\(d)" }

    @Test func twoReplicasOnOneBucketServeAsOneRegistry() async throws {
        let c = try S3TestCluster.config()
        let cfg = try S3ServeTests.configFile(c)
        let unused = "/var/tmp/rs-s3-unused-\(getpid())-\(UUID().uuidString)"
        defer {
            unlink(cfg)
            try? FileManager.default.removeItem(atPath: unused)
            try? S3Driver(config: c).delete("")
        }
        let a = try ServeProcess(storage: unused, extra: ["--config", cfg])
        defer { a.stop() }
        let b = try ServeProcess(storage: unused, extra: ["--config", cfg])
        defer { b.stop() }

        // push via A, pull via B
        let (manifest, manifestDigest) = try await pushImage(a.base, "rep/app", tag: "v1", seed: "replica")
        let pulled = try await http("GET", "\(b.base)/v2/rep/app/manifests/v1", headers: ["Accept": ParsedManifest.ociManifest])
        #expect(pulled.status == 200 && pulled.body == manifest)
        let parsed = try ParsedManifest.parse([UInt8](manifest), contentType: ParsedManifest.ociManifest)
        for blob in parsed.blobs {
            let r = try await http("GET", "\(b.base)/v2/rep/app/blobs/\(blob)")
            #expect(r.status == 200 && digest(r.body) == blob.description)
        }

        // a chunked upload started on A (POST + PATCH), continued and completed on B (PATCH + PUT)
        let data = Data((0..<(7 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ ($0 >> 10)) })
        let d = digest(data)
        let cut = 3 << 20
        let post = try await http("POST", "\(a.base)/v2/rep/app/blobs/uploads/")
        #expect(post.status == 202)
        let p1 = try await http("PATCH", try Self.location(post, a.base), body: data.prefix(cut), headers: ["Content-Range": "0-\(cut - 1)"])
        #expect(p1.status == 202 && p1.header("Range") == "0-\(cut - 1)")
        let onB = Self.on(b.base, try Self.location(p1, a.base))
        let status = try await http("GET", onB)
        #expect(status.status == 204 && status.header("Range") == "0-\(cut - 1)")
        let p2 = try await http("PATCH", onB, body: data[cut..<(6 << 20)], headers: ["Content-Range": "\(cut)-\((6 << 20) - 1)"])
        #expect(p2.status == 202 && p2.header("Range") == "0-\((6 << 20) - 1)")
        let put = try await http("PUT", Self.withDigest(try Self.location(p2, b.base), d), body: data.suffix(from: 6 << 20),
                                 headers: ["Content-Range": "\(6 << 20)-\(data.count - 1)"])
        #expect(put.status == 201, "\(String(decoding: put.body, as: UTF8.self))")
        let back = try await http("GET", "\(a.base)/v2/rep/app/blobs/\(d)")
        #expect(back.status == 200 && back.body == data)

        // a tag pushed (and moved) via A is served by B at once
        let (m2, d2) = try await pushImage(a.base, "rep/app", tag: "v2", seed: "second")
        let t2 = try await http("GET", "\(b.base)/v2/rep/app/manifests/v2", headers: ["Accept": ParsedManifest.ociManifest])
        #expect(t2.status == 200 && t2.body == m2 && t2.header("Docker-Content-Digest") == d2)
        let moved = try await http("PUT", "\(a.base)/v2/rep/app/manifests/v1", body: m2, headers: ["Content-Type": ParsedManifest.ociManifest])
        #expect(moved.status == 201)
        #expect(try await http("HEAD", "\(b.base)/v2/rep/app/manifests/v1").header("Docker-Content-Digest") == d2)
        let tags = try await http("GET", "\(b.base)/v2/rep/app/tags/list")
        #expect((tags.json?["tags"] as? [String]) == ["v1", "v2"])
        #expect(try await http("GET", "\(b.base)/v2/rep/app/manifests/\(manifestDigest)").status == 200)

        // B has the manifest's bytes cached; a delete through A shows on B at once anyway
        #expect(try await http("GET", "\(b.base)/v2/rep/app/manifests/\(d2)").status == 200)
        #expect(try await http("DELETE", "\(a.base)/v2/rep/app/manifests/\(d2)").status == 202)
        #expect(try await http("GET", "\(b.base)/v2/rep/app/manifests/\(d2)").status == 404)
        #expect(try await http("GET", "\(b.base)/v2/rep/app/manifests/v1").status == 404)
        #expect(try await http("GET", "\(b.base)/v2/rep/app/manifests/sha256:nothex").status == 400)
    }

    @Test func killNineOfAReplicaMidUploadLosesNothingCommitted() async throws {
        let c = try S3TestCluster.config()
        let cfg = try S3ServeTests.configFile(c)
        let unused = "/var/tmp/rs-s3-unused-\(getpid())-\(UUID().uuidString)"
        defer {
            unlink(cfg)
            try? FileManager.default.removeItem(atPath: unused)
            try? S3Driver(config: c).delete("")
        }
        let a = try ServeProcess(storage: unused, extra: ["--config", cfg])
        defer { a.stop() }
        let b = try ServeProcess(storage: unused, extra: ["--config", cfg])
        defer { b.stop() }

        let kept = Data("committed before the crash".utf8)
        let keptDigest = try await pushBlob(a.base, "rep/crash", kept)
        let (manifest, manifestDigest) = try await pushImage(a.base, "rep/crash", tag: "v1", seed: "crash")

        // An upload on A with a first chunk committed, then a PATCH announcing 24 MiB of which
        // 12 MiB arrive (more than one multipart part) before A is killed.
        let big = [UInt8]((0..<(24 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ ($0 >> 13)) })
        let bigDigest = digest(Data(big))
        let post = try await http("POST", "\(a.base)/v2/rep/crash/blobs/uploads/")
        let first = try await http("PATCH", try Self.location(post, a.base), body: Data(big[0..<4096]), headers: ["Content-Range": "0-4095"])
        #expect(first.status == 202)
        let loc = try Self.location(first, a.base)
        let path = String(loc[try #require(loc.range(of: "/v2/")).lowerBound...])
        let fd = try rawConnect(port: a.port)
        rawSend(fd, Array("PATCH \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Range: 4096-\(big.count - 1)\r\nContent-Length: \(big.count - 4096)\r\n\r\n".utf8))
        rawSend(fd, Array(big[4096..<(12 << 20)]))
        try await Task.sleep(nanoseconds: 1_500_000_000)
        a.kill9()
        close(fd)

        // B serves everything committed
        let again = try await http("GET", "\(b.base)/v2/rep/crash/blobs/\(keptDigest)")
        #expect(again.status == 200 && again.body == kept)
        let m = try await http("GET", "\(b.base)/v2/rep/crash/manifests/v1", headers: ["Accept": ParsedManifest.ociManifest])
        #expect(m.status == 200 && m.body == manifest && m.header("Docker-Content-Digest") == manifestDigest)
        for blob in try ParsedManifest.parse([UInt8](manifest), contentType: ParsedManifest.ociManifest).blobs {
            #expect(try await http("HEAD", "\(b.base)/v2/rep/crash/blobs/\(blob)").status == 200)
        }

        // The interrupted upload's bytes are nowhere under its digest, and the session holds
        // only what was committed before the cut PATCH.
        #expect(try await http("HEAD", "\(b.base)/v2/rep/crash/blobs/\(bigDigest)").status == 404)
        let driver = try S3Driver(config: c)
        #expect(driver.stat(RegistryStore.blobPath(try Digest(parsing: bigDigest))) == nil)
        let onB = Self.on(b.base, loc)
        let status = try await http("GET", onB)
        #expect(status.status == 204 && status.header("Range") == "0-4095")
        // Completing it with the wrong content is refused, and nothing becomes visible.
        let wrong = try await http("PUT", Self.withDigest(onB, bigDigest))
        #expect(wrong.status == 400)
        #expect(try await http("HEAD", "\(b.base)/v2/rep/crash/blobs/\(bigDigest)").status == 404)

        // A fresh upload of the same blob through B works.
        let retry = try await http("POST", "\(b.base)/v2/rep/crash/blobs/uploads/?digest=\(bigDigest)", body: Data(big))
        #expect(retry.status == 201)
        #expect(try await http("GET", "\(b.base)/v2/rep/crash/blobs/\(bigDigest)").body == Data(big))
    }

    /// A GET by tag costs one S3 request once the manifest's bytes are cached (the tag; a tag
    /// never outlives its revision), yet a tag moved or a manifest deleted through another
    /// replica shows at once; a manifest whose body has no `mediaType` still gets the media
    /// type its PUT gave, from the revision link.
    @Test func aCachedGetByTagCostsOneS3RequestAndStaysCurrent() throws {
        let c = try S3TestCluster.config()
        let driverA = try S3Driver(config: c), driverB = try S3Driver(config: c)
        defer { try? driverA.delete("") }
        let a = RegistryStore(driver: driverA), b = RegistryStore(driver: driverB)
        func manifest(_ seed: String, declared: Bool) throws -> ([UInt8], ParsedManifest) {
            var obj: [String: Any] = [
                "schemaVersion": 2,
                "config": ["mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                           "digest": Digest.compute(Data(seed.utf8)).description],
                "layers": [[String: Any]](),
            ]
            if declared { obj["mediaType"] = ParsedManifest.dockerManifest }
            let bytes = [UInt8](try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]))
            return (bytes, try ParsedManifest.parse(bytes, contentType: ParsedManifest.dockerManifest))
        }
        let (b1, m1) = try manifest("one", declared: true)
        let d1 = try a.putManifest("rep/one", bytes: b1, manifest: m1, tag: "v1")
        #expect(try b.getManifest("rep/one", "v1")?.digest == d1)
        var before = driverB.client.requestsSent.load(ordering: .relaxed)
        let cached = try b.getManifest("rep/one", "v1")
        #expect(driverB.client.requestsSent.load(ordering: .relaxed) - before == 1)
        #expect(cached?.digest == d1 && cached?.mediaType == ParsedManifest.dockerManifest)
        #expect(try cached?.content.readAll() == b1)

        // moved through A: B serves the new target at once
        let (b2, m2) = try manifest("two", declared: false)
        let d2 = try a.putManifest("rep/one", bytes: b2, manifest: m2, tag: "v1")
        #expect(try b.getManifest("rep/one", "v1")?.digest == d2)
        before = driverB.client.requestsSent.load(ordering: .relaxed)
        let undeclared = try b.getManifest("rep/one", "v1")
        #expect(driverB.client.requestsSent.load(ordering: .relaxed) - before == 2)
        #expect(undeclared?.mediaType == ParsedManifest.dockerManifest)

        // deleted through A (tag v1 and v2 point at it): gone from B by tag and by digest
        _ = try a.putManifest("rep/one", bytes: b2, manifest: m2, tag: "v2")
        #expect(try a.deleteManifest("rep/one", d2))
        #expect(try b.getManifest("rep/one", "v1") == nil)
        #expect(try b.getManifest("rep/one", "v2") == nil)
        #expect(try b.getManifest("rep/one", d2.description) == nil)
        #expect(a.tags("rep/one").isEmpty)
        #expect(try b.getManifest("rep/one", d1.description)?.digest == d1)
    }
}
