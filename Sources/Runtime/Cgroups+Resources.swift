import Foundation
import SystemSupport
#if canImport(Glibc)
import Glibc
#endif

extension Cgroup {
    /// Default device rules runc allows when the spec denies everything.
    static let defaultAllowedDevices: [RuntimeSpec.DeviceCgroup] = [
        .init(allow: true, type: "c", major: 1, minor: 3, access: "rwm"),   // null
        .init(allow: true, type: "c", major: 1, minor: 5, access: "rwm"),   // zero
        .init(allow: true, type: "c", major: 1, minor: 7, access: "rwm"),   // full
        .init(allow: true, type: "c", major: 5, minor: 0, access: "rwm"),   // tty
        .init(allow: true, type: "c", major: 1, minor: 8, access: "rwm"),   // random
        .init(allow: true, type: "c", major: 1, minor: 9, access: "rwm"),   // urandom
        .init(allow: true, type: "c", major: 5, minor: 1, access: "rwm"),   // console
        .init(allow: true, type: "c", major: 136, minor: nil, access: "rwm"), // pts
        .init(allow: true, type: "c", major: 5, minor: 2, access: "rwm"),   // ptmx
        .init(allow: true, type: "c", major: 10, minor: 200, access: "rwm"), // tun
        .init(allow: true, type: "c", major: nil, minor: nil, access: "m"),
        .init(allow: true, type: "b", major: nil, minor: nil, access: "m"),
    ]

    private func set(_ controller: String, _ file: String, _ value: String) throws {
        guard let dir = path(for: controller) else {
            throw RuntimeError(.cgroup, "cgroup controller \(controller) is not mounted; cannot set \(file)=\(value)")
        }
        // An ordinary user's delegated v2 subtree may lack a controller (systemd's default delegation
        // leaves some out): the engine said which limits are not applied, the others are.
        if version == "v2", StatePaths.isRootless, !Cgroup.controllers(at: dir).contains(controller) { return }
        do { try Sys.writeFile(dir + "/" + file, value) } catch let e as RuntimeError {
            throw RuntimeError(.cgroup, "cgroup \(controller): \(e.message)")
        }
    }

    private func has(_ controller: String, _ file: String) -> Bool {
        guard let dir = path(for: controller) else { return false }
        return Sys.exists(dir + "/" + file)
    }

    /// Checks `linux.resources.devices` before any of it is written: each type is a, b or c and
    /// each access a non-empty subset of "rwm" (the kernel's v1 files would refuse anything else
    /// with a bare EINVAL, and a BPF program has no meaning for it).
    public static func validateDeviceRules(_ rules: [RuntimeSpec.DeviceCgroup]) throws {
        for (i, d) in rules.enumerated() {
            let at = "linux.resources.devices[\(i)]"
            if let t = d.type, t != "a" && t != "b" && t != "c" {
                throw RuntimeError(.invalidSpec, "\(at): type \"\(t)\" is not a (all), b (block) or c (char)")
            }
            guard let access = d.access else { continue }
            guard !access.isEmpty else {
                throw RuntimeError(.invalidSpec, "\(at): access is empty; give a subset of \"rwm\" (r read, w write, m mknod), or leave it out for all three")
            }
            if let bad = access.first(where: { $0 != "r" && $0 != "w" && $0 != "m" }) {
                throw RuntimeError(.invalidSpec, "\(at): access \"\(access)\" has \"\(bad)\"; it must be a subset of \"rwm\" (r read, w write, m mknod)")
            }
        }
    }

