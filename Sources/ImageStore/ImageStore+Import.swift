// `import`: a root filesystem (a tarball, compressed or not, or a directory) as a one-layer image.
import Archive
import Foundation
import OCI
#if canImport(Glibc)
import Glibc
#endif

extension ImageStore {
    /// Options of `importRootfs`.
    public struct ImportOptions: Sendable {
        /// `--change` instructions applied to the config.
        public var changes: [String] = []
        /// The commit message (history comment).
        public var message: String?
        public var platform: Platform = .host
        public var compression: Compression = .default
        /// Creation time; defaults to `$SOURCE_DATE_EPOCH` when set, else now.
        public var created: Date?
        public init() {}
    }

    /// Makes a one-layer image from `source` — a directory, or a tar file (plain, gzip, zstd,
    /// bzip2, xz: detected from its bytes), "-" reading the tar from standard input — and names
    /// it `tag` (or keeps it as a dangling image).
    public func importRootfs(from source: String, tag: ImageReference?, options: ImportOptions = ImportOptions()) throws -> Image {
        var config = ImageConfig(platform: options.platform)
        try ConfigChange.apply(options.changes, to: &config)
        let created = options.created ?? LayerWriter.environmentSourceDateEpoch().map { Date(timeIntervalSince1970: TimeInterval($0)) } ?? Date()
        config.created = ImageConfig.formatDate(created)

        let out = newTempPath("import")
        defer { releaseTemp(out) }
        var stdinCopy: String?
        defer { if let stdinCopy { unlink(stdinCopy); releaseTemp(stdinCopy) } }
        let info: LayerInfo
        do {
            if source != "-" && FileOps.isDirectory(source) {
                info = try LayerWriter.write(directory: source, to: out, compression: options.compression)
            } else {
                var input = source
                if source == "-" {
                    let t = newTempPath("stdin")
                    stdinCopy = t
                    try copyStandardInput(to: t)
                    input = t
                } else if !FileOps.exists(source) {
                    throw ImageStoreError.invalidContent("\(source) does not exist; give a directory or a tar file (or - for standard input)")
                }
                try checkTarball(input, what: source == "-" ? "standard input" : source)
                info = try LayerWriter.layer(fromTarball: input, to: out, compression: options.compression)
            }
        } catch let e as ImageStoreError {
            unlink(out)
            throw e
        } catch {
            unlink(out)
            throw ImageStoreError.invalidContent("cannot import \(source): \(error)")
        }
        try adoptFile(at: out, digest: info.digest, verify: false)
        config.rootfs = RootFS(diffIDs: [info.diffID])
        config.history = [History(created: config.created, createdBy: "dockbuild import \(source == "-" ? "-" : (source as NSString).lastPathComponent)",
                                  comment: options.message ?? "Imported from \(source)")]
        let layer = Descriptor(mediaType: info.mediaType, digest: info.digest, size: info.size)
        return try putImage(config: config, layers: [layer], tag: tag)
    }

    /// Reads the whole tar once so that a truncated or non-tar input fails before any blob is
    /// written, with an error naming the input.
    func checkTarball(_ path: String, what: String) throws {
        try TarReader.forEachEntry(path: path, what: what) { _, _ in }
    }

    func copyStandardInput(to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ImageStoreError.io("cannot create", path: path, errno: errno) }
        defer { close(fd) }
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n = read(0, buf.baseAddress, buf.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw ImageStoreError.io("cannot read", path: "standard input", errno: errno)
            }
            if n == 0 { break }
            try FileOps.writeAll(fd: fd, UnsafeRawBufferPointer(rebasing: buf[0..<n]), path: path)
        }
    }
}
