import Foundation
import OCI
import Testing
@testable import Build
@testable import ImageStore

/// Multi-platform builds (issue #20): one build per platform into an OCI index, the
/// automatic platform args, and the refusals that keep an image's platform true to its binaries.
@Suite struct MultiPlatformTests {
    @Test func copyOnlyCrossBuildMakesAnIndex() throws {
        let ws = try Workspace()
        let ctx = ws.dir + "/ctx"
        try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: ctx + "/f"))
        var o = BuildOptions(contextDir: ctx, dockerfileText: "FROM scratch\nARG TARGETARCH\nARG TARGETPLATFORM\nCOPY f /f-$TARGETARCH\nLABEL p=$TARGETPLATFORM\n")
        o.tags = [try ImageReference(parsing: "multi:1")]
        let arm = try Platform(parsing: "linux/arm64"), amd = try Platform(parsing: "linux/amd64")
        let r = try Builder.buildPlatforms(store: ws.store, options: o, platforms: [amd, arm])
        #expect(MediaType.isIndex(r.descriptor.mediaType))
        let index = try ws.store.index(r.descriptor)
        #expect(index.manifests.compactMap { $0.platform?.description } == ["linux/amd64", "linux/arm64"])
        #expect(try ws.store.resolve("multi:1") == r.descriptor, "the tag names the index")
        for (p, arch) in [(amd, "amd64"), (arm, "arm64")] {
            let img = try ws.store.image("multi:1", platform: p)
            #expect(img.config.architecture == arch && img.config.os == "linux")
            #expect(img.config.config?.labels?["p"] == "linux/\(arch)")
            let fs = try ws.files(img)
            #expect(ws.read(fs + "/f-\(arch)") == "hello\n")
        }
        // one platform: a plain image, as docker gives
        let one = try Builder.buildPlatforms(store: ws.store, options: o, platforms: [arm])
        #expect(MediaType.isManifest(one.descriptor.mediaType))
    }

    /// The platforms build side by side, except that a stage pinned to `$BUILDPLATFORM` (the
    /// cross-compiling stage) runs once: the first platform builds it, the others hit the cache.
    @Test func pinnedStageRunsOnceAcrossPlatforms() throws {
        let ws = try Workspace()
        var o = BuildOptions(contextDir: nil, dockerfileText: """
            FROM --platform=$BUILDPLATFORM busybox:test AS tools
            RUN echo built-on-$(uname -m) > /out
            FROM scratch
            ARG TARGETARCH
            COPY --from=tools /out /out-$TARGETARCH
            """)
        o.tags = [try ImageReference(parsing: "pinned:1")]
        let arm = try Platform(parsing: "linux/arm64"), amd = try Platform(parsing: "linux/amd64")
        let r = try Builder.buildPlatforms(store: ws.store, options: o, platforms: [amd, arm])
        #expect(r.results[0].executed.filter { $0.hasPrefix("RUN") }.count == 1)
        #expect(r.results[1].executed.filter { $0.hasPrefix("RUN") }.isEmpty, "the pinned stage came from the cache: \(r.results[1].executed)")
        var outs: [String?] = []
        for (p, arch) in [(amd, "amd64"), (arm, "arm64")] {
            let img = try ws.store.image("pinned:1", platform: p)
            #expect(img.config.architecture == arch)
            outs.append(ws.read(try ws.files(img) + "/out-\(arch)"))
        }
        #expect(outs[0] != nil && outs[0]?.hasPrefix("built-on-") == true && outs[0] == outs[1])
    }

    @Test func refusals() throws {
        let ws = try Workspace()
        let arm = try Platform(parsing: "linux/arm64")
        // busybox:test is this machine's platform: building arm64 on it would mislabel its binaries
        var o = BuildOptions(contextDir: nil, dockerfileText: "FROM busybox:test\nRUN true\n")
        o.tags = []
        #expect { try Builder.buildPlatforms(store: ws.store, options: o, platforms: [arm]) } throws: { e in
            "\(e)".contains("not linux/arm64") && "\(e)".contains("busybox:test")
        }
        #expect { try Builder.buildPlatforms(store: ws.store, options: o, platforms: [arm, arm]) } throws: { "\($0)".contains("more than once") }
        #expect(throws: (any Error).self) { try Platform(parsing: "linux/") }
    }
}
