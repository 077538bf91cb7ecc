// The local image store: an OCI image layout (image-spec image-layout.md) under `root`.
//
//   root/oci-layout             {"imageLayoutVersion":"1.0.0"}
//   root/index.json             the names: one descriptor per name (annotation
//                               org.opencontainers.image.ref.name = full reference), plus
//                               unnamed entries for dangling images (<none>)
//   root/blobs/<alg>/<hex>      content, verified on the way in
//   root/tmp/                   ingest temp files (same filesystem, so rename is atomic)
//   root/snapshots/layers/<chainID>/   each layer unpacked once, read-only (Snapshotter)
//   root/holds/<holder>         digests that something else (a container) still needs
//   root/index.lock, gc.lock    flock(2) files for cross-process safety
import Foundation
import SystemSupport
import Synchronization
import OCI
#if canImport(Glibc)
import Glibc
#endif

/// Content-addressed blobs, names and images on disk; safe to share between threads and
/// between processes (file locks), and all of its state lives on disk.
public final class ImageStore: Sendable {
    /// The store's root directory (an OCI image layout).
    public let root: String
    /// Where temp files go: on the store's filesystem so that a rename into `blobs/` is atomic.
    /// Archive writes layers here and hands them over with `adoptFile(at:digest:)`.
    public let tempDir: String

    let indexLock: FileLock
    /// Taken shared by a store the first time it writes a blob, and held until the store is
    /// released; `gc()` needs it exclusive, so it never deletes a blob that another process has
    /// written but not yet named. Stores that only read never hold it.
    let gcLease: FileLock
    let lease = Mutex<LeaseState>(LeaseState())
    let activeTemps = Mutex<Set<String>>([])
    /// flock(2) does not exclude threads sharing one descriptor: this does, inside the process.
    let indexMutex = Mutex<Void>(())
    /// `layer-sizes` as read once by this store (`contentSize`); nil until first needed.
    let layerSizes = Mutex<[String: Int64]?>(nil)

