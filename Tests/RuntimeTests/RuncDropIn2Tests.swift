import Foundation
import Testing
@testable import Runtime

/// `dockbuild-runc` as a drop-in for runc (issue #16), continued: bind mount sources in a user
/// namespace, and seccomp notifications handed to an agent at `linux.seccomp.listenerPath`.
@Suite("runc drop-in 2", .serialized)
struct RuncDropIn2Tests {
    static func tag() -> String { "\(getpid())-\(UInt32.random(in: 0...UInt32.max))" }

    /// The runtimes to compare: ours, and runc where installed, each with a state root of its own.
    static func runtimes(_ b: Bundle) throws -> [(bin: String, root: String)] {
        var r = [(try RuncDropInTests.ours, b.dir + "/state")]
        if let runc = RuncDropInTests.runc { r.append((runc, b.dir + "/runc-state")) }
        return r
    }

    @Test("user namespace: a bind mount of a directory under a 0700 root-owned parent (opened as the host's root, as runc does)")
    func userNamespaceBindSource() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        // Mapped root (host uid 100000) cannot pass `hidden`; `data` and its file are readable by anyone.
        let hidden = b.dir + "/hidden", data = hidden + "/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        chmod(hidden, 0o700)
        chmod(data, 0o755)
        try Data("from the host\n".utf8).write(to: URL(fileURLWithPath: data + "/file"))
        try Data("single file\n".utf8).write(to: URL(fileURLWithPath: hidden + "/one"))
        chmod(hidden + "/one", 0o644)
        // Mount points exist already: the mapped root may not create them in the host-owned rootfs.
        try FileManager.default.createDirectory(atPath: b.rootfs + "/mnt/data", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: b.rootfs + "/mnt/one", contents: nil)
        chmod(b.rootfs, 0o755)
        let tag = Self.tag()
        for (bin, root) in try Self.runtimes(b) {
            var s = b.spec(["sh", "-c", "cat /mnt/data/file /mnt/one; id -u; ls /mnt/data"])
            s.linux?.namespaces?.append(.init(type: "user"))
            s.linux?.uidMappings = [.init(containerID: 0, hostID: 100_000, size: 65536)]
            s.linux?.gidMappings = [.init(containerID: 0, hostID: 100_000, size: 65536)]
            s.mounts?.append(.init(destination: "/mnt/data", type: "bind", source: data, options: ["rbind", "ro"]))
            s.mounts?.append(.init(destination: "/mnt/one", type: "bind", source: hidden + "/one", options: ["bind"]))
            s.linux?.cgroupsPath = "/dockbuild-usernsbind-\(bin.hasSuffix("dockbuild-runc") ? "ours" : "runc")-\(tag)"
            try b.write(s)
            let r = try RuncDropInTests.call([bin, "--root", root, "run", "--bundle", b.dir, "ub"])
            #expect(r.code == 0 && r.out == "from the host\nsingle file\n0\nfile\n", "\(bin): \(r)")
        }
        // A source that does not exist is still create's error, named.
        var s = b.spec(["true"])
        s.linux?.namespaces?.append(.init(type: "user"))
        s.linux?.uidMappings = [.init(containerID: 0, hostID: 100_000, size: 65536)]
        s.linux?.gidMappings = [.init(containerID: 0, hostID: 100_000, size: 65536)]
        s.mounts?.append(.init(destination: "/mnt/data", type: "bind", source: hidden + "/nosuch", options: ["rbind"]))
        s.linux?.cgroupsPath = "/dockbuild-usernsbind-missing-\(tag)"
        try b.write(s)
        let missing = try RuncDropInTests.call([try RuncDropInTests.ours, "--root", b.dir + "/state", "run", "--bundle", b.dir, "ub2"])
        #expect(missing.code != 0 && missing.err.contains(hidden + "/nosuch") && missing.err.contains("No such file"), "\(missing)")
    }
}

/// A seccomp agent for the tests: listens on a unix socket, takes the container process state
/// and the listener descriptor that come with each connection, and answers every notification
/// on it: `mkdir`/`mkdirat` fail with `answer` (0: they continue, SECCOMP_USER_NOTIF_FLAG_CONTINUE).
final class RuncDropIn2NotifyAgent: @unchecked Sendable {
    let path: String
    let answer: Int32
    private let listener: Int32
    private let lock = NSLock()
    private var received: [String] = []
    private var notified: [Int32] = []

    /// The JSON texts received so far, one per connection.
    var messages: [String] { lock.withLock { received } }
    /// The syscall numbers of the notifications answered so far.
    var syscalls: [Int32] { lock.withLock { notified } }

