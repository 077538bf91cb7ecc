import Foundation
import Synchronization
import Testing
@testable import Containers

/// `dockbuild network create|ls|inspect|rm` and `run --network NAME --network-alias A`: a
/// user-defined bridge whose containers reach each other by name, including names of
/// containers started after them.
@Suite(.serialized) struct NetworkCLITests {
    @Test(.enabled(if: Scenario.canRun)) func containersResolveEachOtherByNameAndAlias() throws {
        let s = try Scenario(151)
        defer { s.cleanup() }
        try #require(FileManager.default.isExecutableFile(atPath: s.binary), "\(s.binary) is missing: run `swift build` first")
        try s.makeBusyboxImage()
        let id = try s.ok(["network", "create", "--label", "team=db", "backnet"])
        #expect(id.count == 64)
        #expect(try s.db(["network", "create", "backnet"]).status != 0)
        #expect(try s.db(["network", "create", "host"]).status != 0)
        #expect(try s.ok(["network", "ls", "-q"]) == "backnet")
        #expect(try s.ok(["network", "ls", "-q", "--filter", "label=team=web"]) == "")
        let doc = try s.ok(["network", "inspect", "backnet"])
        let bridge = "br-\(id.prefix(12))"
        #expect(doc.contains("\"\(bridge)\"") && doc.contains("\"team\": \"db\""), "\(doc)")
        #expect(FileManager.default.fileExists(atPath: "/sys/class/net/\(bridge)"))

        // `first` starts alone; `second` (alias db) comes later: each resolves the other
        _ = try s.ok(["run", "-d", "--network", "backnet", "--name", "first", "busybox:test", "sleep", "300"])
        _ = try s.ok(["run", "-d", "--network", "backnet", "--name", "second", "--network-alias", "db", "busybox:test", "sleep", "300"])
        for name in ["second", "db"] {
            let r = try s.db(["exec", "first", "ping", "-c", "1", "-W", "3", name])
            #expect(r.status == 0, "first -> \(name): \(r.out) \(r.err)")
        }
        #expect(try s.db(["exec", "second", "ping", "-c", "1", "-W", "3", "first"]).status == 0)
        let ip = try s.ok(["inspect", "--format", "{{(index .NetworkSettings.Networks \"backnet\").IPAddress}}", "second"])
        #expect(ip.hasPrefix("10.") && !ip.hasPrefix("10.89."), "\(ip)")
        #expect(try s.ok(["exec", "first", "cat", "/etc/hosts"]).contains("\(ip)\tdb"))
        // a container on the default bridge does not see the network's names
        #expect(try s.db(["run", "--rm", "busybox:test", "ping", "-c", "1", "-W", "1", "second"]).status != 0)
        // a stopped container's name leaves the others' hosts files; a start brings it back
        _ = try s.ok(["stop", "-t", "0", "second"])
        #expect(!(try s.ok(["exec", "first", "cat", "/etc/hosts"]).contains("\tsecond")))
        _ = try s.ok(["start", "second"])
        let again = try s.db(["exec", "first", "ping", "-c", "1", "-W", "3", "second"])
        let hostsNow = try s.ok(["exec", "first", "cat", "/etc/hosts"])
        #expect(again.status == 0, "\(again.out) \(again.err) \(hostsNow)")
        // --network-alias needs a user-defined network; an unknown network is refused
        #expect(try s.db(["create", "--network-alias", "x", "busybox:test"]).err.contains("user-defined network"))
        #expect(try s.db(["create", "--network", "nosuch", "busybox:test"]).status != 0)
        // in use: not removed; unused: removed with its bridge
        let busy = try s.db(["network", "rm", "backnet"])
        #expect(busy.status != 0 && busy.err.contains("in use"), "\(busy.err)")
        _ = try s.ok(["rm", "-f", "first", "second"])
        #expect(try s.ok(["network", "rm", "backnet"]) == "backnet")
        #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/\(bridge)"))
        #expect(try s.ok(["network", "ls", "-q"]) == "")
    }

