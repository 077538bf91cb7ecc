import Foundation
import Testing
import OCI
import ImageStore
@testable import Build

@Suite(.serialized) struct CacheTests {
    /// A private copy of fixtures/build/cache/ctx that a test may change.
    func context(_ ws: Workspace) throws -> String {
        let ctx = ws.dir + "/ctx-\(UUID().uuidString.prefix(6))"
        try FileManager.default.copyItem(atPath: ws.fixture("cache") + "/ctx", toPath: ctx)
        return ctx
    }

    @Test func fullRebuildIsAllHits() throws {
        let ws = try Workspace()
        let ctx = try context(ws)
        let first = try ws.build("cache", context: ctx)
        #expect(first.executed.count == 5)
        let second = try ws.build("cache", context: ctx)
        #expect(second.executed.isEmpty)
        #expect(second.cachedSteps == 5)
        #expect(second.image.manifest.layers == first.image.manifest.layers)
        // Nothing ran: the same image (same ID) as the first build.
        #expect(second.image.id == first.image.id)
        // Only mtimes changed: still all hits (content digests, not times).
        let later = Date().addingTimeInterval(3600)
        for f in ["one.txt", "two.txt"] {
            try FileManager.default.setAttributes([.modificationDate: later], ofItemAtPath: ctx + "/" + f)
        }
        #expect(try ws.build("cache", context: ctx).executed.isEmpty)
        // --no-cache runs everything again.
        #expect(try ws.build("cache", context: ctx) { $0.noCache = true }.executed.count == 5)
    }

    @Test func changingOneFileRebuildsOnlyTheStepsAfterItsCopy() throws {
        let ws = try Workspace()
        let ctx = try context(ws)
        try ws.build("cache", context: ctx)
        try Data("two, changed\n".utf8).write(to: URL(fileURLWithPath: ctx + "/two.txt"))
        let r = try ws.build("cache", context: ctx)
        #expect(r.executed == ["COPY two.txt /two.txt", "RUN cat /two.txt > /two-copy.txt"])
        #expect(ws.read(try ws.files(r.image) + "/two-copy.txt") == "two, changed\n")
        try Data("one, changed\n".utf8).write(to: URL(fileURLWithPath: ctx + "/one.txt"))
        #expect(try ws.build("cache", context: ctx).executed.count == 4)
    }

    @Test func exportedCacheGivesHitsInAFreshStore() throws {
        let ws = try Workspace()
        let ctx = try context(ws)
        let exported = ws.dir + "/exported-cache"
        let first = try ws.build("cache", context: ctx) { $0.cacheTo = [exported] }
        #expect(FileManager.default.fileExists(atPath: exported + "/index.json"))

        let fresh = try Workspace()
        let r = try fresh.build("cache", context: ctx) { $0.cacheFrom = [exported] }
        #expect(r.executed.isEmpty)
        #expect(r.image.manifest.layers == first.image.manifest.layers)
        #expect(fresh.read(try fresh.files(r.image) + "/one-copy.txt") == "one\n")
    }

    @Test func pruneDropsRecords() throws {
        let ws = try Workspace()
        let ctx = try context(ws)
        try ws.build("cache", context: ctx)
        let cache = try BuildCache(store: ws.store)
        #expect(cache.keys().count == 5)
        #expect(cache.prune() == 5)
        #expect(try ws.build("cache", context: ctx).executed.count == 5)
    }
}
