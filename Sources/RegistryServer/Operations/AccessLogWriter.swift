import Foundation

/// Writes access-log lines from a thread of its own: a request only appends its line to a
/// buffer (a short lock, no system call), and the writer thread writes what gathered every
/// `interval` seconds, or sooner when much has gathered. A write per request, from every
/// connection thread, cost a fifth of the manifest GET rate under load. Lines keep their
/// order and are never split; `flush` writes everything before a stop.
final class AccessLogWriter: @unchecked Sendable {
    private let fd: Int32
    private let interval: Double
    private let condition = NSCondition()
    /// Guarded by `condition`. Two buffers trade places: requests append to `buffer` while the
    /// writer writes the other, which keeps its capacity, so appending never regrows an array
    /// under the lock once the rate is steady.
    private var buffer: [UInt8] = []
    private var spare: [UInt8] = []
    private var writing = false
    private var stopped = false
    /// A buffer this large wakes the writer at once.
    static let soon = 256 * 1024

    init(fd: Int32 = 2, interval: Double = 0.05) {
        self.fd = fd
        self.interval = interval
        let thread = Thread { [self] in run() }
        thread.name = "registry-access-log"
        thread.start()
    }

    func append(_ line: [UInt8]) {
        condition.lock()
        buffer.append(contentsOf: line)
        if buffer.count >= AccessLogWriter.soon { condition.broadcast() }
        condition.unlock()
    }

    /// Returns once every line appended so far is written.
    func flush() {
        condition.lock()
        defer { condition.unlock() }
        condition.broadcast()
        while !buffer.isEmpty || writing { condition.wait() }
    }

    /// Flushes and ends the writer thread.
    func stop() {
        flush()
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    private func run() {
        condition.lock()
        while true {
            if buffer.isEmpty {
                if stopped { break }
                _ = condition.wait(until: Date().addingTimeInterval(interval))
                continue
            }
            var out = spare
            spare = []
            swap(&out, &buffer)
            writing = true
            condition.unlock()
            out.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    offset += n
                }
            }
            out.removeAll(keepingCapacity: true)
            condition.lock()
            if out.capacity <= 4 * AccessLogWriter.soon { spare = out }
            writing = false
            condition.broadcast()
        }
        condition.unlock()
    }
}