    /// The embedded DNS server at 127.0.0.11 (docker's): `nslookup` (which asks DNS, not
    /// /etc/hosts) finds containers of the network by name and alias, one started later too;
    /// other names go to the upstream (a fake one on the host's loopback here); malformed
    /// datagrams do not stop it; its sockets are the monitor's, not the container's.
    @Test(.enabled(if: Scenario.canRun)) func embeddedDNSAnswersNamesOfTheNetwork() throws {
        let s = try Scenario(133)
        defer { s.cleanup() }
        try #require(FileManager.default.isExecutableFile(atPath: s.binary), "\(s.binary) is missing: run `swift build` first")
        try s.makeBusyboxImage()
        let upstream = try FakeUpstream()
        defer { upstream.stop() }
        let env = ["DOCKBUILD_DNS_UPSTREAM": "127.0.0.1:\(upstream.port)"]
        _ = try s.ok(["network", "create", "dnsnet"])
        _ = try s.ok(["run", "-d", "--network", "dnsnet", "--name", "asker", "busybox:test", "sleep", "300"], env: env)
        let resolv = try s.ok(["exec", "asker", "cat", "/etc/resolv.conf"])
        #expect(resolv.contains("nameserver 127.0.0.11\n") && resolv.contains("options ndots:0"), "\(resolv)")
        #expect(resolv.split(separator: "\n").filter { $0.hasPrefix("nameserver") } == ["nameserver 127.0.0.11"], "\(resolv)")
        func lookup(_ name: String, type: String = "a") throws -> Scenario.Result {
            try s.db(["exec", "asker", "nslookup", "-type=\(type)", name, "127.0.0.11"])
        }
        // peers started after the asker: by name, alias (any case, with a trailing dot), and
        // an alias two containers have resolves to both
        _ = try s.ok(["run", "-d", "--network", "dnsnet", "--name", "peer", "--network-alias", "cache", "busybox:test", "sleep", "300"], env: env)
        _ = try s.ok(["run", "-d", "--network", "dnsnet", "--name", "peer2", "--network-alias", "Cache", "busybox:test", "sleep", "300"], env: env)
        let ip = try s.ok(["inspect", "--format", "{{(index .NetworkSettings.Networks \"dnsnet\").IPAddress}}", "peer"])
        let ip2 = try s.ok(["inspect", "--format", "{{(index .NetworkSettings.Networks \"dnsnet\").IPAddress}}", "peer2"])
        for name in ["peer", "PEER", "peer.", "asker"] {
            let r = try lookup(name)
            #expect(r.status == 0 && r.out.contains("Address: 10."), "\(name): \(r.out) \(r.err)")
        }
        #expect(try lookup("peer").out.contains("Address: \(ip)\n"))
        let both = try lookup("cache.")
        #expect(both.out.contains("Address: \(ip)\n") && both.out.contains("Address: \(ip2)\n"), "\(both.out)")
        // AAAA of a known name: no record, no error
        let v6 = try lookup("peer", type: "aaaa")
        #expect(v6.status == 0 && !v6.out.contains("can't find"), "\(v6.out) \(v6.err)")
        // other names go to the upstream: its answer, its NXDOMAIN, quickly
        let up = try lookup("upstream.example")
        #expect(up.status == 0 && up.out.contains("Address: 192.0.2.7"), "\(up.out) \(up.err)")
        let started = Date()
        let unknown = try lookup("nosuch.example")
        #expect(unknown.status != 0 && unknown.out.contains("NXDOMAIN"), "\(unknown.out) \(unknown.err)")
        #expect(Date().timeIntervalSince(started) < 5)
        // malformed datagrams (TFTP requests: a short one, a long one) do not stop it
        _ = try s.db(["exec", "asker", "sh", "-c",
                      "timeout 1 tftp -g -r x -l /tmp/o 127.0.0.11 53; timeout 1 tftp -g -r \"$(head -c 400 /dev/urandom | tr -dc a-z)\" -l /tmp/o 127.0.0.11 53; true"])
        #expect(try lookup("peer").out.contains("Address: \(ip)\n"))
        // over TCP too (two length bytes, then the query for "peer"), and PTR for an address
        let tcp = try s.ok(["exec", "asker", "sh", "-c",
                            "printf '\\000\\026\\022\\064\\001\\000\\000\\001\\000\\000\\000\\000\\000\\000\\004peer\\000\\000\\001\\000\\001' | nc -w 3 127.0.0.11 53 | od -An -tx1 | tr -d ' \\n'"])
        let ipHex = ip.split(separator: ".").compactMap { UInt8($0) }.map { String(format: "%02x", $0) }.joined()
        #expect(tcp.hasPrefix("00") && tcp.contains("12348580") && tcp.hasSuffix("0004" + ipHex), "\(tcp)")
        #expect(try s.ok(["exec", "asker", "nslookup", ip, "127.0.0.11"]).contains("name = peer"))
        // the sockets are the monitor's: the container's process has none
        #expect(!(try s.ok(["exec", "asker", "ls", "-l", "/proc/1/fd"]).contains("socket")))
        // a container in the asker's namespace asks the asker's server
        let joined = try s.db(["run", "--rm", "--network", "container:asker", "busybox:test", "sh", "-c", "cat /etc/resolv.conf; nslookup peer"])
        #expect(joined.out.contains("nameserver 127.0.0.11") && joined.out.contains("Address: \(ip)\n"), "\(joined.out) \(joined.err)")
        // a stopped peer's name goes at once
        _ = try s.ok(["stop", "-t", "0", "peer2"])
        let one = try lookup("cache")
        #expect(one.out.contains("Address: \(ip)\n") && !one.out.contains("Address: \(ip2)\n"), "\(one.out)")
        // no upstream answering: SERVFAIL, quickly
        _ = try s.ok(["run", "-d", "--network", "dnsnet", "--name", "alone", "busybox:test", "sleep", "300"], env: ["DOCKBUILD_DNS_UPSTREAM": ""])
        let t0 = Date()
        let none = try s.db(["exec", "alone", "nslookup", "nosuch.example", "127.0.0.11"])
        #expect(none.status != 0 && none.out.contains("SERVFAIL") && Date().timeIntervalSince(t0) < 5, "\(none.out)")
        #expect(try s.db(["exec", "alone", "nslookup", "peer", "127.0.0.11"]).out.contains("Address: \(ip)\n"))
        // the default bridge has no embedded DNS
        #expect(!(try s.ok(["run", "--rm", "busybox:test", "cat", "/etc/resolv.conf"]).contains("127.0.0.11")))
    }
}

