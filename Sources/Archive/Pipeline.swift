import CIsal
import CZlib
import CZstd
import Glibc
import OCI

/// A heap buffer that moves between the tar producer, the hasher and the compressors.
final class Chunk: @unchecked Sendable {
    static let size = 1 << 20
    let base: UnsafeMutableRawPointer
    let capacity: Int
    var count = 0

    init(capacity: Int = Chunk.size) {
        self.capacity = capacity
        base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
    }

    deinit { base.deallocate() }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
    var free: Int { capacity - count }
}

/// Writes bytes to a file descriptor while hashing them: the layer's `digest` and `size`.
final class HashingFileOutput {
    let path: String
    let fd: Int32
    private var hasher: Digest.Hasher? = Digest.Hasher()
    private(set) var size: Int64 = 0
    let hashes: Bool
    /// False for a descriptor the caller gave (stdout): it stays open.
    private let ownsFD: Bool

    init(path: String, hashes: Bool = true) throws {
        self.path = path
        self.hashes = hashes
        if !hashes { hasher = nil }
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw ArchiveError.sys(path, "create") }
        ownsFD = true
    }

    /// Writes to an open descriptor (`name` is what errors call it); the caller closes it.
    init(fd: Int32, name: String, hashes: Bool = true) {
        path = name
        self.hashes = hashes
        if !hashes { hasher = nil }
        self.fd = fd
        ownsFD = false
    }

    deinit { if fd >= 0 && ownsFD { close(fd) } }

    func write(_ buf: UnsafeRawBufferPointer) throws {
        guard let base = buf.baseAddress, buf.count > 0 else { return }
        if hashes { hasher?.update(buf) }
        var done = 0
        while done < buf.count {
            let n = Glibc.write(fd, base + done, buf.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw ArchiveError.sys(path, "write")
            }
            done += n
        }
        size += Int64(buf.count)
    }

    /// Flushes to disk and returns the digest of everything written (nil when not hashing).
    func finish(sync: Bool) throws -> Digest? {
        if sync, fsync(fd) != 0 { throw ArchiveError.sys(path, "fsync") }
        return hasher.take()?.finalize()
    }
}

/// Hashes chunks in order on its own thread, so the diffID costs no time on the compressing cores' critical path.
final class BackgroundHasher: @unchecked Sendable {
    private let monitor = Monitor()
    private var queue: [Chunk] = []
    private var head = 0
    private var done = false
    private var result: Digest?
    private var thread: OSThread?
    private var hasher: Digest.Hasher? = Digest.Hasher()

    init() throws {
        let t = OSThread { [unowned self] in self.run() }
        thread = t
        try t.start()
    }

    /// Queues a chunk; blocks while 16 are waiting, so a slow hash cannot pile up memory.
    func push(_ chunk: Chunk) {
        monitor.locked {
            while queue.count - head >= 16 { monitor.wait() }
            queue.append(chunk)
            monitor.broadcast()
        }
    }

    private func run() {
        while true {
            let next: Chunk? = monitor.locked {
                while head == queue.count && !done { monitor.wait() }
                if head == queue.count { return nil }
                let c = queue[head]
                head += 1
                monitor.broadcast()
                if head > 64 {
                    queue.removeFirst(head)
                    head = 0
                }
                return c
            }
            guard let next else { break }
            hasher?.update(next.bytes)
        }
        if let h = hasher.take() {
            let d = h.finalize()
            monitor.locked { result = d }
        }
    }

    func finish() -> Digest {
        monitor.locked {
            done = true
            monitor.broadcast()
        }
        thread?.join()
        thread = nil
        return monitor.locked { result } ?? Digest.compute([UInt8]())
    }

    /// Stops the thread without a result (error paths).
    func abandon() { _ = finish() }
}

/// A compressor consumes uncompressed chunks in order and writes compressed bytes to the output.
protocol ChunkCompressor: AnyObject {
    func consume(_ chunk: Chunk) throws
    func finish() throws
    func abandon()
}

/// No compression: chunks go straight to the file.
final class StoreCompressor: ChunkCompressor {
    let output: HashingFileOutput
    init(output: HashingFileOutput) { self.output = output }
    func consume(_ chunk: Chunk) throws { try output.write(chunk.bytes) }
    func finish() throws {}
    func abandon() {}
}

