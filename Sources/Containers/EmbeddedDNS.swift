import Foundation
import SystemSupport

/// docker's embedded DNS server, without a daemon: the monitor of a container on a user-defined
/// network listens on 127.0.0.11:53 (UDP and TCP) inside the container's network namespace and
/// answers the names of the running containers of its networks (names, service names, aliases:
/// the entries its /etc/hosts gets); other names go to the host's name servers, asked from the
/// host's namespace. The sockets are the monitor's (close-on-exec): they go with it.
final class EmbeddedDNS: Sendable {
    /// The address containers ask (docker's).
    static let address = "127.0.0.11"
    /// A name server to forward to.
    struct Upstream: Sendable, Equatable, CustomStringConvertible {
        var ip: String
        var port: UInt16
        var description: String { ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)" }
    }

    /// The most forwarded queries and TCP connections served at once (more are dropped: the
    /// client retries).
    static let maxInFlight = 32
    /// How long one upstream has to answer, in milliseconds.
    static let upstreamTimeoutMS: Int32 = 2000

    private let udp: Int32
    private let tcp: Int32
    private let wake: (Int32, Int32)
    private let upstreams: [Upstream]
    private let hostsPath: String
    private let entries: @Sendable () -> [String]
    private let done = DispatchSemaphore(value: 0)

    private struct State {
        var closed = false
        var inFlight = 0
        /// name -> addresses, with the hosts file's (mtime, size, inode) and the time it was read.
        var table = Table()
        var key: [Int] = []
        var readAt = 0.0
    }
    private let state = Locked(State())

    /// Starts the server in the network namespace at `netns`. `entries` gives the `HOST:IP`
    /// names to answer (read again when `hostsPath`, the container's hosts file, changes, and
    /// at least every second).
    static func start(netns: String, hostsPath: String, upstreams: [Upstream],
                      entries: @escaping @Sendable () -> [String]) throws -> EmbeddedDNS {
        let (u, t) = try bindInNamespace(netns)
        guard let p = Sys.pipeCloexec() else {
            let e = errno; close(u); close(t)
            throw ContainersError.system("embedded DNS: pipe", errno: e)
        }
        let dns = EmbeddedDNS(udp: u, tcp: t, wake: p, upstreams: upstreams, hostsPath: hostsPath, entries: entries)
        let thread = Thread { dns.serve() }
        thread.name = "dns"
        thread.start()
        return dns
    }

    private init(udp: Int32, tcp: Int32, wake: (Int32, Int32), upstreams: [Upstream], hostsPath: String,
                 entries: @escaping @Sendable () -> [String]) {
        self.udp = udp; self.tcp = tcp; self.wake = wake
        self.upstreams = upstreams; self.hostsPath = hostsPath; self.entries = entries
    }

    /// Stops serving and closes the sockets (waits a second at most for the serving thread).
    func stop() {
        let running = state.withLock { s in
            if !s.closed { _ = write(wake.1, [UInt8(1)], 1) }
            return !s.closed
        }
        if running { _ = done.wait(timeout: .now() + 1) }
    }

    // MARK: - sockets in the container's namespace

    /// setns(2), which the Glibc module does not export (it is a _GNU_SOURCE declaration).
    private typealias SetnsFunction = @convention(c) (Int32, Int32) -> Int32
    private static let cloneNewNet: Int32 = 0x4000_0000