    /// Writes the CFS period and quota (v1) in an order that is valid under a parent with a
    /// limit: the kernel refuses any moment at which quota/period exceeds the parent's, so a
    /// shorter period goes after the quota and a longer one before it. A new cgroup (`initial`)
    /// has no quota yet, so the period can go first without reading the current one.
    private func setCFS(period: UInt64?, quota: Int64?, initial: Bool) throws {
        let p = period.flatMap { $0 > 0 ? $0 : nil }, q = quota.flatMap { $0 != 0 ? $0 : nil }
        let writePeriod = { if let p { try self.set("cpu", "cpu.cfs_period_us", "\(p)") } }
        let writeQuota = { if let q { try self.set("cpu", "cpu.cfs_quota_us", "\(q)") } }
        guard let p, q != nil, !initial else { try writePeriod(); try writeQuota(); return }
        let current = path(for: "cpu").flatMap { Sys.readFile($0 + "/cpu.cfs_period_us") }
            .flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        let quotaFirst = current.map { p < $0 } ?? false
        do {
            if quotaFirst { try writeQuota(); try writePeriod() } else { try writePeriod(); try writeQuota() }
        } catch {
            // The other order, for a parent that changed under us (or a period we could not read).
            if quotaFirst { try writePeriod(); try writeQuota() } else { try writeQuota(); try writePeriod() }
        }
    }

    /// Applies `linux.resources` (also used by `update` on a running container).
    public func apply(_ r: RuntimeSpec.Resources, initial: Bool = true) throws {
        if let d = r.devices { try Cgroup.validateDeviceRules(d) }
        // An ordinary user (a delegated subtree) cannot set device rules: v1's devices.deny and
        // v2's BPF program need privilege over the host. As runc rootless, none are set: in the
        // user namespace the container can reach no device the user could not open on the host.
        let deviceRules = !StatePaths.isRootless
        if version == "v2" {
            try applyV2(r)
            if deviceRules, initial || r.devices != nil { try applyDevicesV2(r.devices ?? []) }
            return
        }
        if let m = r.memory {
            if let res = m.reservation { try set("memory", "memory.soft_limit_in_bytes", "\(res)") }
            let swapFile = has("memory", "memory.memsw.limit_in_bytes")
            if let limit = m.limit {
                let swap = m.swap
                if let swap, swapFile {
                    // memsw must stay >= limit: order the two writes so each is valid.
                    if (try? set("memory", "memory.limit_in_bytes", "\(limit)")) == nil {
                        try set("memory", "memory.memsw.limit_in_bytes", "\(swap)")
                        try set("memory", "memory.limit_in_bytes", "\(limit)")
                    } else {
                        try set("memory", "memory.memsw.limit_in_bytes", "\(swap)")
                    }
                } else {
                    try set("memory", "memory.limit_in_bytes", "\(limit)")
                }
            } else if let swap = m.swap, swapFile {
                try set("memory", "memory.memsw.limit_in_bytes", "\(swap)")
            }
            if let s = m.swappiness, s <= 100 { try? set("memory", "memory.swappiness", "\(s)") }
            if m.disableOOMKiller == true { try set("memory", "memory.oom_control", "1") }
            if let k = m.kernel, has("memory", "memory.kmem.limit_in_bytes") { try? set("memory", "memory.kmem.limit_in_bytes", "\(k)") }
            if let k = m.kernelTCP, has("memory", "memory.kmem.tcp.limit_in_bytes") { try? set("memory", "memory.kmem.tcp.limit_in_bytes", "\(k)") }
        }
        if let c = r.cpu {
            if let s = c.shares, s > 0 { try set("cpu", "cpu.shares", "\(s)") }
            if c.period != nil || c.quota != nil { try setCFS(period: c.period, quota: c.quota, initial: initial) }
            if let p = c.realtimePeriod, p > 0 { try set("cpu", "cpu.rt_period_us", "\(p)") }
            if let q = c.realtimeRuntime, q != 0 { try set("cpu", "cpu.rt_runtime_us", "\(q)") }
            if let cpus = c.cpus, !cpus.isEmpty { try set("cpuset", "cpuset.cpus", cpus) }
            if let mems = c.mems, !mems.isEmpty { try set("cpuset", "cpuset.mems", mems) }
        }
        if let p = r.pids { try set("pids", "pids.max", p.limit > 0 ? "\(p.limit)" : "max") }
        if let b = r.blockIO {
            let weightFile = has("blkio", "blkio.weight") ? "blkio.weight" : "blkio.bfq.weight"
            if let w = b.weight, w > 0 { try set("blkio", weightFile, "\(w)") }
            if let w = b.leafWeight, w > 0, has("blkio", "blkio.leaf_weight") { try set("blkio", "blkio.leaf_weight", "\(w)") }
            for d in b.weightDevice ?? [] {
                if let w = d.weight { try set("blkio", has("blkio", "blkio.weight_device") ? "blkio.weight_device" : "blkio.bfq.weight_device", "\(d.major):\(d.minor) \(w)") }
                if let w = d.leafWeight, has("blkio", "blkio.leaf_weight_device") { try set("blkio", "blkio.leaf_weight_device", "\(d.major):\(d.minor) \(w)") }
            }
            for (list, file) in [(b.throttleReadBpsDevice, "blkio.throttle.read_bps_device"),
                                 (b.throttleWriteBpsDevice, "blkio.throttle.write_bps_device"),
                                 (b.throttleReadIOPSDevice, "blkio.throttle.read_iops_device"),
                                 (b.throttleWriteIOPSDevice, "blkio.throttle.write_iops_device")] {
                for d in list ?? [] { try set("blkio", file, "\(d.major):\(d.minor) \(d.rate)") }
            }
        }
        for h in r.hugepageLimits ?? [] {
            try set("hugetlb", "hugetlb.\(h.pageSize).limit_in_bytes", "\(h.limit)")
        }
        if let n = r.network {
            if let id = n.classID { try set("net_cls", "net_cls.classid", "\(id)") }
            for p in n.priorities ?? [] { try set("net_prio", "net_prio.ifpriomap", "\(p.name) \(p.priority)") }
        }
        if deviceRules, initial || r.devices != nil, path(for: "devices") != nil {
            try applyDevicesV1(r.devices ?? [])
        }
    }

