import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension FileSystem {
    /// `FS_TOPDIR_FL` (`chattr +T`): the directory is the top of a hierarchy for ext2/3/4's
    /// Orlov allocator.
    static let topDirectoryFlag: Int32 = 0x0002_0000

    /// `FS_IOC_GETFLAGS` / `FS_IOC_SETFLAGS`: `_IOR('f', 1, long)` and `_IOW('f', 2, long)`
    /// (the kernel reads and writes an int through them).
    static let getFlagsRequest = UInt(2 << 30 | MemoryLayout<Int>.size << 16 | 0x66 << 8 | 1)
    static let setFlagsRequest = UInt(1 << 30 | MemoryLayout<Int>.size << 16 | 0x66 << 8 | 2)

    /// Marks `directory` as the top of directory hierarchies (`chattr +T`), so that ext4 places
    /// each directory made in it where there are many free inodes and few directories, instead of
    /// next to its siblings. A store makes trees of thousands of files there (a COPY's staging
    /// tree, a RUN's upper dir, an unpacked layer) and deletes others: on ext4 without a journal an
    /// inode freed in the last minute (six while its inode table block is dirty) is skipped by
    /// every new file that is placed in its block group, and each creation scans past all of
    /// them again, so files created next to a tree just deleted cost up to milliseconds each.
    /// Spread, a new tree starts in an untouched group. Best effort: returns whether the flag is
    /// set; file systems without the flag (tmpfs, xfs, btrfs) are left as they are.
    @discardableResult
    package static func spreadSubdirectories(_ directory: String) -> Bool {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var flags: Int32 = 0
        guard ioctl(fd, getFlagsRequest, &flags) == 0 else { return false }
        if flags & topDirectoryFlag != 0 { return true }
        flags |= topDirectoryFlag
        return ioctl(fd, setFlagsRequest, &flags) == 0
    }

    /// Whether `directory` carries the flag `spreadSubdirectories` sets (false where the file
    /// system has no such flag).
    package static func spreadsSubdirectories(_ directory: String) -> Bool {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var flags: Int32 = 0
        return ioctl(fd, getFlagsRequest, &flags) == 0 && flags & topDirectoryFlag != 0
    }
}
