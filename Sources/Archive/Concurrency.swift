import Glibc

/// A mutex with one condition variable, for the few hand-made pipelines of this module
/// (worker threads must not run on Swift's cooperative pool: they block in compression and I/O).
final class Monitor: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    @inline(__always)
    func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits on the condition; call only inside `locked`.
    func wait() { pthread_cond_wait(cond, mutex) }
    /// Wakes all waiters; call inside `locked`.
    func broadcast() { pthread_cond_broadcast(cond) }
}

/// A joinable OS thread.
final class OSThread: @unchecked Sendable {
    private var thread = pthread_t()
    private let body: @Sendable () -> Void
    private var started = false

    init(_ body: @escaping @Sendable () -> Void) {
        self.body = body
    }

    func start() throws {
        let box = Unmanaged.passRetained(self)
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        pthread_attr_setstacksize(&attr, 1 << 20)
        let rc = pthread_create(&thread, &attr, { raw in
            guard let raw else { return nil }
            let me = Unmanaged<OSThread>.fromOpaque(raw).takeRetainedValue()
            me.body()
            return nil
        }, box.toOpaque())
        pthread_attr_destroy(&attr)
        if rc != 0 {
            box.release()
            throw ArchiveError.io(path: "<thread>", operation: "pthread_create", errno: rc)
        }
        started = true
    }

    func join() {
        guard started else { return }
        pthread_join(thread, nil)
        started = false
    }
}

/// Number of CPUs this process may run on.
func availableCPUs() -> Int {
    let n = sysconf(Int32(_SC_NPROCESSORS_ONLN))
    return n > 0 ? n : 1
}
