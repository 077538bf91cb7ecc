import Foundation
import Testing
import OCI
import ImageStore
@testable import Build

/// A step's layer blob is written on a background thread while the next steps run
/// (`LayerExports`, issue #15): the same image as writing it in line, its directory kept as the
/// layer's snapshot, its failures reported with the step that made it.
@Suite(.serialized) struct LayerExportTests {
    /// A context of a few files and a Dockerfile of COPY and RUN steps over two stages.
    func context(_ ws: Workspace, _ dockerfile: String) throws -> (dir: String, options: BuildOptions) {
        let ctx = ws.dir + "/ctx-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: ctx + "/src", withIntermediateDirectories: true)
        for i in 0..<30 {
            try Data(String(repeating: "line \(i)\n", count: 200 * (i + 1)).utf8).write(to: URL(fileURLWithPath: ctx + "/src/f\(i).txt"))
        }
        var o = BuildOptions(contextDir: ctx, dockerfileText: dockerfile)
        o.network = "none"
        o.sourceDateEpoch = 1_700_000_000
        return (ctx, o)
    }

    static let twoStages = """
        FROM busybox:test AS base
        COPY src/ /src/
        RUN cat /src/* | wc -c > /size && mkdir /made && echo one > /made/one
        FROM base AS app
        RUN rm /src/f1.txt && echo two > /made/two
        COPY --from=base /size /size.copy
        FROM busybox:test
        COPY --from=app /made /made
        RUN ls /made > /list
        """

    @Test func backgroundWritesGiveTheSameImageAsWritesInLine() throws {
        let ws = try Workspace()
        let (_, opts) = try context(ws, Self.twoStages)
        var serial = opts
        serial.layersInLine = true
        let inLine = try Builder(store: ws.store, options: serial).build()
        var again = opts
        again.noCache = true
        let background = try Builder(store: ws.store, options: again).build()
        #expect(background.executed.count == inLine.executed.count)
        #expect(background.image.manifest.layers == inLine.image.manifest.layers)
        #expect(background.image.config.rootfs.diffIDs == inLine.image.config.rootfs.diffIDs)
        #expect(background.image.descriptor.digest == inLine.image.descriptor.digest)
        // every layer blob is in the store and matches its diffID; every chain has its snapshot
        try ws.store.verifyLayers(of: background.image.manifest, config: background.image.config, what: "the build")
        let snap = ws.store.snapshotter
        for n in 1...background.image.config.rootfs.diffIDs.count {
            let chain = try #require(ImageConfig.chainID(Array(background.image.config.rootfs.diffIDs.prefix(n))))
            #expect(snap.has(chainID: chain), "no snapshot for layer \(n)")
        }
        let files = try ws.files(background.image)
        #expect(ws.read(files + "/list") == "one\ntwo\n")
        // the build's session (and with it every layer directory not kept) is gone
        #expect(FS.list(ws.store.root + "/build/tmp").filter { $0.hasPrefix(BuildSession.prefix) }.isEmpty)
        #expect(FS.list(ws.store.tempDir).isEmpty)
    }

    /// The rebuild of a step whose cache record was lost, under a step that is still cached: the
    /// cached layer's snapshot needs the diffID of the one being written, so the view waits for it.
    @Test func aCachedStepOverALayerBeingWrittenSeesIt() throws {
        let ws = try Workspace()
        let (ctx, opts) = try context(ws, "FROM busybox:test\nCOPY src/ /src/\nRUN ls /src | wc -l > /count\n")
        let first = try Builder(store: ws.store, options: opts).build()
        #expect(first.executed.count == 2)
        // forget the COPY's record: it runs again, the RUN above it is still a hit
        let copyKey = try #require(first.cacheKeys.first)
        #expect(unlink(ws.store.root + "/build/cache/\(copyKey).json") == 0)
        var more = opts
        more.dockerfileText += "RUN cat /count /src/f2.txt | head -1 > /seen\n"
        more.contextDir = ctx
        let second = try Builder(store: ws.store, options: more).build()
        #expect(second.executed.count == 2, "\(second.executed)")
        #expect(Array(second.image.manifest.layers.prefix(3)) == first.image.manifest.layers)
        let files = try ws.files(second.image)
        #expect(ws.read(files + "/seen") == "30\n")
    }