/// The deflate implementation behind gzip levels.
public enum GzipLibrary: Sendable, Equatable {
    /// ISA-L for levels 0-3, zlib for 4-9.
    case automatic
    case isal
    case zlib
}

/// gzip made of independent 1 MiB deflate blocks (each primed with the previous 32 KiB as dictionary
/// and ending on a byte boundary), compressed by several threads and written as one gzip member.
/// The block boundaries do not depend on the number of threads, so neither do the bytes.
final class ParallelGzipCompressor: ChunkCompressor, @unchecked Sendable {
    private final class Job: @unchecked Sendable {
        let index: Int
        let chunk: Chunk
        let dict: Chunk?
        let last: Bool
        var out: UnsafeMutableRawPointer?
        var outCount = 0
        var crc: UInt32 = 0
        var error: ArchiveError?
        var done = false
        init(index: Int, chunk: Chunk, dict: Chunk?, last: Bool) {
            self.index = index; self.chunk = chunk; self.dict = dict; self.last = last
        }
        deinit { out?.deallocate() }
    }

    private let output: HashingFileOutput
    private let level: Int
    private let useIsal: Bool
    private let threadCount: Int
    private let monitor = Monitor()
    private var pending: [Job] = []      // submitted, in order, not yet written
    private var nextToRun = 0            // index into `pending` of the first job nobody took
    private var stopping = false
    private var threads: [OSThread] = []
    private var held: Chunk?             // the newest chunk; we only know at finish() whether it is last
    private var previous: Chunk?
    private var index = 0
    private var crc: UInt32 = 0
    private var totalIn: UInt64 = 0
    private var headerWritten = false

    init(output: HashingFileOutput, level: Int, library: GzipLibrary, threads: Int) throws {
        guard (0...9).contains(level) else { throw ArchiveError.invalidArgument("gzip level must be 0-9, got \(level)") }
        self.output = output
        self.level = level
        switch library {
        case .automatic: useIsal = level <= 3
        case .isal: useIsal = true
        case .zlib: useIsal = false
        }
        if useIsal && level > 3 { throw ArchiveError.invalidArgument("ISA-L supports gzip levels 0-3, got \(level)") }
        if !useIsal && level < 1 { throw ArchiveError.invalidArgument("zlib gzip levels are 1-9, got \(level)") }
        threadCount = max(1, threads)
    }

    func consume(_ chunk: Chunk) throws {
        if let h = held {
            try submit(h, last: false)
        }
        held = chunk
    }

