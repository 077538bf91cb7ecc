import Archive
import Foundation
import Glibc

extension ContainerManager {
    /// Writes the container's whole file system (its image's layers with its own changes, as
    /// mounted for it; volumes and bind mounts are not part of it) as an uncompressed tar to the
    /// open descriptor `fd`, as `docker export` does. The tar is the project's (PAX, entries in
    /// byte order, depth first, no `./` prefix, owner names, xattrs kept, mtimes clamped to
    /// `$SOURCE_DATE_EPOCH` when set).
    public func export(_ id: String, to fd: Int32) throws {
        try withFileSystem(id) { root in
            // user and group names too, looked up here, as docker's export has them
            _ = try LayerWriter.write(directory: root, toDescriptor: fd, name: "the export of \(id.prefix(12))", compression: .none,
                                      options: LayerWriter.Options(ownerNames: true))
        }
    }

    /// The same into the file `path`: written beside it, synced, then renamed over it (mode 0600,
    /// as docker's `export -o`), so a failed export leaves no partial file.
    public func export(_ id: String, toFile path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = "\(dir.isEmpty ? "." : dir)/.dockbuild-export-\(UUID().uuidString.prefix(12))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ContainersError.system("cannot write the export to \(path)", errno: errno) }
        do {
            defer { close(fd) }
            try export(id, to: fd)
        } catch {
            unlink(tmp)
            throw error
        }
        guard Glibc.rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw ContainersError.system("cannot write the export to \(path)", errno: e)
        }
    }

    /// Runs `body` with the container's root file system: its own mount while it has one (a
    /// running container), else a read-only overlay of its upper dir over its image's layers.
    func withFileSystem<R>(_ id: String, _ body: (String) throws -> R) throws -> R {
        let c = try store.container(id)
        let rootfs = store.rootfsPath(id)
        if FS.isMountPoint(rootfs) { return try body(rootfs) }
        let s = try images()
        let snaps = s.snapshotter
        let lowers = try snaps.lowers(for: try s.image(for: c.record.imageDescriptor))
        return try snaps.withView(["\(c.directory)/upper"] + lowers, body)
    }
}
