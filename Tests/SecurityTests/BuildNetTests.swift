import Foundation
import Testing

/// Issue #14, area "build network, tar contexts and build crash safety": each test is an attack
/// through the real CLI (`dockbuild build`) and asserts it has no effect.
@Suite(.serialized)
struct BuildNetTests {
    // MARK: - tar contexts

    /// A tar context whose Dockerfile is a symlink to a host file: the build must not read the
    /// host file (before, `tar -x` then reading CONTEXT/Dockerfile followed the link).
    @Test(.enabled(if: Sec.canRun))
    func tarContextSymlinkDockerfileIsRefused() throws {
        let s = try SecStore()
        let net = BuildNetNet()
        defer { net.teardown() }
        // a host file that would be a valid Dockerfile: reading it would visibly build it
        try s.write("host-dockerfile", "FROM busybox:test\nRUN echo HOST-DOCKERFILE-WAS-READ\n")
        var tar = BuildNetTar()
        tar.symlink("Dockerfile", to: s.dir + "/host-dockerfile")
        tar.file("a.txt", "a\n")
        let r = try s.db(["build", "--progress", "plain", "-"], input: tar.data, env: net.env)
        #expect(r.status != 0, "a symlinked Dockerfile in a tar context was followed: \(r.err)")
        #expect(!r.err.contains("HOST-DOCKERFILE-WAS-READ"))
        #expect(r.err.contains("symbolic link"), "\(r.err)")

        // the same with -f naming a link into /etc/shadow: no byte of it in the answer
        var tar2 = BuildNetTar()
        tar2.symlink("sub/Dockerfile.x", to: "/etc/shadow")
        let r2 = try s.db(["build", "-f", "sub/Dockerfile.x", "-"], input: tar2.data, env: net.env)
        #expect(r2.status != 0)
        #expect(!r2.err.contains("root:"), "\(r2.err)")
        #expect(r2.err.contains("symbolic link"), "\(r2.err)")

        // .dockerignore linked to a host file
        var tar4 = BuildNetTar()
        tar4.file("Dockerfile", "FROM busybox:test\n")
        tar4.symlink(".dockerignore", to: "/etc/shadow")
        let r4 = try s.db(["build", "-"], input: tar4.data, env: net.env)
        #expect(r4.status != 0)
        #expect(r4.err.contains("symbolic link"), "\(r4.err)")

        // a directory of the path is the link: -f hostdir/Dockerfile
        var tar3 = BuildNetTar()
        tar3.symlink("hostdir", to: s.dir)
        let r3 = try s.db(["build", "--progress", "plain", "-f", "hostdir/host-dockerfile", "-"], input: tar3.data, env: net.env)
        #expect(r3.status != 0)
        #expect(!r3.err.contains("HOST-DOCKERFILE-WAS-READ"))
        #expect(r3.err.contains("symbolic link"), "\(r3.err)")
        #expect(BuildNetCrash.sessions(s).isEmpty, "the extracted context was not removed")
    }

    /// A tar context with a setuid-root binary and device nodes: the build sees neither a setuid
    /// bit nor a device (the old `tar -x` as root created both, and COPY took them into the image).
    @Test(.enabled(if: Sec.canRun))
    func tarContextDropsSetuidAndDevices() throws {
        let s = try SecStore()
        let net = BuildNetNet()
        defer { net.teardown() }
        var tar = BuildNetTar()
        tar.file("Dockerfile", """
            FROM busybox:test
            COPY . /ctx
            RUN --mount=type=bind,target=/bctx for d in /ctx /bctx; do for f in suid sgid null disk fifo; do \
                  if [ -e $d/$f ] || [ -p $d/$f ]; then echo "CHECK $d/$f $(stat -c '%a %F' $d/$f)"; else echo "CHECK $d/$f absent"; fi; done; done

            """)
        tar.file("suid", "#!/bin/sh\nid\n", mode: 0o4755)
        tar.file("sgid", "#!/bin/sh\nid\n", mode: 0o2755)
        tar.device("null", char: true, major: 1, minor: 3)
        tar.device("disk", char: false, major: 8, minor: 0)
        tar.fifo("fifo")
        let r = try s.db(["build", "--progress", "plain", "--no-cache", "-"], input: tar.data, env: net.env)
        #expect(r.status == 0, "\(r.err)")
        let checks = r.err.split(separator: "\n").filter { $0.contains(" CHECK /") }.map { String($0.split(separator: " ", maxSplits: 1)[1]) }
        // COPY'd into the image, and as the RUN sees the context itself (a bind mount)
        for d in ["/ctx", "/bctx"] {
            #expect(checks.contains("CHECK \(d)/suid 755 regular file"), "\(checks)")
            #expect(checks.contains("CHECK \(d)/sgid 755 regular file"), "\(checks)")
            #expect(checks.contains("CHECK \(d)/null absent"), "\(checks)")
            #expect(checks.contains("CHECK \(d)/disk absent"), "\(checks)")
            #expect(checks.contains("CHECK \(d)/fifo absent"), "\(checks)")
        }
        #expect(BuildNetCrash.sessions(s).isEmpty, "the extracted context was not removed")
    }

