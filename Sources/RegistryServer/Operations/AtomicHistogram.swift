import Atomics
import Foundation

/// A Prometheus histogram of durations whose recording takes no lock and shares no cache line
/// between threads: each thread adds to one of `shards` copies of the buckets and the sum (a
/// relaxed atomic add on each), picked by its thread id, and a scrape adds the copies up. The
/// collector registry's histograms took a mutex per sample; one set of atomics shared by every
/// connection thread still moved its cache lines between cores on every request (four
/// histograms and a dozen atomic adds per manifest GET). The count is the buckets' total.
/// Read at a scrape, the buckets may be a sample apart from the sum: Prometheus tolerates it.
final class AtomicHistogram: @unchecked Sendable {
    // @unchecked: `cells` is written only through atomics after `init`, and freed in `deinit`.

    /// Upper bounds, in nanoseconds, ascending; a last bucket is +Inf.
    let bounds: [Int]
    /// Copies of the buckets and sum: more than the connection threads a busy server runs on
    /// few cores, so two threads seldom share one.
    static let shards = ShardedCounters.shards
    /// Cells per shard: the buckets, then the sum, rounded up to whole 64-byte lines.
    private let stride: Int
    private let cells: UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>

    init(bounds: [Duration]) {
        self.bounds = bounds.map { Int($0.components.seconds) * 1_000_000_000 + Int($0.components.attoseconds / 1_000_000_000) }
        stride = (bounds.count + 2 + 7) / 8 * 8
        let count = stride * AtomicHistogram.shards
        cells = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<UnsafeAtomic<Int>.Storage>.stride, alignment: 64)
            .bindMemory(to: UnsafeAtomic<Int>.Storage.self, capacity: count)
        cells.initialize(repeating: UnsafeAtomic<Int>.Storage(0), count: count)
    }

    deinit {
        cells.deinitialize(count: stride * AtomicHistogram.shards)
        cells.deallocate()
    }

    func record(nanoseconds: Int) {
        var i = 0
        while i < bounds.count && nanoseconds > bounds[i] { i += 1 }
        let base = cells + ShardedCounters.shard() * stride
        UnsafeAtomic<Int>(at: base + i).wrappingIncrement(ordering: .relaxed)
        UnsafeAtomic<Int>(at: base + bounds.count + 1).wrappingIncrement(by: nanoseconds, ordering: .relaxed)
    }

    /// Bucket `i`'s count (`bounds.count` + 1 for the sum) added up over the shards.
    private func total(_ i: Int) -> Int {
        var n = 0
        for s in 0..<AtomicHistogram.shards {
            n &+= UnsafeAtomic<Int>(at: cells + s * stride + i).load(ordering: .relaxed)
        }
        return n
    }

    /// The text exposition lines of this histogram: `name_bucket{labels,le="..."}` (cumulative),
    /// `name_sum` in seconds, `name_count`.
    func emit(name: String, labels: String, into out: inout String) {
        let prefix = labels.isEmpty ? "" : labels + ","
        var running = 0
        for i in 0...bounds.count {
            running += total(i)
            let le = i < bounds.count ? AtomicHistogram.seconds(bounds[i]) : "+Inf"
            out += "\(name)_bucket{\(prefix)le=\"\(le)\"} \(running)\n"
        }
        let wrap = labels.isEmpty ? "" : "{\(labels)}"
        out += "\(name)_sum\(wrap) \(AtomicHistogram.seconds(total(bounds.count + 1)))\n"
        out += "\(name)_count\(wrap) \(running)\n"
    }

    /// Nanoseconds as seconds, the shortest decimal that says them.
    static func seconds(_ nanos: Int) -> String {
        let s = Double(nanos) / 1e9
        return s == s.rounded() ? String(Int(s)) + ".0" : String(s)
    }
}
