import CRuntime
import CSeccomp
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Compiles `linux.seccomp` to a classic BPF program with libseccomp in the
/// runtime, so that the container init only has to load it (one prctl).
public enum SeccompCompiler {
    static func action(_ name: String, errno e: UInt32?, defaultErrno: UInt32?) throws -> UInt32 {
        switch name {
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return 0
        case "SCMP_ACT_KILL_PROCESS": return 0x8000_0000
        case "SCMP_ACT_TRAP": return 0x0003_0000
        case "SCMP_ACT_ERRNO": return 0x0005_0000 | ((e ?? defaultErrno ?? UInt32(EPERM)) & 0xffff)
        case "SCMP_ACT_TRACE": return 0x7ff0_0000 | ((e ?? defaultErrno ?? UInt32(EPERM)) & 0xffff)
        case "SCMP_ACT_LOG": return 0x7ffc_0000
        case "SCMP_ACT_ALLOW": return 0x7fff_0000
        case "SCMP_ACT_NOTIFY": return notifyAction
        default:
            throw RuntimeError(.seccomp, "unsupported seccomp action \"\(name)\"; use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_TRACE, SCMP_ACT_LOG or SCMP_ACT_NOTIFY (with linux.seccomp.listenerPath)")
        }
    }

    static func op(_ name: String) throws -> scmp_compare {
        switch name {
        case "SCMP_CMP_NE": return SCMP_CMP_NE
        case "SCMP_CMP_LT": return SCMP_CMP_LT
        case "SCMP_CMP_LE": return SCMP_CMP_LE
        case "SCMP_CMP_EQ": return SCMP_CMP_EQ
        case "SCMP_CMP_GE": return SCMP_CMP_GE
        case "SCMP_CMP_GT": return SCMP_CMP_GT
        case "SCMP_CMP_MASKED_EQ": return SCMP_CMP_MASKED_EQ
        default: throw RuntimeError(.seccomp, "unknown seccomp operator \"\(name)\"")
        }
    }

    /// Returns the raw `struct sock_filter` array.
    ///
    /// Each architecture gets a filter context of its own, merged at the end: a rule that
    /// libseccomp cannot express on one architecture (an argument condition on `socket`,
    /// which x86 multiplexes through socketcall) is then left out there only, and kept
    /// everywhere else. Profiles podman and containerd generate repeat rules (podman's
    /// default has the same conditional `socket` rule twice, and rules that overlap on x86);
    /// a rule libseccomp reports as already covered (EEXIST) is skipped, as runc tolerates.
    public static func compile(_ s: RuntimeSpec.Seccomp) throws -> [UInt8] {
        // A build runs every RUN with the same profile: compiling docker's default costs
        // milliseconds, so the programs of the last few profiles are kept for this process.
        if let done = compiled.withLock({ $0[s] }) { return done }
        let program = try compileAnew(s)
        compiled.withLock { cache in
            if cache.count >= 8 { cache.removeAll() }
            cache[s] = program
        }
        return program
    }

    private static let compiled = Mutex<[RuntimeSpec.Seccomp: [UInt8]]>([:])

    private static func compileAnew(_ s: RuntimeSpec.Seccomp) throws -> [UInt8] {
        let def = try action(s.defaultAction, errno: s.defaultErrnoRet, defaultErrno: nil)
        var tokens: [(String, UInt32)] = []
        for a in s.architectures ?? [] {
            var n = a.lowercased()
            if n.hasPrefix("scmp_arch_") { n.removeFirst(10) }
            let token = seccomp_arch_resolve_name(n)
            guard token != 0 else { throw RuntimeError(.seccomp, "unknown seccomp architecture \"\(a)\"") }
            if !tokens.contains(where: { $0.1 == token }) { tokens.append((a, token)) }
        }
        let native = seccomp_arch_native()
        // the host's own architecture is always filtered, as seccomp_init does
        if !tokens.contains(where: { $0.1 == native }) { tokens.insert(("native", native), at: 0) }
        var rules: [(name: String, action: String, act: UInt32, nr: Int32, cmps: [scmp_arg_cmp])] = []
        var seen = Set<String>()
        for sc in s.syscalls ?? [] {
            let act = try action(sc.action, errno: sc.errnoRet, defaultErrno: s.defaultErrnoRet)
            if act == def { continue }  // libseccomp refuses rules equal to the default
            var cmps: [scmp_arg_cmp] = []
            for a in sc.args ?? [] {
                guard a.index < 6 else { throw RuntimeError(.seccomp, "seccomp argument index \(a.index) is above 5") }
                cmps.append(scmp_arg_cmp(arg: a.index, op: try op(a.op), datum_a: a.value, datum_b: a.valueTwo ?? 0))
            }
            for name in sc.names {
                let nr = seccomp_syscall_resolve_name(name)
                if nr < 0 { continue }  // not on this architecture: skip like runc
                let key = "\(nr) \(act) " + cmps.map { "\($0.arg):\($0.op.rawValue):\($0.datum_a):\($0.datum_b)" }.joined(separator: ",")
                guard seen.insert(key).inserted else { continue }  // an exact repeat adds nothing
                rules.append((name, sc.action, act, nr, cmps))
            }
        }
        var merged: scmp_filter_ctx?
        defer { if let merged { seccomp_release(merged) } }
        for (archName, token) in tokens {
            guard let ctx = seccomp_init(def) else { throw RuntimeError(.seccomp, "seccomp_init failed for default action \(s.defaultAction)") }
            var owned = true
            defer { if owned { seccomp_release(ctx) } }
            _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)
            if token != native {
                var rc = seccomp_arch_add(ctx, token)
                if rc == 0 { rc = seccomp_arch_remove(ctx, native) }
                if rc != 0 { throw RuntimeError(.seccomp, "seccomp architecture \(archName) cannot be used (\(rc))") }
            }
            for r in rules {
                let rc = r.cmps.withUnsafeBufferPointer { seccomp_rule_add_array(ctx, r.act, r.nr, UInt32($0.count), $0.baseAddress) }
                if rc != 0 && rc != -EEXIST {
                    throw RuntimeError(.seccomp, "seccomp rule for \(r.name) (\(r.action)) on \(archName) was refused by libseccomp (\(rc)); check its args")
                }
            }
            if let m = merged {
                let rc = seccomp_merge(m, ctx)
                guard rc == 0 else { throw RuntimeError(.seccomp, "merging the seccomp filter of \(archName) failed (\(rc))") }
                owned = false  // merge took it
            } else {
                merged = ctx
                owned = false
            }
        }
        guard let ctx = merged else { throw RuntimeError(.seccomp, "the seccomp profile names no architecture this host can filter") }
        let fd = cruntime_memfd("seccomp")
        guard fd >= 0 else { throw RuntimeError.sys("memfd_create") }
        defer { close(fd) }
        let rc = seccomp_export_bpf(ctx, fd)
        guard rc == 0 else { throw RuntimeError(.seccomp, "seccomp_export_bpf failed (\(rc))") }
        let size = lseek(fd, 0, SEEK_END)
        lseek(fd, 0, SEEK_SET)
        var buf = [UInt8](repeating: 0, count: Int(size))
        var off = 0
        while off < buf.count {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!.advanced(by: off), $0.count - off) }
            if n <= 0 { break }
            off += n
        }
        return buf
    }
}
