import Foundation
import Synchronization
import ImageStore
import OCI
import Testing

/// `dockbuild manifest create|add|annotate|inspect|push|rm` (issue #20) through the built binary:
/// two single-platform images imported with `--platform`, assembled into a list, pushed to a
/// real registry, read back by skopeo and pulled per platform.
@Suite("dockbuild manifest")
struct ManifestCommandTests {
    /// A one-file rootfs tar imported as `tag` for `platform`; returns the image's manifest digest.
    static func manifestImport(root: String, work: TempDir, platform: String, tag: String) throws -> Digest {
        let rootfs = work.path + "/rootfs-\(platform.replacingOccurrences(of: "/", with: "-"))"
        try FileManager.default.createDirectory(atPath: rootfs, withIntermediateDirectories: true)
        try Data("built for \(platform)\n".utf8).write(to: URL(fileURLWithPath: rootfs + "/platform"))
        try runTool(["tar", "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-C", rootfs, "-cf", rootfs + ".tar", "."])
        let r = try dockbuild(["import", "--root", root, "--platform", platform, rootfs + ".tar", tag], env: [:])
        guard r.0 == 0 else { throw TestError("import failed: \(r.2)") }
        return try ImageStore(root: root).resolve(tag).digest
    }

    /// The platforms of an index document, `os/arch[/variant]` in entry order.
    static func manifestPlatforms(_ json: String) throws -> [String] {
        try ImageIndex.decode(Data(json.utf8)).manifests.map { d in
            d.platform.map { "\($0.os)/\($0.architecture)" + ($0.variant.map { "/\($0)" } ?? "") } ?? "-"
        }
    }

    /// The image-spec's own schema and checks (/work/shared/schemas), when that checkout is here.
    static func manifestValidateIndex(_ json: String, work: TempDir) throws {
        let validator = "/work/shared/schemas/image-spec/validate.py"
        guard FileManager.default.fileExists(atPath: validator) else { return }
        let file = work.path + "/index-\(UUID().uuidString.prefix(6)).json"
        try Data(json.utf8).write(to: URL(fileURLWithPath: file))
        try runTool(["python3", validator, MediaType.imageIndex, file])
    }

