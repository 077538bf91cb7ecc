import Foundation
import Archive
#if canImport(Glibc)
import Glibc
#endif

/// Files the builder reads from the context by name (the default `Dockerfile`, `.dockerignore`).
public enum ContextFile {
    /// The content of `name` in the context directory `context`, resolved inside it (a symlink
    /// such as `Dockerfile -> docker/Dockerfile.prod` works, one to `/etc/shadow` names the
    /// context's own `etc/shadow`), or nil when there is no such regular file. A context never
    /// makes the builder read, or echo in an error, a file outside it.
    public static func read(_ name: String, in context: String) throws -> Data? {
        let fd: Int32
        do { fd = try InRootPath.openPath(name, in: context) } catch let e as ArchiveError {
            if case .io(_, _, let code) = e, code == ENOENT || code == ENOTDIR { return nil }
            throw BuildError.context("cannot open \(name) in the build context \(context): \(e)")
        }
        defer { close(fd) }
        var st = StatBuf()
        guard fstat(fd, &st) == 0, FS.isReg(st) else { return nil }
        let f = open("/proc/self/fd/\(fd)", O_RDONLY | O_CLOEXEC)
        guard f >= 0 else { throw FS.sys("open", "\(context)/\(name)") }
        defer { close(f) }
        var data = Data()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(f, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw FS.sys("read", "\(context)/\(name)") }
            if n == 0 { break }
            data.append(contentsOf: buf[0..<n])
        }
        return data
    }
}
