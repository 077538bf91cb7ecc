import Foundation
import Synchronization
import Testing
@testable import SystemSupport
#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory per test, removed after.
final class TempDir {
    let path: String
    init() throws {
        var template = Array((NSTemporaryDirectory() + "/systemsupport-XXXXXX").utf8CString)
        guard let p = mkdtemp(&template) else { throw SystemError("create", path: "temp dir") }
        path = String(cString: p)
    }
    deinit { try? FileSystem.removeTree(path) }
    func names(_ sub: String = "") -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path + sub)) ?? []).sorted()
    }
}

@Suite struct AtomicWriteTests {
    @Test func replacesContentAndLeavesNoTempFile() throws {
        let t = try TempDir()
        let file = t.path + "/state.json"
        try FileSystem.writeAtomically(Data("old".utf8), to: file)
        try FileSystem.writeAtomically(Array("new content".utf8), to: file, mode: 0o600)
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "new content")
        var st = stat()
        #expect(stat(file, &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(t.names() == ["state.json"])
    }

    @Test func readersSeeOldOrNewNeverAMix() throws {
        let t = try TempDir()
        let file = t.path + "/f"
        let a = Data(repeating: UInt8(ascii: "a"), count: 1 << 20), b = Data(repeating: UInt8(ascii: "b"), count: 1 << 20)
        try FileSystem.writeAtomically(a, to: file, durability: .none)
        let done = Atomic(false)
        let mixed = Atomic(0)
        let path = file
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            if i == 0 {
                for n in 0..<40 { try? FileSystem.writeAtomically(n % 2 == 0 ? b : a, to: path, durability: .none) }
                done.store(true, ordering: .releasing)
            } else {
                while !done.load(ordering: .acquiring) {
                    guard let d = FileManager.default.contents(atPath: path) else { continue }
                    if d != a && d != b { mixed.add(1, ordering: .relaxed) }
                }
            }
        }
        #expect(mixed.load(ordering: .relaxed) == 0)
        #expect(t.names() == ["f"])
    }

    @Test func aFailedWriteLeavesTheTargetAndNoTempFile() throws {
        let t = try TempDir()
        let file = t.path + "/f"
        try FileSystem.writeAtomically(Data("kept".utf8), to: file)
        // The rename fails: the target is a non-empty directory.
        let dir = t.path + "/d"
        try FileSystem.makeDirectories(dir + "/inside")
        #expect(throws: SystemError.self) { try FileSystem.writeAtomically(Data("x".utf8), to: dir) }
        #expect(t.names() == ["d", "f"])
        #expect(t.names("/d") == ["inside"])
        // The temp file cannot be created: the error names it, nothing is left behind.
        let tmp = t.path + "/missing/tmp"
        do {
            try FileSystem.writeAtomically(Data("x".utf8), to: file, temporaryPath: tmp)
            Issue.record("expected an error")
        } catch {
            #expect(error.path == tmp && error.errno == ENOENT)
            #expect(error.description.contains(tmp))
        }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "kept")
        #expect(t.names() == ["d", "f"])
    }
}

extension AtomicWriteTests {
    struct Interrupted: Error {}

    @Test func theStreamingFormCommitsWhatItWroteOrNothing() throws {
        let t = try TempDir()
        let file = t.path + "/archive.tar"
        try FileSystem.writeAtomically(to: file, durability: .file) { fd in
            try Array("part one, ".utf8).withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: file) }
            try Array("part two".utf8).withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: file) }
        }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "part one, part two")
        // The writer fails half-way: its own error comes back, the old file stays, no temp is left.
        #expect(throws: Interrupted.self) {
            try FileSystem.writeAtomically(to: file) { fd in
                try Array("half".utf8).withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: file) }
                throw Interrupted()
            }
        }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "part one, part two")
        #expect(t.names() == ["archive.tar"])
    }
}

@Suite struct DirectoryTests {
    @Test func makeDirectoriesIsIdempotentAndReportsWhatItMade() throws {
        let t = try TempDir()
        let deep = t.path + "/a/b/c"
        #expect(try FileSystem.makeDirectories(deep, mode: 0o700) == [t.path + "/a", t.path + "/a/b", deep])
        #expect(try FileSystem.makeDirectories(deep) == [])
        #expect(FileSystem.isDirectory(deep))
        var st = stat()
        #expect(stat(t.path + "/a/b", &st) == 0 && st.st_mode & 0o777 == 0o700)
    }