    /// Opens (creating when absent) the store at `root`.
    /// `path` made absolute against the current directory (unchanged when it already is).
    public static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        let cwd = FileManager.default.currentDirectoryPath
        return path == "." ? cwd : (cwd.hasSuffix("/") ? cwd : cwd + "/") + (path.hasPrefix("./") ? String(path.dropFirst(2)) : path)
    }

    public init(root: String) throws {
        var root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        // Paths under the root end up in mount options and runtime bundles, which other
        // processes read from other directories: the root is made absolute.
        root = Self.absolute(root)
        self.root = root
        tempDir = root + "/tmp"
        // an ordinary user's store must be its own (a store someone else owns could be changed under it)
        try FileOps.io { try StatePaths.checkOwned(root) }
        for d in [root, root + "/blobs/sha256", tempDir, root + "/snapshots", root + "/holds"] {
            try FileOps.mkdirs(d)
        }
        Self.makePrivate(root)
        let layout = root + "/oci-layout"
        if !FileOps.exists(layout) {
            try FileOps.writeAtomically(Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8), to: layout, tempDir: tempDir)
        }
        indexLock = try FileOps.io { try FileLock(path: root + "/index.lock") }
        gcLease = try FileOps.io { try FileLock(path: root + "/gc.lock") }
        if !FileOps.exists(root + "/index.json") {
            try FileOps.io { try indexLock.lock(exclusive: true) }
            defer { indexLock.unlock() }
            if !FileOps.exists(root + "/index.json") {
                try writeIndex(ImageIndex(manifests: []))
            }
        }
    }

    /// Keeps other local users out of the store: its root is 0710 like docker's data root and
    /// the unpacked snapshots 0700, so setuid binaries in images (and every file of them) are
    /// reachable only through a container. Stores made before this are tightened on open.
    public static func makePrivate(_ root: String) {
        for (path, mode) in [(root, mode_t(0o710)), (root + "/snapshots", mode_t(0o700))] {
            var st = stat()
            if stat(path, &st) == 0, st.st_mode & 0o777 != mode, st.st_uid == geteuid() { chmod(path, mode) }
        }
    }

    /// The default store root: `$DOCKBUILD_ROOT`, else `/var/lib/dockbuild` for root,
    /// else `$XDG_DATA_HOME/dockbuild` (`~/.local/share/dockbuild`); see `StatePaths`.
    public static func defaultRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        StatePaths.dataRoot(environment: environment)
    }

    /// Takes the shared gc lease before this store writes its first blob (blocks while another
    /// process collects garbage).
    func takeLease() throws {
        try lease.withLock { s in
            if s.held { return }
            if s.scoped == 0 { try FileOps.io { try gcLease.lock(exclusive: false) } }
            s.held = true
        }
    }

    /// Holds the shared gc lease while `body` runs only (unpacking a snapshot): a store that
    /// has only read and unpacked does not hold `gc` up for the rest of its life.
    func withScopedLease<R>(_ body: () throws -> R) throws -> R {
        try lease.withLock { s in
            if !s.held && s.scoped == 0 { try FileOps.io { try gcLease.lock(exclusive: false) } }
            s.scoped += 1
        }
        defer {
            lease.withLock { s in
                s.scoped -= 1
                if !s.held && s.scoped == 0 { gcLease.unlock() }
            }
        }
        return try body()
    }

    // MARK: blobs

    /// Where the blob lives (whether or not it is present).
    public func path(for digest: Digest) -> String {
        "\(root)/blobs/\(digest.algorithm.rawValue)/\(digest.encoded)"
    }

    public func has(_ digest: Digest) -> Bool { FileOps.exists(path(for: digest)) }

    /// Size of a stored blob, nil when absent.
    public func size(of digest: Digest) -> Int64? { FileOps.fileSize(path(for: digest)) }

    /// Reads a whole blob and checks it against its digest (for manifests and configs; stream
    /// layers from `path(for:)` instead).
    public func readBlob(_ digest: Digest) throws -> Data {
        let p = path(for: digest)
        guard FileOps.exists(p) else { throw ImageStoreError.blobNotFound(digest) }
        let data = try FileOps.readFile(p)
        let actual = Digest.compute(data, algorithm: digest.algorithm)
        guard actual == digest else {
            throw ImageStoreError.invalidContent("blob \(digest) in \(root) is corrupt (its content hashes to \(actual)); remove it and pull or load the image again")
        }
        return data
    }

    /// Stores `data`, checking it against `expected` when given; returns its digest.
    @discardableResult
    public func writeBlob(_ data: Data, expected: Digest? = nil) throws -> Digest {
        // A small blob that is stored already, byte for byte (a rebuild's config and manifest),
        // is not written again: no temp file, two fsyncs and a rename for the same bytes. The
        // lease is taken as for a write, so gc cannot take it before a name points at it. A blob
        // stored with other bytes (damaged) is written over.
        // With `expected`, a blob not stored yet is hashed once, by the ingest below.
        if data.count <= 1 << 20 {
            try takeLease()
            let digest = expected ?? Digest.compute(data)
            if let stored = try? FileOps.readFile(path(for: digest)), stored == data,
               expected == nil || Digest.compute(data, algorithm: digest.algorithm) == digest {
                return digest
            }
        }
        let ingest = try self.ingest(algorithm: expected?.algorithm ?? .sha256)
        do {
            try ingest.write(data)
            return try ingest.commit(expected: expected, expectedSize: expected == nil ? nil : Int64(data.count)).digest
        } catch {
            ingest.abort()
            throw error
        }
    }

    /// Encodes `value` as canonical JSON, stores it and returns its descriptor.
    public func putJSON<T: Encodable>(_ value: T, mediaType: String) throws -> Descriptor {
        let data = try CanonicalJSON.encode(value)
        let d = try writeBlob(data)
        return Descriptor(mediaType: mediaType, digest: d, size: Int64(data.count))
    }

    /// Starts a streaming ingest: write bytes, then `commit` (verifies, fsyncs, renames into
    /// `blobs/`) or `abort`.
    public func ingest(algorithm: Digest.Algorithm = .sha256) throws -> BlobIngest {
        try BlobIngest(store: self, algorithm: algorithm)
    }

    /// Moves a file that was written into `tempDir` (by Archive, say) into the store as the blob
    /// `digest`. With `verify` the file is hashed first and refused when it does not match.
    public func adoptFile(at file: String, digest: Digest, verify: Bool = true) throws {
        try takeLease()
        if verify {
            let actual = try ImageStore.hashFile(file, algorithm: digest.algorithm)
            guard actual == digest else {
                unlink(file)
                throw ImageStoreError.digestMismatch(expected: digest, actual: actual)
            }
        }
        try install(tempFile: file, as: digest)
    }

    /// Digest of a file's bytes.
    public static func hashFile(_ file: String, algorithm: Digest.Algorithm = .sha256) throws -> Digest {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ImageStoreError.io("cannot open", path: file, errno: errno) }
        defer { close(fd) }
        var h = Digest.Hasher(algorithm)
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n = read(fd, buf.baseAddress, buf.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw ImageStoreError.io("cannot read", path: file, errno: errno)
            }
            if n == 0 { break }
            h.update(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
        }
        return h.finalize()
    }

    /// Renames a finished temp file into place (fsync'd by the caller or here).
    func install(tempFile: String, as digest: Digest) throws {
        try takeLease()
        let dir = "\(root)/blobs/\(digest.algorithm.rawValue)"
        if !FileOps.isDirectory(dir) { try FileOps.mkdirs(dir) }
        let fd = open(tempFile, O_RDONLY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
        chmod(tempFile, 0o644)
        guard rename(tempFile, path(for: digest)) == 0 else {
            let e = errno
            unlink(tempFile)
            throw ImageStoreError.io("cannot move blob into", path: path(for: digest), errno: e)
        }
        FileOps.fsyncDirectory(dir)
    }

    /// Every blob in the store.
    public func listBlobs() throws -> [Digest] {
        var out: [Digest] = []
        for alg in Digest.Algorithm.allCases {
            let dir = "\(root)/blobs/\(alg.rawValue)"
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            for n in names { if let d = try? Digest(algorithm: alg, encoded: n) { out.append(d) } }
        }
        return out.sorted()
    }

    func newTempPath(_ prefix: String) -> String {
        let p = "\(tempDir)/\(prefix)-\(UUID().uuidString)"
        activeTemps.withLock { _ = $0.insert(p) }
        return p
    }

    func releaseTemp(_ p: String) { activeTemps.withLock { _ = $0.remove(p) } }
}

