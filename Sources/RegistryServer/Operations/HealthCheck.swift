import Foundation

/// The storage check behind `/readyz` and `/debug/health`: the storage root must be reachable
/// and writable, proven by creating, writing and removing a temporary file under it (a stat
/// alone passes on a read-only or full filesystem). The file carries the driver's temporary
/// name, so a crash mid-check leaves nothing that the next start would not sweep.
struct StorageHealthCheck: Sendable {
    /// The check's name in `/debug/health`, as distribution names its storage driver check.
    static let name = "storagedriver_filesystem"

    let root: String

    /// nil when healthy, otherwise what failed, where, and what to do.
    func run() -> String? {
        var st = stat()
        guard stat(root, &st) == 0 else {
            return "storage root \(root) is not reachable: \(String(cString: strerror(errno))); check the mount and --storage"
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { return "storage root \(root) is not a directory; check --storage" }
        let probe = root + "/.readyz" + FilesystemDriver.tempSuffix()
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            return "storage root \(root) is not writable: cannot create \(probe): \(String(cString: strerror(errno))); check permissions, free space and read-only mounts"
        }
        var byte: UInt8 = 0x2e
        let written = write(fd, &byte, 1)
        let writeErrno = errno
        close(fd)
        let removed = unlink(probe) == 0
        let unlinkErrno = errno
        guard written == 1 else {
            return "storage root \(root) is not writable: writing \(probe) failed: \(String(cString: strerror(writeErrno))); check free space and quotas"
        }
        guard removed else {
            return "storage root \(root): cannot remove \(probe): \(String(cString: strerror(unlinkErrno))); check permissions"
        }
        return nil
    }
}