    func finish() throws {
        let last = held ?? Chunk(capacity: 0)
        held = nil
        if threads.isEmpty {
            // Everything fit in one block: compress inline, no threads needed.
            try writeHeader()
            let job = Job(index: index, chunk: last, dict: previous, last: true)
            compress(job, deflater: nil)
            try write(job)
        } else {
            try submit(last, last: true)
            try drain(all: true)
        }
        stop()
        var trailer = [UInt8](repeating: 0, count: 8)
        for i in 0..<4 { trailer[i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        let isize = UInt32(truncatingIfNeeded: totalIn)
        for i in 0..<4 { trailer[4 + i] = UInt8(truncatingIfNeeded: isize >> (8 * UInt32(i))) }
        try trailer.withUnsafeBytes { try output.write($0) }
    }

    func abandon() { stop() }

    private func stop() {
        monitor.locked {
            stopping = true
            monitor.broadcast()
        }
        for t in threads { t.join() }
        threads.removeAll()
    }

    private func writeHeader() throws {
        guard !headerWritten else { return }
        headerWritten = true
        // Fixed header: no name, mtime 0, OS "unknown", so the bytes depend only on the content.
        let header: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]
        try header.withUnsafeBytes { try output.write($0) }
    }

    private func submit(_ chunk: Chunk, last: Bool) throws {
        try writeHeader()
        if threads.isEmpty {
            for _ in 0..<threadCount {
                let t = OSThread { [unowned self] in self.work() }
                try t.start()
                threads.append(t)
            }
        }
        let job = Job(index: index, chunk: chunk, dict: previous, last: last)
        index += 1
        previous = chunk
        monitor.locked {
            pending.append(job)
            monitor.broadcast()
        }
        try drain(all: false)
    }

    /// Writes finished jobs in order; blocks while too many are in flight (or until all are written).
    private func drain(all: Bool) throws {
        let limit = all ? 0 : threadCount * 2 + 2
        while true {
            let ready: Job? = monitor.locked {
                while true {
                    if let first = pending.first, first.done {
                        pending.removeFirst()
                        nextToRun -= 1
                        return first
                    }
                    if pending.count <= limit { return nil }
                    monitor.wait()
                }
            }
            guard let ready else { return }
            try write(ready)
        }
    }

    private func write(_ job: Job) throws {
        if let e = job.error { throw e }
        guard let out = job.out else { throw ArchiveError.compression("block \(job.index) produced no output") }
        try output.write(UnsafeRawBufferPointer(start: out, count: job.outCount))
        crc = job.index == 0 && totalIn == 0 ? job.crc : dockbuild_crc32_combine(crc, job.crc, Int64(job.chunk.count))
        totalIn += UInt64(job.chunk.count)
        job.out?.deallocate()
        job.out = nil
    }

    private func work() {
        let deflater = makeDeflater()
        defer { freeDeflater(deflater) }
        while true {
            let job: Job? = monitor.locked {
                while nextToRun >= pending.count && !stopping { monitor.wait() }
                if nextToRun >= pending.count { return nil }
                let j = pending[nextToRun]
                nextToRun += 1
                return j
            }
            guard let job else { return }
            compress(job, deflater: deflater)
            monitor.locked {
                job.done = true
                monitor.broadcast()
            }
        }
    }

    private func makeDeflater() -> UnsafeMutableRawPointer? {
        useIsal ? dockbuild_isal_deflater_new(Int32(level)) : dockbuild_zlib_deflater_new(Int32(level))
    }

    private func freeDeflater(_ d: UnsafeMutableRawPointer?) {
        if useIsal { dockbuild_isal_deflater_free(d) } else { dockbuild_zlib_deflater_free(d) }
    }

    private func compress(_ job: Job, deflater: UnsafeMutableRawPointer?) {
        let own = deflater == nil ? makeDeflater() : nil
        defer { if let own { freeDeflater(own) } }
        guard let d = deflater ?? own else {
            job.error = .compression("cannot allocate a deflate stream (out of memory)")
            return
        }
        let input = job.chunk
        job.crc = dockbuild_crc32_gzip(0, input.base.assumingMemoryBound(to: UInt8.self), UInt64(input.count))
        let dictLen = min(job.dict?.count ?? 0, 32768)
        let dictPtr = job.dict.map { UnsafePointer($0.base.assumingMemoryBound(to: UInt8.self) + ($0.count - dictLen)) }
        var cap = input.count + input.count / 8 + 65536
        for _ in 0..<4 {
            let out = UnsafeMutableRawPointer.allocate(byteCount: cap, alignment: 64)
            let n = withExtendedLifetime(job.dict) {
                if useIsal {
                    dockbuild_isal_deflate_block(d, dictPtr, UInt32(dictLen), input.base.assumingMemoryBound(to: UInt8.self),
                                                 UInt32(input.count), job.last ? 1 : 0, out.assumingMemoryBound(to: UInt8.self), UInt32(cap))
                } else {
                    dockbuild_zlib_deflate_block(d, dictPtr, UInt32(dictLen), input.base.assumingMemoryBound(to: UInt8.self),
                                                 UInt32(input.count), job.last ? 1 : 0, out.assumingMemoryBound(to: UInt8.self), UInt32(cap))
                }
            }
            if n >= 0 {
                job.out = out
                job.outCount = n
                return
            }
            out.deallocate()
            if n == -2 { break }
            cap *= 2
        }
        job.error = .compression("deflate of block \(job.index) failed (\(useIsal ? "ISA-L" : "zlib") level \(level))")
    }
}

/// zstd through libzstd's own worker threads.
final class ZstdCompressor: ChunkCompressor {
    private let output: HashingFileOutput
    private let cctx: OpaquePointer
    private let outBuf: UnsafeMutableRawPointer
    private let outCap: Int

