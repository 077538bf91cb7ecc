import Foundation
import Testing
@testable import RegistryServer

@Suite("distribution-spec workflows over real HTTP")
struct ProtocolTests {
    @Test(arguments: ServedStorage.allCases)
    func baseAndErrorsCarryTheSpecHeaders(_ storage: ServedStorage) async throws {
        let reg = try TestRegistry(storage: storage)
        defer { reg.stop() }
        let r = try await http("GET", "\(reg.base)/v2/")
        #expect(r.status == 200)
        #expect(r.header("Docker-Distribution-API-Version") == "registry/2.0")
        let missing = try await http("GET", "\(reg.base)/v2/a/b/manifests/latest")
        #expect(missing.status == 404)
        #expect(missing.errorCode == "MANIFEST_UNKNOWN")
        let bad = try await http("GET", "\(reg.base)/v2/UPPER/manifests/latest")
        #expect(bad.status == 400)
        #expect(bad.errorCode == "NAME_INVALID")
        let badDigest = try await http("GET", "\(reg.base)/v2/a/blobs/sha256:xyz")
        #expect(badDigest.status == 400)
        #expect(badDigest.errorCode == "DIGEST_INVALID")
        // Path tricks in references stay inside the repository.
        #expect(try await http("GET", "\(reg.base)/v2/a/manifests/..%2F..%2Fx").status == 404)
        #expect(try await http("DELETE", "\(reg.base)/v2/a/manifests/..").status == 404)
        #expect(try await http("GET", "\(reg.base)/v2/a/blobs/uploads/..%2F..").status == 404)
    }

    @Test(arguments: ServedStorage.allCases)
    func monolithicAndPostPutPushThenPullWithRange(_ storage: ServedStorage) async throws {
        let reg = try TestRegistry(storage: storage)
        defer { reg.stop() }
        let data = Data((0..<100_000).map { UInt8($0 % 251) })
        let d = try await pushBlob(reg.base, "lib/one", data)
        let get = try await http("GET", "\(reg.base)/v2/lib/one/blobs/\(d)")
        #expect(get.status == 200 && get.body == data)
        #expect(get.header("Docker-Content-Digest") == d)
        let head = try await http("HEAD", "\(reg.base)/v2/lib/one/blobs/\(d)")
        #expect(head.status == 200 && head.header("Content-Length") == "100000")
        let part = try await http("GET", "\(reg.base)/v2/lib/one/blobs/\(d)", headers: ["Range": "bytes=10-19"])
        #expect(part.status == 206 && part.body == data[10..<20])
        #expect(part.header("Content-Range") == "bytes 10-19/100000")
        let bad = try await http("GET", "\(reg.base)/v2/lib/one/blobs/\(d)", headers: ["Range": "bytes=200000-"])
        #expect(bad.status == 416)

        // POST then PUT with the body; a wrong digest is refused.
        let second = Data("second".utf8)
        let post = try await http("POST", "\(reg.base)/v2/lib/one/blobs/uploads/")
        #expect(post.status == 202)
        let loc = try #require(post.header("Location"))
        #expect(post.header("Docker-Upload-UUID") != nil)
        let wrong = try await http("PUT", "\(reg.base)\(loc)?digest=\(digest(Data("other".utf8)))", body: second,
                                   headers: ["Content-Type": "application/octet-stream"])
        #expect(wrong.status == 400 && wrong.errorCode == "DIGEST_INVALID")
        let post2 = try await http("POST", "\(reg.base)/v2/lib/one/blobs/uploads/")
        let loc2 = try #require(post2.header("Location"))
        let put = try await http("PUT", "\(reg.base)\(loc2)?digest=\(digest(second))", body: second,
                                 headers: ["Content-Type": "application/octet-stream"])
        #expect(put.status == 201)
        #expect(put.header("Location") == "/v2/lib/one/blobs/\(digest(second))")
    }