    @Test func makeDirectoriesNamesThePathThatFails() throws {
        let t = try TempDir()
        try FileSystem.writeAtomically(Data(), to: t.path + "/file")
        do {
            try FileSystem.makeDirectories(t.path + "/file")
            Issue.record("expected an error")
        } catch {
            #expect(error.path == t.path + "/file" && error.errno == ENOTDIR)
            #expect(error.description == "cannot create directory \(t.path)/file: Not a directory")
        }
        do {
            try FileSystem.makeDirectories(t.path + "/file/below/deeper")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.hasPrefix("cannot create directory \(t.path)/file"))
        }
    }

    @Test func removeTreeRemovesAllAndNeverFollowsALink() throws {
        let t = try TempDir()
        try FileSystem.makeDirectories(t.path + "/keep")
        try FileSystem.writeAtomically(Data("k".utf8), to: t.path + "/keep/file")
        try FileSystem.makeDirectories(t.path + "/tree/a/b")
        try FileSystem.writeAtomically(Data("x".utf8), to: t.path + "/tree/a/b/file")
        #expect(symlink(t.path + "/keep", t.path + "/tree/a/link") == 0)
        chmod(t.path + "/tree/a/b", 0o500)
        try FileSystem.removeTree(t.path + "/tree")
        #expect(t.names() == ["keep"])
        #expect(t.names("/keep") == ["file"])
        // A missing path, and a plain file.
        try FileSystem.removeTree(t.path + "/tree")
        try FileSystem.removeTree(t.path + "/keep/file")
        #expect(t.names("/keep") == [])
    }
}

@Suite struct LockTests {
    @Test func aFileLockExcludesASecondDescriptorAndProcess() throws {
        let t = try TempDir()
        let path = t.path + "/lock"
        let a = try FileLock(path: path), b = try FileLock(path: path)
        try a.lock(exclusive: true)
        #expect(!b.tryLock(exclusive: false))
        #expect(!b.tryLock(exclusive: true, timeout: 0.1))
        #expect(try Self.otherProcessCanLock(path) == false)
        a.unlock()
        #expect(b.tryLock(exclusive: false))
        #expect(a.tryLock(exclusive: false), "shared locks share")
        #expect(try Self.otherProcessCanLock(path) == false)
        b.unlock(); a.unlock()
        #expect(try Self.otherProcessCanLock(path) == true)
        #expect(FileLock(existing: t.path + "/absent") == nil)
        #expect(try a.withLock { 7 } == 7)
        #expect(try Self.otherProcessCanLock(path) == true, "withLock releases")
    }

    /// Whether flock(1) in another process gets an exclusive lock at once.
    static func otherProcessCanLock(_ path: String) throws -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        p.arguments = ["-n", "-x", path, "true"]
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    @Test func lockedSerialisesThreads() {
        let counter = Locked(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<1000 { counter.withLock { $0 += 1 } }
        }
        #expect(counter.current == 8000)
    }
}

@Suite struct UTCTimeTests {
    @Test func everyFractionAsItsUsersWriteIt() {
        // 2026-12-05T17:23:47Z, 50 ms and 600 ns into the second
        let s = 1_796_491_427, ns = 50_000_600
        #expect(UTCTime.format(seconds: s, nanoseconds: ns, .none) == "2026-12-05T17:23:47Z")
        #expect(UTCTime.format(seconds: s, nanoseconds: ns, .millis) == "2026-12-05T17:23:47.050Z")
        #expect(UTCTime.format(seconds: s, nanoseconds: ns, .nanos) == "2026-12-05T17:23:47.050000600Z")
        #expect(UTCTime.format(seconds: s, nanoseconds: ns, .trimmedNanos) == "2026-12-05T17:23:47.0500006Z")
        #expect(UTCTime.format(seconds: s, nanoseconds: 0, .trimmedNanos) == "2026-12-05T17:23:47Z")
        #expect(UTCTime.format(seconds: 0, .none) == "1970-01-01T00:00:00Z")
        var bytes: [UInt8] = []
        UTCTime.appendMillis(timespec(tv_sec: s, tv_nsec: ns), to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == UTCTime.format(seconds: s, nanoseconds: ns, .millis))
        for n: Int64 in [0, 7, 10, 404, 65536, -12, Int64.max, Int64.min] {
            var out: [UInt8] = []
            UTCTime.appendDecimal(n, to: &out)
            #expect(String(decoding: out, as: UTF8.self) == String(n))
        }
        // the arithmetic calendar of appendMillis is gmtime_r's, at the edges (leap days, century
        // years, before the epoch) and across a sample of four centuries
        var samples = [0, -1, -86_400, 951_782_400, 951_868_799, 4_107_542_400, 4_107_456_000, 253_402_300_799, -2_208_988_800]
        for t in stride(from: -6_000_000_000, to: 7_000_000_000, by: 86_399_999) { samples.append(t) }
        for t in samples {
            var tt = time_t(t), tmv = tm()
            gmtime_r(&tt, &tmv)
            let c = UTCTime.civil(seconds: t)
            #expect(c.year == Int(tmv.tm_year) + 1900 && c.month == Int(tmv.tm_mon) + 1 && c.day == Int(tmv.tm_mday)
                && c.hour == Int(tmv.tm_hour) && c.minute == Int(tmv.tm_min) && c.second == Int(tmv.tm_sec), "at \(t)")
        }
        // the same as Foundation's formatter, for a sample of times
        let iso = ISO8601DateFormatter()
        for t in stride(from: 0, to: 4_000_000_000, by: 123_456_789) {
            #expect(UTCTime.format(seconds: t, .none) == iso.string(from: Date(timeIntervalSince1970: Double(t))))
        }
    }
}

