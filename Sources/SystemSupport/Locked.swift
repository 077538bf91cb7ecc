import Synchronization

/// A shared reference to a `Mutex`, for state that escaping closures and threads capture (a
/// `Mutex` is non-copyable, so it cannot be captured by one). A class or a static that owns its
/// state keeps a `Mutex` directly instead.
package final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    package init(_ value: Value) { mutex = Mutex(value) }

    /// Runs `body` with exclusive access to the value.
    package func withLock<R: Sendable, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        try mutex.withLock { (value: inout sending Value) throws(E) -> sending R in try body(&value) }
    }

    /// A copy of the value as it is now.
    package var current: Value { withLock { $0 } }
}

#if canImport(Glibc)
import Glibc
#endif

/// A value that many threads read at once and few write: readers share the lock (a reader
/// never sleeps while only readers hold it), a writer holds it alone. For read-mostly maps
/// that several worker threads consult per item, where a `Mutex` sent readers to sleep on one
/// another (a cached build's context index, looked up by two hashing workers per file).
package final class ReadWriteLocked<Value>: @unchecked Sendable {
    // @unchecked: `value` is read only under the read lock and written only under the write lock.
    private var value: Value
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    package init(_ value: Value) {
        self.value = value
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deinitialize(count: 1)
        lock.deallocate()
    }

    /// Runs `body` with shared access to the value.
    package func read<R>(_ body: (borrowing Value) throws -> R) rethrows -> R {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(value)
    }

    /// Runs `body` with exclusive access to the value.
    package func write<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(&value)
    }
}
