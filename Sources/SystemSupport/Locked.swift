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
