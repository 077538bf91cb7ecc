import Glibc
import OCI

/// Turns directories and tarballs into OCI layers: a deterministic PAX tar, compressed, written to a file,
/// with the layer digest, size and diffID computed in the same pass.
public enum LayerWriter {
    /// How a layer is written. The defaults give reproducible layers.
    public struct Options: Sendable {
        /// Clamp mtimes to this (seconds since the epoch); defaults to `$SOURCE_DATE_EPOCH` when set.
        public var sourceDateEpoch: Int64?
        /// Write every entry with this owner instead of the files' own (e.g. `COPY --chown`, rootless builds).
        public var owner: (uid: UInt32, gid: UInt32)?
        /// Also record user and group names (looked up on this machine, so off by default for reproducibility).
        public var ownerNames: Bool
        /// Record extended attributes (`security.capability`, ...). `security.selinux` and overlayfs' own are never recorded.
        public var xattrs: Bool
        /// A path prefix for every entry, e.g. `app/` to place the tree under /app.
        public var prefix: String
        /// Compression threads (gzip blocks, zstd workers). The output does not depend on it.
        public var threads: Int
        /// Which deflate implementation serves gzip levels.
        public var gzipLibrary: GzipLibrary
        /// fsync the output before returning.
        public var sync: Bool

        public init(sourceDateEpoch: Int64? = LayerWriter.environmentSourceDateEpoch(),
                    owner: (uid: UInt32, gid: UInt32)? = nil, ownerNames: Bool = false, xattrs: Bool = true,
                    prefix: String = "", threads: Int = 0, gzipLibrary: GzipLibrary = .automatic, sync: Bool = true) {
            self.sourceDateEpoch = sourceDateEpoch
            self.owner = owner
            self.ownerNames = ownerNames
            self.xattrs = xattrs
            self.prefix = prefix
            self.threads = threads
            self.gzipLibrary = gzipLibrary
            self.sync = sync
        }

        var resolvedThreads: Int { threads > 0 ? threads : availableCPUs() }

        var tarSettings: TarWriter.Settings {
            var p = Array(prefix.utf8)
            while p.first == 0x2f { p.removeFirst() }
            if !p.isEmpty && p.last != 0x2f { p.append(0x2f) }
            return .init(sourceDateEpoch: sourceDateEpoch, owner: owner, ownerNames: ownerNames, xattrs: xattrs, prefix: p)
        }
    }

    /// `$SOURCE_DATE_EPOCH` as an integer, if set and valid.
    public static func environmentSourceDateEpoch() -> Int64? {
        guard let p = getenv("SOURCE_DATE_EPOCH") else { return nil }
        return Int64(String(cString: p))
    }

    /// Deterministic tar of the tree under `directory` (sorted, SOURCE_DATE_EPOCH clamp), compressed, into the file `output`.
    public static func write(directory: String, to output: String, compression: Compression,
                             options: LayerWriter.Options = .init()) throws -> LayerInfo {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw ArchiveError.sys(directory, "open directory") }
        defer { close(fd) }
        let sink = try LayerSink(path: output, compression: compression, threads: options.resolvedThreads,
                                 gzipLibrary: options.gzipLibrary)
        let tar = TarWriter(sink: sink, settings: options.tarSettings)
        do {
            try tar.addTree(fd: fd, path: Array(directory.utf8), rel: [])
            try tar.close()
            return try sink.finish(sync: options.sync)
        } catch {
            unlink(output)
            throw error
        }
    }

    /// The same tar written to an open descriptor (a pipe, a terminal-less stdout, a file the
    /// caller placed); the caller keeps and closes it. Nothing is removed when writing fails.
    public static func write(directory: String, toDescriptor out: Int32, name: String, compression: Compression,
                             options: LayerWriter.Options = .init()) throws -> LayerInfo {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw ArchiveError.sys(directory, "open directory") }
        defer { close(fd) }
        let output = HashingFileOutput(fd: out, name: name, hashes: compression != .none)
        let sink = try LayerSink(output: output, compression: compression, threads: options.resolvedThreads,
                                 gzipLibrary: options.gzipLibrary)
        let tar = TarWriter(sink: sink, settings: options.tarSettings)
        try tar.addTree(fd: fd, path: Array(directory.utf8), rel: [])
        try tar.close()
        // a pipe or a terminal cannot be synced
        var st = stat()
        let regular = fstat(out, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
        return try sink.finish(sync: options.sync && regular)
    }

    /// Re-encode an existing tar file (plain or compressed, detected from its bytes) as a layer.
    /// The tar bytes are kept as they are, so the diffID is the digest of the tar inside `input`.
    public static func layer(fromTarball input: String, to output: String, compression: Compression) throws -> LayerInfo {
        let reader = try DecompressingReader(path: input)
        let sink = try LayerSink(path: output, compression: compression, threads: availableCPUs(), gzipLibrary: .automatic)
        do {
            while true {
                let c = sink.current
                if c.free == 0 { try sink.flushChunk(); continue }
                let n = try reader.read(into: UnsafeMutableRawBufferPointer(start: c.base + c.count, count: c.free))
                if n == 0 { break }
                c.count += n
            }
            return try sink.finish(sync: true)
        } catch {
            unlink(output)
            throw error
        }
    }
}