    /// Entries that climb out of the context (`../`, absolute names, through a symlink, hard
    /// links to host files) write or link nothing outside it.
    @Test(.enabled(if: Sec.canRun))
    func tarContextEntriesStayInside() throws {
        let s = try SecStore()
        let net = BuildNetNet()
        defer { net.teardown() }
        let marker = "escape-\(UUID().uuidString.prefix(8))"
        let outside = try s.path("outside")
        for entries in [["../../../../../../../../\(outside)/\(marker)"], ["/\(outside)/\(marker)"]] {
            var tar = BuildNetTar()
            tar.file("Dockerfile", "FROM busybox:test\n")
            for e in entries { tar.file(e, "pwned\n") }
            _ = try s.db(["build", "-"], input: tar.data, env: net.env)
            #expect(!FileManager.default.fileExists(atPath: outside + "/" + marker))
        }
        // a symlink to the outside directory, then a file through it
        var tar = BuildNetTar()
        tar.file("Dockerfile", "FROM busybox:test\n")
        tar.symlink("out", to: outside)
        tar.file("out/\(marker)", "pwned\n")
        _ = try s.db(["build", "-"], input: tar.data, env: net.env)
        #expect(!FileManager.default.fileExists(atPath: outside + "/" + marker))
        // hard links to a host file (absolute and climbing): the host file gains no link
        try s.write("host-file", "host\n")
        for target in [s.dir + "/host-file", String(repeating: "../", count: 12) + s.dir.dropFirst() + "/host-file"] {
            var t = BuildNetTar()
            t.file("Dockerfile", "FROM busybox:test\nCOPY hl /hl\n")
            t.hardlink("hl", to: target)
            _ = try s.db(["build", "-"], input: t.data, env: net.env)
            var st = stat()
            #expect(stat(s.dir + "/host-file", &st) == 0 && st.st_nlink == 1, "a tar entry hard-linked the host file (\(target))")
        }
        // the store's build temp dir keeps nothing either
        #expect(BuildNetCrash.sessions(s).isEmpty)
    }

    // MARK: - network

    /// A RUN cannot reach a service listening on the host's 127.0.0.1, and sees only lo and its
    /// veth; with `--network host` (the explicit choice) it can, which shows the attack is real.
    @Test(.enabled(if: Sec.canRun))
    func runCannotReachHostLoopback() throws {
        let s = try SecStore()
        let net = BuildNetNet()
        defer { net.teardown() }
        let listener = try BuildNetListener(host: "127.0.0.1")
        defer { listener.close() }
        let ctx = try s.path("ctx-net")
        try s.write("Dockerfile", """
            FROM busybox:test
            ARG NONCE
            RUN echo "NONCE $NONCE"; echo STOLEN | nc -w 2 127.0.0.1 \(listener.port); \
                wget -T 2 -q -O- http://127.0.0.1:\(listener.port)/ ; \
                echo "IFACES $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' ')"; true

            """, in: ctx)
        let r = try s.db(["build", "--progress", "plain", "--build-arg", "NONCE=\(UUID())", ctx], env: net.env)
        #expect(r.status == 0, "\(r.err)")
        #expect(listener.connections == 0, "a RUN connected to the host's 127.0.0.1:\(listener.port)")
        let ifaces = r.err.split(separator: "\n").first { $0.contains(" IFACES ") }.map { String($0.split(separator: " ", maxSplits: 2)[2]) }
        #expect(ifaces?.trimmingCharacters(in: .whitespaces) == "eth0 lo", "RUN sees interfaces: \(ifaces ?? r.err)")
        #expect(net.leftovers().isEmpty, "left after the build: \(net.leftovers())")

        // --network host: the same RUN reaches the listener
        let h = try s.db(["build", "--progress", "plain", "--network", "host", "--build-arg", "NONCE=\(UUID())", ctx], env: net.env)
        #expect(h.status == 0, "\(h.err)")
        #expect(Sec.eventually(5) { listener.connections > 0 }, "--network host must stay available")
    }

