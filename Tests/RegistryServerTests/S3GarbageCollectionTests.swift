import Foundation
import OCI
import Testing
@testable import RegistryServer

/// `registry gc --config` on S3 and the S3 readiness probe (issue #23), against the Ceph
/// radosgw of `scripts/ceph-dev.sh`.
@Suite("registry gc and health on S3")
struct S3GarbageCollectionTests {
    static func gc(_ args: [String]) throws -> (Int32, String) {
        guard let bin = dockbuildBinary() else {
            throw RegistryServerError.invalidConfiguration("dockbuild binary not found next to the tests; run `swift build --build-tests` first")
        }
        return try run(bin, ["registry", "gc"] + args)
    }

    @Test func gcOnS3SweepsWhatNothingReferencesWhileAReplicaServesPulls() async throws {
        let c = try S3TestCluster.config()
        let cfg = try S3ServeTests.configFile(c)
        let unused = "/var/tmp/rs-s3-unused-\(getpid())-\(UUID().uuidString)"
        let driver = try S3Driver(config: c)
        defer {
            unlink(cfg)
            try? FileManager.default.removeItem(atPath: unused)
            try? driver.delete("")
        }
        let serve = try ServeProcess(storage: unused, extra: ["--config", cfg])
        defer { serve.stop() }

        let (manifest, manifestDigest) = try await pushImage(serve.base, "gc/app", tag: "v1", seed: "kept")
        let kept = try ParsedManifest.parse([UInt8](manifest), contentType: ParsedManifest.ociManifest).blobs.map(\.description)
        let orphan = try await pushBlob(serve.base, "gc/app", Data("pushed, never named by a manifest".utf8))
        // an upload session left idle, and a multipart upload a killed writer left unfinished
        let post = try await http("POST", "\(serve.base)/v2/gc/app/blobs/uploads/")
        let session = try #require(post.header("Docker-Upload-UUID"))
        let dangling = try MultipartUpload(client: driver.client, key: driver.key("_uploads/\(UUID().uuidString.lowercased())/data"))
        try dangling.upload([UInt8](repeating: 7, count: 1000))
        try await Task.sleep(nanoseconds: 2_200_000_000)  // older than --upload-age 1 (S3 times have 1 s steps)

        let dry = try Self.gc(["--config", cfg, "--upload-age", "1", "--dry-run"])
        #expect(dry.0 == 0 && dry.1.contains("would remove blob \(orphan)") && dry.1.contains("would remove upload \(session)"), "\(dry.1)")
        #expect(dry.1.contains("(multipart upload \(dangling.id))"), "\(dry.1)")
        #expect(try await http("HEAD", "\(serve.base)/v2/gc/app/blobs/\(orphan)").status == 200)

        // The replica keeps serving pulls of what is referenced while gc runs.
        let base = serve.base
        let pulling = Task { () -> [Int] in
            var statuses: [Int] = []
            let deadline = Date().addingTimeInterval(60)
            while !Task.isCancelled && Date() < deadline {
                statuses.append((try? await http("GET", "\(base)/v2/gc/app/manifests/v1", headers: ["Accept": ParsedManifest.ociManifest]).status) ?? -1)
                for b in kept { statuses.append((try? await http("GET", "\(base)/v2/gc/app/blobs/\(b)").status) ?? -1) }
            }
            return statuses
        }
        let swept = try Self.gc(["--config", cfg, "--upload-age", "1"])
        pulling.cancel()
        let statuses = await pulling.value
        #expect(swept.0 == 0, "\(swept.1)")
        #expect(swept.1.contains("removed blob \(orphan)") && !kept.contains { swept.1.contains($0) } && !swept.1.contains(manifestDigest), "\(swept.1)")
        #expect(swept.1.contains("removed upload \(session)") && swept.1.contains("(multipart upload \(dangling.id))"), "\(swept.1)")
        #expect(!statuses.isEmpty && statuses.allSatisfy { $0 == 200 }, "pulls during gc: \(statuses)")

        #expect(try await http("HEAD", "\(serve.base)/v2/gc/app/blobs/\(orphan)").status == 404)
        #expect(try await http("GET", "\(serve.base)/v2/gc/app/blobs/uploads/\(session)").status == 404)
        #expect(try driver.multipartUploads().isEmpty)
        let m = try await http("GET", "\(serve.base)/v2/gc/app/manifests/v1", headers: ["Accept": ParsedManifest.ociManifest])
        #expect(m.status == 200 && m.body == manifest)
        for b in kept { #expect(try await http("GET", "\(serve.base)/v2/gc/app/blobs/\(b)").status == 200) }
        let again = try Self.gc(["--config", cfg, "--upload-age", "1"])
        #expect(again.1.contains("removed 0 blobs") && again.1.contains("kept 3 blobs"), "\(again.1)")
    }

    @Test func monolithicSessionsOfAnotherHostGoByAgeOnS3() throws {
        let c = try S3TestCluster.config()
        let s3 = try S3Driver(config: c)
        defer { try? s3.delete("") }
        let fsDir = "/var/tmp/rs-stamp-\(getpid())-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: fsDir) }
        // A session stamped by a process of another boot: dead on this host's filesystem,
        // unknowable on a bucket another host may share.
        for d in [s3 as any StorageDriver, try FilesystemDriver(root: fsDir)] {
            try d.putContent("_uploads/0a0b/owner", Array("4242.1.deadbeef".utf8))
            try d.putContent("_uploads/0a0b/repo", Array("x".utf8))
            try d.putContent("_uploads/0a0b/data", [])
        }
        let fromS3 = RegistryStore(driver: s3).removeDeadUploads(dryRun: true, uploadLifetime: 3600)
        #expect(fromS3.isEmpty)
        let fromFS = RegistryStore(driver: try FilesystemDriver(root: fsDir)).removeDeadUploads(dryRun: true, uploadLifetime: 3600)
        #expect(fromFS.orphanedUploads == ["0a0b"])
    }

    @Test func aSweepForgetsHashesOfSessionsAnotherReplicaFinished() throws {
        let c = try S3TestCluster.config()
        let s3 = try S3Driver(config: c)
        defer { try? s3.delete("") }
        let a = RegistryStore(driver: s3), b = RegistryStore(driver: s3)
        let id = try a.startUpload("x")
        #expect(a.hashes[id] != nil)
        let data = [UInt8]("finished on the other replica".utf8)
        try s3.putContent(RegistryStore.uploadDir(id) + "/data", data)
        _ = try b.commitUpload("x", id, digest: Digest.compute(Data(data)))
        _ = a.removeDeadUploads(dryRun: false, uploadLifetime: 3600)
        #expect(a.hashes.isEmpty)
    }

    @Test func readinessProbesTheBucket() async throws {
        var c = try S3TestCluster.config()
        c.bucket = "rs-health-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let maker = S3Client(config: c)
        let made = try maker.send("PUT", key: nil)
        #expect(made.status == 200, "\(made.text)")
        let cfg = try S3ServeTests.configFile(c)
        defer {
            unlink(cfg)
            try? S3Driver(config: c).delete("")
            _ = try? maker.send("DELETE", key: nil)
        }
        let s = try OpsServe(["--config", cfg])
        defer { s.stop() }
        let ready = try await http("GET", "\(s.debug)/readyz")
        #expect(ready.status == 200, "\(String(decoding: ready.body, as: UTF8.self))")
        let health = try await http("GET", "\(s.debug)/debug/health")
        #expect(health.status == 200 && health.body == Data("{}".utf8))
        #expect(try S3Driver(config: c).multipartUploads().isEmpty)
        #expect(try S3Driver(config: c).list("").isEmpty, "the probe leaves nothing behind")

        // The bucket goes away: the replica is no longer ready, and says why.
        try S3Driver(config: c).delete("")
        let gone = try maker.send("DELETE", key: nil)
        #expect(gone.status == 204, "\(gone.text)")
        let notReady = try await http("GET", "\(s.debug)/readyz")
        let text = String(decoding: notReady.body, as: UTF8.self)
        #expect(notReady.status == 503 && text.contains("bucket \(c.bucket) does not exist"), "\(text)")
        let unhealthy = try await http("GET", "\(s.debug)/debug/health")
        #expect(unhealthy.status == 503 && unhealthy.json?["storagedriver_s3"] != nil)
        // and requests that need the storage get 503 with the registry's error body, at once
        let push = try await http("POST", "\(s.base)/v2/gone/app/blobs/uploads/")
        #expect(push.status == 503 && push.errorCode == "UNAVAILABLE", "\(String(decoding: push.body, as: UTF8.self))")
        #expect(String(decoding: push.body, as: UTF8.self).contains("does not exist"))
    }
}
