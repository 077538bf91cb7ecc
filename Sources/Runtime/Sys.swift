import Foundation
import SystemSupport
#if canImport(Glibc)
import Glibc
#endif

/// Small file-system and process helpers over the raw syscalls.
enum Sys {
    static func readFile(_ path: String) -> String? {
        readBytes(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The whole file (a control file in /proc or a cgroup, a config.json) with plain read(2)
    /// calls: no FileManager, no 64 KiB buffer for a 10-byte file.
    static func readBytes(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        var out = [UInt8](repeating: 0, count: 4096)
        var used = 0
        while true {
            if used == out.count { out.append(contentsOf: repeatElement(0, count: out.count)) }
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + used, $0.count - used) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            used += n
        }
        out.removeSubrange(used...)
        return out
    }

    static func readData(_ path: String) -> Data? {
        readBytes(path).map { Data($0) }
    }

    /// Writes a small control file (cgroup, /proc) in one write call.
    static func writeFile(_ path: String, _ value: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw RuntimeError.sys("open \(path)") }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 { throw RuntimeError.sys("write \"\(value)\" to \(path)") }
    }

    /// Temp file, (fsync,) rename: readers never see a partial file. Runtime
    /// state lives in /run and dies with the boot, so it skips the fsync.
    static func writeAtomic(_ path: String, _ data: Data, mode: mode_t = 0o644, durable: Bool = false) throws {
        do { try FileSystem.writeAtomically(data, to: path, mode: mode, durability: durable ? .file : .none) } catch {
            throw RuntimeError.sys("\(error.action) \(error.path)", error.errno)
        }
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func isDir(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir -p; returns the directories it created, outermost first.
    @discardableResult
    static func mkdirAll(_ path: String, mode: mode_t = 0o755) throws -> [String] {
        // Usually only the last component is missing: one mkdir, walking up only on ENOENT.
        let clean = "/" + path.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
        do { return try FileSystem.makeDirectories(clean, mode: mode) } catch { throw RuntimeError.sys("mkdir \(error.path)", error.errno) }
    }

    static func listDir(_ path: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    }

    static func removeAll(_ path: String) {
        try? FileSystem.removeTree(path)
    }

    /// Field 22 of /proc/<pid>/stat: the start time, to tell a reused pid apart.
    static func processStat(_ pid: Int32) -> (state: Character, startTime: UInt64)? {
        guard let s = readFile("/proc/\(pid)/stat"), let close = s.lastIndex(of: ")") else { return nil }
        let fields = s[s.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let st = fields[0].first, let start = UInt64(fields[19]) else { return nil }
        return (st, start)
    }

    static func lexicallyClean(_ path: String) -> String {
        var out: [Substring] = []
        for c in path.split(separator: "/") {
            if c == "." { continue }
            if c == ".." { if !out.isEmpty { out.removeLast() }; continue }
            out.append(c)
        }
        return (path.hasPrefix("/") ? "/" : "") + out.joined(separator: "/")
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return lexicallyClean(path) }
        return lexicallyClean(FileManager.default.currentDirectoryPath + "/" + path)
    }

    /// Parses a signal given as a number, NAME or SIGNAME.
    static func signal(_ s: String) -> Int32? {
        if let n = Int32(s), n > 0, n < 65 { return n }
        var name = s.uppercased()
        if name.hasPrefix("SIG") { name.removeFirst(3) }
        let table: [String: Int32] = [
            "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
            "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
            "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
            "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
            "POLL": 29, "PWR": 30, "SYS": 31,
        ]
        if let n = table[name] { return n }
        if name.hasPrefix("RTMIN+"), let k = Int32(name.dropFirst(6)) { return 34 + k }
        return nil
    }

    static func waitStatusCode(_ status: Int32) -> Int32 {
        let sig = status & 0x7f
        if sig == 0 { return (status >> 8) & 0xff }
        return 128 + sig
    }
}