    /// A later stage that runs a step an earlier stage of the same build ran takes that step's
    /// layer (its directory, before the join makes it a snapshot) as a hit, whether or not the
    /// blob has been written yet: the step runs once, and the image is the one a second build gives.
    @Test func aStepTwoStagesShareRunsOnce() throws {
        let ws = try Workspace()
        let dockerfile = """
            FROM busybox:test AS a
            COPY src/ /src/
            RUN echo a > /a
            FROM busybox:test AS b
            COPY src/ /src/
            COPY --from=a /a /a
            RUN cat /a /src/f3.txt | head -2 > /seen
            """
        let (_, opts) = try context(ws, dockerfile)
        var target = opts
        target.target = "b"
        let first = try Builder(store: ws.store, options: target).build()
        #expect(first.executed.filter { $0.hasPrefix("COPY src/") }.count == 1, "\(first.executed)")
        let files = try ws.files(first.image)
        #expect(ws.read(files + "/seen") == "a\nline 3\n")
        let again = try Builder(store: ws.store, options: target).build()
        #expect(again.executed.isEmpty)
        #expect(again.image.descriptor.digest == first.image.descriptor.digest)
    }

    /// A layer that cannot be stored (its blob cannot be moved into `blobs/`) fails the build with
    /// an error naming its step, leaves no temp file, and no cache record points at it.
    @Test func aLayerThatCannotBeStoredFailsTheBuildNamingItsStep() throws {
        guard getuid() == 0 else { return }
        let ws = try Workspace()
        let (_, opts) = try context(ws, "FROM busybox:test\nCOPY src/ /src/\nRUN echo after > /after\nRUN echo last > /last\n")
        let blobs = ws.store.root + "/blobs/sha256"
        // immutable: not even root may add an entry (ext4, xfs, btrfs; skipped elsewhere)
        guard (try? sh(["chattr", "+i", blobs]))?.0 == 0 else { return }
        defer { _ = try? sh(["chattr", "-i", blobs]) }
        #expect {
            try Builder(store: ws.store, options: opts).build()
        } throws: { error in
            "\(error)".contains("cannot write the layer for `COPY src/ /src/ # buildkit`")
        }
        _ = try? sh(["chattr", "-i", blobs])
        #expect(FS.list(ws.store.tempDir).isEmpty, "\(FS.list(ws.store.tempDir))")
        #expect(FS.list(ws.store.root + "/build/cache").isEmpty)
        #expect(FS.list(ws.store.root + "/build/tmp").filter { $0.hasPrefix(BuildSession.prefix) }.isEmpty)
        // and the same build then works, from scratch
        let ok = try Builder(store: ws.store, options: opts).build()
        #expect(ok.executed.count == 3)
    }

    /// A RUN's overlay is mounted `volatile`: its unmount does not sync the whole file system
    /// (the blobs being written in the background included) before the next step; the upper
    /// becomes a snapshot, derived from the layer's blob as a COPY's staging tree is.
    @Test func runOverlayIsVolatile() throws {
        // (overlayfs takes `volatile` since Linux 5.10; before, the mount is made without it)
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let version = release.split(separator: ".").prefix(2).compactMap { Int($0.prefix { $0.isNumber }) }
        guard version.count == 2, (version[0], version[1]) >= (5, 10) else { return }
        let ws = try Workspace()
        let (_, opts) = try context(ws, "FROM busybox:test\nRUN grep ' / ' /proc/self/mountinfo > /root-mount\n")
        let result = try Builder(store: ws.store, options: opts).build()
        let files = try ws.files(result.image)
        let line = try #require(ws.read(files + "/root-mount"))
        #expect(line.contains(" overlay "), "\(line)")
        #expect(line.contains("volatile"), "\(line)")
    }
}