    /// The RUN's namespace is on the bridge: it reaches the gateway (the way out through NAT);
    /// its resolv.conf names no loopback server; `--network none` has loopback only.
    @Test(.enabled(if: Sec.canRun))
    func runHasBridgeAndNoneIsLoopbackOnly() throws {
        let s = try SecStore()
        let net = BuildNetNet()
        defer { net.teardown() }
        let ctx = try s.path("ctx-bridge")
        // the gateway address exists once the bridge does: the listener binds it in the first RUN's
        // lifetime, so instead the RUN checks its default route and resolv.conf
        try s.write("Dockerfile", """
            FROM busybox:test
            ARG NONCE
            RUN echo "NONCE $NONCE"; echo "ROUTE $(ip route | grep default)"; \
                echo "NS $(grep -c '^nameserver 127\\.' /etc/resolv.conf) $(grep -c '^nameserver' /etc/resolv.conf)"; \
                echo "IFACES $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' ')"

            """, in: ctx)
        let r = try s.db(["build", "--progress", "plain", "--build-arg", "NONCE=\(UUID())", ctx], env: net.env)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("ROUTE default via \(net.prefix).1"), "\(r.err)")
        #expect(r.err.contains("NS 0 "), "loopback name servers reach nothing from the RUN's namespace: \(r.err)")
        #expect(!r.err.contains("NS 0 0"), "the RUN has no name server at all: \(r.err)")

        // the bridge carries traffic: a listener on the gateway address is reachable
        let listener = try BuildNetListener(host: "\(net.prefix).1")
        defer { listener.close() }
        try s.write("Dockerfile", "FROM busybox:test\nARG NONCE\nRUN echo hello | nc -w 3 \(net.prefix).1 \(listener.port)\n", in: ctx)
        let g = try s.db(["build", "--progress", "plain", "--build-arg", "NONCE=\(UUID())", ctx], env: net.env)
        #expect(g.status == 0, "\(g.err)")
        #expect(Sec.eventually(5) { listener.connections > 0 }, "the RUN could not reach the bridge's gateway")