    init(path: String, answer: Int32) throws {
        self.path = path
        self.answer = answer
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        try #require(bytes.count < MemoryLayout.size(ofValue: addr.sun_path), "socket path too long: \(path)")
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(rc == 0 && listen(fd, 8) == 0, "bind/listen \(path): \(String(cString: strerror(errno)))")
        listener = fd
        Thread.detachNewThread { self.acceptLoop() }
    }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        unlink(path)
    }

    private func acceptLoop() {
        while true {
            let c = accept(listener, nil, nil)
            if c < 0 { if errno == EINTR { continue }; return }
            _ = fcntl(c, F_SETFD, FD_CLOEXEC)
            let (text, fd) = Self.receive(c)
            close(c)
            lock.withLock { received.append(text) }
            if fd >= 0 { Thread.detachNewThread { self.serve(fd) } }
        }
    }

    /// The message and the descriptor that came with it (SCM_RIGHTS), read until it is whole JSON
    /// (runc 1.1 keeps its end open until it exits, so EOF cannot be waited for).
    private static func receive(_ c: Int32) -> (String, Int32) {
        var data = [UInt8](repeating: 0, count: 65536)
        var control = [UInt64](repeating: 0, count: 8)  // room for a cmsghdr and a few fds, aligned
        var fd: Int32 = -1
        let n = data.withUnsafeMutableBytes { buf -> Int in
            var iov = iovec(iov_base: buf.baseAddress, iov_len: buf.count)
            return control.withUnsafeMutableBytes { ctl -> Int in
                withUnsafeMutablePointer(to: &iov) { iovp -> Int in
                    var msg = msghdr(msg_name: nil, msg_namelen: 0, msg_iov: iovp, msg_iovlen: 1,
                                     msg_control: ctl.baseAddress, msg_controllen: ctl.count, msg_flags: 0)
                    return recvmsg(c, &msg, Int32(MSG_CMSG_CLOEXEC))
                }
            }
        }
        guard n > 0 else { return ("", -1) }
        // struct cmsghdr: size_t cmsg_len, int cmsg_level, int cmsg_type, then the data.
        control.withUnsafeBytes { ctl in
            let len = ctl.load(fromByteOffset: 0, as: Int.self), level = ctl.load(fromByteOffset: 8, as: Int32.self)
            let type = ctl.load(fromByteOffset: 12, as: Int32.self)
            if len >= 20 && level == SOL_SOCKET && type == Int32(SCM_RIGHTS) { fd = ctl.load(fromByteOffset: 16, as: Int32.self) }
        }
        var all = Array(data[0..<n])
        while (try? JSONSerialization.jsonObject(with: Data(all))) == nil {
            let r = data.withUnsafeMutableBytes { read(c, $0.baseAddress, $0.count) }
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { break }
            all += data[0..<r]
        }
        return (String(decoding: all, as: UTF8.self), fd)
    }

    /// SECCOMP_IOCTL_NOTIF_RECV and _SEND: _IOWR('!', 0, struct seccomp_notif) (80 bytes) and
    /// _IOWR('!', 1, struct seccomp_notif_resp) (24 bytes).
    static let notifRecv: UInt = 0xC050_2100, notifSend: UInt = 0xC018_2101

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let pr = poll(&p, 1, 200)
            if pr < 0 { if errno == EINTR { continue }; return }
            if pr == 0 { continue }
            if p.revents & Int16(POLLHUP) != 0 { return }  // every process under the filter is gone
            var notif = [UInt8](repeating: 0, count: 80)  // must be zeroed for the kernel
            if notif.withUnsafeMutableBytes({ ioctl(fd, Self.notifRecv, $0.baseAddress!) }) < 0 {
                if errno == EINTR || errno == ENOENT { continue }
                return
            }
            let (id, nr) = notif.withUnsafeBytes { ($0.load(fromByteOffset: 0, as: UInt64.self), $0.load(fromByteOffset: 16, as: Int32.self)) }
            lock.withLock { notified.append(nr) }
            // struct seccomp_notif_resp: u64 id, s64 val, s32 error, u32 flags.
            var resp = [UInt8](repeating: 0, count: 24)
            resp.withUnsafeMutableBytes { r in
                r.storeBytes(of: id, toByteOffset: 0, as: UInt64.self)
                if answer != 0 { r.storeBytes(of: -answer, toByteOffset: 16, as: Int32.self) }
                else { r.storeBytes(of: UInt32(1), toByteOffset: 20, as: UInt32.self) }  // SECCOMP_USER_NOTIF_FLAG_CONTINUE
            }
            _ = resp.withUnsafeMutableBytes { ioctl(fd, Self.notifSend, $0.baseAddress!) }
        }
    }
}