    init(output: HashingFileOutput, level: Int, threads: Int) throws {
        guard let c = ZSTD_createCCtx() else { throw ArchiveError.compression("cannot create a zstd context (out of memory)") }
        cctx = c
        self.output = output
        outCap = ZSTD_CStreamOutSize()
        outBuf = UnsafeMutableRawPointer.allocate(byteCount: outCap, alignment: 64)
        try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, Int32(level)))
        try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1))
        // Always at least one worker: libzstd's multi-threaded output does not depend on the worker count,
        // but differs from its single-threaded mode.
        _ = ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, Int32(max(1, threads)))
    }

    deinit {
        ZSTD_freeCCtx(cctx)
        outBuf.deallocate()
    }

    private func check(_ rc: Int) throws {
        if ZSTD_isError(rc) != 0 {
            throw ArchiveError.compression("zstd: \(String(cString: ZSTD_getErrorName(rc)))")
        }
    }

    private func run(_ data: UnsafeRawBufferPointer, end: Bool) throws {
        var input = ZSTD_inBuffer(src: data.baseAddress, size: data.count, pos: 0)
        while true {
            var out = ZSTD_outBuffer(dst: outBuf, size: outCap, pos: 0)
            let rc = ZSTD_compressStream2(cctx, &out, &input, end ? ZSTD_e_end : ZSTD_e_continue)
            try check(rc)
            if out.pos > 0 { try output.write(UnsafeRawBufferPointer(start: outBuf, count: out.pos)) }
            if end {
                if rc == 0 { return }
            } else if input.pos == input.size {
                return
            }
        }
    }

    func consume(_ chunk: Chunk) throws { try run(chunk.bytes, end: false) }
    func finish() throws { try run(UnsafeRawBufferPointer(start: nil, count: 0), end: true) }
    func abandon() {}
}

/// The uncompressed side of a layer being written: chunks in, diffID and compressed digest out.
final class LayerSink {
    private let output: HashingFileOutput
    private let compressor: any ChunkCompressor
    private let hasher: BackgroundHasher?
    private let compression: Compression
    private(set) var current = Chunk()
    private var finished = false

    convenience init(path: String, compression: Compression, threads: Int, gzipLibrary: GzipLibrary) throws {
        // Uncompressed, the digest is the diffID: one hash, on the background thread.
        try self.init(output: HashingFileOutput(path: path, hashes: compression != .none), compression: compression,
                      threads: threads, gzipLibrary: gzipLibrary)
    }

    init(output: HashingFileOutput, compression: Compression, threads: Int, gzipLibrary: GzipLibrary) throws {
        self.compression = compression
        self.output = output
        switch compression {
        case .none:
            compressor = StoreCompressor(output: output)
            hasher = try BackgroundHasher()
        case let .gzip(level):
            compressor = try ParallelGzipCompressor(output: output, level: level, library: gzipLibrary, threads: threads)
            hasher = try BackgroundHasher()
        case let .zstd(level):
            compressor = try ZstdCompressor(output: output, level: level, threads: threads)
            hasher = try BackgroundHasher()
        }
    }

    deinit {
        if !finished {
            compressor.abandon()
            hasher?.abandon()
        }
    }

    /// Hands the full current chunk on and starts a new one.
    /// (device, inode) of the output file, so a walk can skip it when it lies inside the tree.
    var outputIdentity: TarWriter.InodeKey? {
        var st = stat()
        guard fstat(output.fd, &st) == 0 else { return nil }
        return TarWriter.InodeKey(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
    }

    func flushChunk() throws {
        guard current.count > 0 else { return }
        let c = current
        current = Chunk()
        hasher?.push(c)
        try compressor.consume(c)
    }

    func write(_ buf: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < buf.count {
            if current.free == 0 { try flushChunk() }
            let n = min(current.free, buf.count - offset)
            guard let src = buf.baseAddress else { return }
            (current.base + current.count).copyMemory(from: src + offset, byteCount: n)
            current.count += n
            offset += n
        }
    }

    func finish(sync: Bool) throws -> LayerInfo {
        try flushChunk()
        try compressor.finish()
        let written = try output.finish(sync: sync)
        finished = true
        guard let diffID = hasher?.finish() ?? written else { throw ArchiveError.compression("no digest was computed") }
        return LayerInfo(digest: written ?? diffID, size: output.size, diffID: diffID, mediaType: compression.layerMediaType)
    }
}