        try s.write("Dockerfile", """
            FROM busybox:test
            ARG NONCE
            RUN echo "IFACES $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' ')"

            """, in: ctx)
        let n = try s.db(["build", "--progress", "plain", "--network", "none", "--build-arg", "NONCE=\(UUID())", ctx], env: net.env)
        #expect(n.status == 0, "\(n.err)")
        let ifaces = n.err.split(separator: "\n").first { $0.contains(" IFACES ") }.map { String($0.split(separator: " ", maxSplits: 2)[2]) }
        #expect(ifaces?.trimmingCharacters(in: .whitespaces) == "lo", "--network none: \(ifaces ?? n.err)")
        #expect(net.leftovers().isEmpty, "left after the builds: \(net.leftovers())")
    }

    // MARK: - crash safety

    /// SIGTERM and SIGINT stop the running step: no RUN process and no overlay survive, the
    /// build's temp files are gone and it exits with 128 + the signal.
    @Test(.enabled(if: Sec.canRun), arguments: [SIGTERM, SIGINT])
    func signalStopsTheRunningStep(_ sig: Int32) throws {
        let s = try SecStore()
        let net = BuildNetNet()
        defer { net.teardown() }
        let b = try BuildNetCrash.startSleepingBuild(s, net: net)
        defer { b.kill() }
        #expect(Sec.eventually(60) { BuildNetCrash.sleepers(b.seconds).count == 1 }, "the RUN never started")
        #expect(!BuildNetCrash.mounts(s).isEmpty, "expected the RUN's overlay while it runs")
        kill(b.process.processIdentifier, sig)
        #expect(Sec.eventually(30) { !b.process.isRunning }, "the build did not stop on signal \(sig)")
        if !b.process.isRunning { #expect(b.process.terminationStatus == 128 + sig, "exit status \(b.process.terminationStatus)") }
        #expect(BuildNetCrash.sleepers(b.seconds).isEmpty, "the RUN process survived the build")
        #expect(BuildNetCrash.mounts(s).isEmpty, "mounts left: \(BuildNetCrash.mounts(s))")
        #expect(BuildNetCrash.sessions(s).isEmpty, "temp files left: \(BuildNetCrash.sessions(s))")
        #expect(net.leftovers().isEmpty, "network left: \(net.leftovers())")
    }

    /// An interrupted build stores no more layers: the layer of the step before the sleeping RUN
    /// (150 MB, written in the background while the RUN starts) is still being written when
    /// SIGINT comes, and neither its blob nor its cache record reaches the store (the session's
    /// directories, which the writer reads, go with the interrupt's clean-up).
    @Test(.enabled(if: Sec.canRun))
    func anInterruptedBuildStoresNoLayerStillBeingWritten() throws {
        let s = try SecStore()
        let net = BuildNetNet()
        defer { net.teardown() }
        let b = try BuildNetCrash.startSleepingBuild(s, net: net, before: "RUN head -c 150000000 /dev/urandom > /big\n")
        defer { b.kill() }
        #expect(Sec.eventually(120) { BuildNetCrash.sleepers(b.seconds).count == 1 }, "the RUN never started")
        kill(b.process.processIdentifier, SIGINT)
        #expect(Sec.eventually(30) { !b.process.isRunning }, "the build did not stop")
        let blobs = s.root + "/blobs/sha256"
        let big = ((try? FileManager.default.contentsOfDirectory(atPath: blobs)) ?? []).filter {
            ((try? FileManager.default.attributesOfItem(atPath: blobs + "/" + $0)[.size] as? Int) ?? 0) > 100_000_000
        }
        #expect(big.isEmpty, "the interrupted build stored its 150 MB layer: \(big)")
        #expect(BuildNetCrash.sessions(s).isEmpty, "temp files left: \(BuildNetCrash.sessions(s))")
    }

    /// After SIGKILL nothing could clean up; the next build, `image gc` or `cache prune` finds
    /// the dead build's session and removes its process, overlay, namespace and files.
    @Test(.enabled(if: Sec.canRun), arguments: [["build"], ["image", "gc"], ["cache", "prune"]])
    func leftoversOfAKilledBuildAreReaped(_ cleaner: [String]) throws {
        let s = try SecStore()
        let net = BuildNetNet()
        defer { net.teardown() }
        let b = try BuildNetCrash.startSleepingBuild(s, net: net)
        defer { b.kill() }
        #expect(Sec.eventually(60) { BuildNetCrash.sleepers(b.seconds).count == 1 }, "the RUN never started")
        kill(b.process.processIdentifier, SIGKILL)
        b.process.waitUntilExit()
        // what SIGKILL leaves
        #expect(BuildNetCrash.sleepers(b.seconds).count == 1)
        #expect(!BuildNetCrash.mounts(s).isEmpty)
        let leftNamespaces = net.leftovers().filter { $0.hasPrefix("dockbuild-bld") }
        #expect(!leftNamespaces.isEmpty)

        var args = cleaner
        if cleaner == ["build"] {
            let ctx = try s.path("ctx-after")
            try s.write("Dockerfile", "FROM busybox:test\nRUN true\n", in: ctx)
            args += [ctx]
        }
        let r = try s.db(args, env: net.env)
        #expect(r.status == 0, "\(r.err)")
        #expect(Sec.eventually(10) { BuildNetCrash.sleepers(b.seconds).isEmpty }, "the dead build's RUN still runs")
        #expect(BuildNetCrash.mounts(s).isEmpty, "mounts left: \(BuildNetCrash.mounts(s))")
        #expect(BuildNetCrash.sessions(s).isEmpty, "temp files left: \(BuildNetCrash.sessions(s))")
        #expect(net.leftovers().isEmpty, "network left: \(net.leftovers())")
        let namespaces = (try? Sec.run(["ip", "netns", "list"]).out) ?? ""
        for n in leftNamespaces { #expect(!namespaces.contains(n), "namespace \(n) survived") }
    }

    /// A live build's session is not touched by another process's cleanup.
    @Test(.enabled(if: Sec.canRun))
    func liveBuildIsNotReaped() throws {
        let s = try SecStore()
        let net = BuildNetNet()
        defer { net.teardown() }
        let b = try BuildNetCrash.startSleepingBuild(s, net: net)
        defer { b.kill() }
        #expect(Sec.eventually(60) { BuildNetCrash.sleepers(b.seconds).count == 1 }, "the RUN never started")
        let r = try s.db(["image", "gc"], env: net.env)
        #expect(r.status == 0, "\(r.err)")
        #expect(BuildNetCrash.sleepers(b.seconds).count == 1, "gc killed a running build's step")
        #expect(b.process.isRunning)
    }
}

// MARK: - helpers

/// A tar stream written by hand (ustar), so entries can be what no well-behaved tar writes.
struct BuildNetTar {
    private(set) var bytes: [UInt8] = []

    var data: Data { Data(bytes + [UInt8](repeating: 0, count: 1024)) }

    mutating func file(_ name: String, _ text: String, mode: UInt32 = 0o644) {
        let body = Array(text.utf8)
        header(name, type: "0", mode: mode, size: body.count)
        bytes += body + [UInt8](repeating: 0, count: (512 - body.count % 512) % 512)
    }

    mutating func symlink(_ name: String, to target: String) { header(name, type: "2", mode: 0o777, link: target) }
    mutating func hardlink(_ name: String, to target: String) { header(name, type: "1", mode: 0o644, link: target) }
    mutating func device(_ name: String, char: Bool, major: Int, minor: Int) {
        header(name, type: char ? "3" : "4", mode: 0o666, major: major, minor: minor)
    }
    mutating func fifo(_ name: String) { header(name, type: "6", mode: 0o644) }

    private mutating func header(_ name: String, type: Character, mode: UInt32, size: Int = 0, link: String = "",
                                 major: Int = 0, minor: Int = 0) {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, _ off: Int, _ len: Int) { for (i, b) in s.utf8.prefix(len).enumerated() { h[off + i] = b } }
        func octal(_ v: Int, _ off: Int, _ len: Int) { put(String(repeating: "0", count: max(0, len - 1 - String(v, radix: 8).count)) + String(v, radix: 8), off, len - 1) }
        var n = name
        if n.utf8.count > 100, let cut = n.lastIndex(of: "/") {
            put(String(n[..<cut]), 345, 155)
            n = String(n[n.index(after: cut)...])
        }
        put(n, 0, 100)
        octal(Int(mode), 100, 8); octal(0, 108, 8); octal(0, 116, 8)
        octal(size, 124, 12); octal(1_700_000_000, 136, 12)
        put(String(type), 156, 1); put(link, 157, 100)
        put("ustar\u{0}00", 257, 8); put("root", 265, 32); put("root", 297, 32)
        octal(major, 329, 8); octal(minor, 337, 8)
        for i in 148..<156 { h[i] = 0x20 }
        octal(h.reduce(0) { $0 + Int($1) }, 148, 8)
        bytes += h
    }
}

