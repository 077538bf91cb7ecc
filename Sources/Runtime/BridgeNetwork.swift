import Foundation
import Synchronization
import SystemSupport
#if canImport(Glibc)
import Glibc
#endif

/// The `bridge` network shared by containers and build steps: a Linux bridge with a private
/// /24, one veth pair and network namespace per attachment, MASQUERADE for outbound traffic.
/// It lives in the Runtime library so that both Containers and Build use one implementation
/// (one address pool, one set of iptables rules). Only local state is created.
public struct BridgeNetwork: Sendable {
    /// The bridge device's name (at most 15 bytes).
    public var bridge: String
    /// First three octets of the /24, e.g. "10.89.0".
    public var prefix: String

    /// A network on `bridge` with the /24 `prefix` (e.g. "10.89.0").
    public init(bridge: String, prefix: String) {
        self.bridge = bridge
        self.prefix = prefix
    }

    /// `$DOCKBUILD_BRIDGE` / `$DOCKBUILD_SUBNET` override the defaults (dockbuild0, 10.89.0.0/24).
    public static func current() throws -> BridgeNetwork {
        let env = ProcessInfo.processInfo.environment
        let name = env["DOCKBUILD_BRIDGE"] ?? "dockbuild0"
        let subnet = env["DOCKBUILD_SUBNET"] ?? "10.89.0.0/24"
        guard subnet.hasSuffix(".0/24") else {
            throw Self.error("DOCKBUILD_SUBNET=\(subnet): only /24 subnets ending in .0 are supported (e.g. 10.89.0.0/24)")
        }
        let prefix = String(subnet.dropLast(5))
        let octets = prefix.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 3, octets.allSatisfy({ UInt8($0) != nil }), !name.isEmpty, name.utf8.count <= 15,
              name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }) else {
            throw Self.error("bad bridge settings DOCKBUILD_BRIDGE=\(name) DOCKBUILD_SUBNET=\(subnet): use a name of at most 15 letters, digits, -, _ and a subnet like 10.89.0.0/24")
        }
        return BridgeNetwork(bridge: name, prefix: prefix)
    }

    /// The /24 in CIDR notation.
    public var subnet: String { "\(prefix).0/24" }
    /// The bridge's own address, the attachments' default route.
    public var gateway: String { "\(prefix).1" }
    var leaseDir: String { StatePaths.ipamDir() + "/\(bridge)" }

    static func error(_ message: String) -> RuntimeError { RuntimeError(.system, "network: \(message)") }

    /// Bridges this process has set up (name, subnet, interface index): a builder attaches many
    /// RUN steps in a row, and the iptables checks are the slow part.
    private static let ensured = Mutex<Set<String>>([])

    /// Creates the bridge, its address, forwarding and the NAT rule when missing.
    public func ensureBridge() throws {
        let key = "\(bridge) \(subnet) " + (Sys.readFile("/sys/class/net/\(bridge)/ifindex") ?? "-")
        if Self.ensured.withLock({ $0.contains(key) }) { return }
        if !Sys.exists("/sys/class/net/\(bridge)") {
            let r = try NetTool.run(["ip", "link", "add", bridge, "type", "bridge"])
            if r.status != 0 && !Sys.exists("/sys/class/net/\(bridge)") {
                throw Self.error("cannot create bridge \(bridge): \(r.stderr)")
            }
        }
        let addrs = try NetTool.run(["ip", "-4", "-o", "addr", "show", "dev", bridge]).stdout
        if !addrs.contains(" \(gateway)/24") {
            _ = try NetTool.run(["ip", "addr", "add", "\(gateway)/24", "dev", bridge])
        }
        try NetTool.check(["ip", "link", "set", bridge, "up"])
        if let f = Sys.readFile("/proc/sys/net/ipv4/ip_forward"), f.first != "1" {
            try? Sys.writeFile("/proc/sys/net/ipv4/ip_forward", "1\n")
        }
        for rule in rules { try ensureRule(rule) }
        let made = "\(bridge) \(subnet) " + (Sys.readFile("/sys/class/net/\(bridge)/ifindex") ?? "-")
        Self.ensured.withLock { _ = $0.insert(made) }
    }

    /// The iptables rules the bridge uses (for teardown).
    var rules: [[String]] {
        [["-t", "nat", "POSTROUTING", "-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE"],
         ["-t", "filter", "FORWARD", "-i", bridge, "-j", "ACCEPT"],
         ["-t", "filter", "FORWARD", "-o", bridge, "-j", "ACCEPT"]]
    }

    private func ensureRule(_ rule: [String]) throws {
        guard NetTool.which("iptables") != nil else { return }
        let table = Array(rule[0...1]), chain = rule[2], rest = Array(rule[3...])
        let check = try NetTool.run(["iptables", "-w"] + table + ["-C", chain] + rest)
        if check.status != 0 {
            try NetTool.check(["iptables", "-w"] + table + ["-A", chain] + rest, what: "adding iptables rule")
        }
    }

    /// Removes the bridge and its iptables rules (used by tests and `network-teardown`).
    public func teardown() {
        for rule in rules {
            let table = Array(rule[0...1]), chain = rule[2], rest = Array(rule[3...])
            while (try? NetTool.run(["iptables", "-w"] + table + ["-D", chain] + rest))?.status == 0 {}
        }
        _ = try? NetTool.run(["ip", "link", "del", bridge])
        Sys.removeAll(leaseDir)
    }

    // MARK: - addresses

    /// Takes the lowest free address for `containerID`, held while `holderPid` (same start
    /// time) lives; the lease file is under /run (cleared at boot).
    public func allocate(containerID: String, holderPid: Int32) throws -> String {
        _ = try Sys.mkdirAll(leaseDir)
        let lock: FileLock
        do { lock = try FileLock(path: "\(leaseDir)/.lock", mode: 0o600) } catch {
            throw RuntimeError.sys("network: cannot open \(leaseDir)/.lock", error.errno)
        }
        do { try lock.lock() } catch { throw RuntimeError.sys("network: cannot lock \(leaseDir)/.lock", error.errno) }
        defer { lock.unlock() }
        let start = Self.liveStartTime(holderPid) ?? 0
        for host in 2...254 {
            let ip = "\(prefix).\(host)"
            let lease = "\(leaseDir)/\(ip)"
            if let text = Sys.readFile(lease) {
                let f = text.split(separator: " ")
                if f.count >= 3, let pid = Int32(f[1]), let st = UInt64(f[2].trimmingCharacters(in: .whitespacesAndNewlines)),
                   Self.liveStartTime(pid) == st { continue }
            }
            try Sys.writeAtomic(lease, Data("\(containerID) \(holderPid) \(start)\n".utf8))
            return ip
        }
        throw Self.error("no free address left in \(subnet): remove stopped containers' leases or use another DOCKBUILD_SUBNET")
    }

    /// Gives `ip` back when `containerID` still holds it.
    public func release(ip: String, containerID: String) {
        let lease = "\(leaseDir)/\(ip)"
        if let text = Sys.readFile(lease), text.hasPrefix(containerID + " ") { unlink(lease) }
    }

    /// Start time of a live (not zombie) process.
    static func liveStartTime(_ pid: Int32) -> UInt64? {
        guard pid > 0, let s = Sys.processStat(pid), s.state != "Z" else { return nil }
        return s.startTime
    }

    /// The name of the namespace (`ip netns`) for an attachment id.
    public static func netnsName(_ id: String) -> String { "dockbuild-\(id.prefix(12))" }

    /// The host side of the veth pair for an attachment id.
    public static func vethName(_ id: String) -> String { "veth\(id.prefix(8))" }

    /// Creates the namespace and the veth pair with `ip` on eth0; returns the namespace path.
    public func attach(containerID id: String, ip: String) throws -> String {
        try ensureBridge()
        let ns = Self.netnsName(id)
        if try NetTool.run(["ip", "netns", "add", ns]).status != 0 {
            // left by a crashed holder of the same id
            _ = try? NetTool.run(["ip", "netns", "del", ns])
            try NetTool.check(["ip", "netns", "add", ns], what: "creating network namespace \(ns)")
        }
        let host = Self.vethName(id)
        do {
            // one `ip` per namespace: batch mode
            // eth0's MAC follows from its address (02:42 and the four octets, as docker's): a
            // neighbour's cached entry for the address stays right when a restarted container
            // gets it again with a new veth pair
            let hostSide = "link add \(host) type veth peer name eth0 address \(Self.macAddress(ip)) netns \(ns)\n"
                + "link set \(host) master \(bridge)\nlink set \(host) up\n"
            if try NetTool.run(["ip", "-batch", "-"], input: hostSide).status != 0 {
                _ = try? NetTool.run(["ip", "link", "del", host])
                try NetTool.check(["ip", "-batch", "-"], input: hostSide, what: "creating veth \(host) on \(bridge)")
            }
            try NetTool.check(["ip", "-n", ns, "-batch", "-"],
                              input: "addr add \(ip)/24 dev eth0\nlink set eth0 up\nlink set lo up\nroute add default via \(gateway)\n",
                              what: "configuring eth0 (\(ip)) in \(ns)")
        } catch {
            detach(containerID: id)
            throw error
        }
        return "/run/netns/\(ns)"
    }

    /// The MAC address for `ip`: 02:42 then its four octets in hex (locally administered).
    public static func macAddress(_ ip: String) -> String {
        let octets = ip.split(separator: ".").compactMap { UInt8($0) }
        return (["02", "42"] + octets.map { String(format: "%02x", $0) }).joined(separator: ":")
    }

    /// Adds interface `name` (eth1, eth2, ...) with `ip` on this bridge to the namespace that
    /// `attach` made for `id` (no default route: that stays on eth0).
    public func attachMore(containerID id: String, ip: String, interface name: String) throws {
        try ensureBridge()
        let ns = Self.netnsName(id)
        let host = Self.vethName(id) + name.dropFirst(3)
        let hostSide = "link add \(host) type veth peer name \(name) address \(Self.macAddress(ip)) netns \(ns)\n"
            + "link set \(host) master \(bridge)\nlink set \(host) up\n"
        if try NetTool.run(["ip", "-batch", "-"], input: hostSide).status != 0 {
            _ = try? NetTool.run(["ip", "link", "del", host])
            try NetTool.check(["ip", "-batch", "-"], input: hostSide, what: "creating veth \(host) on \(bridge)")
        }
        try NetTool.check(["ip", "-n", ns, "-batch", "-"], input: "addr add \(ip)/24 dev \(name)\nlink set \(name) up\n",
                          what: "configuring \(name) (\(ip)) in \(ns)")
    }

    /// MAC of eth0 inside the attachment's namespace.
    public func macAddress(containerID id: String) -> String {
        (try? NetTool.run(["ip", "netns", "exec", Self.netnsName(id), "cat", "/sys/class/net/eth0/address"]))?
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    /// Deletes the veth pair and the namespace (idempotent).
    public func detach(containerID id: String) {
        _ = try? NetTool.run(["ip", "link", "del", Self.vethName(id)])
        // those of attachMore (they go with the namespace, unless a process still holds it)
        for i in 1...9 where Sys.exists("/sys/class/net/\(Self.vethName(id))\(i)") {
            _ = try? NetTool.run(["ip", "link", "del", "\(Self.vethName(id))\(i)"])
        }
        _ = try? NetTool.run(["ip", "netns", "del", Self.netnsName(id)])
    }
}

