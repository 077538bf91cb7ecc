import CRuntime
#if canImport(Glibc)
import Glibc
#endif

/// Device rules on cgroup v2. There is no devices.allow file there: the kernel
/// asks BPF_PROG_TYPE_CGROUP_DEVICE programs attached to the cgroup, so the
/// rules are compiled into one (CRuntime/devfilter.c) and attached to the
/// container's directory. The rule list is the same as on v1; a rule that
/// matches type, major, minor and access decides, and the last matching rule
/// of the list wins.
extension Cgroup {
    /// The rules a container gets, in order: deny everything, the spec's
    /// `linux.resources.devices`, then the devices every container needs
    /// (runc's order). A node listed in `linux.devices` is only created: it
    /// gets no rule of its own, so a deny rule of the spec keeps it closed, as
    /// with runc and crun (the spec allows it explicitly where it is wanted).
    static func effectiveDeviceRules(_ rules: [RuntimeSpec.DeviceCgroup]) -> [RuntimeSpec.DeviceCgroup] {
        [.init(allow: false, access: "rwm")] + rules + Cgroup.defaultAllowedDevices
    }

    /// A rule list as the BPF program takes it. A rule for every device with
    /// every access ("a", or type "a" without numbers, access rwm) drops the
    /// rules before it and sets the answer for requests nothing else matches,
    /// the way writing "a" to devices.allow/deny resets a v1 cgroup.
    static func deviceFilter(_ rules: [RuntimeSpec.DeviceCgroup]) throws -> (defaultAllow: Bool, rules: [cr_dev_rule]) {
        var defaultAllow = false
        var out: [cr_dev_rule] = []
        for (i, r) in rules.enumerated() {
            let where_ = "linux.resources.devices[\(i)]"
            let type = r.type ?? "a"
            guard type == "a" || type == "b" || type == "c" else {
                throw RuntimeError(.invalidSpec, "\(where_): type \"\(type)\" is not a, b or c")
            }
            var access: UInt8 = 0
            for ch in r.access ?? "rwm" {
                switch ch {
                case "r": access |= UInt8(CR_DEV_READ)
                case "w": access |= UInt8(CR_DEV_WRITE)
                case "m": access |= UInt8(CR_DEV_MKNOD)
                default:
                    throw RuntimeError(.invalidSpec, "\(where_): access \"\(r.access ?? "")\" may only hold r, w and m")
                }
            }
            func number(_ v: Int64?, _ name: String) throws -> Int64 {
                guard let v, v != -1 else { return -1 }
                guard v >= 0 else { throw RuntimeError(.invalidSpec, "\(where_): \(name) \(v) is negative; leave it out (or -1) for any") }
                return v
            }
            let major = try number(r.major, "major"), minor = try number(r.minor, "minor")
            let all = UInt8(CR_DEV_READ | CR_DEV_WRITE | CR_DEV_MKNOD)
            if type == "a" && major == -1 && minor == -1 && access == all {
                defaultAllow = r.allow
                out.removeAll()
                continue
            }
            var rule = cr_dev_rule()
            rule.type = CChar(UInt8(ascii: type == "b" ? "b" : type == "c" ? "c" : "a"))
            rule.major = major
            rule.minor = minor
            rule.allow = r.allow ? 1 : 0
            rule.access = access
            out.append(rule)
        }
        return (defaultAllow, out)
    }

    /// The BPF instructions (8 bytes each) for a rule list; for tests and debugging.
    static func deviceProgram(_ rules: [RuntimeSpec.DeviceCgroup]) throws -> [UInt64] {
        let (def, list) = try deviceFilter(rules)
        let n = list.withUnsafeBufferPointer { cruntime_devfilter_program($0.baseAddress, $0.count, def ? 1 : 0, nil, 0) }
        var insns = [UInt64](repeating: 0, count: max(0, n))
        _ = list.withUnsafeBufferPointer { l in
            insns.withUnsafeMutableBytes { cruntime_devfilter_program(l.baseAddress, l.count, def ? 1 : 0, $0.baseAddress, n) }
        }
        return insns
    }

    /// Compiles the rules and attaches them to the v2 directory, replacing the
    /// program an earlier create or update attached.
    func applyDevicesV2(_ rules: [RuntimeSpec.DeviceCgroup]) throws {
        guard let dir = paths[""] else { return }
        let (def, list) = try Cgroup.deviceFilter(Cgroup.effectiveDeviceRules(rules))
        let fd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw RuntimeError.sys("open cgroup \(dir) for its device filter") }
        defer { close(fd) }
        var err = [CChar](repeating: 0, count: 1 << 16)
        let rc = list.withUnsafeBufferPointer { l in
            err.withUnsafeMutableBufferPointer { e in
                cruntime_devfilter_apply(fd, l.baseAddress, l.count, def ? 1 : 0, e.baseAddress, e.count)
            }
        }
        if rc != 0 {
            let e = errno
            let msg = String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            // Inside a user namespace bpf(2) is out of reach, and such a
            // container cannot make or open host device nodes anyway: go on
            // without the program, as runc does, but say so.
            if (e == EPERM || e == EACCES) && Cgroup.inUserNamespace {
                let note = "dockbuild runtime: warning: cgroup v2 device rules for \(dir) not enforced (running in a user namespace): \(msg)\n"
                _ = note.withCString { write(2, $0, strlen($0)) }
                return
            }
            throw RuntimeError(.cgroup, "cgroup v2 device rules for \(dir): \(msg)")
        }
    }

    /// True when this process runs in a user namespace (not the initial one).
    static var inUserNamespace: Bool {
        let map = (Sys.readFile("/proc/self/uid_map") ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
        return map != ["0", "0", "4294967295"]
    }

    /// Number of device programs dockbuild attached to the v2 directory (nil when it cannot be asked).
    func deviceProgramCount() -> Int? {
        guard let dir = paths[""] else { return nil }
        let fd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        let n = cruntime_devfilter_count(fd)
        return n < 0 ? nil : Int(n)
    }
}
