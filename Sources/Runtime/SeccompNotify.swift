// Seccomp user notification (runtime-spec config-linux.md "Seccomp": SCMP_ACT_NOTIFY,
// `listenerPath`, `listenerMetadata`; runtime.md "Container process state").

import CRuntime
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension SeccompCompiler {
    /// SCMP_ACT_NOTIFY's return value (SECCOMP_RET_USER_NOTIF).
    static let notifyAction: UInt32 = 0x7fc0_0000

    /// Syscalls the init makes under the filter while it hands the listener to the runtime
    /// (a notification there would wait for an agent that has no descriptor yet).
    static let notifyRefused: Set<String> = ["write", "sendmsg"]

    /// Whether `s` has SCMP_ACT_NOTIFY rules, which make the init load the filter with a
    /// listener. Refuses what cannot work: NOTIFY as the default action, on a syscall of the
    /// hand-over, or without `listenerPath` to send the listener to.
    public static func usesNotify(_ s: RuntimeSpec.Seccomp) throws -> Bool {
        if s.defaultAction == "SCMP_ACT_NOTIFY" {
            throw RuntimeError(.seccomp, "SCMP_ACT_NOTIFY cannot be linux.seccomp.defaultAction (the runtime's own calls would wait for the agent); use it on the rules of the syscalls the agent handles")
        }
        var notify = false
        for rule in s.syscalls ?? [] where rule.action == "SCMP_ACT_NOTIFY" {
            if let bad = rule.names.first(where: { notifyRefused.contains($0) }) {
                throw RuntimeError(.seccomp, "SCMP_ACT_NOTIFY cannot be used for the \(bad) syscall: the runtime needs it to hand the listener over; give \(bad) another action")
            }
            notify = true
        }
        if notify && (s.listenerPath ?? "").isEmpty {
            throw RuntimeError(.seccomp, "the seccomp profile has SCMP_ACT_NOTIFY rules but linux.seccomp.listenerPath is not set; give the unix socket path of the seccomp agent that answers the notifications")
        }
        return notify
    }
}

extension Runtime {
    /// The container process state of runtime.md, as runc 1.1 sends it: `ociVersion`, `fds`
    /// (`["seccompFd"]`, the descriptor travels with the message), `pid` (the process the
    /// filter is on), `metadata` (`listenerMetadata`, when set) and `state` (ociVersion, id,
    /// status, pid, bundle, annotations when there are some).
    static func containerProcessState(spec: RuntimeSpec, processPID: Int32, record: ContainerRecord, status: String) -> String {
        var state: [(String, OrderedJSON)] = [
            ("ociVersion", .string(record.spec.ociVersion)), ("id", .string(record.id)), ("status", .string(status)),
            ("pid", .int(Int64(record.pid))), ("bundle", .string(record.bundle)),
        ]
        if let a = record.spec.annotations, !a.isEmpty {
            state.append(("annotations", .object(a.keys.sorted().map { ($0, .string(a[$0] ?? "")) })))
        }
        var fields: [(String, OrderedJSON)] = [
            ("ociVersion", .string(spec.ociVersion)), ("fds", .array([.string("seccompFd")])), ("pid", .int(Int64(processPID))),
        ]
        if let m = spec.linux?.seccomp?.listenerMetadata, !m.isEmpty { fields.append(("metadata", .string(m))) }
        fields.append(("state", .object(state)))
        return OrderedJSON.object(fields).rendered
    }

    /// Receives the listener the init sends after an 'S' reply on `sock` and passes it to the
    /// agent at `linux.seccomp.listenerPath` with the container process state (one
    /// connection, one message, then closed, as runtime.md asks).
    static func sendSeccompListener(from sock: Int32, spec: RuntimeSpec, processPID: Int32, record: ContainerRecord, status: String) throws {
        let fd = cruntime_recv_fd(sock)
        guard fd >= 0 else { throw RuntimeError.sys("receive the seccomp listener from the container init") }
        defer { close(fd) }
        guard let path = spec.linux?.seccomp?.listenerPath, !path.isEmpty else {
            throw RuntimeError(.seccomp, "the container init loaded a seccomp listener but linux.seccomp.listenerPath is not set")
        }
        let agent: Int32
        do { agent = try connectUnix(path, what: "seccomp agent at linux.seccomp.listenerPath") } catch {
            throw RuntimeError(.seccomp, "\(error); start the seccomp agent that listens there before the container")
        }
        defer { close(agent) }
        let message = Array(containerProcessState(spec: spec, processPID: processPID, record: record, status: status).utf8)
        let rc = message.withUnsafeBytes { cruntime_send_fd_with(agent, fd, $0.baseAddress, $0.count) }
        guard rc == 0 else { throw RuntimeError.sys("send the seccomp listener to the agent at \(path)") }
    }
}
