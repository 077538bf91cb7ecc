import Foundation

/// A storage driver that times every action of the driver it wraps, for `/metrics`
/// (`registry_storage_action_seconds{driver,action}`, as distribution names it). Writers are
/// timed at their commit, where the durable write happens.
struct MeasuredDriver: StorageDriver {
    let base: any StorageDriver
    let driverName: String
    /// One histogram per action, as fields: a dictionary lookup by name per action cost more
    /// than the timing itself.
    private let getContentTime, putContentTime, statTime, listTime, moveTime, deleteTime, writerTime, openTime, commitTime: AtomicHistogram

    static let actions = ["get_content", "put_content", "stat", "list", "move", "delete", "writer", "open", "commit"]
    static let buckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
        .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5),
    ]

    init(_ base: any StorageDriver, name: String, metrics: RegistryMetrics) {
        self.base = base
        driverName = name
        let h = MeasuredDriver.actions.map { metrics.storageHistogram(driver: name, action: $0) }
        (getContentTime, putContentTime, statTime, listTime, moveTime) = (h[0], h[1], h[2], h[3], h[4])
        (deleteTime, writerTime, openTime, commitTime) = (h[5], h[6], h[7], h[8])
    }

    /// Times `body` in whole nanoseconds of the server's clock: `ContinuousClock` instants and
    /// `Duration`s (128-bit arithmetic to split a duration) cost several times the clock reads.
    private func timed<R>(_ histogram: AtomicHistogram, _ body: () throws -> R) rethrows -> R {
        let start = HTTPConnection.now()
        defer { histogram.record(nanoseconds: Int(truncatingIfNeeded: HTTPConnection.now() &- start)) }
        return try body()
    }

    func getContent(_ path: String) throws -> [UInt8] { try timed(getContentTime) { try base.getContent(path) } }
    func putContent(_ path: String, _ bytes: [UInt8]) throws { try timed(putContentTime) { try base.putContent(path, bytes) } }
    func stat(_ path: String) -> StorageFileInfo? { timed(statTime) { base.stat(path) } }
    func list(_ path: String) -> [String] { timed(listTime) { base.list(path) } }
    func listing(_ path: String) throws -> [String] { try timed(listTime) { try base.listing(path) } }
    func move(_ from: String, to: String) throws { try timed(moveTime) { try base.move(from, to: to) } }
    func delete(_ path: String) throws { try timed(deleteTime) { try base.delete(path) } }
    func writer(_ path: String) throws -> any StorageWriter {
        let w = try timed(writerTime) { try base.writer(path) }
        return MeasuredWriter(base: w, commitTime: commitTime)
    }
    func open(_ path: String) throws -> StorageContent { try timed(openTime) { try base.open(path) } }
    var isShared: Bool { base.isShared }
    func redirectURL(_ path: String) -> String? { base.redirectURL(path) }
    func removeLeftovers(dryRun: Bool, unstampedAge: TimeInterval) -> [String] {
        base.removeLeftovers(dryRun: dryRun, unstampedAge: unstampedAge)
    }
}

/// A writer whose commit (fsync and close) is timed.
final class MeasuredWriter: StorageWriter {
    let base: any StorageWriter
    let commitTime: AtomicHistogram?

    init(base: any StorageWriter, commitTime: AtomicHistogram?) {
        self.base = base
        self.commitTime = commitTime
    }

    var size: Int64 { base.size }
    func write(_ buffer: UnsafeRawBufferPointer) throws { try base.write(buffer) }
    func commit() throws {
        let start = HTTPConnection.now()
        defer { commitTime?.record(nanoseconds: Int(truncatingIfNeeded: HTTPConnection.now() &- start)) }
        try base.commit()
    }
    func close() { base.close() }
    func finish() throws { try base.finish() }
}