/// A bridge and subnet of this test's own, and what the builds may leave of them.
final class BuildNetNet: @unchecked Sendable {
    let bridge: String
    let prefix: String

    init() {
        let r = UInt32.random(in: 0..<0xFFFF)
        bridge = "bnt" + String(format: "%04x", r)
        prefix = "10.\(232 + Int(r % 8)).\(Int(r / 8) % 250 + 2)"
    }

    var env: [String: String] { Self.env(self) }

    /// The environment for a build on this bridge.
    static func env(_ n: BuildNetNet) -> [String: String] {
        ["DOCKBUILD_BRIDGE": n.bridge, "DOCKBUILD_SUBNET": "\(n.prefix).0/24"]
    }

    /// Build veths on this bridge, build namespaces, and leases still held.
    func leftovers() -> [String] {
        var out: [String] = []
        let links = (try? Sec.run(["ip", "-o", "link", "show", "master", bridge]).out) ?? ""
        for l in links.split(separator: "\n") where l.contains("vethbld") { out.append(String(l.prefix(60))) }
        let ns = (try? Sec.run(["ip", "netns", "list"]).out) ?? ""
        for l in ns.split(separator: "\n") where l.hasPrefix("dockbuild-bld") {
            // only namespaces whose veth sat on this bridge are ours; a namespace without veth is
            // ours when its lease is in this bridge's lease dir
            let name = String(l.split(separator: " ")[0])
            if leases().contains(where: { $0.hasPrefix(String(name.dropFirst("dockbuild-".count))) }) { out.append(name) }
        }
        out += leases().filter { $0.hasPrefix("bld") }
        return out
    }

    /// Lease file contents of this bridge ("ID PID START").
    func leases() -> [String] {
        let dir = "/run/dockbuild/ipam/\(bridge)"
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { !$0.hasPrefix(".") }
            .compactMap { try? String(contentsOfFile: dir + "/" + $0, encoding: .utf8) }
    }

