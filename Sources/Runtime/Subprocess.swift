import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Running a helper program (`ip`, `iptables`, an OCI runtime, `ps`) to completion and
/// capturing what it prints: posix_spawn and waitpid. Foundation's `Process.waitUntilExit`
/// polls its run loop and added about 60 ms to every call — half a second to each build RUN's
/// network, a tenth to each `stop` or `rm`.
public enum Subprocess {
    /// The result of a finished program.
    public struct Output: Sendable {
        /// The exit status, or 128 + the signal that ended it.
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Runs `executable` (a path) with `arguments` (without the program name), `input` on its
    /// standard input (nothing: /dev/null), in this process's environment. stderr goes through
    /// a temp file and a large input through a writer thread, so neither can deadlock.
    public static func run(_ executable: String, _ arguments: [String], input: Data? = nil) throws -> Output {
        var out: [Int32] = [-1, -1], inp: [Int32] = [-1, -1]
        guard pipe(&out) == 0 else { throw RuntimeError.sys("create a pipe for \(executable)", errno) }
        defer { for fd in out where fd >= 0 { close(fd) } }
        for fd in out { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let errFile = tmpfile()
        defer { if let errFile { fclose(errFile) } }
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { if devnull >= 0 { close(devnull) } }
        var stdinFD = devnull
        if input != nil {
            guard pipe(&inp) == 0 else { throw RuntimeError.sys("create a pipe for \(executable)", errno) }
            for fd in inp { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            stdinFD = inp[0]
        }
        defer { for fd in inp where fd >= 0 { close(fd) } }
        let env = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        let pid = try Spawn.spawn(executable, args: [executable] + arguments, env: env,
                                  fds: [0: stdinFD, 1: out[1], 2: errFile.map { fileno($0) } ?? devnull])
        close(out[1]); out[1] = -1
        var writer: Thread?
        if let input {
            close(inp[0]); inp[0] = -1
            let fd = inp[1]
            inp[1] = -1
            let feed: @Sendable () -> Void = {
                input.withUnsafeBytes { b in
                    var off = 0
                    while off < b.count {
                        let n = write(fd, b.baseAddress! + off, b.count - off)
                        if n < 0 && errno == EINTR { continue }
                        if n <= 0 { break }
                        off += n
                    }
                }
                close(fd)
            }
            // What fits in the pipe is written at once; more needs a thread while we read.
            if input.count <= 32 << 10 { feed() } else { writer = Thread(block: feed); writer?.start() }
        }
        let stdout = readAll(out[0])
        let status = Spawn.wait(pid, timeout: nil) ?? -1
        _ = writer
        var stderr = ""
        if let errFile {
            fflush(errFile)
            stderr = String(decoding: readAll(fileno(errFile), from: 0), as: UTF8.self)
        }
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Output(status: code, stdout: String(decoding: stdout, as: UTF8.self), stderr: stderr)
    }

    /// Everything `fd` gives until end of file (from `offset` with pread when given).
    private static func readAll(_ fd: Int32, from offset: off_t? = nil) -> [UInt8] {
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 16 << 10)
        var pos = offset ?? 0
        while true {
            let n = buf.withUnsafeMutableBytes { b in
                offset == nil ? read(fd, b.baseAddress, b.count) : pread(fd, b.baseAddress, b.count, pos)
            }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            data += buf.prefix(n)
            pos += off_t(n)
        }
        return data
    }
}
