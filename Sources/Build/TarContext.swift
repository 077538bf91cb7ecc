import Foundation
import SystemSupport
import Archive
import ImageStore
#if canImport(Glibc)
import Glibc
#endif

/// A build context that arrives as a tar stream (`dockbuild build - < context.tar`), extracted
/// with the project's own extractor (no entry, symlink or hard link lands outside the context)
/// into a private (0700) session directory of the store. What the tar cannot give a build:
/// owners (everything belongs to the builder, as docker's COPY makes it root's anyway),
/// extended attributes (file capabilities), setuid/setgid bits, device nodes, FIFOs and sockets.
public final class TarContext: @unchecked Sendable {
    /// The context's root directory.
    public let directory: String
    let session: String
    /// What extraction dropped or changed, for a note in the build output.
    public private(set) var notes: [String] = []

    /// Whether the bytes on standard input are a tar context (a tar, or gzip, zstd, bzip2 or xz
    /// data) rather than a Dockerfile, as docker decides for `build -`.
    public static func looksLikeTar(_ d: Data) -> Bool {
        let b = [UInt8](d.prefix(512))
        if b.count >= 2, b[0] == 0x1f, b[1] == 0x8b { return true }
        if b.count >= 4, b[0...3] == [0x28, 0xb5, 0x2f, 0xfd] { return true }
        if b.count >= 3, b[0...2] == [0x42, 0x5a, 0x68] { return true }
        if b.count >= 6, b[0...5] == [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] { return true }
        return b.count >= 262 && Array(b[257..<262]) == Array("ustar".utf8)
    }

    /// Extracts `data` (a tar, optionally compressed) for a build in `store`.
    public init(data: Data, store: ImageStore) throws {
        session = try BuildSession.create(in: store.root + "/build/tmp")
        BuildInterrupts.register(session: session)
        directory = session + "/context"
        do {
            let archive = session + "/context.tar"
            // read once and removed: no fsync (Foundation's createFile synced the whole archive)
            do { try FileSystem.writeAtomically(data, to: archive, mode: 0o600, durability: .none) } catch {
                throw BuildError.context("cannot write the tar context to \(archive) (\(error)): check that the store is writable")
            }
            defer { unlink(archive) }
            guard mkdir(directory, 0o755) == 0 else { throw FS.sys("create directory", directory) }
            let collected = Locked<[String]>([])
            do {
                try LayerApplier.apply(layer: archive, to: directory,
                                       options: .init(preserveOwnership: false, whiteouts: .literal, xattrs: false,
                                                      warn: { note in collected.withLock { $0.append(note) } }))
            } catch {
                throw BuildError.context("the tar on standard input cannot be used as a context: \(error)")
            }
            chmod(directory, 0o755)
            var dropped = collected.current
            try Self.sanitize(directory, display: "", notes: &dropped)
            notes = dropped
            var st = stat()
            if lstat(directory + "/.dockerignore", &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK {
                throw BuildError.context(".dockerignore in the tar context is a symbolic link; make it a regular file (a link would read the host's files)")
            }
        } catch {
            remove()
            throw error
        }
    }

    /// Deletes the extracted context.
    public func remove() {
        BuildSession.cleanUp(session)
        BuildInterrupts.unregister(session: session)
    }

    /// Reads the Dockerfile at `path` inside the context (a leading `/` is ignored). A path with
    /// a symlink in any component, or that is not a regular file, is refused: it would read a
    /// file of the host, not of the context.
    public func dockerfile(_ path: String = "Dockerfile") throws -> String {
        let comps = path.split(separator: "/").map(String.init).filter { $0 != "." }
        guard !comps.isEmpty, !comps.contains("..") else {
            throw BuildError.context("-f \(path): give a path inside the tar context, without `..`")
        }
        var dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { throw FS.sys("open", directory) }
        defer { close(dir) }
        for (i, c) in comps.enumerated() {
            let last = i == comps.count - 1
            let fd = openat(dir, c, (last ? O_RDONLY : O_RDONLY | O_DIRECTORY) | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
            if fd < 0 {
                let e = errno
                let shown = comps[...i].joined(separator: "/")
                var st = stat()
                if e == ELOOP || e == ENOTDIR, fstatat(dir, c, &st, AT_SYMLINK_NOFOLLOW) == 0, (st.st_mode & S_IFMT) == S_IFLNK {
                    throw BuildError.context("\(shown) in the tar context is a symbolic link; a Dockerfile given in a tar context must be a regular file in it (symlinks would read the host's files)")
                }
                if e == ENOENT { throw BuildError.context("the tar context has no \(shown); add it to the tar or pass -f PATH-IN-THE-TAR") }
                throw BuildError.context("cannot open \(shown) in the tar context: \(String(cString: strerror(e)))")
            }
            if last {
                defer { close(fd) }
                var st = stat()
                guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
                    throw BuildError.context("\(path) in the tar context is not a regular file")
                }
                var bytes: [UInt8] = []
                var buf = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = read(fd, &buf, buf.count)
                    if n < 0 { if errno == EINTR { continue }; throw FS.sys("read", path) }
                    if n == 0 { break }
                    bytes += buf[0..<n]
                }
                return String(decoding: bytes, as: UTF8.self)
            }
            close(dir)
            dir = fd
        }
        throw BuildError.context("-f \(path): not found in the tar context")
    }

    /// Removes device nodes, FIFOs and sockets and clears setuid/setgid bits, never following
    /// a symlink (the directory is private: nothing else changes it meanwhile).
    static func sanitize(_ path: String, display: String, notes: inout [String]) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw FS.sys("open directory", path) }
        guard let d = fdopendir(fd) else { close(fd); throw FS.sys("read directory", path) }
        defer { closedir(d) }
        var subdirs: [String] = []
        while let ent = readdir(d) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            var st = stat()
            guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            let shown = display.isEmpty ? name : display + "/" + name
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                if st.st_mode & 0o6000 != 0 { fchmodat(fd, name, st.st_mode & 0o1777, 0) }
                subdirs.append(name)
            case S_IFREG:
                if st.st_mode & 0o6000 != 0 {
                    guard fchmodat(fd, name, st.st_mode & 0o1777, 0) == 0 else { throw FS.sys("chmod", path + "/" + name) }
                    notes.append("cleared the setuid/setgid bits of \(shown)")
                }
            case S_IFLNK:
                break
            default:
                guard unlinkat(fd, name, 0) == 0 else { throw FS.sys("remove", path + "/" + name) }
                notes.append("skipped \(shown): device nodes, FIFOs and sockets are not taken from a tar context")
            }
        }
        for s in subdirs { try sanitize(path + "/" + s, display: display.isEmpty ? s : display + "/" + s, notes: &notes) }
    }
}
