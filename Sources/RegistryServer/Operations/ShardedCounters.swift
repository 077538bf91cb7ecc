import Atomics
import Foundation

/// Counters by slot whose increments take no lock and share no cache line between threads:
/// each thread adds to its own copy of the slots (a relaxed atomic add), picked by its thread id,
/// and a reader adds the copies up. A Prometheus counter object per series, incremented by every
/// connection thread, moved its cache line (and its reference count's, loaded from a lazy
/// reference) between cores on every request.
final class ShardedCounters: @unchecked Sendable {
    // @unchecked: `cells` is written only through atomics after `init`, and freed in `deinit`.

    /// How many slots each copy holds.
    let slots: Int
    /// Copies of the slots: more than the connection threads a busy server runs on few cores,
    /// so two threads seldom share one.
    static let shards = 64
    /// Cells per copy, rounded up to whole 64-byte lines.
    private let stride: Int
    private let cells: UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>

    init(slots: Int) {
        self.slots = slots
        stride = (slots + 7) / 8 * 8
        let count = stride * ShardedCounters.shards
        cells = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<UnsafeAtomic<Int>.Storage>.stride, alignment: 64)
            .bindMemory(to: UnsafeAtomic<Int>.Storage.self, capacity: count)
        cells.initialize(repeating: UnsafeAtomic<Int>.Storage(0), count: count)
    }

    deinit {
        cells.deinitialize(count: stride * ShardedCounters.shards)
        cells.deallocate()
    }

    /// The calling thread's copy, 0..<64: its thread id, hashed (threads' ids are their stacks'
    /// addresses, a megabyte or more apart). `AtomicHistogram` shards by the same number.
    @inline(__always) static func shard() -> Int {
        let id = UInt64(truncatingIfNeeded: pthread_self())
        return Int(truncatingIfNeeded: (id &* 0x9E37_79B9_7F4A_7C15) >> 58)
    }

    /// Adds `amount` to `slot` (0..<slots).
    @inline(__always) func add(_ slot: Int, _ amount: Int = 1) {
        precondition(slot >= 0 && slot < slots, "counter slot out of range")
        UnsafeAtomic<Int>(at: cells + ShardedCounters.shard() * stride + slot).wrappingIncrement(by: amount, ordering: .relaxed)
    }

    /// Adds one to `slot` and `amount` to `other`, in the same copy (a histogram's bucket and sum).
    @inline(__always) func add(_ slot: Int, andAdd amount: Int, to other: Int) {
        precondition(slot >= 0 && slot < slots && other >= 0 && other < slots, "counter slot out of range")
        let base = cells + ShardedCounters.shard() * stride
        UnsafeAtomic<Int>(at: base + slot).wrappingIncrement(ordering: .relaxed)
        UnsafeAtomic<Int>(at: base + other).wrappingIncrement(by: amount, ordering: .relaxed)
    }

    /// `slot` added up over the copies (a concurrent add may or may not be in it).
    func total(_ slot: Int) -> Int {
        var n = 0
        for s in 0..<ShardedCounters.shards {
            n &+= UnsafeAtomic<Int>(at: cells + s * stride + slot).load(ordering: .relaxed)
        }
        return n
    }
}
