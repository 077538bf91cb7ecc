import Foundation
import OCI
import Dockerfile
import Synchronization
import SystemSupport
#if canImport(Glibc)
import Glibc
#endif

/// Content digests of the build context's files, remembered across builds by what `stat`
/// says of each file (device, inode, size, mtime, ctime), so a rebuild hashes only the files
/// that changed: the warm content-hash cache BuildKit's daemon keeps, without a daemon.
///
/// A file whose ctime is within a second of the moment it was hashed is not remembered: it
/// may change again within the same timestamp tick ("racy" entries, as git handles them).
final class ContextDigests: Sendable {
    struct Entry: Sendable, Equatable {
        var dev: UInt64, ino: UInt64, size: Int64, mtime: Int64, ctime: Int64
        var digest: String
    }

    let file: String
    /// Read by every lookup (two hashing workers and the prefetch thread at once), written only
    /// when a file is hashed: readers share the lock.
    private let state: ReadWriteLocked<(entries: [String: Entry], dirty: Bool)>
    /// This build's digests, racy files included, and the files being hashed right now.
    private let session = SessionDigests()

    /// The index for `contextDir`, kept under `dir` (one file per context path).
    init(contextDir: String, dir: String) {
        file = dir + "/" + Digest.compute(Data(contextDir.utf8)).encoded.prefix(32) + ".idx"
        let entries = FileManager.default.contents(atPath: file).map(Self.parse) ?? [:]
        state = ReadWriteLocked((entries, false))
    }

    /// Reads the index's lines (`PATH\tDEV\tINO\tSIZE\tMTIME\tCTIME\tDIGEST`) straight from the
    /// bytes: a fully cached build of a 3,500-file context spent a third of its time splitting
    /// them as Strings. A malformed line is skipped.
    static func parse(_ data: Data) -> [String: Entry] {
        var entries: [String: Entry] = [:]
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let b = raw.bindMemory(to: UInt8.self)
            var i = 0
            let n = b.count
            while i < n {
                var end = i
                while end < n && b[end] != 10 { end += 1 }
                // the seven fields of b[i..<end]
                var cuts: [Int] = []
                cuts.reserveCapacity(6)
                var j = i
                while j < end { if b[j] == 9 { cuts.append(j) }; j += 1 }
                defer { i = end + 1 }
                guard cuts.count == 6, end - cuts[5] - 1 == 64 else { continue }
                func number(_ from: Int, _ to: Int) -> Int64? {
                    guard to > from, to - from <= 19 else { return nil }
                    var v: Int64 = 0
                    var k = from
                    var negative = false
                    if b[k] == 45 { negative = true; k += 1 }
                    guard k < to else { return nil }
                    while k < to {
                        let c = b[k]
                        guard c >= 48 && c <= 57 else { return nil }
                        v = v &* 10 &+ Int64(c - 48)
                        k += 1
                    }
                    return negative ? -v : v
                }
                guard let dev = number(cuts[0] + 1, cuts[1]), let ino = number(cuts[1] + 1, cuts[2]),
                      let size = number(cuts[2] + 1, cuts[3]), let mt = number(cuts[3] + 1, cuts[4]),
                      let ct = number(cuts[4] + 1, cuts[5]) else { continue }
                let path = String(decoding: UnsafeBufferPointer(rebasing: b[i..<cuts[0]]), as: UTF8.self)
                let digest = String(decoding: UnsafeBufferPointer(rebasing: b[(cuts[5] + 1)..<end]), as: UTF8.self)
                entries[path] = Entry(dev: UInt64(bitPattern: dev), ino: UInt64(bitPattern: ino), size: size, mtime: mt, ctime: ct, digest: digest)
            }
        }
        return entries
    }

    /// The hex SHA-256 of the regular file at `path` whose `lstat` is `st`: remembered when the
    /// file is unchanged, else read and hashed (and remembered when it is not racy).
    func digest(of path: String, _ st: stat) throws -> String {
        let key = Entry(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino), size: Int64(st.st_size),
                        mtime: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec),
                        ctime: Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec), digest: "")
        let known = state.read { s -> String? in
            guard let e = s.entries[path], e.dev == key.dev, e.ino == key.ino, e.size == key.size,
                  e.mtime == key.mtime, e.ctime == key.ctime else { return nil }
            return e.digest
        }
        if let known { return known }
        let hex = try session.digest(path, key) { try Self.hash(path) }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let nowNs = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
        if key.ctime < nowNs - 1_000_000_000, !path.contains("\n"), !path.contains("\t") {
            var e = key
            e.digest = hex
            state.write { s in s.entries[path] = e; s.dirty = true }
        }
        return hex
    }

    /// Hashes the regular files under `roots` (paths relative to `contextDir`, in the order the
    /// build's COPY steps will ask for them) on a thread of its own, so a cold build's context
    /// hashing overlaps its first steps; what `ignore` leaves out is skipped, and a root reached
    /// through a symlink is left to the COPY that names it. A COPY asking for a file this thread
    /// is hashing waits for it rather than reading it twice. Stop it with `stop()`.
    func prefetch(contextDir: String, roots: [String], ignore: DockerIgnore) -> ContextPrefetch {
        let job = ContextPrefetch()
        let thread = Thread { [self] in
            defer { job.finished() }
            for root in roots {
                // Every component of the root a real directory (or the final a regular file).
                var path = contextDir
                var ok = true
                for c in root.split(separator: "/") {
                    path += "/" + c
                    guard let st = FS.info(path), !FS.isLink(st) else { ok = false; break }
                }
                if ok { walk(path, rel: root, ignore: ignore, job: job) }
            }
        }
        thread.name = "context-prefetch"
        thread.start()
        return job
    }

    private func walk(_ path: String, rel: String, ignore: DockerIgnore, job: ContextPrefetch) {
        guard !job.stopped, let st = FS.info(path) else { return }
        if FS.isDir(st) {
            for n in FS.list(path) {
                let r = rel.isEmpty ? n : rel + "/" + n
                let child = path + "/" + n
                if ignore.matches(r) {
                    guard ignore.mayIncludeBelow(r), let cst = FS.info(child), FS.isDir(cst) else { continue }
                }
                walk(child, rel: r, ignore: ignore, job: job)
            }
        } else if FS.isReg(st) {
            _ = try? digest(of: path, st)
        }
    }

    /// Writes the index back when it changed (temp file and rename; a lost index only costs a rehash).
    func save() {
        let (text, dirty) = state.write { s -> (String, Bool) in
            guard s.dirty else { return ("", false) }
            s.dirty = false
            var out = ""
            for (p, e) in s.entries.prefix(500_000) {
                out += "\(p)\t\(e.dev)\t\(e.ino)\t\(e.size)\t\(e.mtime)\t\(e.ctime)\t\(e.digest)\n"
            }
            return (out, true)
        }
        guard dirty else { return }
        try? FS.writeAtomic(Data(text.utf8), to: file)
    }

    static func hash(_ path: String) throws -> String {
        // O_NONBLOCK: a file swapped for a FIFO after its lstat must not hang the build.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { throw FS.sys("open", path) }
        defer { close(fd) }
        var st = StatBuf()
        guard fstat(fd, &st) == 0, FS.isReg(st) else { throw BuildError.context("\(path) changed in the build context while it was read") }
        var h = Digest.Hasher()
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 18, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n = read(fd, buf.baseAddress, buf.count)
            if n < 0 { if errno == EINTR { continue }; throw FS.sys("read", path) }
            if n == 0 { break }
            h.update(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
        }
        return h.finalize().encoded
    }
}

