import Foundation
import SystemSupport

/// Temporary names and their cleanup after a crash.
///
/// Every temporary path the driver creates is `<final name>.tmp-<stamp>-<random>` (a file
/// being written before its rename) or `<name>.tmp-del-<stamp>-<random>` (a directory renamed
/// away before its removal), where `<stamp>` is the writer's `ProcessStamp`. `list` never
/// shows them. One is provably dead when its writer has exited; a live server's temporaries
/// are never touched, whatever their age.
extension FilesystemDriver {
    static func tempSuffix(deletion: Bool = false) -> String {
        ".tmp-\(deletion ? "del-" : "")\(ProcessStamp.current)-\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// The writer stamp of a temporary name; `.some(nil)` for a temporary name without one
    /// (written by an older version), nil for names that are not temporary.
    static func tempStamp(_ name: String) -> ProcessStamp?? {
        guard let r = name.range(of: ".tmp-") else { return nil }
        var rest = name[r.upperBound...]
        if rest.hasPrefix("del-") { rest = rest.dropFirst(4) }
        guard let dash = rest.firstIndex(of: "-") else { return .some(nil) }
        return .some(ProcessStamp(rest[..<dash]))
    }

    /// Whether a temporary file is dead: its writer exited, or it carries no stamp and was
    /// last modified more than `unstampedAge` seconds ago.
    static func isDeadTemporary(_ name: String, modified: Date, unstampedAge: TimeInterval, now: Date = Date()) -> Bool {
        guard let stamp = tempStamp(name) else { return false }
        if let stamp { return !stamp.isAlive }
        return now.timeIntervalSince(modified) > unstampedAge
    }

    public func removeLeftovers(dryRun: Bool, unstampedAge: TimeInterval) -> [String] {
        var found: [String] = []
        walk("", depth: 0) { rel, full, st in
            let name = rel.split(separator: "/").last.map(String.init) ?? rel
            let modified = Date(timeIntervalSince1970: Double(st.st_mtim.tv_sec))
            guard FilesystemDriver.tempStamp(name) != nil else { return true }
            if FilesystemDriver.isDeadTemporary(name, modified: modified, unstampedAge: unstampedAge) {
                found.append(rel)
                if !dryRun {
                    try? FileSystem.removeTree(full)
                }
            }
            // Never descend into a temporary tree: it goes (or stays) as a whole.
            return false
        }
        return found.sorted()
    }

    /// Depth-first over the tree without following symlinks; `visit` returns whether to
    /// descend into a directory.
    private func walk(_ rel: String, depth: Int, _ visit: (String, String, Glibc.stat) -> Bool) {
        guard depth < 64 else { return }
        let dirPath = rel.isEmpty ? root : root + "/" + rel
        guard let names = FileSystem.entryNames(atPath: dirPath) else { return }
        for name in names {
            let childRel = rel.isEmpty ? name : rel + "/" + name
            let full = root + "/" + childRel
            var st = Glibc.stat()
            guard lstat(full, &st) == 0 else { continue }
            let descend = visit(childRel, full, st)
            if descend && (st.st_mode & S_IFMT) == S_IFDIR { walk(childRel, depth: depth + 1, visit) }
        }
    }
}
