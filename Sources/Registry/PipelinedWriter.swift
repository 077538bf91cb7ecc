import Foundation

/// Batches the transport's small pieces (libcurl hands over at most 16 KiB per callback) into
/// 1 MiB buffers and writes them to the destination on a second thread, so that receiving,
/// and hashing plus writing, run on different cores and the destination sees few, large writes.
final class PipelinedWriter: @unchecked Sendable {
    let inner: any BlobWriter
    private let bufferSize: Int
    private let cond = NSCondition()
    private var free: [UnsafeMutableRawBufferPointer] = []
    private var queue: [(UnsafeMutableRawBufferPointer, Int)] = []
    private var all: [UnsafeMutableRawBufferPointer] = []
    private var current: UnsafeMutableRawBufferPointer
    private var fill = 0
    private var failure: (any Error)?
    private var closing = false
    private var busy = false
    private var workerDone = false

    init(_ inner: any BlobWriter, bufferSize: Int = 1 << 20, buffers: Int = 3) {
        self.inner = inner
        self.bufferSize = bufferSize
        for _ in 0..<buffers {
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 64)
            all.append(b)
            free.append(b)
        }
        current = free.removeLast()
        let t = Thread { [self] in work() }
        t.stackSize = 256 << 10
        t.start()
    }

    deinit {
        for b in all { b.deallocate() }
    }

    private func work() {
        while true {
            cond.lock()
            while queue.isEmpty && !closing { cond.wait() }
            if queue.isEmpty && closing {
                workerDone = true
                cond.broadcast()
                cond.unlock()
                return
            }
            let (buf, n) = queue.removeFirst()
            busy = true
            let failed = failure != nil
            cond.unlock()
            var err: (any Error)?
            if !failed {
                do { try inner.write(UnsafeRawBufferPointer(rebasing: buf[0..<n])) } catch { err = error }
            }
            cond.lock()
            if let err, failure == nil { failure = err }
            busy = false
            free.append(buf)
            cond.broadcast()
            cond.unlock()
        }
    }

    /// Copies bytes in; hands full buffers to the worker. Throws the worker's first error.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = min(bytes.count - offset, bufferSize - fill)
            if let src = bytes.baseAddress, let dst = current.baseAddress {
                (dst + fill).copyMemory(from: src + offset, byteCount: n)
            }
            fill += n
            offset += n
            if fill == bufferSize { try submit() }
        }
    }

    private func submit() throws {
        cond.lock()
        defer { cond.unlock() }
        if let failure { throw failure }
        if fill > 0 { queue.append((current, fill)) }
        else { free.append(current) }
        fill = 0
        cond.broadcast()
        while free.isEmpty && failure == nil { cond.wait() }
        if let failure { throw failure }
        current = free.removeLast()
    }

    /// Writes what is buffered and waits until the destination has everything.
    func finish() throws {
        try submit()
        cond.lock()
        defer { cond.unlock() }
        closing = true
        cond.broadcast()
        while !workerDone { cond.wait() }
        if let failure { throw failure }
    }

    /// Stops the worker and drops everything, including what the destination holds.
    func abort() {
        cond.lock()
        closing = true
        queue.removeAll()
        if failure == nil { failure = RegistryError.local("download aborted") }
        cond.broadcast()
        while !workerDone { cond.wait() }
        cond.unlock()
        inner.abort()
    }
}
