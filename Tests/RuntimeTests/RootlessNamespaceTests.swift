import Foundation
import Testing
@testable import Runtime

/// /etc/subuid parsing and id-map lookups of rootless dockbuild (the end-to-end tests are
/// ContainersTests' RootlessTests).
@Suite struct RootlessNamespaceTests {
    @Test func subordinateRangesByNameOrUID() {
        let text = "alice:100000:65536\n# comment\nbob:x:1\n1002:300000:1000\nbob:200000:0\nbob:400000:65536\n"
        #expect(RootlessNamespace.subordinateRange(in: text, user: "alice", id: 1001) == .init(start: 100_000, count: 65_536))
        // by uid when the name is not listed; malformed and empty ranges are skipped
        #expect(RootlessNamespace.subordinateRange(in: text, user: "carol", id: 1002) == .init(start: 300_000, count: 1000))
        #expect(RootlessNamespace.subordinateRange(in: text, user: "bob", id: 1003) == .init(start: 400_000, count: 65_536))
        #expect(RootlessNamespace.subordinateRange(in: text, user: "dave", id: 1004) == nil)
    }

    @Test func idMapContainsOnlyItsRanges() {
        let m = IDMap(ranges: [(0, 1), (1, 65_536)])
        #expect(m.contains(0) && m.contains(65_536) && !m.contains(65_537))
        let one = IDMap(ranges: [(0, 1)])
        #expect(one.contains(0) && !one.contains(5))
        // the initial namespace maps everything
        #expect(IDMap(ranges: [(0, UInt32.max)]).contains(4_294_967_294))
    }
}
