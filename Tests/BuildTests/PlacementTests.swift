import Foundation
import Testing
import ImageStore
import SystemSupport
@testable import Build

/// Where a build creates its trees: on ext4 each build's session dir and each unpacked or
/// committed layer snapshot starts in block groups of its own (docs/benchmarks.md, "On this VM's
/// disk"), not next to the trees earlier builds or a removed store freed.
@Suite struct PlacementTests {
    @Test func sessionsAndSnapshotsAreSpreadOnExt4() throws {
        let ws = try Workspace()
        // only ext2/3/4 have the flag
        guard (try? sh(["stat", "-f", "-c", "%t", ws.dir]))?.1.hasPrefix("ef53") == true else { return }
        try ws.build("copy")
        let root = ws.store.root
        #expect(FileSystem.spreadsSubdirectories(root + "/build/tmp"))
        #expect(FileSystem.spreadsSubdirectories(root + "/snapshots/layers"))
        // only those two: the store's other directories keep the allocator's default
        #expect(!FileSystem.spreadsSubdirectories(root + "/build"))
        #expect(!FileSystem.spreadsSubdirectories(root + "/blobs/sha256"))
    }
}