/// The digests computed during one build, keyed by path and checked against the file's stat,
/// and the files being hashed now: a second caller for one of those waits for the first.
private final class SessionDigests: @unchecked Sendable {
    private let cond = NSCondition()
    private var done: [String: ContextDigests.Entry] = [:]
    private var busy: Set<String> = []

    func digest(_ path: String, _ key: ContextDigests.Entry, compute: () throws -> String) throws -> String {
        cond.lock()
        while true {
            if let e = done[path], e.dev == key.dev, e.ino == key.ino, e.size == key.size, e.mtime == key.mtime, e.ctime == key.ctime {
                cond.unlock()
                return e.digest
            }
            guard busy.contains(path) else { break }
            cond.wait()
        }
        busy.insert(path)
        cond.unlock()
        let hex: String
        do { hex = try compute() } catch {
            cond.lock(); busy.remove(path); cond.broadcast(); cond.unlock()
            throw error
        }
        var e = key
        e.digest = hex
        cond.lock(); busy.remove(path); done[path] = e; cond.broadcast(); cond.unlock()
        return hex
    }
}

/// A running `ContextDigests.prefetch`.
final class ContextPrefetch: Sendable {
    private let flag = Mutex(false)
    private let done = DispatchSemaphore(value: 0)

    var stopped: Bool { flag.withLock { $0 } }
    fileprivate func finished() { done.signal() }

    /// Ends the prefetch (after the file it is reading) and waits for its thread.
    func stop() {
        flag.withLock { $0 = true }
        done.wait()
    }
}