    private func applyDevicesV1(_ rules: [RuntimeSpec.DeviceCgroup]) throws {
        func rule(_ d: RuntimeSpec.DeviceCgroup) -> String {
            let t = d.type ?? "a"
            let maj = d.major.map(String.init) ?? "*", min = d.minor.map(String.init) ?? "*"
            let acc = d.access ?? "rwm"
            return t == "a" && d.major == nil && d.minor == nil ? "a" : "\(t) \(maj):\(min) \(acc)"
        }
        // Deny everything, then replay the rules in order.
        // Like runc: the spec's rules first, then the devices every container needs.
        for d in Cgroup.effectiveDeviceRules(rules) {
            try set("devices", d.allow ? "devices.allow" : "devices.deny", rule(d))
        }
    }

    private func applyV2(_ r: RuntimeSpec.Resources) throws {
        if let m = r.memory {
            if let l = m.limit { try set("memory", "memory.max", l < 0 ? "max" : "\(l)") }
            if let res = m.reservation { try set("memory", "memory.low", res < 0 ? "max" : "\(res)") }
            if let s = m.swap, has("memory", "memory.swap.max") {
                let v: String
                if s < 0 { v = "max" } else { v = "\(max(0, s - (m.limit ?? 0)))" }
                try set("memory", "memory.swap.max", v)
            }
        }
        if let c = r.cpu {
            if let s = c.shares, s > 0 {
                let w = 1 + ((max(2, min(262_144, s)) - 2) * 9999) / 262_142
                try set("cpu", "cpu.weight", "\(w)")
            }
            if c.quota != nil || c.period != nil {
                let q = c.quota.map { $0 > 0 ? "\($0)" : "max" } ?? "max"
                try set("cpu", "cpu.max", "\(q) \(c.period ?? 100_000)")
            }
            if let cpus = c.cpus, !cpus.isEmpty { try set("cpuset", "cpuset.cpus", cpus) }
            if let mems = c.mems, !mems.isEmpty { try set("cpuset", "cpuset.mems", mems) }
        }
        if let p = r.pids { try set("pids", "pids.max", p.limit > 0 ? "\(p.limit)" : "max") }
        if let b = r.blockIO {
            if let w = b.weight, w > 0 {
                let v = 1 + (UInt64(max(10, min(1000, w))) - 10) * 9999 / 990
                if has("io", "io.weight") { try set("io", "io.weight", "default \(v)") }
                else if has("io", "io.bfq.weight") { try set("io", "io.bfq.weight", "\(w)") }
            }
            for (list, key) in [(b.throttleReadBpsDevice, "rbps"), (b.throttleWriteBpsDevice, "wbps"),
                                (b.throttleReadIOPSDevice, "riops"), (b.throttleWriteIOPSDevice, "wiops")] {
                for d in list ?? [] { try set("io", "io.max", "\(d.major):\(d.minor) \(key)=\(d.rate)") }
            }
        }
        for h in r.hugepageLimits ?? [] { try set("hugetlb", "hugetlb.\(h.pageSize).max", "\(h.limit)") }
        for (k, v) in (r.unified ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard !k.contains("/") else { throw RuntimeError(.invalidSpec, "linux.resources.unified key \"\(k)\" must be a file name") }
            try set("", k, v)
        }
    }