/// A namespace for `--network none`: loopback only.
public enum IsolatedNetwork {
    /// Creates the namespace for attachment `id` with lo up; returns its path.
    public static func create(_ id: String) throws -> String {
        let ns = BridgeNetwork.netnsName(id)
        _ = try? NetTool.run(["ip", "netns", "del", ns])
        try NetTool.check(["ip", "netns", "add", ns], what: "creating network namespace \(ns)")
        try NetTool.check(["ip", "-n", ns, "link", "set", "lo", "up"])
        return "/run/netns/\(ns)"
    }

    /// Deletes the namespace of attachment `id` (idempotent).
    public static func remove(_ id: String) {
        _ = try? NetTool.run(["ip", "netns", "del", BridgeNetwork.netnsName(id)])
    }
}

/// The `/etc/resolv.conf` a process in its own network namespace can use: the host's, without
/// loopback name servers (they are not reachable from another namespace; systemd-resolved's
/// 127.0.0.53 is the usual one), falling back to public servers when none is left, as docker does.
public enum ResolvConf {
    /// Public resolvers used when the host has only loopback ones.
    public static let fallback = ["8.8.8.8", "8.8.4.4"]

    /// The file's text for a separate namespace, from the host's `text`.
    public static func forNamespace(hostText text: String) -> String {
        var out: [String] = []
        var servers = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if f.count >= 2, f[0] == "nameserver" {
                let addr = f[1]
                if addr.hasPrefix("127.") || addr == "::1" || addr == "0.0.0.0" { continue }
                servers += 1
            }
            out.append(String(line))
        }
        while out.last == "" { out.removeLast() }
        if servers == 0 { out += fallback.map { "nameserver \($0)" } }
        return out.joined(separator: "\n") + "\n"
    }
}

/// The `ip` and `iptables` helper programs.
enum NetTool {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Finds an executable on PATH (plus the sbin directories root's PATH may lack).
    static func which(_ name: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for dir in path.split(separator: ":") where access("\(dir)/\(name)", X_OK) == 0 { return "\(dir)/\(name)" }
        return nil
    }

    /// Runs a helper to completion, capturing its output.
    static func run(_ args: [String], input: String? = nil) throws -> Output {
        guard let first = args.first, let exe = which(first) else {
            throw BridgeNetwork.error("\(args.first ?? "?") is needed and is not installed (apt-get install iproute2 iptables)")
        }
        let r = try Subprocess.run(exe, Array(args.dropFirst()), input: input.map { Data($0.utf8) })
        return Output(status: r.status, stdout: r.stdout, stderr: r.stderr)
    }

    /// Runs a helper and throws with its stderr when it fails.
    @discardableResult
    static func check(_ args: [String], input: String? = nil, what: String? = nil) throws -> String {
        let r = try run(args, input: input)
        if r.status != 0 {
            throw BridgeNetwork.error("\(what ?? args.joined(separator: " ")) failed (exit \(r.status)): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return r.stdout
    }
}
