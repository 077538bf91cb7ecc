import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// The temp directory of one build process, `<store>/build/tmp/session-<pid>-<random>` (0700),
/// holding everything the build creates while it runs: RUN overlays and bundles, the RUN runtime's
/// state, network attachments, staging directories and an extracted tar context. Its `owner`
/// file names the builder (pid and start time), so that a later build, `image gc` or
/// `cache prune` can tell the leftovers of a killed build from a build that is still running.
public enum BuildSession {
    static let prefix = "session-"
    static let ownerFile = "owner"
    /// Where a RUN records its network attachment (`ID BRIDGE PREFIX IP` or `ID none`).
    static let networkFile = "network"

    /// Creates a session directory under `tmpRoot`.
    static func create(in tmpRoot: String) throws -> String {
        try FS.mkdirs(tmpRoot)
        let me = getpid()
        let dir = "\(tmpRoot)/\(prefix)\(me)-\(UUID().uuidString.prefix(8).lowercased())"
        guard mkdir(dir, 0o700) == 0 else { throw FS.sys("create directory", dir) }
        chmod(dir, 0o700)
        let start = startTime(me) ?? 0
        // not fsynced (FileManager.createFile would): after a crash the session is reaped anyway
        do { try FS.writeAtomic(Data("\(me) \(start)\n".utf8), to: dir + "/" + ownerFile) } catch {
            throw BuildError.system("cannot write \(dir)/\(ownerFile): check that the store is writable")
        }
        return dir
    }

    /// Start time (field 22 of /proc/PID/stat) of a live, non-zombie process.
    static func startTime(_ pid: Int32) -> UInt64? {
        guard pid > 0, let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = s.lastIndex(of: ")") else { return nil }
        let f = s[s.index(after: close)...].split(separator: " ")
        guard f.count > 19, f[0] != "Z" else { return nil }
        return UInt64(f[19])
    }

    /// Whether the builder that owns `dir` still runs (same pid, same start time).
    static func ownerAlive(_ dir: String) -> Bool {
        guard let text = try? String(contentsOfFile: dir + "/" + ownerFile, encoding: .utf8) else {
            // Being created right now, or a crash between mkdir and the owner file: judge by age.
            return (FS.info(dir).map { time(nil) - $0.st_mtim.tv_sec } ?? 0) < 60
        }
        let f = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard f.count >= 2, let pid = Int32(f[0]), let start = UInt64(f[1]) else { return false }
        return startTime(pid) == start
    }

    /// Cleans up after builds that died without doing it themselves (SIGKILL, crash, power
    /// loss): kills their RUN containers, removes their network namespaces and veths, unmounts
    /// their overlays and deletes their files. Sessions of live builders are left alone.
    /// Returns the directories it removed.
    @discardableResult
    public static func reapDead(store root: String) -> [String] {
        let tmpRoot = root + "/build/tmp"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: tmpRoot)) ?? []).filter { $0.hasPrefix(prefix) }.sorted()
        var removed: [String] = []
        for name in names {
            let dir = tmpRoot + "/" + name
            if ownerAlive(dir) { continue }
            cleanUp(dir)
            removed.append(dir)
        }
        return removed
    }

    /// Stops and removes everything under a session directory (the owner is gone or is us).
    static func cleanUp(_ dir: String) {
        // 1. the RUN containers (their init is PID 1 of a PID namespace: killing it ends them all)
        let rt = Runtime(root: dir + "/runtime")
        for c in rt.list() { try? rt.delete(id: c.id, force: true) }
        // 2. network attachments
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            if let text = try? String(contentsOfFile: "\(dir)/\(name)/\(networkFile)", encoding: .utf8) {
                RunNetwork.tearDown(record: text)
            }
        }
        // 3. mounts (deepest first), then the files
        unmountAll(under: dir)
        FS.removeTree(dir)
    }

    /// Lazily unmounts every mount point at or below `dir` in this mount namespace.
    static func unmountAll(under dir: String) {
        for point in mountPoints(under: dir).sorted(by: { $0.count > $1.count }) {
            umount2(point, Int32(MNT_DETACH))
        }
    }

    /// Mount points at or below `dir`, from /proc/self/mountinfo (octal escapes decoded).
    static func mountPoints(under dir: String) -> [String] {
        guard let info = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return [] }
        var out: [String] = []
        for line in info.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count > 4 else { continue }
            let p = unescape(String(f[4]))
            if p == dir || p.hasPrefix(dir + "/") { out.append(p) }
        }
        return out
    }

    static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var bytes: [UInt8] = []
        let u = Array(s.utf8)
        var i = 0
        while i < u.count {
            if u[i] == UInt8(ascii: "\\"), i + 3 < u.count,
               let v = UInt8(String(decoding: u[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                bytes.append(v)
                i += 4
            } else {
                bytes.append(u[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