    @Test(arguments: RegistryKind.allCases)
    func createAddAnnotateInspectPushPullRm(_ kind: RegistryKind) throws {
        let registry = try TestRegistry(kind, asProcess: kind == .dockbuild)
        defer { registry.stop() }
        let work = try TempDir("manifest")
        defer { work.remove() }
        let src = work.path + "/src"
        let amd = try Self.manifestImport(root: src, work: work, platform: "linux/amd64", tag: "app:amd64")
        let arm = try Self.manifestImport(root: src, work: work, platform: "linux/arm64", tag: "app:arm64")

        let created = try dockbuild(["manifest", "create", "--root", src, "app:list"], env: [:])
        #expect(created.0 == 0, "\(created.2)")
        #expect(created.1.hasPrefix("sha256:"))
        for image in ["app:amd64", "app:arm64", "app:arm64"] {
            let r = try dockbuild(["manifest", "add", "--root", src, "app:list", image], env: [:])
            #expect(r.0 == 0, "\(r.2)")
        }
        let annotated = try dockbuild(["manifest", "annotate", "--root", src, "--variant", "v8", "--annotation", "org.example.k=v",
                                       "app:list", "app:arm64"], env: [:])
        #expect(annotated.0 == 0, "\(annotated.2)")

        let inspect = try dockbuild(["manifest", "inspect", "--root", src, "app:list"], env: [:])
        #expect(inspect.0 == 0, "\(inspect.2)")
        #expect(inspect.1.hasPrefix("{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"\(MediaType.imageIndex)\""), "docker's layout: \(inspect.1)")
        let local = try ImageIndex.decode(Data(inspect.1.utf8))
        #expect(local.manifests.map(\.digest) == [amd, arm], "added once each, in order")
        #expect(try Self.manifestPlatforms(inspect.1) == ["linux/amd64", "linux/arm64/v8"])
        #expect(local.manifests[1].annotations == ["org.example.k": "v"])
        try Self.manifestValidateIndex(inspect.1, work: work)
        let listDigest = try ImageStore(root: src).resolve("app:list").digest
        #expect(annotated.1 == listDigest.description + "\n", "annotate prints the list's new digest")

        let dest = "\(registry.host)/multi/app:1"
        let push = try dockbuild(["manifest", "push", "--root", src, "app:list", dest], env: [:])
        #expect(push.0 == 0, "\(push.2)")
        #expect(push.1 == listDigest.description + "\n")

        // skopeo reads the index back byte for byte
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/skopeo") {
            let raw = try runTool(["skopeo", "inspect", "--raw", "--tls-verify=false", "docker://\(dest)"])
            #expect(Digest.compute(raw) == listDigest)
            #expect(try Self.manifestPlatforms(String(decoding: raw, as: UTF8.self)) == ["linux/amd64", "linux/arm64/v8"])
        }
        // podman picks the arm64 image out of the pushed index
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/podman") {
            let p = work.path + "/podman"
            let storage = ["--root", p + "/root", "--runroot", p + "/run", "--storage-driver", "vfs"]
            _ = try runTool(["podman"] + storage + ["pull", "-q", "--platform", "linux/arm64", "--tls-verify=false", dest])
            let info = try runTool(["podman"] + storage + ["image", "inspect", "--format", "{{.Architecture}} {{.Digest}}", dest])
            let fields = String(decoding: info, as: UTF8.self).split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            #expect(fields.first == "arm64", "\(fields)")
            // podman records the digest it pulled by: the list's, or the arm64 manifest's
            #expect([listDigest.description, arm.description].contains(fields.last ?? ""), "\(fields)")
        }
        // and so does `manifest inspect` of the remote reference
        let remote = try dockbuild(["manifest", "inspect", "--root", work.path + "/empty", dest], env: [:])
        #expect(remote.0 == 0, "\(remote.2)")
        #expect(remote.1 == inspect.1)

        let pull = try dockbuild(["pull", "-q", "--root", work.path + "/dst", "--platform", "linux/arm64", dest], env: [:])
        #expect(pull.0 == 0, "\(pull.2)")
        let pulled = try ImageStore(root: work.path + "/dst").image(dest, platform: try Platform(parsing: "linux/arm64"))
        #expect(pulled.descriptor.digest == arm)
        #expect(pulled.config.architecture == "arm64")

        let rm = try dockbuild(["manifest", "rm", "--root", src, "app:list"], env: [:])
        #expect(rm.0 == 0, "\(rm.2)")
        let store = try ImageStore(root: src)
        #expect(throws: (any Error).self) { try store.resolve("app:list") }
        #expect(try store.resolve("app:amd64").digest == amd, "the listed images stay")
        #expect(try store.resolve("app:arm64").digest == arm)
    }

    /// docker's `manifest create` and podman's `manifest add` take registry references: an image
    /// not in the store is pulled first (all platforms of an index with --all, the one of --arch
    /// otherwise). podman's `manifest remove LIST DIGEST` takes an entry out.
    @Test func remoteReferencesArePulledAndEntriesRemoved() throws {
        let registry = try TestRegistry(.dockbuild, asProcess: true)
        defer { registry.stop() }
        let work = try TempDir("manifest-remote")
        defer { work.remove() }
        let src = work.path + "/src"
        let amd = try Self.manifestImport(root: src, work: work, platform: "linux/amd64", tag: "app:amd64")
        let arm = try Self.manifestImport(root: src, work: work, platform: "linux/arm64", tag: "app:arm64")
        let repo = "\(registry.host)/remote/app"
        for arch in ["amd64", "arm64"] {
            #expect(try dockbuild(["tag", "--root", src, "app:\(arch)", "\(repo):\(arch)"], env: [:]).0 == 0)
            let p = try dockbuild(["push", "-q", "--root", src, "\(repo):\(arch)"], env: [:])
            #expect(p.0 == 0, "\(p.2)")
        }
        #expect(try dockbuild(["manifest", "create", "--root", src, "app:multi", "app:amd64", "app:arm64"], env: [:]).0 == 0)
        #expect(try dockbuild(["manifest", "push", "-q", "--root", src, "app:multi", "\(repo):multi"], env: [:]).0 == 0)

        // A fresh store: every image comes from the registry.
        let dst = work.path + "/dst"
        let created = try dockbuild(["manifest", "create", "--root", dst, "mine:list", "\(repo):amd64"], env: [:])
        #expect(created.0 == 0, "\(created.2)")
        let added = try dockbuild(["manifest", "add", "--root", dst, "mine:list", "\(repo):arm64"], env: [:])
        #expect(added.0 == 0, "\(added.2)")
        let both = try dockbuild(["manifest", "inspect", "--root", dst, "mine:list"], env: [:])
        #expect(try ImageIndex.decode(Data(both.1.utf8)).manifests.map(\.digest) == [amd, arm])

        let removed = try dockbuild(["manifest", "remove", "--root", dst, "mine:list", arm.description], env: [:])
        #expect(removed.0 == 0, "\(removed.2)")
        let one = try dockbuild(["manifest", "inspect", "--root", dst, "mine:list"], env: [:])
        #expect(try ImageIndex.decode(Data(one.1.utf8)).manifests.map(\.digest) == [amd])
        let again = try dockbuild(["manifest", "remove", "--root", dst, "mine:list", arm.description], env: [:])
        #expect(again.0 == 1 && again.2.contains("has no entry for"), "\(again.2)")

        // A remote index: --all adds every platform, --arch picks one.
        #expect(try dockbuild(["manifest", "create", "--root", dst, "all:list"], env: [:]).0 == 0)
        let all = try dockbuild(["manifest", "add", "--all", "--root", work.path + "/dst2", "all:list", "\(repo):multi"], env: [:])
        #expect(all.0 != 0, "no such list in that store")
        let allInto = try dockbuild(["manifest", "add", "--all", "--root", dst, "all:list", "\(repo):multi"], env: [:])
        #expect(allInto.0 == 0, "\(allInto.2)")
        let allList = try dockbuild(["manifest", "inspect", "--root", dst, "all:list"], env: [:])
        #expect(try Self.manifestPlatforms(allList.1) == ["linux/amd64", "linux/arm64"])
        let dst3 = work.path + "/dst3"
        #expect(try dockbuild(["manifest", "create", "--root", dst3, "arm:list"], env: [:]).0 == 0)
        let picked = try dockbuild(["manifest", "add", "--arch", "arm64", "--root", dst3, "arm:list", "\(repo):multi"], env: [:])
        #expect(picked.0 == 0, "\(picked.2)")
        let armList = try dockbuild(["manifest", "inspect", "--root", dst3, "arm:list"], env: [:])
        #expect(try ImageIndex.decode(Data(armList.1.utf8)).manifests.map(\.digest) == [arm])

        // Neither in the store nor in the registry: a clear error, the list unchanged.
        let missing = try dockbuild(["manifest", "add", "--root", dst, "mine:list", "\(repo):nope"], env: [:])
        #expect(missing.0 == 1 && missing.2.contains("no such image: \(repo):nope in the store, and pulling it from its registry failed"), "\(missing.2)")
        let same = try dockbuild(["manifest", "inspect", "--root", dst, "mine:list"], env: [:])
        #expect(same.1 == one.1)
    }

    /// `push --rm` removes the list once it is in the registry.
    @Test func pushRmRemovesTheList() throws {
        let registry = try TestRegistry(.dockbuild)
        defer { registry.stop() }
        let work = try TempDir("manifest")
        defer { work.remove() }
        let src = work.path + "/src"
        _ = try Self.manifestImport(root: src, work: work, platform: "linux/amd64", tag: "one:amd64")
        #expect(try dockbuild(["manifest", "create", "--root", src, "one:list", "one:amd64"], env: [:]).0 == 0)
        let push = try dockbuild(["manifest", "push", "--rm", "-q", "--root", src, "one:list", "\(registry.host)/one/app:1"], env: [:])
        #expect(push.0 == 0, "\(push.2)")
        #expect(throws: (any Error).self) { try ImageStore(root: src).resolve("one:list") }
        #expect(try dockbuild(["manifest", "inspect", "--root", src, "\(registry.host)/one/app:1"], env: [:]).0 == 0)
    }

    /// Unknown list, image not in the store, duplicate platform, bad platform values, an existing
    /// name: clear errors, 125 for usage errors, and the list exactly as it was.
    @Test func refusalsLeaveTheListUnchanged() throws {
        let work = try TempDir("manifest")
        defer { work.remove() }
        let src = work.path + "/src"
        let amd = try Self.manifestImport(root: src, work: work, platform: "linux/amd64", tag: "app:amd64")
        let arm = try Self.manifestImport(root: src, work: work, platform: "linux/arm64", tag: "app:arm64")
        func db(_ args: [String]) throws -> (Int32, String, String) {
            try dockbuild(["manifest", args[0], "--root", src] + args.dropFirst(), env: [:])
        }
        let noList = try db(["add", "nosuch:list", "app:amd64"])
        #expect(noList.0 == 1 && noList.2.contains("no manifest list named nosuch:list"), "\(noList.2)")

        #expect(try db(["create", "app:list", "app:amd64"]).0 == 0)
        let store = try ImageStore(root: src)
        let before = try store.resolve("app:list")

        let noImage = try db(["add", "app:list", "missing:1"])
        #expect(noImage.0 == 1 && noImage.2.contains("no such image: missing:1"), "\(noImage.2)")
        let dup = try db(["add", "--arch", "amd64", "app:list", "app:arm64"])
        #expect(dup.0 == 1 && dup.2.contains("two manifests for linux/amd64"), "\(dup.2)")
        let badArch = try db(["add", "--arch", "bogus", "app:list", "app:arm64"])
        #expect(badArch.0 == 125 && badArch.2.contains("unknown architecture \"bogus\""), "\(badArch.2)")
        let badVariant = try db(["annotate", "--variant", "v8 x", "app:list", "app:amd64"])
        #expect(badVariant.0 == 125 && badVariant.2.contains("variant"), "\(badVariant.2)")
        let badAnnotation = try db(["annotate", "--annotation", "=v", "app:list", "app:amd64"])
        #expect(badAnnotation.0 == 125 && badAnnotation.2.contains("KEY=VALUE"), "\(badAnnotation.2)")
        let nothing = try db(["annotate", "app:list", "app:amd64"])
        #expect(nothing.0 == 125 && nothing.2.contains("nothing to change"), "\(nothing.2)")
        let notInList = try db(["annotate", "--os", "linux", "app:list", "app:arm64"])
        #expect(notInList.0 == 1 && notInList.2.contains("has no entry for app:arm64"), "\(notInList.2)")
        let exists = try db(["create", "app:list"])
        #expect(exists.0 == 1 && exists.2.contains("--amend"), "\(exists.2)")
        let byDigest = try db(["create", "app@\(amd)"])
        #expect(byDigest.0 == 125, "\(byDigest.2)")
        let notAList = try db(["rm", "app:amd64"])
        #expect(notAList.0 == 1 && notAList.2.contains("is an image, not a manifest list"), "\(notAList.2)")
        #expect(try store.resolve("app:amd64").digest == amd)
        #expect(try store.resolve("app:list") == before, "every refusal left the list as it was")

        // --amend adds; the same digest again replaces; annotate by digest
        #expect(try db(["create", "--amend", "app:list", "app:arm64", "app:amd64"]).0 == 0)
        #expect(try store.manifestList(try ImageReference(parsing: "app:list")).index.manifests.map(\.digest) == [amd, arm])
        let byDigestEntry = try db(["annotate", "--os-version", "6.1", "--features", "sse4,avx", "app:list", arm.description])
        #expect(byDigestEntry.0 == 0, "\(byDigestEntry.2)")
        let entry = try store.manifestList(try ImageReference(parsing: "app:list")).index.manifests[1]
        #expect(entry.platform?.osVersion == "6.1" && entry.platform?.features == ["sse4", "avx"])

        // a list (an index) given as IMAGE adds all its manifests
        #expect(try db(["create", "copy:list", "app:list"]).0 == 0)
        #expect(try store.manifestList(try ImageReference(parsing: "copy:list")).index.manifests.map(\.digest) == [amd, arm])
        let empty = try db(["create", "empty:list"])
        #expect(empty.0 == 0)
        let pushEmpty = try db(["push", "empty:list", "127.0.0.1:1/x:1"])
        #expect(pushEmpty.0 == 1 && pushEmpty.2.contains("is empty"), "\(pushEmpty.2)")

        let rm = try db(["rm", "copy:list", "nosuch:list", "empty:list"])
        #expect(rm.0 == 1 && rm.2.contains("nosuch:list"), "\(rm.2)")
        #expect(throws: (any Error).self) { try store.resolve("copy:list") }
        #expect(throws: (any Error).self) { try store.resolve("empty:list") }
        #expect(try store.resolve("app:list").mediaType == MediaType.imageIndex)
    }

    /// Edits of one list from several stores at once (as from several processes) queue up on the
    /// index lock: every entry lands, none is lost to a concurrent read-modify-write.
    @Test func concurrentAddsAllLand() throws {
        let work = try TempDir("manifest")
        defer { work.remove() }
        let root = work.path + "/src"
        let platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm/v6", "linux/ppc64le", "linux/s390x", "linux/riscv64", "linux/386"]
        let setup = try ImageStore(root: root)
        var digests: [Digest] = []
        for (i, p) in platforms.enumerated() {
            let img = try TestImages.make(in: setup, tag: "img:\(i)", layers: [["p": Data(p.utf8)]], platform: try Platform(parsing: p))
            digests.append(img.descriptor.digest)
        }
        let list = try ImageReference(parsing: "many:list")
        try setup.createManifestList(list, images: [])
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: platforms.count) { i in
            do { try ImageStore(root: root).addToManifestList(list, image: "img:\(i)") } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        let index = try ImageStore(root: root).manifestList(list).index
        #expect(Set(index.manifests.map(\.digest)) == Set(digests))
        #expect(Set(index.manifests.compactMap { $0.platform?.description }) == Set(platforms))
    }
}
