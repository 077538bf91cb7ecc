import CRuntime
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension Runtime {
    /// Devices every container gets (runtime-spec config-linux.md#default-devices).
    static let defaultDevices: [RuntimeSpec.Device] = [
        .init(type: "c", path: "/dev/null", major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0),
        .init(type: "c", path: "/dev/zero", major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0),
        .init(type: "c", path: "/dev/full", major: 1, minor: 7, fileMode: 0o666, uid: 0, gid: 0),
        .init(type: "c", path: "/dev/random", major: 1, minor: 8, fileMode: 0o666, uid: 0, gid: 0),
        .init(type: "c", path: "/dev/urandom", major: 1, minor: 9, fileMode: 0o666, uid: 0, gid: 0),
        .init(type: "c", path: "/dev/tty", major: 5, minor: 0, fileMode: 0o666, uid: 0, gid: 0),
    ]

    /// Namespace flags to create and paths to join, checked against the spec's rules.
    static func namespaces(_ spec: RuntimeSpec) throws -> (flags: UInt32, joins: [(UInt32, String)]) {
        var flags: UInt32 = 0
        var joins: [(UInt32, String)] = []
        var seen = Set<String>()
        for ns in spec.linux?.namespaces ?? [] {
            guard let (flag, _) = Kernel.namespaces[ns.type] else {
                throw RuntimeError(.invalidSpec, "unknown namespace type \"\(ns.type)\" in linux.namespaces")
            }
            guard seen.insert(ns.type).inserted else {
                throw RuntimeError(.invalidSpec, "namespace type \"\(ns.type)\" appears twice in linux.namespaces")
            }
            if let path = ns.path, !path.isEmpty {
                guard Sys.exists(path) else { throw RuntimeError(.invalidSpec, "namespace path \(path) for \(ns.type) does not exist") }
                joins.append((flag, path))
            } else {
                flags |= flag
            }
        }
        return (flags, joins)
    }

    /// The plan for a new container (mode 1).
    static func containerPlan(spec: RuntimeSpec, rootfs: String, bundle: String, cgroup: Cgroup?,
                              fifo: String, options: CreateOptions) throws -> InitPlan {
        var p = InitPlan()
        p.record(CR_MODE, InitPlan.u32(1))
        let (flags, joins) = try namespaces(spec)
        let hasNS = { (t: String) in spec.linux?.namespaces?.contains { $0.type == t } ?? false }
        p.record(CR_CLONE_FLAGS, InitPlan.u32(flags))
        for (f, path) in joins { p.record(CR_NS_JOIN, InitPlan.u32(f) + InitPlan.str(path)) }
        let newUser = flags & 0x1000_0000 != 0
        if newUser {
            guard !(spec.linux?.uidMappings ?? []).isEmpty, !(spec.linux?.gidMappings ?? []).isEmpty else {
                throw RuntimeError(.invalidSpec, "a new user namespace needs linux.uidMappings and linux.gidMappings")
            }
            p.flag(CR_USERNS_MAPS)
        }
        if (spec.hostname ?? "").isEmpty == false || (spec.domainname ?? "").isEmpty == false {
            guard hasNS("uts") else {
                throw RuntimeError(.invalidSpec, "hostname/domainname need a uts namespace in linux.namespaces")
            }
        }
        p.string(CR_ROOTFS, rootfs)
        let propTable: [String: UInt32] = [
            "private": MountOptions.MS_PRIVATE, "rprivate": MountOptions.MS_PRIVATE | MountOptions.MS_REC,
            "slave": MountOptions.MS_SLAVE, "rslave": MountOptions.MS_SLAVE | MountOptions.MS_REC,
            "shared": MountOptions.MS_SHARED, "rshared": MountOptions.MS_SHARED | MountOptions.MS_REC,
            "unbindable": MountOptions.MS_UNBINDABLE, "runbindable": MountOptions.MS_UNBINDABLE | MountOptions.MS_REC,
        ]
        if let rp = spec.linux?.rootfsPropagation, !rp.isEmpty {
            guard let f = propTable[rp] else {
                throw RuntimeError(.invalidSpec, "linux.rootfsPropagation \"\(rp)\" is not one of \(propTable.keys.sorted().joined(separator: ", "))")
            }
            p.record(CR_ROOT_PROPAGATION, InitPlan.u32(f))
            // The host's / becomes this (recursively) before setup; unbindable only after pivot_root.
            let initial: UInt32 = f & MountOptions.MS_SHARED != 0 ? MountOptions.MS_SHARED
                : f & MountOptions.MS_UNBINDABLE != 0 ? MountOptions.MS_SLAVE : f & ~MountOptions.MS_REC
            p.record(CR_ROOT_SLAVE, InitPlan.u32(initial | MountOptions.MS_REC))
        }
        if spec.root?.readonly == true { p.flag(CR_READONLY_ROOT) }
        if options.noPivot { p.flag(CR_NO_PIVOT) }

        for m in spec.mounts ?? [] {
            guard m.destination.hasPrefix("/") else {
                throw RuntimeError(.invalidSpec, "mount destination \"\(m.destination)\" must be an absolute path")
            }
            if m.type == "cgroup" || m.type == "cgroup2" {
                try cgroupMounts(m, cgroup: cgroup, newCgroupNS: flags & 0x0200_0000 != 0, into: &p)
                continue
            }
            var o = MountOptions.parse(m.options ?? [])
            let isBind = o.bind || m.type == "bind"
            if isBind && !o.data.isEmpty {
                // mount(2) ignores filesystem data on a bind mount. A bare word there is no
                // filesystem setting but a flag the runtime does not know (a typo such as
                // "r-ro" would leave the mount writable): refuse it. "key=value" words
                // (mode=755, size=1k) are filesystem settings the kernel would ignore, as
                // runc and crun let it: drop them, so bundles written for those work.
                let unknown = o.data.filter { !$0.contains("=") }
                if !unknown.isEmpty {
                    let words = unknown.map { "\"\($0)\"" }.joined(separator: ", ")
                    throw RuntimeError(.invalidSpec, "mount \(m.destination): unknown option \(words) for a bind mount; use mount(8) flags (ro, nosuid, nodev, noexec, ...), propagation (rprivate, ...) or recursive options (rro, rnosuid, rnodev, rnoexec, ...)")
                }
                o.data = []
            }
            if flags & 0x1000_0000 == 0, o.data.contains(where: { $0.hasPrefix("uid=") || $0.hasPrefix("gid=") }) {
                // In a user namespace that maps few ids (rootless with no subordinate ids) the
                // kernel refuses a devpts or tmpfs owner it cannot map: drop it, as runc does.
                o.data.removeAll { d in
                    let kv = d.split(separator: "=", maxSplits: 1)
                    guard kv.count == 2, kv[0] == "uid" || kv[0] == "gid", let id = UInt32(kv[1]) else { return false }
                    return !IDMap.current(kv[0] == "uid" ? "uid_map" : "gid_map").contains(id)
                }
            }
            var src = m.source ?? ""
            if isBind && !src.hasPrefix("/") { src = Sys.lexicallyClean(bundle + "/" + src) }
            var fl = o.flags
            if isBind { fl |= MountOptions.MS_BIND }
            if Sys.lexicallyClean(m.destination) == "/dev"
                && (fl & MountOptions.MS_RDONLY != 0 || o.attrSet & MountOptions.ATTR_RDONLY != 0) {
                // Read-only once the device nodes, links and the mounts below it exist (runc's order).
                p.record(CR_DEV_READONLY, InitPlan.u32(o.attrSet & MountOptions.ATTR_RDONLY != 0 ? 1 : 0))
                fl &= ~MountOptions.MS_RDONLY
                o.attrSet &= ~MountOptions.ATTR_RDONLY
            }
            p.record(CR_MOUNT, InitPlan.u32(fl) + InitPlan.u32(o.propagation) + InitPlan.u32(isBind ? 1 : 0)
                     + InitPlan.str(src) + InitPlan.str(m.destination) + InitPlan.str(isBind ? "" : (m.type ?? ""))
                     + InitPlan.str(o.data.joined(separator: ",")))
            if o.attrSet != 0 || o.attrClear != 0 {
                p.record(CR_MOUNT_ATTR, InitPlan.u64(o.attrSet) + InitPlan.u64(o.attrClear))
            }
        }

        var devices = spec.linux?.devices ?? []
        for d in defaultDevices where !devices.contains(where: { $0.path == d.path }) { devices.append(d) }
        for d in devices {
            guard let t = d.type.first, "cbup".contains(t) else {
                throw RuntimeError(.invalidSpec, "device \(d.path) has type \"\(d.type)\"; use c, b, u or p")
            }
            let type = t == "u" ? Character("c") : t
            let mode = (d.fileMode ?? 0o666) & 0o7777
            p.record(CR_DEVICE, InitPlan.u32(UInt32(type.asciiValue ?? 99)) + InitPlan.u32(UInt32(d.major ?? 0))
                     + InitPlan.u32(UInt32(d.minor ?? 0)) + InitPlan.u32(mode) + InitPlan.u32(d.uid ?? 0)
                     + InitPlan.u32(d.gid ?? 0) + InitPlan.str(d.path))
        }
        if newUser { p.flag(CR_MOUNT_DEV_BIND) }
        p.flag(CR_DEV_SYMLINKS)
        for m in spec.linux?.maskedPaths ?? [] { p.string(CR_MASKED, m) }
        for m in spec.linux?.readonlyPaths ?? [] { p.string(CR_READONLY_PATH, m) }
        if let h = spec.hostname, !h.isEmpty { p.string(CR_HOSTNAME, h) }
        if let h = spec.domainname, !h.isEmpty { p.string(CR_DOMAINNAME, h) }
        for (k, v) in (spec.linux?.sysctl ?? [:]).sorted(by: { $0.key < $1.key }) {
            p.record(CR_SYSCTL, InitPlan.str(k) + InitPlan.str(v))
        }
        let hooks = spec.hooks
        if !(hooks?.prestart ?? []).isEmpty || !(hooks?.createRuntime ?? []).isEmpty || !(hooks?.createContainer ?? []).isEmpty {
            p.flag(CR_SYNC_HOOKS)
        }
        for h in hooks?.startContainer ?? [] {
            p.record(CR_HOOK, InitPlan.u32(UInt32(max(0, h.timeout ?? 0))) + InitPlan.str(h.path))
            for a in h.args ?? [] { p.string(CR_HOOK_ARG, a) }
            for e in h.env ?? [] { p.string(CR_HOOK_ENV, e) }
        }
        try linuxExtrasPlan(spec.linux, newTimeNS: flags & 0x80 != 0, into: &p)
        p.string(CR_FIFO, fifo)
        p.flag(CR_SETSID)
        try processPlan(spec.process!, seccomp: spec.linux?.seccomp, into: &p)
        return p
    }

    /// cgroup mounts: on v1 a tmpfs with each hierarchy's container directory
    /// bound below it; on v2 cgroup2 itself (new cgroup ns) or a bind of the directory.
    static func cgroupMounts(_ m: RuntimeSpec.Mount, cgroup: Cgroup?, newCgroupNS: Bool, into p: inout InitPlan) throws {
        let o = MountOptions.parse(m.options ?? [])
        let flags = o.flags & (MountOptions.MS_RDONLY | MountOptions.MS_NOSUID | MountOptions.MS_NODEV | MountOptions.MS_NOEXEC | MountOptions.MS_RELATIME)
        func mount(_ src: String, _ dst: String, _ type: String, _ fl: UInt32, bind: Bool, data: String = "") {
            p.record(CR_MOUNT, InitPlan.u32(fl) + InitPlan.u32(0) + InitPlan.u32(bind ? 1 : 0)
                     + InitPlan.str(src) + InitPlan.str(dst) + InitPlan.str(type) + InitPlan.str(data))
        }
        guard let cgroup else { return }
        if cgroup.version == "v2" {
            if newCgroupNS { mount("cgroup2", m.destination, "cgroup2", flags, bind: false) }
            else if let d = cgroup.paths[""] { mount(d, m.destination, "", flags | MountOptions.MS_BIND | MountOptions.MS_REC, bind: true) }
            return
        }
        mount("tmpfs", m.destination, "tmpfs", MountOptions.MS_NOSUID | MountOptions.MS_NODEV | MountOptions.MS_NOEXEC, bind: false, data: "mode=755")
        for (key, dir) in cgroup.paths.sorted(by: { $0.key < $1.key }) {
            let name = key.hasPrefix("name=") ? String(key.dropFirst(5)) : key
            mount(dir, m.destination + "/" + name, "", flags | MountOptions.MS_BIND | MountOptions.MS_REC, bind: true)
        }
    }

    /// Process records shared by create and exec.
    static func processPlan(_ proc: RuntimeSpec.Process, seccomp: RuntimeSpec.Seccomp?, into p: inout InitPlan) throws {
        guard let args = proc.args, !args.isEmpty else { throw RuntimeError(.invalidSpec, "process.args must not be empty") }
        guard proc.cwd.hasPrefix("/") else { throw RuntimeError(.invalidSpec, "process.cwd \"\(proc.cwd)\" must be an absolute path") }
        for a in args { p.string(CR_ARG, a) }
        for e in proc.env ?? [] { p.string(CR_ENV, e) }
        p.string(CR_CWD, proc.cwd)
        p.record(CR_UID, InitPlan.u32(proc.user.uid))
        p.record(CR_GID, InitPlan.u32(proc.user.gid))
        var groups: [UInt8] = []
        for g in proc.user.additionalGids ?? [] { groups += InitPlan.u32(g) }
        p.record(CR_GROUPS, groups)
        if let u = proc.user.umask { p.record(CR_UMASK, InitPlan.u32(u)) }
        if let c = proc.capabilities {
            let last = Kernel.lastCap()
            var b: [UInt8] = []
            for set in [c.bounding, c.effective, c.inheritable, c.permitted, c.ambient] {
                b += InitPlan.u64(try Kernel.capMask(set, lastCap: last))
            }
            p.record(CR_CAPS, b)
        }
        for r in proc.rlimits ?? [] {
            guard let n = Kernel.rlimits[r.type] else {
                throw RuntimeError(.invalidSpec, "unknown rlimit type \"\(r.type)\" in process.rlimits; use names like RLIMIT_NOFILE")
            }
            guard r.soft <= r.hard else {
                throw RuntimeError(.invalidSpec, "rlimit \(r.type): soft limit \(r.soft) is above hard limit \(r.hard)")
            }
            p.record(CR_RLIMIT, InitPlan.u32(n) + InitPlan.u64(r.soft) + InitPlan.u64(r.hard))
        }
        if proc.noNewPrivileges == true { p.flag(CR_NO_NEW_PRIVS) }
        if let o = proc.oomScoreAdj {
            guard (-1000...1000).contains(o) else { throw RuntimeError(.invalidSpec, "process.oomScoreAdj \(o) is outside -1000...1000") }
            p.record(CR_OOM_SCORE_ADJ, InitPlan.u32(UInt32(bitPattern: Int32(o))))
        }
        if proc.terminal == true { p.flag(CR_TERMINAL) }
        if let s = seccomp {
            let notify = try SeccompCompiler.usesNotify(s)
            p.record(CR_SECCOMP, try SeccompCompiler.compile(s))
            if notify { p.flag(CR_SECCOMP_NOTIFY) }
        }
    }
}
