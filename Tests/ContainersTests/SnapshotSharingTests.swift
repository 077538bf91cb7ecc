import Foundation
import ImageStore
import OCI
import Testing

/// Issue #18: builds and containers share one snapshotter, so a built image that is then run is
/// unpacked once — each layer once — and the unpacked bytes stay within 1.1x of its layers.
@Suite(.serialized) struct SnapshotSharingTests {
    @Test(.enabled(if: Scenario.canRun)) func buildThenRunUnpacksEachLayerOnce() throws {
        let s = try Scenario(10)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let ctx = s.root + "/ctx"
        try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
        // 2 MB that does not compress, as in the measurement.
        var bytes = [UInt8](repeating: 0, count: 2 << 20)
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in bytes.indices { x ^= x << 13; x ^= x >> 7; x ^= x << 17; bytes[i] = UInt8(truncatingIfNeeded: x) }
        try Data(bytes).write(to: URL(fileURLWithPath: ctx + "/big"))
        try "FROM busybox:test\nCOPY big /big\nRUN echo built > /built\n".write(toFile: ctx + "/Dockerfile", atomically: true, encoding: .utf8)
        _ = try s.ok(["build", "--progress", "plain", "-t", "shared:1", ctx])
        let out = try s.ok(["run", "--rm", "--network", "none", "shared:1", "sh", "-c", "cat /built; wc -c < /big"])
        #expect(out.contains("built") && out.contains("2097152"), "\(out)")

        let store = try ImageStore(root: s.root)
        let image = try store.image("shared:1")
        let snaps = store.snapshotter
        let lowers = try snaps.lowers(for: image)
        #expect(lowers.count == 3)
        // Exactly one snapshot per chain of the image, nothing unpacked a second time.
        let dirs = try FileManager.default.contentsOfDirectory(atPath: snaps.layersDir).filter { !$0.hasPrefix("tmp-") }
        #expect(dirs.count == 3, "\(dirs)")
        #expect(!FileManager.default.fileExists(atPath: s.root + "/build/layers"))
        // Unpacked bytes against the layers' own files.
        var layerBytes: Int64 = 0
        for l in image.manifest.layers {
            let list = try Shell.out(["tar", "-tvf", store.path(for: l.digest)])
            for line in list.split(separator: "\n") where line.hasPrefix("-") {
                layerBytes += Int64(line.split(separator: " ", omittingEmptySubsequences: true)[2]) ?? 0
            }
        }
        let unpacked = snaps.usage()
        #expect(layerBytes > 2 << 20)
        #expect(Double(unpacked) <= 1.1 * Double(layerBytes), "unpacked \(unpacked) bytes for \(layerBytes) bytes of layers")
    }
}
