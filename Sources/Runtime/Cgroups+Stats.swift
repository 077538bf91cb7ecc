import Foundation

/// `events --stats` in runc's layout (libcontainer's `types.Stats`, runc 1.1): the same keys,
/// in the same order, with the same fields left out when they are zero (Go's `omitempty`).
/// cgroup v2 files are mapped onto those v1-shaped fields as runc maps them.
extension Cgroup {
    private func text(_ controller: String, _ file: String) -> String? {
        guard let d = path(for: controller) else { return nil }
        return Sys.readFile(d + "/" + file)
    }

    private func number(_ controller: String, _ file: String) -> UInt64? {
        guard let t = text(controller, file)?.trimmingCharacters(in: .whitespacesAndNewlines) else { return nil }
        return t == "max" ? UInt64.max : UInt64(t)
    }

    /// "key value" lines (memory.stat, cpu.stat, memory.events, ...).
    private func pairs(_ controller: String, _ file: String) -> [(String, UInt64)] {
        (text(controller, file) ?? "").split(separator: "\n").compactMap { line in
            let p = line.split(separator: " ")
            guard p.count == 2, let v = UInt64(p[1]) else { return nil }
            return (String(p[0]), v)
        }
    }

    private func numbers(_ controller: String, _ file: String) -> [UInt64] {
        (text(controller, file) ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { UInt64($0) }
    }

    /// "0-3,7" -> [0, 1, 2, 3, 7].
    static func cpuList(_ s: String) -> [UInt64] {
        s.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").flatMap { part -> [UInt64] in
            let r = part.split(separator: "-").compactMap { UInt64($0) }
            if r.count == 2, r[0] <= r[1] { return Array(r[0]...r[1]) }
            return r.count == 1 ? r : []
        }
    }

    /// How many processes of this cgroup the OOM killer has killed: `oom_kill` of memory.events
    /// (v2) or of memory.oom_control (v1, kernel 4.13 and later); nil when the kernel keeps no count.
    public func oomKillCount() -> UInt64? {
        let file = version == "v2" ? "memory.events" : "memory.oom_control"
        return pairs("memory", file).first { $0.0 == "oom_kill" }?.1
    }

    /// runc's `data` object of a stats event.
    public func runcStats() -> OrderedJSON {
        var out: [(String, OrderedJSON)] = [("cpu", cpuStats())]
        if version == "v1" || path(for: "cpuset").map({ Sys.exists($0 + "/cpuset.cpus.effective") }) == true {
            out.append(("cpuset", cpusetStats()))
        }
        out += [("memory", memoryStats()), ("pids", pidsStats()), ("blkio", blkioStats()),
                ("hugetlb", hugetlbStats()), ("intel_rdt", .object([])), ("network_interfaces", .null)]
        return .object(out)
    }

    /// A field Go leaves out when it is zero.
    private static func omitZero(_ key: String, _ v: UInt64?, into f: inout [(String, OrderedJSON)]) {
        if let v, v != 0 { f.append((key, .uint(v))) }
    }

    private static func omitEmpty(_ key: String, _ v: [UInt64], into f: inout [(String, OrderedJSON)]) {
        if !v.isEmpty { f.append((key, .array(v.map { .uint($0) }))) }
    }

    private func cpuStats() -> OrderedJSON {
        var usage: [(String, OrderedJSON)] = [], throttling: [(String, OrderedJSON)] = []
        if version == "v2" {
            let st = Dictionary(pairs("cpu", "cpu.stat"), uniquingKeysWith: { a, _ in a })
            Cgroup.omitZero("total", st["usage_usec"].map { $0 * 1000 }, into: &usage)
            usage.append(("kernel", .uint((st["system_usec"] ?? 0) * 1000)))
            usage.append(("user", .uint((st["user_usec"] ?? 0) * 1000)))
            Cgroup.omitZero("periods", st["nr_periods"], into: &throttling)
            Cgroup.omitZero("throttledPeriods", st["nr_throttled"], into: &throttling)
            Cgroup.omitZero("throttledTime", st["throttled_usec"].map { $0 * 1000 }, into: &throttling)
        } else {
            Cgroup.omitZero("total", number("cpuacct", "cpuacct.usage"), into: &usage)
            Cgroup.omitEmpty("percpu", numbers("cpuacct", "cpuacct.usage_percpu"), into: &usage)
            Cgroup.omitEmpty("percpu_kernel", numbers("cpuacct", "cpuacct.usage_percpu_sys"), into: &usage)
            Cgroup.omitEmpty("percpu_user", numbers("cpuacct", "cpuacct.usage_percpu_user"), into: &usage)
            // cpuacct.stat counts USER_HZ (100 a second) ticks.
            let acct = Dictionary(pairs("cpuacct", "cpuacct.stat"), uniquingKeysWith: { a, _ in a })
            usage.append(("kernel", .uint((acct["system"] ?? 0) * 10_000_000)))
            usage.append(("user", .uint((acct["user"] ?? 0) * 10_000_000)))
            let st = Dictionary(pairs("cpu", "cpu.stat"), uniquingKeysWith: { a, _ in a })
            Cgroup.omitZero("periods", st["nr_periods"], into: &throttling)
            Cgroup.omitZero("throttledPeriods", st["nr_throttled"], into: &throttling)
            Cgroup.omitZero("throttledTime", st["throttled_time"], into: &throttling)
        }
        return .object([("usage", .object(usage)), ("throttling", .object(throttling))])
    }

