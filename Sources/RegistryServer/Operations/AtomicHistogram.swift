import Atomics
import Foundation

/// A Prometheus histogram of durations whose recording takes no lock: a relaxed atomic add on
/// its bucket, its sum and its count. The collector registry's histograms take a mutex per
/// sample; with one sample per request and three per storage action, shared by every
/// connection thread, that lock was most of what metrics cost the manifest GET rate. Read
/// at a scrape, the buckets may be a sample apart from the count: Prometheus tolerates it.
final class AtomicHistogram: Sendable {
    /// Upper bounds, in nanoseconds, ascending; a last bucket is +Inf.
    let bounds: [Int]
    private let counts: [ManagedAtomic<Int>]
    private let sum = ManagedAtomic<Int>(0)
    private let count = ManagedAtomic<Int>(0)

    init(bounds: [Duration]) {
        self.bounds = bounds.map { Int($0.components.seconds) * 1_000_000_000 + Int($0.components.attoseconds / 1_000_000_000) }
        counts = (0...bounds.count).map { _ in ManagedAtomic(0) }
    }

    func record(nanoseconds: Int) {
        var i = 0
        while i < bounds.count && nanoseconds > bounds[i] { i += 1 }
        counts[i].wrappingIncrement(ordering: .relaxed)
        sum.wrappingIncrement(by: nanoseconds, ordering: .relaxed)
        count.wrappingIncrement(ordering: .relaxed)
    }

    /// The text exposition lines of this histogram: `name_bucket{labels,le="..."}` (cumulative),
    /// `name_sum` in seconds, `name_count`.
    func emit(name: String, labels: String, into out: inout String) {
        let prefix = labels.isEmpty ? "" : labels + ","
        var running = 0
        for (i, c) in counts.enumerated() {
            running += c.load(ordering: .relaxed)
            let le = i < bounds.count ? AtomicHistogram.seconds(bounds[i]) : "+Inf"
            out += "\(name)_bucket{\(prefix)le=\"\(le)\"} \(running)\n"
        }
        let wrap = labels.isEmpty ? "" : "{\(labels)}"
        out += "\(name)_sum\(wrap) \(AtomicHistogram.seconds(sum.load(ordering: .relaxed)))\n"
        out += "\(name)_count\(wrap) \(count.load(ordering: .relaxed))\n"
    }

    /// Nanoseconds as seconds, the shortest decimal that says them.
    static func seconds(_ nanos: Int) -> String {
        let s = Double(nanos) / 1e9
        return s == s.rounded() ? String(Int(s)) + ".0" : String(s)
    }
}
