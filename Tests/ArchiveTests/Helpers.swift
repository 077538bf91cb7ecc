import Foundation
import Glibc
@testable import Archive

/// A temp directory removed by `cleanup()`.
struct TempDir {
    let path: String
    init(_ label: String = "archive") throws {
        let base = FileManager.default.temporaryDirectory.path + "/dockbuild-\(label)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        path = base
    }
    func sub(_ name: String) -> String { path + "/" + name }
    func mkdir(_ name: String) throws -> String {
        try FileManager.default.createDirectory(atPath: sub(name), withIntermediateDirectories: true)
        return sub(name)
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

struct ToolError: Error, CustomStringConvertible {
    let description: String
}

/// Runs a tool and returns its stdout; throws with stderr when it fails or is missing.
@discardableResult
func run(_ tool: String, _ args: [String], cwd: String? = nil, env: [String: String]? = nil, allowFailure: Bool = false) throws -> String {
    let p = Process()
    let candidates = tool.hasPrefix("/") ? [tool] : ["/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/", "/usr/local/bin/"].map { $0 + tool }
    guard let exe = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw ToolError(description: "\(tool) is not installed; install it (make deps) to run this test")
    }
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    if let env { p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 } }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let edata = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    if p.terminationStatus != 0 && !allowFailure {
        throw ToolError(description: "\(tool) \(args.joined(separator: " ")) failed (\(p.terminationStatus)): \(String(decoding: edata, as: UTF8.self))")
    }
    return String(decoding: data, as: UTF8.self)
}

func write(_ path: String, _ text: String) throws {
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

func read(_ path: String) -> String? {
    guard let d = FileManager.default.contents(atPath: path) else { return nil }
    return String(decoding: d, as: UTF8.self)
}

func exists(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0
}

func lst(_ path: String) -> stat? {
    var st = stat()
    return lstat(path, &st) == 0 ? st : nil
}

/// A description of a tree: one line per entry with type, mode, owner, size, mtime, link target,
/// content hash and xattrs — two trees are the same when their descriptions are.
func describeTree(_ root: String, mtimes: Bool = true, owners: Bool = true, skipDirMtimes: Bool = false, xattrs: Bool = true, links: Bool = true) throws -> [String] {
    var lines: [String] = []
    func walk(_ rel: String) throws {
        let dir = rel.isEmpty ? root : root + "/" + rel
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        for n in names {
            let r = rel.isEmpty ? n : rel + "/" + n
            let p = root + "/" + r
            guard let st = lst(p) else { continue }
            var line = "\(r) mode=\(String(st.st_mode, radix: 8))"
            if owners { line += " uid=\(st.st_uid) gid=\(st.st_gid)" }
            let isDir = (st.st_mode & S_IFMT) == S_IFDIR
            if mtimes && !(isDir && skipDirMtimes) { line += " mtime=\(st.st_mtim.tv_sec)" }
            switch st.st_mode & S_IFMT {
            case S_IFREG:
                let d = FileManager.default.contents(atPath: p) ?? Data()
                line += " size=\(d.count) sum=\(d.reduce(UInt64(1469598103934665603)) { ($0 ^ UInt64($1)) &* 1099511628211 }) \(links ? "nlink=\(st.st_nlink)" : "")"
            case S_IFLNK:
                line += " -> " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: p)) ?? "?")
            case S_IFCHR, S_IFBLK:
                line += " rdev=\(st.st_rdev)"
            default: break
            }
            let xs = listXattrs(p)
            if xattrs && !xs.isEmpty { line += " xattrs=\(xs)" }
            lines.append(line)
            if isDir { try walk(r) }
        }
    }
    try walk("")
    return lines
}

func listXattrs(_ path: String) -> [String] {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = path.withCString { dockbuildTestListXattr($0, &buf, buf.count) }
    guard n > 0 else { return [] }
    var names: [String] = []
    var start = 0
    for i in 0..<n where buf[i] == 0 {
        let name = String(decoding: buf[start..<i].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        start = i + 1
        if name.hasPrefix("security.selinux") { continue }
        var value = [UInt8](repeating: 0, count: 4096)
        let vn = path.withCString { p in name.withCString { dockbuildTestGetXattr(p, $0, &value, value.count) } }
        names.append("\(name)=\(vn >= 0 ? value.prefix(vn).map { String(format: "%02x", $0) }.joined() : "?")")
    }
    return names.sorted()
}

/// Lines only in `a` (prefixed -) or only in `b` (+); empty when the trees match.
func treeDiff(_ a: [String], _ b: [String]) -> [String] {
    let sa = Set(a), sb = Set(b)
    return a.filter { !sb.contains($0) }.map { "- " + $0 } + b.filter { !sa.contains($0) }.map { "+ " + $0 }
}

/// Builds tar bytes entry by entry with the module's own PAX encoder (hostile archives included).
struct TarBuilder {
    var bytes: [UInt8] = []

    mutating func add(_ name: String, _ kind: TarHeader.Kind = .regular, content: String = "", link: String = "",
                      mode: UInt32 = 0o644, declaredSize: Int64? = nil) {
        var h = TarHeader(name: Array(name.utf8), kind: kind)
        h.mode = mode
        h.linkname = Array(link.utf8)
        h.mtime = 1_700_000_000
        h.size = declaredSize ?? Int64(content.utf8.count)
        bytes += PaxEncoder.encode(h)
        bytes += Array(content.utf8)
        PaxEncoder.pad(&bytes)
    }

    mutating func end() { bytes += [UInt8](repeating: 0, count: 1024) }

    func write(to path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }
}

import OCI
func Archive_sha256(_ data: Data) -> String { Digest.compute(data).encoded }
