import Foundation
import Synchronization
import Testing
@testable import RegistryServer

/// The storage-driver conformance set (issue #23): what every `StorageDriver` must do, run
/// against each driver this project has. A new driver (S3) joins `StorageDriverKind` and
/// must pass all of it unchanged.
enum StorageDriverKind: String, CaseIterable, CustomTestStringConvertible {
    case filesystem
    /// The filesystem driver behind the metrics decorator `registry serve` uses with a debug address.
    case measured
    /// The S3 driver against the Ceph radosgw of `scripts/ceph-dev.sh` (skipped where Ceph is missing).
    case s3

    var testDescription: String { rawValue }

    /// A fresh, empty driver and a function that removes what it stored.
    func make() throws -> (any StorageDriver, () -> Void) {
        if self == .s3 {
            let d = try S3Driver(config: try S3TestCluster.config())
            return (d, { try? d.delete("") })
        }
        let dir = "/var/tmp/rs-driver-\(getpid())-\(UUID().uuidString)"
        let fs = try FilesystemDriver(root: dir)
        let cleanup = { try? FileManager.default.removeItem(atPath: dir); return }
        switch self {
        case .filesystem: return (fs, cleanup)
        case .measured: return (MeasuredDriver(fs, name: "filesystem", metrics: RegistryMetrics()), cleanup)
        case .s3: return (fs, cleanup)  // handled above
        }
    }
}

@Suite("storage driver conformance")
struct StorageDriverConformanceTests {
    static func read(_ d: any StorageDriver, _ path: String) throws -> [UInt8] {
        try d.open(path).readAll()
    }

    static func isNotFound(_ e: any Error) -> Bool {
        if case RegistryServerError.notFound = e { return true }
        return false
    }