/// One blob being written: bytes are hashed as they stream into a temp file; `commit` checks
/// digest and size, fsyncs and renames the file into `blobs/`. Nothing is left behind on
/// `abort`, on a failed commit, or when the ingest is dropped without either.
/// It may move between threads, but only one may use it at a time.
public final class BlobIngest: @unchecked Sendable {
    let store: ImageStore
    public let tempPath: String
    private var fd: Int32
    private var hasher: Digest.Hasher?
    public private(set) var written: Int64 = 0
    private var finished = false

    init(store: ImageStore, algorithm: Digest.Algorithm) throws {
        try store.takeLease()
        self.store = store
        tempPath = store.newTempPath("ingest")
        fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            store.releaseTemp(tempPath)
            throw ImageStoreError.io("cannot create", path: tempPath, errno: errno)
        }
        hasher = Digest.Hasher(algorithm)
    }

    deinit { if !finished { abort() } }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !finished else { throw ImageStoreError.invalidContent("ingest \(tempPath) is already finished") }
        hasher?.update(bytes)
        try FileOps.writeAll(fd: fd, bytes, path: tempPath)
        written += Int64(bytes.count)
    }

    public func write<D: DataProtocol>(_ data: D) throws {
        for region in data.regions { try region.withUnsafeBytes { try write($0) } }
    }

    /// Verifies and installs the blob; returns its digest and size. With `diffID` the blob is a
    /// layer whose uncompressed stream must hash to it (read back through the decompressor, trailers
    /// checked). On a mismatch the temp file is removed and the store is unchanged.
    @discardableResult
    public func commit(expected: Digest? = nil, expectedSize: Int64? = nil, diffID: Digest? = nil) throws -> (digest: Digest, size: Int64) {
        guard !finished else { throw ImageStoreError.invalidContent("ingest \(tempPath) is already finished") }
        finished = true
        defer { store.releaseTemp(tempPath) }
        guard let h = hasher.take() else { throw ImageStoreError.invalidContent("ingest \(tempPath) is already finished") }
        let digest = h.finalize()
        if let expectedSize, expectedSize != written {
            close(fd); unlink(tempPath)
            throw ImageStoreError.sizeMismatch(digest: expected, expected: expectedSize, actual: written)
        }
        if let expected, expected != digest {
            close(fd); unlink(tempPath)
            throw ImageStoreError.digestMismatch(expected: expected, actual: digest)
        }
        if let diffID {
            do { try store.verifyDiffID(file: tempPath, digest: digest, expected: diffID, layer: digest.description) } catch {
                close(fd); unlink(tempPath)
                throw error
            }
        }
        guard fsync(fd) == 0 else {
            let e = errno
            close(fd); unlink(tempPath)
            throw ImageStoreError.io("cannot fsync", path: tempPath, errno: e)
        }
        close(fd)
        try store.install(tempFile: tempPath, as: digest)
        return (digest, written)
    }

    /// Drops what was written.
    public func abort() {
        guard !finished else { return }
        finished = true
        close(fd)
        unlink(tempPath)
        store.releaseTemp(tempPath)
    }
}

/// This store's share of the gc lease: held for good once it writes a blob, or for the
/// duration of scoped work (unpacking) by any number of threads.
struct LeaseState {
    var held = false
    var scoped = 0
}
