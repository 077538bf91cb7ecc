import Foundation
import Testing
import OCI
import ImageStore
@testable import Build

@Suite(.serialized) struct ScenarioTests {
    @Test func configInstructionsFollowDockerRules() throws {
        let ws = try Workspace()
        let r = try ws.build("config", tag: "config:test")
        let c = try #require(r.image.config.config)
        #expect(c.env == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          "APP_HOME=/srv/app", "VERSION=1.0", "MODE=production mode",
                          "STEP=two", "SEEN=one"])
        #expect(c.labels == ["org.example.version": "1.0", "description": "a test image"])
        #expect(r.image.config.author == "someone@example.com")
        #expect(c.workingDir == "/srv/app/sub")
        #expect(c.user == "1000:1000")
        #expect(c.exposedPorts.map { Set($0.keys) } == ["8080/tcp", "9000/udp", "9001/udp"])
        #expect(c.volumes.map { Set($0.keys) } == ["/data", "/logs"])
        #expect(c.stopSignal == "SIGTERM")
        #expect(c.healthcheck?.test == ["CMD-SHELL", "wget -q -O- localhost:8080 || exit 1"])
        #expect(c.healthcheck?.interval == 30_000_000_000)
        #expect(c.healthcheck?.timeout == 5_000_000_000)
        #expect(c.healthcheck?.retries == 3)
        #expect(c.shell == ["/bin/sh", "-ec"])
        // CMD set in this stage before ENTRYPOINT survives it; the later CMD replaces it.
        #expect(c.entrypoint == ["/bin/sh", "-c"])
        #expect(c.cmd == ["echo hi"])
        #expect(c.onBuild == ["RUN echo child-built > /onbuild.txt"])
        // History: one entry per instruction (ARG included), layers only for WORKDIR (created dirs).
        let history = try #require(r.image.config.history).dropFirst()   // the base's import entry
        #expect(history.map { $0.createdBy ?? "" }.first == "ARG VERSION=1.0")
        #expect(history.filter { $0.emptyLayer != true }.count == r.image.manifest.layers.count - 1)
        #expect(history.contains { $0.createdBy == "WORKDIR /srv/app/sub" && $0.emptyLayer != true })
        #expect(history.contains { $0.createdBy == "CMD [\"echo hi\"]" && $0.emptyLayer == true })
        let fs = try ws.files(r.image)
        var isDir: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: fs + "/srv/app/sub", isDirectory: &isDir) && isDir.boolValue)
    }

    @Test func entrypointResetsInheritedCmd() throws {
        let ws = try Workspace()
        let parent = "FROM busybox:test\nCMD [\"inherited\"]\n"
        var o = BuildOptions(contextDir: nil, dockerfileText: parent)
        o.tags = [try ImageReference(parsing: "parent:test")]
        try Builder(store: ws.store, options: o).build()
        let child = try Builder(store: ws.store, options: BuildOptions(contextDir: nil, dockerfileText: "FROM parent:test\nENTRYPOINT [\"/bin/echo\"]\n")).build()
        #expect(child.image.config.config?.cmd == nil)
        #expect(child.image.config.config?.entrypoint == ["/bin/echo"])
        let shellForm = try Builder(store: ws.store, options: BuildOptions(contextDir: nil, dockerfileText: "FROM parent:test\nENTRYPOINT exec top\n")).build()
        #expect(shellForm.image.config.config?.entrypoint == ["/bin/sh", "-c", "exec top"])
        let kept = try Builder(store: ws.store, options: BuildOptions(contextDir: nil, dockerfileText: "FROM parent:test\nCMD [\"x\"]\nENTRYPOINT [\"/bin/echo\"]\n")).build()
        #expect(kept.image.config.config?.cmd == ["x"])
    }

    @Test func copySemantics() throws {
        let ws = try Workspace()
        let r = try ws.build("copy")
        let fs = try ws.files(r.image)
        // A directory source copies its contents; .dockerignore hides *.tmp.
        #expect(ws.read(fs + "/app/a.txt") == "a\n")
        #expect(ws.read(fs + "/app/sub/c.txt") == "c\n")
        #expect(!FileManager.default.fileExists(atPath: fs + "/app/ignored.tmp"))
        // Wildcards into a directory.
        #expect(Set((try? FileManager.default.contentsOfDirectory(atPath: fs + "/globbed")) ?? []) == ["a.txt", "b.txt"])
        // No trailing slash: the destination is the file.
        #expect(ws.read(fs + "/renamed.txt") == "a\n")
        // --chown with names from the image, --chmod.
        let owned = try #require(stat(fs + "/owned/a.txt"))
        #expect(owned.mode == 0o640 && owned.uid == 1 && owned.gid == 100)
        let numeric = try #require(stat(fs + "/numeric/a.txt"))
        #expect(numeric.uid == 1234 && numeric.gid == 1234)
        // Context files are owned by root by default.
        #expect(stat(fs + "/app/a.txt")?.uid == 0)
        // --exclude, --parents, --link, heredoc, relative to WORKDIR.
        #expect(ws.read(fs + "/excluded/a.txt") == "a\n")
        #expect(!FileManager.default.fileExists(atPath: fs + "/excluded/debug.log"))
        #expect(ws.read(fs + "/parents/src/sub/c.txt") == "c\n")
        #expect(ws.read(fs + "/linked/readme.md") == "doc\n")
        #expect(ws.read(fs + "/heredoc.txt") == "hello from a heredoc\n")
        #expect(ws.read(fs + "/work/relative/a.txt") == "a\n")
    }

    @Test func contextSymlinksNeverReachTheHost() throws {
        let ws = try Workspace()
        let ctx = ws.dir + "/escape-ctx"
        try FileManager.default.createDirectory(atPath: ctx + "/etc", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: ctx + "/link", withDestinationPath: "/etc")
        try "from the context\n".write(toFile: ctx + "/etc/hostname", atomically: true, encoding: .utf8)
        // link -> /etc resolves inside the context, as if the context were `/`
        let r = try Builder(store: ws.store, options: BuildOptions(contextDir: ctx, dockerfileText:
            "FROM busybox:test\nCOPY link/hostname /x\nCOPY li*/host* /w/\n")).build()
        let fs = try ws.files(r.image)
        #expect(try String(contentsOfFile: fs + "/x", encoding: .utf8) == "from the context\n")
        #expect(try String(contentsOfFile: fs + "/w/hostname", encoding: .utf8) == "from the context\n")
        // and a file only the host has is not found
        try FileManager.default.removeItem(atPath: ctx + "/etc/hostname")
        #expect(throws: BuildError.self) {
            try Builder(store: ws.store, options: BuildOptions(contextDir: ctx, dockerfileText: "FROM busybox:test\nCOPY link/passwd /x\n")).build()
        }
    }

    @Test func addOfAHostileArchiveWritesNothingOutside() throws {
        let ws = try Workspace()
        let ctx = ws.dir + "/evil-ctx"
        try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
        let outside = ws.dir + "/outside-\(UUID().uuidString.prefix(6))"
        let script = "import tarfile,io,sys\nt=tarfile.open(sys.argv[1],'w')\nd=b'pwned'\n"
            + "i=tarfile.TarInfo(sys.argv[2]); i.size=len(d); t.addfile(i,io.BytesIO(d)); t.close()"
        let (st, out) = try sh(["python3", "-c", script, ctx + "/evil.tar", "../../../../../../.." + outside])
        try #require(st == 0, "\(out)")
        #expect(throws: BuildError.self) {
            try Builder(store: ws.store, options: BuildOptions(contextDir: ctx, dockerfileText: "FROM busybox:test\nADD evil.tar /e/\n")).build()
        }
        #expect(!FileManager.default.fileExists(atPath: outside))
    }

    @Test func copyOfAMissingOrIgnoredFileFails() throws {
        let ws = try Workspace()
        let ctx = ws.fixture("copy") + "/ctx"
        #expect(throws: BuildError.self) {
            try Builder(store: ws.store, options: BuildOptions(contextDir: ctx, dockerfileText: "FROM busybox:test\nCOPY src/ignored.tmp /x\n")).build()
        }
        #expect(throws: BuildError.self) {
            try Builder(store: ws.store, options: BuildOptions(contextDir: ctx, dockerfileText: "FROM busybox:test\nCOPY nothere /x\n")).build()
        }
    }

    @Test func addExtractsArchivesAndFetchesURLs() throws {
        let ws = try Workspace()
        let ctx = ws.dir + "/addctx"
        let tree = ws.dir + "/tree"
        try FileManager.default.createDirectory(atPath: tree + "/d", withIntermediateDirectories: true)
        try Data("inside\n".utf8).write(to: URL(fileURLWithPath: tree + "/d/f.txt"))
        try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
        for (ext, flag) in [("tar.gz", "-z"), ("tar.bz2", "-j"), ("tar.xz", "-J"), ("tar.zst", "--zstd"), ("tar", "")] {
            var args = ["tar", "-c", "-f", ctx + "/tree." + ext, "-C", tree, "."]
            if !flag.isEmpty { args.insert(flag, at: 1) }
            let (st, out) = try sh(args)
            try #require(st == 0, "tar \(flag): \(out)")
        }
        try Data("plain\n".utf8).write(to: URL(fileURLWithPath: ctx + "/plain.txt"))
        // A local HTTP server for ADD URL.
        let served = ws.dir + "/www"
        try FileManager.default.createDirectory(atPath: served, withIntermediateDirectories: true)
        try Data("downloaded\n".utf8).write(to: URL(fileURLWithPath: served + "/file.txt"))
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", served]
        let pipe = Pipe()
        server.standardOutput = pipe
        server.standardError = FileHandle.nullDevice
        try server.run()
        // SIGKILL: test threads block SIGTERM, and children inherit the mask.
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        let line = String(decoding: pipe.fileHandleForReading.availableData, as: UTF8.self)
        let port = try #require(line.split(separator: " ").first(where: { Int($0) != nil && Int($0)! > 0 }).flatMap { Int($0) }, "server said: \(line)")
        let sum = Digest.compute(Data("downloaded\n".utf8)).description
        let r = try ws.build("add", context: ctx) {
            $0.buildArgs = ["SUM": sum, "URL": "http://127.0.0.1:\(port)/file.txt"]
        }
        let fs = try ws.files(r.image)
        for d in ["gz", "bz2", "xz", "zst", "plain"] {
            #expect(ws.read(fs + "/\(d)/d/f.txt") == "inside\n", "ADD tree.\(d)")
        }
        #expect(ws.read(fs + "/plain.txt") == "plain\n")
        #expect(ws.read(fs + "/downloaded/file.txt") == "downloaded\n")
        #expect(stat(fs + "/downloaded/file.txt")?.mode == 0o600)
        // A wrong checksum stops the build.
        #expect(throws: BuildError.self) {
            try ws.build("add", context: ctx) {
                $0.buildArgs = ["SUM": Digest.compute(Data("other".utf8)).description, "URL": "http://127.0.0.1:\(port)/file.txt"]
                $0.noCache = true
            }
        }
    }

    @Test func multiStageBuildsOnlyNeededStages() throws {
        let ws = try Workspace()
        let r = try ws.build("multistage")
        let fs = try ws.files(r.image)
        #expect(ws.read(fs + "/artifact.txt") == "built\n")
        #expect(ws.read(fs + "/other.txt") == "other\n")
        #expect(FileManager.default.isExecutableFile(atPath: fs + "/bin/busybox"))
        #expect(r.image.manifest.layers.count == 3)
        #expect(!r.executed.contains { $0.contains("must not be built") })
        // --target builds that stage only.
        let t = try ws.build("multistage") { $0.target = "other" }
        #expect(t.image.config.history?.last?.createdBy?.contains("other") == true)
        #expect(throws: BuildError.self) { try ws.build("multistage") { $0.target = "unused" } }
        #expect(throws: BuildError.self) { try ws.build("multistage") { $0.target = "nope" } }
    }

    @Test func runUsesImageSettingsAndMounts() throws {
        let ws = try Workspace()
        let secret = ws.dir + "/token"
        try Data("s3cr3t".utf8).write(to: URL(fileURLWithPath: secret))
        let r = try ws.build("run") { $0.secrets = ["token": secret] }
        let fs = try ws.files(r.image)
        #expect(ws.read(fs + "/w/env.txt") == "hello 0 /w\n")
        #expect(ws.read(fs + "/tmp/user.txt") == "daemon\n")
        #expect(ws.read(fs + "/w/heredoc.txt") == "from-heredoc\nline2\n")
        #expect(ws.read(fs + "/w/count.txt") == "1\n")
        #expect(ws.read(fs + "/w/secret-seen.txt") == "s3cr3t")
        #expect(ws.read(fs + "/w/bound.txt") == "bound input\n")
        #expect(ws.read(fs + "/w/net.txt") == "lo\n")
        // Deletions become whiteouts: the file is gone from the image.
        #expect(!FileManager.default.fileExists(atPath: fs + "/etc/group"))
        #expect(!FileManager.default.fileExists(atPath: fs + "/w/deleted-later"))
        // Secrets and mount points never reach a layer.
        #expect(!FileManager.default.fileExists(atPath: fs + "/run/secrets/token") || ws.read(fs + "/run/secrets/token") == "")
        for l in r.image.manifest.layers {
            let (_, list) = try sh(["tar", "-tzf", ws.store.path(for: l.digest)])
            #expect(!list.contains("secrets/token"))
            #expect(!list.contains("proc/"))
            #expect(!list.contains("cache/count"))
        }
        // The cache mount persists: a rebuild without cache sees the first run's file.
        let again = try ws.build("run") { $0.secrets = ["token": secret]; $0.noCache = true }
        #expect(ws.read(try ws.files(again.image) + "/w/count.txt") == "2\n")
    }

    @Test func failingRunShowsCommandStatusAndOutputAndMakesNoImage() throws {
        let ws = try Workspace()
        let before = try ws.store.listImages().count
        do {
            try ws.build("fail", tag: "fail:test")
            Issue.record("the build should fail")
        } catch let e as BuildError {
            let text = e.description
            #expect(text.contains("exit 3"))
            #expect(text.contains("status 3"))
            #expect(text.contains("about to fail"))
            #expect(text.contains("oops"))
            #expect(text.contains("line 2"))
        }
        #expect(try ws.store.listImages().count == before)
    }

    @Test func onbuildTriggersRunInChildBuilds() throws {
        let ws = try Workspace()
        try ws.build("onbuild", tag: "onbuild-parent:test")
        let child = try ws.build("onbuild", dockerfile: "Dockerfile.child")
        let fs = try ws.files(child.image)
        #expect(ws.read(fs + "/triggered.txt") == "triggered\n")
        #expect(ws.read(fs + "/marker.txt") == "marker\n")
        #expect(child.image.config.config?.onBuild == nil)
    }

    /// The builder reads Dockerfiles through the Dockerfile library: global ARGs in FROM, ARG scope
    /// per stage, variables in RUN --mount, ONBUILD triggers with heredocs, BuildKit's messages.
    @Test func dockerfileLibraryScopesArgsAndTriggers() throws {
        let ws = try Workspace()
        let ctx = ws.dir + "/ctx-lib"
        try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
        try "input\n".write(toFile: ctx + "/in.txt", atomically: true, encoding: .utf8)
        func build(_ text: String, tag: String? = nil, target: String? = nil) throws -> BuildResult {
            var o = BuildOptions(contextDir: ctx, dockerfileText: text)
            if let tag { o.tags = [try ImageReference(parsing: tag)] }
            o.target = target
            return try Builder(store: ws.store, options: o).build()
        }
        let text = """
            ARG BASE=busybox:test
            FROM $BASE AS first
            ARG NAME=in
            RUN --mount=type=bind,source=$NAME.txt,target=/m/$NAME.txt cat /m/in.txt > /copied.txt
            FROM first
            RUN echo "name=[$NAME]" > /second.txt
            ONBUILD RUN <<EOF
            echo from-trigger > /trigger.txt
            EOF
            """
        let parent = try build(text, tag: "lib-parent:test")
        let fs = try ws.files(parent.image)
        #expect(ws.read(fs + "/copied.txt") == "input\n")
        #expect(ws.read(fs + "/second.txt") == "name=[]\n")
        let child = try build("FROM lib-parent:test\n")
        #expect(ws.read(try ws.files(child.image) + "/trigger.txt") == "from-trigger\n")
        do {
            _ = try build(text, target: "frist")
            Issue.record("an unknown target should fail")
        } catch let e as BuildError {
            #expect(e.description.contains("target stage \"frist\" could not be found (did you mean first?)"))
        }
    }

    @Test func outputsArchivesAndDirectories() throws {
        let ws = try Workspace()
        let r = try ws.build("cache")
        let oci = ws.dir + "/out-oci.tar", docker = ws.dir + "/out-docker.tar"
        try ws.store.save([r.image.descriptor.digest.description], format: .oci, to: oci)
        try ws.store.save([r.image.descriptor.digest.description], format: .docker, to: docker)
        #expect(try sh(["tar", "-tf", oci]).1.contains("index.json"))
        #expect(try sh(["tar", "-tf", docker]).1.contains("manifest.json"))
        let (st, out) = try sh(["skopeo", "inspect", "--config", "oci-archive:" + oci])
        #expect(st == 0, "skopeo: \(out)")
        #expect(out.contains(r.image.config.rootfs.diffIDs[0].description))
    }

    @Test func reproducibleWithSourceDateEpoch() throws {
        let a = try Workspace(), b = try Workspace()
        let ra = try a.build("copy") { $0.sourceDateEpoch = 1_700_000_000 }
        let rb = try b.build("copy") { $0.sourceDateEpoch = 1_700_000_000 }
        #expect(ra.image.descriptor.digest == rb.image.descriptor.digest)
    }

    @Test func runUserGetsSupplementaryGroups() throws {
        let ws = try Workspace()
        let text = "FROM busybox:test\nRUN echo 'extra:x:500:daemon' >> /etc/group\nUSER daemon\nRUN id -G > /tmp/groups.txt\n"
        let r = try Builder(store: ws.store, options: BuildOptions(contextDir: nil, dockerfileText: text)).build()
        #expect(ws.read(try ws.files(r.image) + "/tmp/groups.txt") == "1 500\n")
    }
}
