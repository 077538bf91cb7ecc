import Foundation

/// The storage check behind `/readyz` and `/debug/health`: the storage root must be reachable
/// and writable, proven by creating, writing and removing a temporary file under it (a stat
/// alone passes on a read-only or full filesystem). The file carries the driver's temporary
/// name, so a crash mid-check leaves nothing that the next start would not sweep.
///
/// On S3 the check writes and deletes a small object under `_health/` in the bucket (as the
/// same keys and endpoint the registry uses), so wrong keys, a deleted bucket, a read-only
/// policy or an unreachable endpoint make the replica unready.
struct StorageHealthCheck: Sendable {
    let root: String
    var s3: S3Driver?

    init(root: String, s3: S3Driver? = nil) {
        self.root = root
        self.s3 = s3
    }

    /// The check's name in `/debug/health`, as distribution names its storage driver check.
    var name: String { s3 == nil ? "storagedriver_filesystem" : "storagedriver_s3" }

    /// nil when healthy, otherwise what failed, where, and what to do.
    func run() -> String? {
        if let s3 { return S3HealthProbe.run(s3) }
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

enum S3HealthProbe {
    static func run(_ d: S3Driver) -> String? {
        let path = "_health/probe-\(ProcessStamp.current.description)-\(UUID().uuidString.lowercased())"
        do {
            try d.putContent(path, [0x2e])
            try d.deleteKey(d.key(path))
            return nil
        } catch {
            return "S3 storage \(d.client.location(d.key(""))) is not usable: \(error)"
        }
    }
}