    /// `events --stats` figures, read from the controllers' files.
    public func stats() -> [String: [String: UInt64]] {
        func num(_ c: String, _ f: String) -> UInt64? {
            guard let d = path(for: c), let s = Sys.readFile(d + "/" + f) else { return nil }
            let t = s.trimmingCharacters(in: .whitespacesAndNewlines)
            return t == "max" ? UInt64.max : UInt64(t)
        }
        func kv(_ c: String, _ f: String) -> [String: UInt64] {
            guard let d = path(for: c), let s = Sys.readFile(d + "/" + f) else { return [:] }
            var out: [String: UInt64] = [:]
            for line in s.split(separator: "\n") {
                let p = line.split(separator: " ")
                if p.count == 2, let v = UInt64(p[1]) { out[String(p[0])] = v }
            }
            return out
        }
        var out: [String: [String: UInt64]] = [:]
        if version == "v2" {
            out["memory"] = ["usage": num("memory", "memory.current") ?? 0, "limit": num("memory", "memory.max") ?? 0]
                .merging(kv("memory", "memory.events").filter { $0.key == "oom_kill" || $0.key == "max" }) { a, _ in a }
            let cpu = kv("cpu", "cpu.stat")
            out["cpu"] = ["total": (cpu["usage_usec"] ?? 0) * 1000, "user": (cpu["user_usec"] ?? 0) * 1000,
                          "kernel": (cpu["system_usec"] ?? 0) * 1000, "throttled_periods": cpu["nr_throttled"] ?? 0]
            out["pids"] = ["current": num("pids", "pids.current") ?? 0, "limit": num("pids", "pids.max") ?? 0]
        } else {
            out["memory"] = ["usage": num("memory", "memory.usage_in_bytes") ?? 0,
                             "max": num("memory", "memory.max_usage_in_bytes") ?? 0,
                             "limit": num("memory", "memory.limit_in_bytes") ?? 0,
                             "failcnt": num("memory", "memory.failcnt") ?? 0]
            let acct = kv("cpuacct", "cpuacct.stat")
            let tick: UInt64 = 10_000_000
            out["cpu"] = ["total": num("cpuacct", "cpuacct.usage") ?? 0, "user": (acct["user"] ?? 0) * tick,
                          "kernel": (acct["system"] ?? 0) * tick,
                          "throttled_periods": kv("cpu", "cpu.stat")["nr_throttled"] ?? 0]
            out["pids"] = ["current": num("pids", "pids.current") ?? 0, "limit": num("pids", "pids.max") ?? 0]
        }
        return out
    }
}