    /// Binds UDP and TCP 127.0.0.11:53 in the namespace at `path`, from a thread of its own that
    /// enters the namespace and comes back (a thread's namespace is its own; the sockets stay in
    /// the namespace they were made in).
    static func bindInNamespace(_ path: String) throws -> (Int32, Int32) {
        guard let sym = dlsym(nil, "setns") else {
            throw ContainersError.network("embedded DNS: setns is not available in this C library")
        }
        let setns = unsafeBitCast(sym, to: SetnsFunction.self)
        let result = Locked<Result<[Int32], ContainersError>?>(nil)
        let finished = DispatchSemaphore(value: 0)
        let t = Thread {
            defer { finished.signal() }
            let home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
            let target = open(path, O_RDONLY | O_CLOEXEC)
            defer { if home >= 0 { close(home) }; if target >= 0 { close(target) } }
            guard home >= 0, target >= 0, setns(target, cloneNewNet) == 0 else {
                let e = errno
                result.withLock { $0 = .failure(.system("embedded DNS: cannot enter the container's network namespace \(path)", errno: e)) }
                return
            }
            var fds: [Int32] = []
            var failure: ContainersError?
            for type in [SOCK_DGRAM, SOCK_STREAM] {
                do { fds.append(try bindLocal(type: Int32(type.rawValue))) } catch let e as ContainersError { failure = e; break } catch {}
            }
            // back to the host's namespace (the thread ends anyway)
            _ = setns(home, cloneNewNet)
            if let failure {
                for fd in fds { close(fd) }
                result.withLock { $0 = .failure(failure) }
            } else {
                result.withLock { $0 = .success(fds) }
            }
        }
        t.start()
        finished.wait()
        switch result.current {
        case .success(let fds) where fds.count == 2: return (fds[0], fds[1])
        case .failure(let e): throw e
        default: throw ContainersError.network("embedded DNS: the sockets could not be made")
        }
    }

    private static func bindLocal(type: Int32) throws -> Int32 {
        let fd = socket(AF_INET, type | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw ContainersError.system("embedded DNS: socket", errno: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var a = Sock.inetAddr(address, 53)
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0, type != Int32(SOCK_STREAM.rawValue) || listen(fd, 64) == 0 else {
            let e = errno; close(fd)
            throw ContainersError.system("embedded DNS: cannot listen on \(address):53 in the container's network namespace", errno: e)
        }
        return fd
    }

    // MARK: - serving

    private func serve() {
        defer {
            state.withLock { s in
                s.closed = true
                close(udp); close(tcp); close(wake.0); close(wake.1)
            }
            done.signal()
        }
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            var pfds = [pollfd(fd: udp, events: Int16(POLLIN), revents: 0), pollfd(fd: tcp, events: Int16(POLLIN), revents: 0),
                        pollfd(fd: wake.0, events: Int16(POLLIN), revents: 0)]
            let n = poll(&pfds, 3, -1)
            if n < 0 { if errno == EINTR { continue }; return }
            if pfds[2].revents != 0 { return }
            if pfds[0].revents & Int16(POLLIN) != 0 {
                // a burst: at most 64 datagrams before looking at the others
                for _ in 0..<64 {
                    var from = sockaddr_in()
                    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
                    let got = withUnsafeMutablePointer(to: &from) { p in
                        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(udp, &buf, buf.count, Int32(MSG_DONTWAIT), $0, &len) }
                    }
                    if got < 0 { break }
                    handleDatagram(Array(buf[0..<got]), from: from)
                }
            }
            if pfds[1].revents & Int16(POLLIN) != 0 {
                let c = Sys.acceptCloexec(tcp)
                if c >= 0 {
                    if take() {
                        let t = Thread { [self] in serveTCP(c); release() }
                        t.start()
                    } else {
                        close(c)
                    }
                }
            }
        }
    }

    /// Takes one of the `maxInFlight` places; false when all are taken (or it stopped).
    private func take() -> Bool {
        state.withLock { s in
            guard !s.closed, s.inFlight < Self.maxInFlight else { return false }
            s.inFlight += 1
            return true
        }
    }

    private func release() { state.withLock { $0.inFlight -= 1 } }

