import Foundation
import SystemSupport
import CRuntime
#if canImport(Glibc)
import Glibc
#endif

/// A container's cgroup, on cgroup v1 (one directory per hierarchy) or the
/// v2 unified hierarchy, whichever the host has; detected at run time from
/// /proc/self/mountinfo. Paths follow runc's cgroupfs rules: an absolute
/// cgroupsPath is taken from the hierarchy root, a relative one from the
/// runtime's own cgroup, and an empty one becomes `<own cgroup>/<id>`.
public struct Cgroup: Codable, Sendable, Equatable {
    /// "v1" or "v2".
    public var version: String
    /// Hierarchy name (controller list, e.g. "memory", "cpu,cpuacct", "name=systemd"; "" on v2) -> directory.
    public var paths: [String: String]
    /// Parent directories `create` made on the way (removed again on destroy when empty).
    public var createdParents: [String]? = nil

    /// Where each cgroup hierarchy is mounted on this host.
    struct Hierarchy { var controllers: [String]; var mountPoint: String; var root: String; var key: String }

    static func hierarchies() -> (v2: Hierarchy?, v1: [Hierarchy]) {
        var v1: [Hierarchy] = []
        var v2: Hierarchy?
        for line in (Sys.readFile("/proc/self/mountinfo") ?? "").split(separator: "\n") {
            // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS"
            let fields = line.split(separator: " ")
            guard let dash = fields.firstIndex(of: "-") else { continue }
            let pre = fields[..<dash], post = Array(fields[(dash + 1)...])
            guard pre.count >= 5, post.count >= 3 else { continue }
            let root = String(pre[3]), mp = String(pre[4])
            if post[0] == "cgroup2" {
                // The last one at /sys/fs/cgroup (the visible one when it is mounted over again,
                // and the unified hierarchy `isUnified` sees), else the last one elsewhere (a
                // hybrid host's /sys/fs/cgroup/unified).
                if mp == "/sys/fs/cgroup" || v2?.mountPoint != "/sys/fs/cgroup" {
                    v2 = Hierarchy(controllers: [], mountPoint: mp, root: root, key: "")
                }
            } else if post[0] == "cgroup" {
                let opts = post[2].split(separator: ",").map(String.init)
                let known: Set<String> = ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls",
                                          "net_prio", "blkio", "perf_event", "hugetlb", "pids", "rdma", "misc"]
                let ctrls = opts.filter { known.contains($0) || $0.hasPrefix("name=") }
                guard !ctrls.isEmpty else { continue }
                v1.append(Hierarchy(controllers: ctrls, mountPoint: mp, root: root, key: ctrls.joined(separator: ",")))
            }
        }
        return (v2, v1)
    }

    /// True when the host runs the unified hierarchy only (cgroup v2 at /sys/fs/cgroup).
    public static var isUnified: Bool { Sys.exists("/sys/fs/cgroup/cgroup.controllers") }

    /// The runtime's own cgroup per hierarchy key, from /proc/self/cgroup.
    static func ownPaths() -> [String: String] {
        var out: [String: String] = [:]
        for line in (Sys.readFile("/proc/self/cgroup") ?? "").split(separator: "\n") {
            let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard f.count == 3 else { continue }
            out[String(f[1])] = String(f[2])
        }
        return out
    }

    /// Resolves the directories for `cgroupsPath` of container `id`.
    public static func resolve(cgroupsPath: String?, id: String) throws -> Cgroup {
        var inner = cgroupsPath ?? ""
        if inner.contains(":") && !inner.hasPrefix("/") {
            // systemd form "slice:prefix:name": keep it under the hierarchy root.
            let f = inner.split(separator: ":", omittingEmptySubsequences: false)
            inner = "/" + (f.count == 3 ? "\(f[0])/\(f[1])-\(f[2]).scope" : f.joined(separator: "-"))
        }
        if inner.isEmpty { inner = id }
        let own = ownPaths()
        func dir(_ h: Hierarchy, ownKey: String) -> String {
            let base: String
            if inner.hasPrefix("/") {
                base = Sys.lexicallyClean(inner)
            } else {
                var start = own[ownKey] ?? "/"
                if ownKey.isEmpty { start = rootlessV2Base(own: start, in: h) }
                base = Sys.lexicallyClean(start + "/" + inner)
            }
            return directory(of: base, in: h)
        }
        let (v2, v1) = hierarchies()
        if isUnified, let v2 {
            return Cgroup(version: "v2", paths: ["": dir(v2, ownKey: "")])
        }
        if v1.isEmpty {
            if let v2 { return Cgroup(version: "v2", paths: ["": dir(v2, ownKey: "")]) }
            throw RuntimeError(.cgroup, "no cgroup hierarchy is mounted; mount cgroup2 on /sys/fs/cgroup")
        }
        var paths: [String: String] = [:]
        for h in v1 { paths[h.key] = dir(h, ownKey: h.key) }
        return Cgroup(version: "v1", paths: paths)
    }

    /// The directory of cgroup `path` (as /proc/self/cgroup names it) in hierarchy `h`.
    static func directory(of path: String, in h: Hierarchy) -> String {
        // The mount may show only part of the tree (mount root != "/").
        var rel = path
        if h.root != "/" && rel.hasPrefix(h.root) { rel = String(rel.dropFirst(h.root.count)) }
        return Sys.lexicallyClean(h.mountPoint + "/" + rel)
    }

    /// The leaf child of an ordinary user's delegated cgroup v2 into which `create` moves the
    /// processes of that cgroup (the command, the user namespace's holder, whatever else the user
    /// runs there), so that the cgroup may give controllers to the containers' cgroups: docker's
    /// dind and kind use the same name for the same move.
    public static let delegatedLeaf = "init"

    /// The cgroup an ordinary user's relative cgroupsPath starts from on cgroup v2: the command's
    /// own, or, when that is the leaf `init` of a cgroup delegated to the user (one it may write:
    /// an earlier command moved the processes there), that cgroup, so that every container's cgroup
    /// is made beside the leaf, never in it. Root's is always its own.
    static func rootlessV2Base(own: String, in h: Hierarchy) -> String {
        guard StatePaths.isRootless, (own as NSString).lastPathComponent == delegatedLeaf else { return own }
        let parent = (own as NSString).deletingLastPathComponent
        let dir = directory(of: parent, in: h)
        return parent != own && access(dir, W_OK) == 0 && access(dir + "/cgroup.procs", W_OK) == 0 ? parent : own
    }

    func path(for controller: String) -> String? {
        if version == "v2" { return paths[""] }
        for (k, v) in paths where k.split(separator: ",").contains(Substring(controller)) { return v }
        return nil
    }

    /// The controllers a v2 cgroup directory has (its `cgroup.controllers`).
    public static func controllers(at dir: String) -> Set<String> { words(dir + "/cgroup.controllers") }

    /// The words of a cgroup file that lists controllers (cgroup.controllers, cgroup.subtree_control).
    static func words(_ file: String) -> Set<String> {
        Set((Sys.readFile(file) ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
    }

    /// The controllers of `needed` that a v2 cgroup made at `dir` cannot have: those missing from
    /// `cgroup.controllers` of `dir` or, where it does not exist yet, of its nearest existing
    /// ancestor (what that cgroup may enable below it bounds what every cgroup below it gets).
    /// In needed's order, each once.
    public static func unavailableV2Controllers(_ needed: [String], below dir: String) -> [String] {
        let have = controllers(at: nearestV2Cgroup(dir))
        var missing: [String] = []
        for c in needed where !have.contains(c) && !missing.contains(c) { missing.append(c) }
        return missing
    }

    /// `dir` or, where it does not exist yet, its nearest existing ancestor that is a v2 cgroup.
    public static func nearestV2Cgroup(_ dir: String) -> String {
        var d = dir
        while !Sys.exists(d + "/cgroup.controllers") && d.count > 1 { d = (d as NSString).deletingLastPathComponent }
        return d
    }

    /// Whether this process may create every hierarchy's directory: the nearest existing
    /// ancestor of each is writable. False for an ordinary user without a delegated subtree.
    public var isCreatable: Bool {
        paths.values.allSatisfy { dir in
            var d = dir
            while !Sys.exists(d) && d != "/" { d = (d as NSString).deletingLastPathComponent }
            return Sys.exists(dir) ? access(dir, W_OK) == 0 : access(d, W_OK) == 0
        }
    }

    /// Creates the directories (and on v1 seeds cpuset, on v2 enables controllers).
    public mutating func create() throws {
        // Before anything is made: a failure here leaves nothing behind.
        if version == "v2", let dir = paths[""] {
            do { try vacateDelegatedCgroup(above: dir) } catch let e as RuntimeError {
                // The container still runs, as without a delegated subtree; limits whose
                // controllers cannot be given below are skipped (`set`).
                FileHandle.standardError.write(Data("WARNING: \(e.message); resource limits are not applied\n".utf8))
            }
        }
        var parents: [String] = []
        for (key, dir) in paths.sorted(by: { $0.key < $1.key }) {
            parents += try Sys.mkdirAll(dir).filter { $0 != dir }
            createdParents = parents
            if version == "v1" && key.split(separator: ",").contains("cpuset") { try seedCpuset(dir) }
        }
        if version == "v2", let dir = paths[""] { enableControllers(dir) }
    }

    /// Whether the v2 cgroup `dir` was delegated to this user explicitly, so that its processes
    /// may be moved: systemd marks a `Delegate=yes` unit's cgroup with the `user.delegate`
    /// extended attribute (and `trusted.delegate`, which only root can read); the root of a
    /// cgroup namespace (`ownPath` "/") was handed over whole. A cgroup that is only writable is
    /// not enough: below `user@UID.service` every unit's cgroup belongs to the user, and moving a
    /// service's processes into a child would keep systemd from adding processes to the unit.
    static func isExplicitlyDelegated(_ dir: String, ownPath: String) -> Bool {
        if ownPath == "/" { return true }
        for name in ["user.delegate", "trusted.delegate"] {
            var value = [UInt8](repeating: 0, count: 8)
            let n = cruntime_getxattr(dir, name, &value, value.count)
            if n > 0 && value[0] == UInt8(ascii: "1") { return true }
        }
        return false
    }

    /// An ordinary user's delegated v2 cgroup, where its commands run, may give controllers to the
    /// cgroups below it only while no process is in it (the kernel's "no internal processes" rule:
    /// its cgroup.subtree_control refuses them with EBUSY), yet the command itself and the user
    /// namespace's holder are in it. When `dir` is below that cgroup, the cgroup was delegated
    /// explicitly (`isExplicitlyDelegated`), may be written, has processes and has controllers not
    /// yet given below, every process in it moves to its leaf child `init` first (what a payload
    /// of a delegated cgroup must do, as docker's dind does at its cgroup namespace's root), and
    /// stays there; later commands that start there use the cgroup, not the leaf
    /// (`rootlessV2Base`), and move nothing. Root: nothing changes.
    func vacateDelegatedCgroup(above dir: String) throws {
        guard version == "v2", StatePaths.isRootless, let v2 = Cgroup.hierarchies().v2 else { return }
        let basePath = Cgroup.rootlessV2Base(own: Cgroup.ownPaths()[""] ?? "/", in: v2)
        let base = Cgroup.directory(of: basePath, in: v2)
        guard dir.hasPrefix(base + "/"), Sys.exists(base + "/cgroup.controllers"), access(base + "/cgroup.procs", W_OK) == 0,
              Cgroup.isExplicitlyDelegated(base, ownPath: basePath) else { return }
        let given = Cgroup.words(base + "/cgroup.subtree_control")
        guard !Cgroup.controllers(at: base).subtracting(given).isEmpty else { return }
        func procs() -> [Int32] { (Sys.readFile(base + "/cgroup.procs") ?? "").split(separator: "\n").compactMap { Int32($0) } }
        guard !procs().isEmpty else { return }
        let leaf = base + "/" + Cgroup.delegatedLeaf
        if mkdir(leaf, 0o755) != 0 && errno != EEXIST {
            let e = errno
            throw RuntimeError(.cgroup, "cannot create \(leaf) to move the processes of the delegated cgroup \(base) out of it "
                + "(\(String(cString: strerror(e)))): its controllers can be given to containers only when it has no processes; "
                + "move them to a child cgroup yourself")
        }
        // A process may fork while the others move: a few rounds until the cgroup is empty.
        for _ in 0..<20 {
            let pids = procs()
            if pids.isEmpty { return }
            for pid in pids {
                let fd = open(leaf + "/cgroup.procs", O_WRONLY | O_CLOEXEC)
                if fd < 0 { throw RuntimeError.sys("open \(leaf)/cgroup.procs") }
                let bytes = Array("\(pid)".utf8)
                let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                let err = errno
                close(fd)
                // ESRCH: it exited meanwhile.
                if n < 0 && err != ESRCH {
                    throw RuntimeError(.cgroup, "cannot move process \(pid) from the delegated cgroup \(base) to \(leaf) "
                        + "(\(String(cString: strerror(err)))): its controllers can be given to containers only when it has no "
                        + "processes; move them to a child cgroup yourself, or give the container an absolute linux.cgroupsPath")
                }
            }
        }
        throw RuntimeError(.cgroup, "processes keep appearing in the delegated cgroup \(base) while dockbuild moves them to \(leaf); "
            + "its controllers can be given to containers only when it has no processes: retry, or start dockbuild in \(leaf)")
    }

    private func seedCpuset(_ dir: String) throws {
        // A new cpuset cgroup has empty cpus/mems; copy them down from the first ancestor that has them.
        var chain: [String] = []
        var d = dir
        while d.count > 1 {
            chain.append(d)
            let cpus = (Sys.readFile(d + "/cpuset.cpus") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            if !cpus.isEmpty { break }
            d = (d as NSString).deletingLastPathComponent
        }
        for c in chain.reversed() {
            let parent = (c as NSString).deletingLastPathComponent
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let mine = (Sys.readFile(c + "/" + f) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
                if mine.isEmpty, let p = Sys.readFile(parent + "/" + f)?.trimmingCharacters(in: .whitespacesAndNewlines), !p.isEmpty {
                    try Sys.writeFile(c + "/" + f, p)
                }
            }
        }
    }

    private func enableControllers(_ dir: String) {
        // Walk down from the mount point, enabling every available controller in each ancestor.
        let (v2, _) = Cgroup.hierarchies()
        guard let mp = v2?.mountPoint, dir.hasPrefix(mp) else { return }
        var cur = mp
        let rest = dir.dropFirst(mp.count).split(separator: "/")
        for comp in rest {
            let avail = (Sys.readFile(cur + "/cgroup.controllers") ?? "").split(separator: " ")
                .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
            for c in avail { try? Sys.writeFile(cur + "/cgroup.subtree_control", "+" + c) }
            cur += "/" + comp
        }
    }

    public func addProcess(_ pid: Int32) throws {
        for dir in Set(paths.values).sorted() {
            try Sys.writeFile(dir + "/cgroup.procs", "\(pid)")
        }
    }

    /// Pids in the container's cgroup.
    public func pids() -> [Int32] {
        let dir = path(for: "pids") ?? path(for: "memory") ?? path(for: "freezer") ?? paths.values.sorted().first ?? ""
        return (Sys.readFile(dir + "/cgroup.procs") ?? "").split(separator: "\n").compactMap { Int32($0) }
    }

    public func setFrozen(_ frozen: Bool) throws {
        if version == "v2", let d = paths[""] {
            try Sys.writeFile(d + "/cgroup.freeze", frozen ? "1" : "0")
            return
        }
        guard let d = path(for: "freezer") else { throw RuntimeError(.cgroup, "the freezer cgroup controller is not mounted; pause needs it") }
        try Sys.writeFile(d + "/freezer.state", frozen ? "FROZEN" : "THAWED")
        for _ in 0..<1000 {
            let s = (Sys.readFile(d + "/freezer.state") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            if s == (frozen ? "FROZEN" : "THAWED") { return }
            usleep(1000)
        }
        throw RuntimeError(.cgroup, "timed out waiting for \(d) to become \(frozen ? "FROZEN" : "THAWED")")
    }

    public var isFrozen: Bool {
        if version == "v2", let d = paths[""] {
            return (Sys.readFile(d + "/cgroup.freeze") ?? "").hasPrefix("1")
        }
        guard let d = path(for: "freezer") else { return false }
        return (Sys.readFile(d + "/freezer.state") ?? "").hasPrefix("FROZEN")
    }

    /// Why no new process may join this cgroup: it, or on v2 a parent, is frozen, so the
    /// container's init would freeze as it joins and `create` would wait for it forever.
    /// nil when it is thawed or does not exist yet.
    func frozenReason() -> String? {
        if version == "v2", let d = paths[""] {
            if (Sys.readFile(d + "/cgroup.freeze") ?? "").hasPrefix("1") { return "\(d)/cgroup.freeze is 1" }
            if (Sys.readFile(d + "/cgroup.events") ?? "").split(separator: "\n").contains("frozen 1") {
                return "\(d)/cgroup.events says frozen (a parent cgroup is frozen)"
            }
            return nil
        }
        guard let d = path(for: "freezer"), let s = Sys.readFile(d + "/freezer.state") else { return nil }
        let state = s.trimmingCharacters(in: .whitespacesAndNewlines)
        return state == "THAWED" || state.isEmpty ? nil : "\(d)/freezer.state is \(state)"
    }

    /// Throws when `frozenReason()` says the cgroup is frozen.
    func requireThawed(for id: String) throws {
        guard let why = frozenReason() else { return }
        throw RuntimeError(.cgroup, "cannot create container \"\(id)\" in a frozen cgroup: \(why); thaw it first (echo THAWED > freezer.state on cgroup v1, echo 0 > cgroup.freeze on v2) or give linux.cgroupsPath another cgroup")
    }

    /// Kills everything left in the cgroup and removes the directories.
    public func destroy() {
        for _ in 0..<200 {
            let pids = self.pids()
            if pids.isEmpty { break }
            if isFrozen { try? setFrozen(false) }
            for p in pids { kill(p, SIGKILL); _ = waitpid(p, nil, WNOHANG) }
            usleep(2000)
        }
        for dir in Set(paths.values).sorted(by: >) {
            var ok = false
            for _ in 0..<100 {
                if rmdir(dir) == 0 || errno == ENOENT { ok = true; break }
                if errno != EBUSY { break }
                usleep(2000)
            }
            _ = ok
        }
        // Intermediate directories of a nested cgroupsPath that we made, innermost first.
        for dir in (createdParents ?? []).sorted(by: { $0.count > $1.count }) { rmdir(dir) }
    }
}

extension Cgroup {
    /// `exec --cgroup` values, `[controller[,controller...]:]path`, as controller -> path
    /// ("" for every controller). A controller named twice with different paths is an error.
    public static func parseSubCgroups(_ values: [String]) throws -> [String: String] {
        var out: [String: String] = [:]
        for v in values {
            var ctrls: [String] = [""], path = v
            if let colon = v.firstIndex(of: ":") {
                ctrls = v[..<colon].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                path = String(v[v.index(after: colon)...])
                guard !ctrls.contains("") else {
                    throw RuntimeError(.usage, "invalid --cgroup \(v): give PATH or CONTROLLER[,CONTROLLER...]:PATH")
                }
            }
            guard !path.isEmpty else { throw RuntimeError(.usage, "invalid --cgroup \(v): the path is empty") }
            for c in ctrls {
                if let old = out[c], old != path {
                    throw RuntimeError(.usage, "duplicate --cgroup for \(c.isEmpty ? "all controllers" : c): \(old) and \(path)")
                }
                out[c] = path
            }
        }
        return out
    }

    /// This cgroup with `exec --cgroup`'s sub-cgroups in place of its directories: each path
    /// is taken below the container's cgroup (a leading `/` too), must not climb out of it and
    /// must exist already. On v2 only a path without a controller is meaningful.
    public func joining(sub: [String: String]) throws -> Cgroup {
        func below(_ dir: String, _ rel: String) throws -> String {
            let parts = rel.split(separator: "/")
            guard !parts.contains("..") else { throw RuntimeError(.usage, "\(rel) is not a sub cgroup path") }
            let d = Sys.lexicallyClean(dir + "/" + rel)
            guard Sys.isDir(d) else {
                throw RuntimeError(.cgroup, "sub-cgroup \(d) does not exist: exec --cgroup joins an existing cgroup; create it first")
            }
            return d
        }
        var c = self
        c.createdParents = nil
        if version == "v2" {
            guard let dir = paths[""] else { return c }
            if let bad = sub.keys.first(where: { !$0.isEmpty }) {
                throw RuntimeError(.usage, "--cgroup \(bad):\(sub[bad] ?? ""): cgroup v2 has one hierarchy; give the path without a controller")
            }
            if let rel = sub[""] { c.paths[""] = try below(dir, rel) }
            return c
        }
        for ctrl in sub.keys where !ctrl.isEmpty {
            guard paths.keys.contains(where: { $0.split(separator: ",").contains(Substring(ctrl)) }) else {
                throw RuntimeError(.usage, "unknown controller \(ctrl) in --cgroup (mounted: \(paths.keys.sorted().joined(separator: " ")))")
            }
        }
        for (key, dir) in paths {
            let named = key.split(separator: ",").compactMap { sub[String($0)] }
            guard let rel = named.first ?? sub[""] else { continue }
            if named.count > 1 && Set(named).count > 1 {
                throw RuntimeError(.usage, "--cgroup gives \(key), one hierarchy, two paths: \(named.joined(separator: " and "))")
            }
            c.paths[key] = try below(dir, rel)
        }
        return c
    }
}