    func teardown() {
        let subnet = "\(prefix).0/24"
        let rules = [["-t", "nat", "POSTROUTING", "-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE"],
                     ["-t", "filter", "FORWARD", "-i", bridge, "-j", "ACCEPT"],
                     ["-t", "filter", "FORWARD", "-o", bridge, "-j", "ACCEPT"]]
        for r in rules {
            var n = 0
            while n < 10, (try? Sec.run(["iptables", "-w"] + Array(r[0...1]) + ["-D", r[2]] + Array(r[3...])))?.status == 0 { n += 1 }
        }
        _ = try? Sec.run(["ip", "link", "del", bridge])
        try? FileManager.default.removeItem(atPath: "/run/dockbuild/ipam/\(bridge)")
    }
}

/// A TCP listener on the host that counts the connections it accepts.
final class BuildNetListener: @unchecked Sendable {
    let fd: Int32
    let port: UInt16
    private let lock = NSLock()
    private var count = 0
    private var closed = false

    init(host: String) throws {
        let sock = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        inet_pton(AF_INET, host, &addr.sin_addr)
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sock, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0, listen(sock, 16) == 0 else {
            let e = errno
            Glibc.close(sock)
            throw POSIXError(POSIXErrorCode(rawValue: e) ?? .EIO)
        }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(sock, $0, &len) } }
        fd = sock
        port = UInt16(bigEndian: bound.sin_port)
        Thread.detachNewThread { [self] in
            while true {
                var p = pollfd(fd: sock, events: Int16(POLLIN), revents: 0)
                let n = poll(&p, 1, 200)
                if isClosed { return }
                if n > 0 {
                    let c = accept(sock, nil, nil)
                    if c >= 0 { lock.lock(); count += 1; lock.unlock(); Glibc.close(c) }
                }
            }
        }
    }

    private var isClosed: Bool { lock.lock(); defer { lock.unlock() }; return closed }
    var connections: Int { lock.lock(); defer { lock.unlock() }; return count }

    func close() {
        lock.lock(); closed = true; lock.unlock()
        usleep(300_000)
        Glibc.close(fd)
    }
}

/// A build running `RUN sleep N` in the background, and what a dead build leaves behind.
enum BuildNetCrash {
    final class Running: @unchecked Sendable {
        let process: Process
        let seconds: Int
        let store: SecStore
        let env: [String: String]
        init(_ p: Process, _ s: Int, _ store: SecStore, _ env: [String: String]) { process = p; seconds = s; self.store = store; self.env = env }
        /// Kills the build if it still runs and removes what it left (network namespaces included).
        func kill() {
            if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
            _ = try? store.db(["image", "gc"], env: env)
            for pid in BuildNetCrash.sleepers(seconds) { Glibc.kill(pid, SIGKILL) }
        }
    }

    /// Starts `dockbuild build` whose RUN sleeps for a number of seconds unique to this test.
    static func startSleepingBuild(_ s: SecStore, net: BuildNetNet, before: String = "") throws -> Running {
        let seconds = Int.random(in: 100_000...999_999)
        let ctx = try s.path("ctx-sleep-\(seconds)")
        try s.write("Dockerfile", "FROM busybox:test\n\(before)RUN sleep \(seconds)\n", in: ctx)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Sec.binary)
        p.arguments = ["build", "--root", s.root, "--progress", "plain", ctx]
        var env = ProcessInfo.processInfo.environment
        env.merge(net.env) { $1 }
        p.environment = env
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        return Running(p, seconds, s, net.env)
    }

    /// Processes running `sleep SECONDS`.
    static func sleepers(_ seconds: Int) -> [Int32] {
        let want = "sleep\u{0}\(seconds)"
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { name in
            guard let pid = Int32(name), let d = FileManager.default.contents(atPath: "/proc/\(name)/cmdline") else { return nil }
            let text = String(decoding: d, as: UTF8.self)
            return text.hasPrefix(want) && (text.count == want.count || text.dropFirst(want.count).first == "\u{0}") ? pid : nil
        }
    }

    /// Mount points under the store, as the host sees them.
    static func mounts(_ s: SecStore) -> [String] {
        guard let m = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return [] }
        return m.split(separator: "\n").compactMap { l in
            let f = l.split(separator: " ")
            return f.count > 4 && f[4].hasPrefix(s.root + "/") ? String(f[4]) : nil
        }
    }

    /// Build session directories left in the store.
    static func sessions(_ s: SecStore) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: s.root + "/build/tmp")) ?? []).filter { $0.hasPrefix("session-") }
    }
}