extension RuncDropIn2Tests {
    /// A profile that sends mkdir and mkdirat to the agent at `listener`.
    static func notifyProfile(listener: String?, metadata: String? = "meta-1") -> RuntimeSpec.Seccomp {
        var s = RuntimeSpec.Seccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [.init(names: ["mkdir", "mkdirat"], action: "SCMP_ACT_NOTIFY")])
        s.listenerPath = listener
        s.listenerMetadata = metadata
        return s
    }

    /// The container process state with the pids taken out (they differ between runs).
    static func withoutPIDs(_ s: String) -> String { s.replacing(#/"pid":\d+/#, with: "\"pid\":N") }

    @Test("seccomp SCMP_ACT_NOTIFY: the agent at listenerPath gets the state and the listener; its errno is mkdir's (runc's message, byte for byte)")
    func seccompNotifyAgent() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let tag = Self.tag()
        let script = "mkdir /tmp/x; echo rc=$?; [ -d /tmp/x ] && echo exists || echo absent"
        var outputs: [String: (code: Int32, out: String, err: String)] = [:]
        var states: [String: String] = [:]
        for (bin, root) in try Self.runtimes(b) {
            let who = bin.hasSuffix("dockbuild-runc") ? "ours" : "runc"
            // With and without noNewPrivileges: the filter is loaded at different points of the init.
            for nnp in [true, false] {
                let agent = try RuncDropIn2NotifyAgent(path: b.dir + "/agent-\(who)-\(nnp).sock", answer: EMLINK)
                defer { agent.stop() }
                var s = b.spec(["sh", "-c", script])
                s.process?.noNewPrivileges = nnp
                s.linux?.seccomp = Self.notifyProfile(listener: agent.path)
                s.linux?.cgroupsPath = "/dockbuild-notify-\(who)-\(nnp)-\(tag)"
                try b.write(s)
                let r = try RuncDropInTests.call([bin, "--root", root, "run", "--bundle", b.dir, "sn"])
                #expect(r.code == 0 && r.out == "rc=1\nabsent\n" && r.err.contains("can't create directory '/tmp/x': Too many links"),
                        "\(who) nnp=\(nnp): \(r)")
                #expect(agent.syscalls.count == 1 && [83, 258].contains(agent.syscalls.first ?? 0), "\(who): \(agent.syscalls)")
                let msgs = agent.messages
                #expect(msgs.count == 1, "\(who): \(msgs)")
                outputs["\(who) \(nnp)"] = r
                states["\(who) \(nnp)"] = msgs.first.map(Self.withoutPIDs)
            }
        }
        let expected = "{\"ociVersion\":\"\(b.spec([]).ociVersion)\",\"fds\":[\"seccompFd\"],\"pid\":N,\"metadata\":\"meta-1\","
            + "\"state\":{\"ociVersion\":\"\(b.spec([]).ociVersion)\",\"id\":\"sn\",\"status\":\"creating\",\"pid\":N,\"bundle\":\"\(b.dir)\"}}"
        #expect(states["ours true"] == expected && states["ours false"] == expected, "\(states)")
        if RuncDropInTests.runc != nil {
            for nnp in [true, false] {
                #expect(states["ours \(nnp)"] == states["runc \(nnp)"], "\(states)")
                #expect(outputs["ours \(nnp)"]?.out == outputs["runc \(nnp)"]?.out && outputs["ours \(nnp)"]?.err == outputs["runc \(nnp)"]?.err,
                        "\(outputs)")
            }
        }

        // An agent that lets the call continue: the directory is made.
        let cont = try RuncDropIn2NotifyAgent(path: b.dir + "/agent-continue.sock", answer: 0)
        defer { cont.stop() }
        var s = b.spec(["sh", "-c", script])
        s.linux?.seccomp = Self.notifyProfile(listener: cont.path, metadata: nil)
        s.linux?.cgroupsPath = "/dockbuild-notify-continue-\(tag)"
        try b.write(s)
        let r = try RuncDropInTests.call([try RuncDropInTests.ours, "--root", b.dir + "/state", "run", "--bundle", b.dir, "sc"])
        #expect(r.code == 0 && r.out == "rc=0\nexists\n", "\(r)")
        #expect(cont.messages.count == 1 && cont.messages.first?.contains("\"metadata\"") == false, "\(cont.messages)")
    }

    @Test("seccomp SCMP_ACT_NOTIFY: exec sends the agent a listener of its own (state running); refused profiles fail create")
    func seccompNotifyExecAndErrors() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let bin = try RuncDropInTests.ours, root = b.dir + "/state", tag = Self.tag()
        let agent = try RuncDropIn2NotifyAgent(path: b.dir + "/agent.sock", answer: EXDEV)
        defer { agent.stop() }
        var s = b.spec(["sleep", "1000"])
        s.linux?.seccomp = Self.notifyProfile(listener: agent.path)
        s.linux?.cgroupsPath = "/dockbuild-notify-exec-\(tag)"
        try b.write(s)
        let started = try RuncDropInTests.call([bin, "--root", root, "run", "-d", "--bundle", b.dir, "se"])
        try #require(started.code == 0, "\(started)")
        defer { RuncDropInTests.remove(bin, root: root, id: "se") }
        let e = try RuncDropInTests.call([bin, "--root", root, "exec", "se", "sh", "-c", "mkdir /tmp/e; echo rc=$?"])
        #expect(e.out == "rc=1\n" && e.err.contains("Invalid cross-device link"), "\(e)")
        let msgs = agent.messages
        #expect(msgs.count == 2 && msgs.last?.contains("\"status\":\"running\"") == true, "\(msgs)")
        let initPID = try b.runtime.state(id: "se").pid
        #expect(msgs.last?.contains("\"state\":{\"ociVersion\":\"\(s.ociVersion)\",\"id\":\"se\",\"status\":\"running\",\"pid\":\(initPID),") == true, "\(msgs)")
        #expect(msgs.last?.contains("\"fds\":[\"seccompFd\"],\"pid\":\(initPID),") == false, "the exec'd process's pid, not the init's: \(msgs)")
        if let runc = RuncDropInTests.runc {
            // runc sends the same two states, pids aside.
            let theirs = try RuncDropIn2NotifyAgent(path: b.dir + "/agent-runc.sock", answer: EXDEV)
            defer { theirs.stop() }
            var rs = s
            rs.linux?.seccomp = Self.notifyProfile(listener: theirs.path)
            rs.linux?.cgroupsPath = "/dockbuild-notify-exec-runc-\(tag)"
            try b.write(rs)
            let rroot = b.dir + "/runc-state"
            let r = try RuncDropInTests.call([runc, "--root", rroot, "run", "-d", "--bundle", b.dir, "se"])
            try #require(r.code == 0, "\(r)")
            defer { RuncDropInTests.remove(runc, root: rroot, id: "se") }
            let re = try RuncDropInTests.call([runc, "--root", rroot, "exec", "se", "sh", "-c", "mkdir /tmp/e; echo rc=$?"])
            #expect(re.out == e.out && re.err == e.err, "runc \(re), ours \(e)")
            let ours = msgs.map(Self.withoutPIDs)
            #expect(theirs.messages.map(Self.withoutPIDs) == ours, "runc \(theirs.messages), ours \(msgs)")
        }

        // Refused at create: no listenerPath (runc says "listenerPath is not set" too), NOTIFY as the
        // default action or on write, and an agent that is not there.
        var cases: [(RuntimeSpec.Seccomp, String)] = [(Self.notifyProfile(listener: nil), "listenerPath is not set")]
        var d = Self.notifyProfile(listener: agent.path)
        d.defaultAction = "SCMP_ACT_NOTIFY"
        d.syscalls = [.init(names: ["mkdir"], action: "SCMP_ACT_ALLOW")]
        cases.append((d, "SCMP_ACT_NOTIFY cannot be"))
        var w = Self.notifyProfile(listener: agent.path)
        w.syscalls = [.init(names: ["write"], action: "SCMP_ACT_NOTIFY")]
        cases.append((w, "SCMP_ACT_NOTIFY cannot be used for the write syscall"))
        cases.append((Self.notifyProfile(listener: b.dir + "/nobody.sock"), "seccomp agent"))
        for (i, (profile, words)) in cases.enumerated() {
            var c = b.spec(["true"])
            c.linux?.seccomp = profile
            c.linux?.cgroupsPath = "/dockbuild-notify-bad\(i)-\(tag)"
            try b.write(c)
            let r = try RuncDropInTests.call([bin, "--root", root, "run", "--bundle", b.dir, "bad\(i)"])
            #expect(r.code == 1 && r.err.contains(words), "case \(i): \(r)")
            if i < 3, let runc = RuncDropInTests.runc {
                let theirs = try RuncDropInTests.call([runc, "--root", b.dir + "/runc-state", "run", "--bundle", b.dir, "bad\(i)"])
                #expect(theirs.code == 1 && theirs.err.contains(words), "runc, case \(i): \(theirs)")
            }
        }
        #expect(agent.messages.count == 2, "no refused container reached the agent")

        // features lists the action.
        let f = try RuncDropInTests.call([bin, "features"])
        #expect(f.code == 0 && f.out.contains("\"SCMP_ACT_NOTIFY\""), "\(f)")
    }
}
