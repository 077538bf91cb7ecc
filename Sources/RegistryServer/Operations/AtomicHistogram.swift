import Atomics
import Foundation

/// A Prometheus histogram of durations whose recording takes no lock and shares no cache line
/// between threads: each thread adds to one of 64 copies (`ShardedCounters`) of the buckets and the sum (a
/// relaxed atomic add on each), picked by its thread id, and a scrape adds the copies up. The
/// collector registry's histograms took a mutex per sample; one set of atomics shared by every
/// connection thread still moved its cache lines between cores on every request (four
/// histograms and a dozen atomic adds per manifest GET). The count is the buckets' total.
/// Read at a scrape, the buckets may be a sample apart from the sum: Prometheus tolerates it.
final class AtomicHistogram: Sendable {
    /// Upper bounds, in nanoseconds, ascending; a last bucket is +Inf.
    let bounds: [Int]
    /// The buckets (+Inf last), then the sum, in per-thread copies.
    private let cells: ShardedCounters

    init(bounds: [Duration]) {
        self.bounds = bounds.map { Int($0.components.seconds) * 1_000_000_000 + Int($0.components.attoseconds / 1_000_000_000) }
        cells = ShardedCounters(slots: bounds.count + 2)
    }

    func record(nanoseconds: Int) {
        var i = 0
        while i < bounds.count && nanoseconds > bounds[i] { i += 1 }
        cells.add(i, andAdd: nanoseconds, to: bounds.count + 1)
    }

    /// Bucket `i`'s count (`bounds.count` + 1 for the sum) added up over the shards.
    private func total(_ i: Int) -> Int { cells.total(i) }

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