@Suite struct SpreadDirectoryTests {
    /// The first word a tool prints (nil where it is missing or fails).
    func firstWord(_ tool: String, _ args: [String]) -> String? {
        guard FileManager.default.isExecutableFile(atPath: tool) else { return nil }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return p.terminationStatus == 0 ? out.split(whereSeparator: { $0 == " " || $0 == "\n" }).first.map(String.init) : nil
    }

    /// Whether `path` lies on ext2/3/4 (the file systems with an Orlov allocator and its flag).
    func onExt4(_ path: String) -> Bool { firstWord("/usr/bin/stat", ["-f", "-c", "%t", path]) == "ef53" }

    /// `lsattr -d`'s attribute field for a directory.
    func lsattr(_ path: String) -> String? { firstWord("/usr/bin/lsattr", ["-d", path]) }

    @Test func marksTheTopOfAHierarchyWhereTheFileSystemHasTheFlag() throws {
        let t = try TempDir()
        let dir = t.path + "/store"
        try FileSystem.makeDirectories(dir)
        #expect(!FileSystem.spreadsSubdirectories(dir))
        let set = FileSystem.spreadSubdirectories(dir)
        guard onExt4(dir) else {
            // tmpfs, xfs, btrfs: nothing to set, and nothing fails
            #expect(!FileSystem.spreadsSubdirectories(dir))
            return
        }
        #expect(set)
        #expect(FileSystem.spreadsSubdirectories(dir))
        // e2fsprogs reads it as chattr +T sets it
        if let attrs = lsattr(dir) { #expect(attrs.contains("T"), "lsattr -d: \(attrs)") }
        // again: a no-op; a file or a missing path: false, nothing changed
        #expect(FileSystem.spreadSubdirectories(dir))
        #expect(FileManager.default.createFile(atPath: t.path + "/file", contents: Data()))
        #expect(!FileSystem.spreadSubdirectories(t.path + "/file"))
        #expect(!FileSystem.spreadSubdirectories(t.path + "/missing"))
        // not inherited: a subdirectory is placed by the flag, not marked by it
        try FileSystem.makeDirectories(dir + "/sub")
        #expect(!FileSystem.spreadsSubdirectories(dir + "/sub"))
    }
}

@Suite struct JSONStringTests {
    /// Foundation's style is JSONSerialization's bytes (without escaped slashes); Go's escapes
    /// as encoding/json does.
    @Test func bothStylesMatchTheirWriters() throws {
        let samples = ["plain", "a/b \"q\" \\ \n\r\t", "\u{08}\u{0C}\u{01}\u{1F}\u{7F}", "<a&b> \u{2028}\u{2029} é 😀", ""]
        for s in samples {
            let data = try JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
            let array = String(decoding: data, as: UTF8.self)
            #expect("[" + JSONString.quoted(s, style: .foundation) + "]" == array, "\(s.debugDescription)")
        }
        #expect(JSONString.quoted("<\u{08}\u{2028}&", style: .go(escapeHTML: true)) == "\"\\u003c\\u0008\\u2028\\u0026\"")
        #expect(JSONString.quoted("<\u{0C}>", style: .go(escapeHTML: false)) == "\"<\\u000c>\"")
    }
}