    @Test(arguments: ServedStorage.allCases)
    func chunkedUploadStatusOutOfOrderAndCancel(_ storage: ServedStorage) async throws {
        let reg = try TestRegistry(storage: storage)
        defer { reg.stop() }
        let post = try await http("POST", "\(reg.base)/v2/chunky/blobs/uploads/")
        let loc = try #require(post.header("Location"))
        let p1 = try await http("PATCH", "\(reg.base)\(loc)", body: Data("hello ".utf8),
                                headers: ["Content-Range": "0-5", "Content-Type": "application/octet-stream"])
        #expect(p1.status == 202 && p1.header("Range") == "0-5")
        let ooo = try await http("PATCH", "\(reg.base)\(loc)", body: Data("xx".utf8),
                                 headers: ["Content-Range": "10-11", "Content-Type": "application/octet-stream"])
        #expect(ooo.status == 416)
        let status = try await http("GET", "\(reg.base)\(loc)")
        #expect(status.status == 204 && status.header("Range") == "0-5")
        let p2 = try await http("PATCH", "\(reg.base)\(loc)", body: Data("world".utf8),
                                headers: ["Content-Range": "6-10", "Content-Type": "application/octet-stream"])
        #expect(p2.status == 202 && p2.header("Range") == "0-10")
        let d = digest(Data("hello world".utf8))
        let put = try await http("PUT", "\(reg.base)\(loc)?digest=\(d)")
        #expect(put.status == 201)
        let get = try await http("GET", "\(reg.base)/v2/chunky/blobs/\(d)")
        #expect(String(decoding: get.body, as: UTF8.self) == "hello world")

        let post2 = try await http("POST", "\(reg.base)/v2/chunky/blobs/uploads/")
        let loc2 = try #require(post2.header("Location"))
        #expect(try await http("DELETE", "\(reg.base)\(loc2)").status == 204)
        let gone = try await http("GET", "\(reg.base)\(loc2)")
        #expect(gone.status == 404 && gone.errorCode == "BLOB_UPLOAD_UNKNOWN")
    }

    @Test(arguments: ServedStorage.allCases)
    func crossRepositoryMountWithAndWithoutFrom(_ storage: ServedStorage) async throws {
        let reg = try TestRegistry(storage: storage)
        defer { reg.stop() }
        let d = try await pushBlob(reg.base, "src", Data("shared".utf8))
        let m = try await http("POST", "\(reg.base)/v2/dst/blobs/uploads/?mount=\(d)&from=src")
        #expect(m.status == 201 && m.header("Location") == "/v2/dst/blobs/\(d)")
        #expect(try await http("HEAD", "\(reg.base)/v2/dst/blobs/\(d)").status == 200)
        let auto = try await http("POST", "\(reg.base)/v2/third/blobs/uploads/?mount=\(d)")
        #expect(auto.status == 201)
        let unknown = digest(Data("nope".utf8))
        let miss = try await http("POST", "\(reg.base)/v2/dst/blobs/uploads/?mount=\(unknown)&from=src")
        #expect(miss.status == 202 && miss.header("Location") != nil)
        // Storing once: all three repositories share one blob file.
        let driver = reg.server.store.driver
        let blobs = driver.list("blobs/sha256").flatMap { driver.list("blobs/sha256/\($0)") }
        #expect(blobs.count == 1)
    }