    @Test(arguments: StorageDriverKind.allCases)
    func smallContentRoundTripsAndReplacesWhole(_ kind: StorageDriverKind) throws {
        let (d, done) = try kind.make()
        defer { done() }
        #expect(throws: (any Error).self) { try d.getContent("a/b/missing") }
        do { _ = try d.getContent("a/b/missing") } catch { #expect(Self.isNotFound(error), "\(error)") }
        #expect(d.stat("a/b/missing") == nil)

        try d.putContent("repo/x/link", Array("first".utf8))
        #expect(try d.getContent("repo/x/link") == Array("first".utf8))
        try d.putContent("repo/x/link", Array("2".utf8))
        #expect(try d.getContent("repo/x/link") == Array("2".utf8), "a shorter write replaces the whole content")
        let info = d.stat("repo/x/link")
        #expect(info?.size == 1 && info?.isDirectory == false)
        #expect(d.stat("repo/x")?.isDirectory == true)

        // empty content is content, not absence
        try d.putContent("repo/empty", [])
        #expect(try d.getContent("repo/empty") == [])
        #expect(d.stat("repo/empty")?.size == 0)
    }

    @Test(arguments: StorageDriverKind.allCases)
    func listingIsSortedAndOneLevelDeep(_ kind: StorageDriverKind) throws {
        let (d, done) = try kind.make()
        defer { done() }
        #expect(d.list("nothing/here").isEmpty)
        for p in ["r/c", "r/a", "r/b/deep/file", "r/B"] { try d.putContent(p, [1]) }
        #expect(d.list("r") == ["B", "a", "b", "c"])
        #expect(d.list("r/b") == ["deep"])
        // many entries (a driver that pages its listings must return them all)
        for i in 0..<1200 { try d.putContent("many/\(String(format: "%05d", i))", []) }
        let names = d.list("many")
        #expect(names.count == 1200 && names == names.sorted())
    }

    @Test(arguments: StorageDriverKind.allCases)
    func moveReplacesAndDeleteTakesTrees(_ kind: StorageDriverKind) throws {
        let (d, done) = try kind.make()
        defer { done() }
        try d.putContent("tmp/one", Array("new".utf8))
        try d.putContent("final/one", Array("old".utf8))
        try d.move("tmp/one", to: "final/one")
        #expect(try d.getContent("final/one") == Array("new".utf8))
        #expect(d.stat("tmp/one") == nil)
        try d.move("final/one", to: "elsewhere/deeper/one")
        #expect(try d.getContent("elsewhere/deeper/one") == Array("new".utf8), "a move creates the destination's parents")
        #expect(throws: (any Error).self) { try d.move("no/such", to: "x") }

        for p in ["tree/a", "tree/sub/b", "tree/sub/c"] { try d.putContent(p, [0]) }
        try d.delete("tree")
        #expect(d.stat("tree") == nil && d.list("tree").isEmpty)
        try d.delete("tree")  // absent is fine
        try d.delete("never/was")
    }

    @Test(arguments: StorageDriverKind.allCases)
    func largeWritesStreamAndCommit(_ kind: StorageDriverKind) throws {
        let (d, done) = try kind.make()
        defer { done() }
        // 12 MiB in uneven pieces: more than one part of any multipart scheme
        var expected: [UInt8] = []
        let w = try d.writer("uploads/u1/data")
        var seed: UInt32 = 1
        for piece in [1, 4096, 1 << 20, 5 << 20, 3, 6 << 20] {
            var chunk = [UInt8](repeating: 0, count: piece)
            for i in 0..<piece { seed = seed &* 1_103_515_245 &+ 12345; chunk[i] = UInt8(truncatingIfNeeded: seed >> 16) }
            try chunk.withUnsafeBytes { try w.write($0) }
            expected += chunk
            #expect(w.size == Int64(expected.count))
        }
        try w.commit()
        #expect(d.stat("uploads/u1/data")?.size == Int64(expected.count))
        #expect(try Self.read(d, "uploads/u1/data") == expected)

        // an upload continued by a second writer (another request, or another replica) appends
        let w2 = try d.writer("uploads/u1/data")
        #expect(w2.size == Int64(expected.count))
        try Array("tail".utf8).withUnsafeBytes { try w2.write($0) }
        try w2.commit()
        #expect(try Self.read(d, "uploads/u1/data").suffix(4) == Array("tail".utf8))
    }

    @Test(arguments: StorageDriverKind.allCases)
    func rangesReadOnlyWhatTheyAskFor(_ kind: StorageDriverKind) throws {
        let (d, done) = try kind.make()
        defer { done() }
        var bytes = [UInt8](repeating: 0, count: 7 << 20)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 7 &+ i >> 11) }
        try d.putContent("blobs/x/data", bytes)
        let content = try d.open("blobs/x/data")
        #expect(content.size == Int64(bytes.count))
        for (offset, length) in [(0, 1), (5, 100), ((7 << 20) - 10, 10), (1 << 20, 3 << 20), (0, 0)] {
            var got: [UInt8] = []
            let again = try d.open("blobs/x/data")  // a file descriptor is closed by each read
            try again.read(offset: Int64(offset), length: Int64(length)) { got.append(contentsOf: $0) }
            #expect(got == Array(bytes[offset..<offset + length]), "range \(offset)+\(length)")
        }
        if case .reader(let r) = content, let s3 = r as? S3ObjectReader {
            // a remote reader fetches only the range asked for, not the object
            let before = s3.client.bytesReceived.load(ordering: .relaxed)
            try r.read(offset: 12345, length: 1000) { _ in }
            #expect(s3.client.bytesReceived.load(ordering: .relaxed) - before == 1000)
        }
        if case .file(let fd, _) = content { close(fd) }
        #expect(throws: (any Error).self) { try d.open("blobs/none/data") }
    }

    @Test(arguments: StorageDriverKind.allCases)
    func anInterruptedWriterKeepsWhatItWrote(_ kind: StorageDriverKind) throws {
        let (d, done) = try kind.make()
        defer { done() }
        let w = try d.writer("uploads/u2/data")
        try Array(repeating: UInt8(9), count: 1000).withUnsafeBytes { try w.write($0) }
        w.close()  // the client went away: no commit
        let again = try d.writer("uploads/u2/data")
        #expect(again.size == 1000, "a resumed upload continues where the last request stopped")
        again.close()
        // and an empty object can be written through a writer too
        let e = try d.writer("empty/data")
        try e.commit()
        #expect(d.stat("empty/data")?.size == 0)
    }

    @Test(arguments: StorageDriverKind.allCases)
    func concurrentWritersOfOnePathLeaveOneWholeValue(_ kind: StorageDriverKind) throws {
        let (d, done) = try kind.make()
        defer { done() }
        let values = (0..<8).map { i in [UInt8](repeating: UInt8(i), count: 64 * 1024) }
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8 * 4) { n in
            do { try d.putContent("tags/latest", values[n % 8]) } catch { failures.withLock { $0 += 1 } }
        }
        #expect(failures.withLock { $0 } == 0)
        let final = try d.getContent("tags/latest")
        #expect(values.contains(final), "a reader sees one writer's whole value, never a mix")
        // concurrent writers of different paths all land
        DispatchQueue.concurrentPerform(iterations: 50) { n in
            do { try d.putContent("blobs/\(n)", Array("v\(n)".utf8)) } catch { failures.withLock { $0 += 1 } }
        }
        #expect(failures.withLock { $0 } == 0)
        #expect(d.list("blobs").count == 50)
    }
}