    private func sendUDP(_ reply: [UInt8], to client: sockaddr_in) {
        var to = client
        state.withLock { s in
            guard !s.closed else { return }
            _ = withUnsafePointer(to: &to) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(udp, reply, reply.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL), $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    private func handleDatagram(_ packet: [UInt8], from client: sockaddr_in) {
        switch answer(packet, maxSize: 512) {
        case .reply(let r): sendUDP(r, to: client)
        case .ignore: break
        case .forward(let q):
            guard take() else { return }
            let t = Thread { [self] in
                sendUDP(forwarded(packet, q), to: client)
                release()
            }
            t.start()
        }
    }

    /// One query over TCP (two length bytes, then the message), 3 seconds at most.
    private func serveTCP(_ c: Int32) {
        defer { close(c) }
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let flags = fcntl(c, F_GETFL)
        if flags >= 0 { _ = fcntl(c, F_SETFL, flags & ~Int32(O_NONBLOCK)) }
        guard let lenBytes = Sock.readFull(c, 2) else { return }
        let len = Int(lenBytes[lenBytes.startIndex]) << 8 | Int(lenBytes[lenBytes.startIndex + 1])
        guard len >= 12, let body = Sock.readFull(c, len) else { return }
        let packet = [UInt8](body)
        let reply: [UInt8]
        switch answer(packet, maxSize: 65535) {
        case .reply(let r): reply = r
        case .ignore: return
        case .forward(let q): reply = forwarded(packet, q)
        }
        _ = Sock.writeAll(c, Data([UInt8(reply.count >> 8 & 0xff), UInt8(reply.count & 0xff)] + reply))
    }

    enum Outcome: Equatable {
        case reply([UInt8])
        case forward(DNSMessage.Query)
        case ignore
    }

    /// What to do with `packet`: answer it (a name of the networks, or an error), forward it, or
    /// drop it (not a query).
    func answer(_ packet: [UInt8], maxSize: Int) -> Outcome {
        guard let q = DNSMessage.parseQuery(packet) else {
            return DNSMessage.headerOnly(packet, rcode: .formErr).map(Outcome.reply) ?? .ignore
        }
        guard q.opcode == 0 else { return .reply(DNSMessage.response(to: q, rcode: .notImp)) }
        guard q.qclass == DNSMessage.classIN || q.qclass == DNSMessage.typeANY, let name = q.name else { return .forward(q) }
        let table = names()
        if let addresses = table.addresses[name] {
            let a = q.type == DNSMessage.typeA || q.type == DNSMessage.typeANY ? addresses : []
            return .reply(DNSMessage.response(to: q, rcode: .noError, answers: a, maxSize: maxSize))
        }
        if q.type == DNSMessage.typePTR, let ip = DNSMessage.reverseIPv4(name) {
            // the first name with that address (a container's own name comes before its aliases)
            if let owner = table.owners[ip.split(separator: ".").compactMap { UInt8($0) }], let encoded = DNSMessage.encodeName(DNSMessage.labels(owner)) {
                return .reply(DNSMessage.response(to: q, rcode: .noError, answers: [encoded], type: DNSMessage.typePTR, maxSize: maxSize))
            }
        }
        return .forward(q)
    }

    /// name -> addresses of the entries, read again when the hosts file changed or a second passed.
    private func names() -> Table {
        var st = stat()
        let key = stat(hostsPath, &st) == 0 ? [st.st_mtim.tv_sec, st.st_mtim.tv_nsec, Int(st.st_size), Int(st.st_ino)] : []
        let now = Time.monotonic()
        if let cached = state.withLock({ s in s.key == key && !key.isEmpty && now - s.readAt < 1 ? s.table : nil }) { return cached }
        let table = Self.table(entries())
        state.withLock { s in s.table = table; s.key = key; s.readAt = now }
        return table
    }

    /// The names answered: lower-case name -> IPv4 addresses (in entry order, without repeats),
    /// and address -> its first name.
    struct Table: Sendable {
        var addresses: [String: [[UInt8]]] = [:]
        var owners: [[UInt8]: String] = [:]
    }

    /// The table of `HOST:IP` entries.
    static func table(_ entries: [String]) -> Table {
        var out = Table()
        for e in entries {
            guard let sep = e.lastIndex(of: ":") else { continue }
            let bytes = e[e.index(after: sep)...].split(separator: ".").compactMap { UInt8($0) }
            guard bytes.count == 4 else { continue }
            let name = e[..<sep].lowercased()
            if !(out.addresses[name]?.contains(bytes) ?? false) { out.addresses[name, default: []].append(bytes) }
            if out.owners[bytes] == nil { out.owners[bytes] = name }
        }
        return out
    }

    // MARK: - forwarding

    /// The upstreams' answer to `packet` (the first that answers), or SERVFAIL.
    private func forwarded(_ packet: [UInt8], _ q: DNSMessage.Query) -> [UInt8] {
        for u in upstreams {
            if let r = Self.ask(u, packet, id: q.id) { return r }
        }
        return DNSMessage.response(to: q, rcode: .servFail)
    }

    /// Sends `packet` to `u` over UDP from the host's namespace; its answer, or nil (refused, or
    /// no answer in `upstreamTimeoutMS`).
    static func ask(_ u: Upstream, _ packet: [UInt8], id: UInt16) -> [UInt8]? {
        let v6 = u.ip.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var rc: Int32 = -1
        if v6 {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = u.port.bigEndian
            guard inet_pton(AF_INET6, u.ip, &a.sin6_addr) == 1 else { return nil }
            rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var a = Sock.inetAddr(u.ip, Int(u.port))
            rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        guard rc == 0, send(fd, packet, packet.count, Int32(MSG_NOSIGNAL)) == packet.count else { return nil }
        let deadline = Time.monotonic() + Double(upstreamTimeoutMS) / 1000
        var buf = [UInt8](repeating: 0, count: 65535)
        while true {
            let left = Int32((deadline - Time.monotonic()) * 1000)
            guard left > 0 else { return nil }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let n = poll(&pfd, 1, left)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            let got = recv(fd, &buf, buf.count, Int32(MSG_DONTWAIT))
            if got < 0 { if errno == EINTR || errno == EAGAIN { continue }; return nil }   // ECONNREFUSED: none there
            // its answer to this query (same id, QR set); anything else is ignored
            if got >= 12, UInt16(buf[0]) << 8 | UInt16(buf[1]) == id, buf[2] & 0x80 != 0 { return Array(buf[0..<got]) }
        }
    }

    /// The name servers to forward to: the container's `--dns` ones; else
    /// `$DOCKBUILD_DNS_UPSTREAM` (`IP`, `IP:PORT` or `[IPv6]:PORT`, comma-separated; empty for
    /// none); else systemd-resolved's upstream list when there is one, else the host's
    /// /etc/resolv.conf (loopback servers included: the forwarder runs in the host's namespace).
    static func upstreams(dns: [String], environment: [String: String] = ProcessInfo.processInfo.environment) -> [Upstream] {
        if !dns.isEmpty { return dns.compactMap { parseUpstream($0) } }
        if let list = environment["DOCKBUILD_DNS_UPSTREAM"] {
            return list.split(whereSeparator: { $0 == "," || $0 == " " }).compactMap { parseUpstream(String($0)) }
        }
        let file = FileManager.default.fileExists(atPath: "/run/systemd/resolve/resolv.conf") ? "/run/systemd/resolve/resolv.conf" : "/etc/resolv.conf"
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line -> Upstream? in
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count >= 2, f[0] == "nameserver" else { return nil }
            return parseUpstream(String(f[1]))
        }
    }

    /// `IP`, `IP:PORT` or `[IPv6]:PORT` (port 53 by default); nil for anything else.
    static func parseUpstream(_ s: String) -> Upstream? {
        var host = s, port: UInt16 = 53
        if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
            host = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let p = UInt16(rest.dropFirst()), p > 0 else { return nil }
                port = p
            }
        } else if s.filter({ $0 == ":" }).count == 1, let sep = s.firstIndex(of: ":") {
            guard let p = UInt16(s[s.index(after: sep)...]), p > 0 else { return nil }
            host = String(s[..<sep]); port = p
        }
        var a4 = in_addr(), a6 = in6_addr()
        guard inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1 else { return nil }
        return Upstream(ip: host, port: port)
    }
}