    @Test(arguments: ServedStorage.allCases)
    func manifestsTagsCatalogAndDeletes(_ storage: ServedStorage) async throws {
        let reg = try TestRegistry(storage: storage)
        defer { reg.stop() }
        // Missing blobs are refused.
        let orphan = try JSONSerialization.data(withJSONObject: [
            "schemaVersion": 2, "mediaType": ParsedManifest.ociManifest,
            "config": ["mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(Data("x".utf8)), "size": 1],
            "layers": [] as [Any],
        ])
        let refused = try await http("PUT", "\(reg.base)/v2/app/manifests/v0", body: orphan, headers: ["Content-Type": ParsedManifest.ociManifest])
        #expect(refused.status == 400 && refused.errorCode == "MANIFEST_BLOB_UNKNOWN")
        let garbage = try await http("PUT", "\(reg.base)/v2/app/manifests/v0", body: Data("nope".utf8), headers: ["Content-Type": ParsedManifest.ociManifest])
        #expect(garbage.errorCode == "MANIFEST_INVALID")

        let (bytes, d) = try await pushImage(reg.base, "app", tag: "v1")
        for tag in ["v2", "v3", "v4"] {
            #expect(try await http("PUT", "\(reg.base)/v2/app/manifests/\(tag)", body: bytes, headers: ["Content-Type": ParsedManifest.ociManifest]).status == 201)
        }
        let byTag = try await http("GET", "\(reg.base)/v2/app/manifests/v1", headers: ["Accept": ParsedManifest.ociManifest])
        #expect(byTag.status == 200 && byTag.body == bytes)
        #expect(byTag.header("Content-Type") == ParsedManifest.ociManifest)
        #expect(byTag.header("Docker-Content-Digest") == d)
        #expect(try await http("HEAD", "\(reg.base)/v2/app/manifests/\(d)").status == 200)

        let page1 = try await http("GET", "\(reg.base)/v2/app/tags/list?n=2")
        #expect(page1.json?["tags"] as? [String] == ["v1", "v2"])
        #expect(page1.header("Link") == "</v2/app/tags/list?n=2&last=v2>; rel=\"next\"")
        let page2 = try await http("GET", "\(reg.base)/v2/app/tags/list?n=2&last=v2")
        #expect(page2.json?["tags"] as? [String] == ["v3", "v4"])
        #expect(page2.header("Link") == nil)
        #expect(try await http("GET", "\(reg.base)/v2/nothing/tags/list").errorCode == "NAME_UNKNOWN")

        _ = try await pushImage(reg.base, "other/deep", tag: "x", seed: "b")
        let catalog = try await http("GET", "\(reg.base)/v2/_catalog")
        #expect(catalog.json?["repositories"] as? [String] == ["app", "other/deep"])
        let cat1 = try await http("GET", "\(reg.base)/v2/_catalog?n=1")
        #expect(cat1.json?["repositories"] as? [String] == ["app"])
        #expect(cat1.header("Link") != nil)

        #expect(try await http("DELETE", "\(reg.base)/v2/app/manifests/v4").status == 202)
        #expect(try await http("GET", "\(reg.base)/v2/app/manifests/v4").status == 404)
        #expect(try await http("GET", "\(reg.base)/v2/app/manifests/v1").status == 200)
        #expect(try await http("DELETE", "\(reg.base)/v2/app/manifests/\(d)").status == 202)
        #expect(try await http("GET", "\(reg.base)/v2/app/manifests/v1").status == 404)
        let tags = try await http("GET", "\(reg.base)/v2/app/tags/list")
        #expect((tags.json?["tags"] as? [String])?.isEmpty == true)

        let layer = digest(Data("layer-a".utf8))
        #expect(try await http("DELETE", "\(reg.base)/v2/app/blobs/\(layer)").status == 202)
        #expect(try await http("GET", "\(reg.base)/v2/app/blobs/\(layer)").errorCode == "BLOB_UNKNOWN")
        #expect(try await http("GET", "\(reg.base)/v2/other/deep/blobs/\(digest(Data("layer-b".utf8)))").status == 200)
    }

    @Test(arguments: ServedStorage.allCases)
    func referrersWithArtifactTypeFilterAndSubjectHeader(_ storage: ServedStorage) async throws {
        let reg = try TestRegistry(storage: storage)
        defer { reg.stop() }
        let (subjectBytes, subject) = try await pushImage(reg.base, "ref", tag: "base")
        let subjectDesc: [String: Any] = ["mediaType": ParsedManifest.ociManifest, "digest": subject, "size": subjectBytes.count]
        let empty = try await pushBlob(reg.base, "ref", Data("{}".utf8))
        func artifact(_ type: String, _ note: String) -> Data {
            (try? JSONSerialization.data(withJSONObject: [
                "schemaVersion": 2, "mediaType": ParsedManifest.ociManifest, "artifactType": type,
                "config": ["mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2],
                "layers": [["mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2]],
                "subject": subjectDesc, "annotations": ["note": note],
            ], options: [.sortedKeys])) ?? Data()
        }
        let sig = artifact("application/vnd.example.signature", "sig")
        let sbom = artifact("application/vnd.example.sbom", "sbom")
        for a in [sig, sbom] {
            let r = try await http("PUT", "\(reg.base)/v2/ref/manifests/\(digest(a))", body: a, headers: ["Content-Type": ParsedManifest.ociManifest])
            #expect(r.status == 201)
            #expect(r.header("OCI-Subject") == subject)
        }
        let all = try await http("GET", "\(reg.base)/v2/ref/referrers/\(subject)")
        #expect(all.status == 200 && all.header("Content-Type") == ParsedManifest.ociIndex)
        #expect((all.json?["manifests"] as? [[String: Any]])?.count == 2)
        let filtered = try await http("GET", "\(reg.base)/v2/ref/referrers/\(subject)?artifactType=application/vnd.example.sbom")
        let list = filtered.json?["manifests"] as? [[String: Any]]
        #expect(list?.count == 1 && list?.first?["digest"] as? String == digest(sbom))
        #expect(filtered.header("OCI-Filters-Applied") == "artifactType")
        #expect(try await http("DELETE", "\(reg.base)/v2/ref/manifests/\(digest(sbom))").status == 202)
        let after = try await http("GET", "\(reg.base)/v2/ref/referrers/\(subject)")
        #expect((after.json?["manifests"] as? [[String: Any]])?.count == 1)
        let none = try await http("GET", "\(reg.base)/v2/ref/referrers/\(digest(Data("zzz".utf8)))")
        #expect(none.status == 200)
    }

    @Test(arguments: ServedStorage.allCases)
    func concurrentPushesOfTheSameBlobBothSucceed(_ storage: ServedStorage) async throws {
        let reg = try TestRegistry(storage: storage)
        defer { reg.stop() }
        let data = Data((0..<2_000_000).map { UInt8(($0 * 7) % 256) })
        let base = reg.base
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<6 {
                group.addTask {
                    let post = try await http("POST", "\(base)/v2/race\(i % 2)/blobs/uploads/")
                    let loc = post.header("Location") ?? ""
                    return try await http("PUT", "\(base)\(loc)?digest=\(digest(data))", body: data,
                                          headers: ["Content-Type": "application/octet-stream"]).status
                }
            }
            var all: [Int] = []
            for try await s in group { all.append(s) }
            return all
        }
        #expect(results == [201, 201, 201, 201, 201, 201])
        let get = try await http("GET", "\(base)/v2/race1/blobs/\(digest(data))")
        #expect(get.body == data)
    }

    @Test(arguments: ServedStorage.allCases)
    func readOnlyRefusesWrites(_ storage: ServedStorage) async throws {
        let reg = try TestRegistry(readOnly: true, storage: storage)
        defer { reg.stop() }
        let r = try await http("POST", "\(reg.base)/v2/x/blobs/uploads/")
        #expect(r.status == 405 && r.errorCode == "UNSUPPORTED")
        #expect(try await http("GET", "\(reg.base)/v2/").status == 200)
    }

    @Test(arguments: ServedStorage.allCases)
    func garbageCollectionKeepsReferencedBlobs(_ storage: ServedStorage) async throws {
        let reg = try TestRegistry(storage: storage)
        defer { reg.stop() }
        _ = try await pushImage(reg.base, "gc", tag: "keep")
        let loose = try await pushBlob(reg.base, "gc", Data("unreferenced".utf8))
        let dry = try reg.server.store.collectGarbage(dryRun: true)
        #expect(dry.removedBlobs.map(\.description) == [loose])
        #expect(try await http("GET", "\(reg.base)/v2/gc/blobs/\(loose)").status == 200)
        let real = try reg.server.store.collectGarbage(dryRun: false)
        #expect(real.removedBlobs.map(\.description) == [loose] && real.keptBlobs == 3)
        #expect(try await http("GET", "\(reg.base)/v2/gc/blobs/\(loose)").status == 404)
        #expect(try await http("GET", "\(reg.base)/v2/gc/manifests/keep").status == 200)
    }
}