/// A name server on the host's loopback for the embedded DNS server to forward to: it answers
/// `upstream.example` with 192.0.2.7 and NXDOMAIN to anything else.
final class FakeUpstream: @unchecked Sendable {
    let fd: Int32
    let port: Int
    let stopped = Mutex(false)
    let done = DispatchSemaphore(value: 0)

    init() throws {
        let sock = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &a) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sock, $0, len) == 0 ? getsockname(sock, $0, &len) : -1 }
        }
        try #require(sock >= 0 && rc == 0)
        fd = sock
        port = Int(UInt16(bigEndian: a.sin_port))
        let t = Thread { [self] in serve() }
        t.start()
    }

    private func serve() {
        defer { done.signal() }
        var buf = [UInt8](repeating: 0, count: 4096)
        while !stopped.withLock({ $0 }) {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 100) > 0 else { continue }
            var from = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = withUnsafeMutablePointer(to: &from) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buf, buf.count, 0, $0, &len) } }
            guard n > 0, let q = DNSMessage.parseQuery(Array(buf[0..<n])) else { continue }
            let known = q.name == "upstream.example"
            let r = DNSMessage.response(to: q, rcode: known ? .noError : .nxDomain,
                                        answers: known && q.type == DNSMessage.typeA ? [[192, 0, 2, 7]] : [])
            _ = withUnsafePointer(to: &from) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, r, r.count, 0, $0, len) } }
        }
    }

    func stop() {
        stopped.withLock { $0 = true }
        done.wait()
        close(fd)
    }
}