    private func cpusetStats() -> OrderedJSON {
        if version == "v2" {
            return .object([("cpus", .array(Cgroup.cpuList(text("cpuset", "cpuset.cpus.effective") ?? "").map { .uint($0) })),
                            ("mems", .array(Cgroup.cpuList(text("cpuset", "cpuset.mems.effective") ?? "").map { .uint($0) }))])
        }
        func flag(_ f: String) -> OrderedJSON { .uint(number("cpuset", "cpuset." + f) ?? 0) }
        let relax = (text("cpuset", "cpuset.sched_relax_domain_level") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        return .object([
            ("cpus", .array(Cgroup.cpuList(text("cpuset", "cpuset.cpus") ?? "").map { .uint($0) })),
            ("cpu_exclusive", flag("cpu_exclusive")),
            ("mems", .array(Cgroup.cpuList(text("cpuset", "cpuset.mems") ?? "").map { .uint($0) })),
            ("mem_hardwall", flag("mem_hardwall")), ("mem_exclusive", flag("mem_exclusive")),
            ("memory_migrate", flag("memory_migrate")), ("memory_spread_page", flag("memory_spread_page")),
            ("memory_spread_slab", flag("memory_spread_slab")), ("memory_pressure", flag("memory_pressure")),
            ("sched_load_balance", flag("sched_load_balance")),
            ("sched_relax_domain_level", .int(Int64(relax) ?? 0)),
        ])
    }

    /// runc's MemoryData: limit, usage and max (left out when 0), failcnt.
    private static func memoryEntry(limit: UInt64, usage: UInt64?, max: UInt64?, failcnt: UInt64) -> OrderedJSON {
        var f: [(String, OrderedJSON)] = [("limit", .uint(limit))]
        omitZero("usage", usage, into: &f)
        omitZero("max", max, into: &f)
        f.append(("failcnt", .uint(failcnt)))
        return .object(f)
    }

    private func memoryStats() -> OrderedJSON {
        let raw = pairs("memory", "memory.stat")
        let rawDict = Dictionary(raw, uniquingKeysWith: { a, _ in a })
        var f: [(String, OrderedJSON)] = []
        if version == "v2" {
            Cgroup.omitZero("cache", rawDict["file"], into: &f)
            let usage = number("memory", "memory.current") ?? 0, limit = number("memory", "memory.max") ?? UInt64.max
            let failcnt = pairs("memory", "memory.events").first { $0.0 == "max" }?.1 ?? 0
            f.append(("usage", Cgroup.memoryEntry(limit: limit, usage: usage, max: number("memory", "memory.peak"), failcnt: failcnt)))
            // runc reports v2 swap as memory+swap, the v1 meaning.
            let swapUsage = number("memory", "memory.swap.current") ?? 0, swapLimit = number("memory", "memory.swap.max") ?? 0
            let (sum, overflow) = swapLimit.addingReportingOverflow(limit)
            f.append(("swap", Cgroup.memoryEntry(limit: overflow ? UInt64.max : sum, usage: usage + swapUsage, max: nil, failcnt: 0)))
        } else {
            Cgroup.omitZero("cache", rawDict["cache"], into: &f)
            for (key, prefix) in [("usage", "memory."), ("swap", "memory.memsw."), ("kernel", "memory.kmem."), ("kernelTCP", "memory.kmem.tcp.")] {
                f.append((key, Cgroup.memoryEntry(limit: number("memory", prefix + "limit_in_bytes") ?? 0,
                                                  usage: number("memory", prefix + "usage_in_bytes"),
                                                  max: number("memory", prefix + "max_usage_in_bytes"),
                                                  failcnt: number("memory", prefix + "failcnt") ?? 0)))
            }
        }
        if !raw.isEmpty { f.append(("raw", .object(raw.sorted { $0.0 < $1.0 }.map { ($0.0, .uint($0.1)) }))) }
        return .object(f)
    }

    private func pidsStats() -> OrderedJSON {
        var f: [(String, OrderedJSON)] = []
        Cgroup.omitZero("current", number("pids", "pids.current"), into: &f)
        let limit = number("pids", "pids.max")
        Cgroup.omitZero("limit", limit == UInt64.max ? 0 : limit, into: &f)
        return .object(f)
    }

    /// blkio's recursive service counters: v1's throttle files ("MAJ:MIN Op value"),
    /// v2's io.stat ("MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=..") as runc maps it.
    private func blkioStats() -> OrderedJSON {
        func entry(_ dev: Substring, _ op: String, _ v: UInt64) -> OrderedJSON? {
            let mm = dev.split(separator: ":").compactMap { UInt64($0) }
            guard mm.count == 2 else { return nil }
            return .object([("major", .uint(mm[0])), ("minor", .uint(mm[1])), ("op", .string(op)), ("value", .uint(v))])
        }
        var bytes: [OrderedJSON] = [], ios: [OrderedJSON] = []
        if version == "v2" {
            for line in (text("io", "io.stat") ?? "").split(separator: "\n") {
                let p = line.split(separator: " ")
                guard let dev = p.first else { continue }
                var kv: [String: UInt64] = [:]
                for item in p.dropFirst() {
                    let x = item.split(separator: "=")
                    if x.count == 2, let v = UInt64(x[1]) { kv[String(x[0])] = v }
                }
                for (k, op) in [("rbytes", "Read"), ("wbytes", "Write")] { if let v = kv[k], let e = entry(dev, op, v) { bytes.append(e) } }
                for (k, op) in [("rios", "Read"), ("wios", "Write")] { if let v = kv[k], let e = entry(dev, op, v) { ios.append(e) } }
            }
        } else {
            func read(_ file: String) -> [OrderedJSON] {
                (text("blkio", file) ?? "").split(separator: "\n").compactMap { line in
                    let p = line.split(separator: " ")
                    guard p.count == 3, let v = UInt64(p[2]) else { return nil }
                    return entry(p[0], String(p[1]), v)
                }
            }
            bytes = read("blkio.throttle.io_service_bytes_recursive")
            ios = read("blkio.throttle.io_serviced_recursive")
        }
        var f: [(String, OrderedJSON)] = []
        if !bytes.isEmpty { f.append(("io_service_bytes_recursive", .array(bytes))) }
        if !ios.isEmpty { f.append(("io_serviced_recursive", .array(ios))) }
        return .object(f)
    }

    /// Per page size: usage, max (v1), failcnt.
    private func hugetlbStats() -> OrderedJSON {
        guard let dir = path(for: "hugetlb") else { return .object([]) }
        let suffix = version == "v2" ? ".current" : ".usage_in_bytes"
        let sizes = Sys.listDir(dir).compactMap { name -> String? in
            guard name.hasPrefix("hugetlb."), name.hasSuffix(suffix), !name.contains(".rsvd.") else { return nil }
            return String(name.dropFirst(8).dropLast(suffix.count))
        }.sorted()
        return .object(sizes.map { size in
            var f: [(String, OrderedJSON)] = []
            if version == "v2" {
                Cgroup.omitZero("usage", number("hugetlb", "hugetlb.\(size).current"), into: &f)
                f.append(("failcnt", .uint(pairs("hugetlb", "hugetlb.\(size).events").first { $0.0 == "max" }?.1 ?? 0)))
            } else {
                Cgroup.omitZero("usage", number("hugetlb", "hugetlb.\(size).usage_in_bytes"), into: &f)
                Cgroup.omitZero("max", number("hugetlb", "hugetlb.\(size).max_usage_in_bytes"), into: &f)
                f.append(("failcnt", .uint(number("hugetlb", "hugetlb.\(size).failcnt") ?? 0)))
            }
            return (size, .object(f))
        })
    }
}
