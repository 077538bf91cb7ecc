import Foundation

/// The `bridge` network: a Linux bridge with a private /24, one veth pair and network
/// namespace per container, MASQUERADE for outbound traffic. Only local state is created.
public struct BridgeNetwork: Sendable {
    public var bridge: String
    /// First three octets of the /24, e.g. "10.89.0".
    public var prefix: String

    /// `$DOCKBUILD_BRIDGE` / `$DOCKBUILD_SUBNET` override the defaults (dockbuild0, 10.89.0.0/24).
    public static func current() throws -> BridgeNetwork {
        let env = ProcessInfo.processInfo.environment
        let name = env["DOCKBUILD_BRIDGE"] ?? "dockbuild0"
        let subnet = env["DOCKBUILD_SUBNET"] ?? "10.89.0.0/24"
        guard subnet.hasSuffix(".0/24") else {
            throw ContainersError.network("DOCKBUILD_SUBNET=\(subnet): only /24 subnets ending in .0 are supported (e.g. 10.89.0.0/24)")
        }
        let prefix = String(subnet.dropLast(5))
        guard prefix.split(separator: ".").count == 3, name.count <= 15 else {
            throw ContainersError.network("bad bridge settings \(name) \(subnet)")
        }
        return BridgeNetwork(bridge: name, prefix: prefix)
    }

    public var subnet: String { "\(prefix).0/24" }
    public var gateway: String { "\(prefix).1" }
    var leaseDir: String { "/run/dockbuild/ipam/\(bridge)" }

    /// Creates the bridge, its address, forwarding and the NAT rule when missing.
    func ensureBridge() throws {
        if !FS.exists("/sys/class/net/\(bridge)") {
            let r = try Shell.run(["ip", "link", "add", bridge, "type", "bridge"])
            if r.status != 0 && !FS.exists("/sys/class/net/\(bridge)") {
                throw ContainersError.network("cannot create bridge \(bridge): \(r.stderr)")
            }
        }
        let addrs = try Shell.run(["ip", "-4", "-o", "addr", "show", "dev", bridge]).stdout
        if !addrs.contains(" \(gateway)/24") {
            _ = try Shell.run(["ip", "addr", "add", "\(gateway)/24", "dev", bridge])
        }
        try Shell.check(["ip", "link", "set", bridge, "up"])
        if let f = FileManager.default.contents(atPath: "/proc/sys/net/ipv4/ip_forward"), f.first != UInt8(ascii: "1") {
            try? FS.writeAtomicInPlace("1\n", to: "/proc/sys/net/ipv4/ip_forward")
        }
        try ensureRule(["-t", "nat", "POSTROUTING", "-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE"])
        try ensureRule(["-t", "filter", "FORWARD", "-i", bridge, "-j", "ACCEPT"])
        try ensureRule(["-t", "filter", "FORWARD", "-o", bridge, "-j", "ACCEPT"])
    }

    /// The iptables rules the bridge uses (for teardown).
    var rules: [[String]] {
        [["-t", "nat", "POSTROUTING", "-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE"],
         ["-t", "filter", "FORWARD", "-i", bridge, "-j", "ACCEPT"],
         ["-t", "filter", "FORWARD", "-o", bridge, "-j", "ACCEPT"]]
    }

    private func ensureRule(_ rule: [String]) throws {
        guard Shell.which("iptables") != nil else { return }
        let table = Array(rule[0...1]), chain = rule[2], rest = Array(rule[3...])
        let check = try Shell.run(["iptables", "-w"] + table + ["-C", chain] + rest)
        if check.status != 0 {
            try Shell.check(["iptables", "-w"] + table + ["-A", chain] + rest, what: "adding iptables rule")
        }
    }

    /// Removes the bridge and its iptables rules (used by tests and `network-teardown`).
    public func teardown() {
        for rule in rules {
            let table = Array(rule[0...1]), chain = rule[2], rest = Array(rule[3...])
            while (try? Shell.run(["iptables", "-w"] + table + ["-D", chain] + rest))?.status == 0 {}
        }
        _ = try? Shell.run(["ip", "link", "del", bridge])
        try? FileManager.default.removeItem(atPath: leaseDir)
    }

    // MARK: - addresses

    /// Takes the lowest free address for a container, lease file under /run (cleared at boot).
    func allocate(containerID: String, holderPid: Int32) throws -> String {
        try FS.mkdirs(leaseDir)
        let lockFD = open("\(leaseDir)/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else { throw ContainersError.system("cannot open \(leaseDir)/.lock", errno: errno) }
        defer { close(lockFD) }
        flock(lockFD, LOCK_EX)
        defer { flock(lockFD, LOCK_UN) }
        let start = ContainerStore.processStartTime(holderPid) ?? 0
        for host in 2...254 {
            let ip = "\(prefix).\(host)"
            let lease = "\(leaseDir)/\(ip)"
            if let text = try? String(contentsOfFile: lease, encoding: .utf8) {
                let f = text.split(separator: " ")
                if f.count >= 3, let pid = Int32(f[1]), let st = UInt64(f[2].trimmingCharacters(in: .whitespacesAndNewlines)),
                   ContainerStore.processStartTime(pid) == st { continue }
            }
            try FS.writeAtomic(Data("\(containerID) \(holderPid) \(start)\n".utf8), to: lease)
            return ip
        }
        throw ContainersError.network("no free address left in \(subnet): remove stopped containers' leases or use another DOCKBUILD_SUBNET")
    }

    func release(ip: String, containerID: String) {
        let lease = "\(leaseDir)/\(ip)"
        if let text = try? String(contentsOfFile: lease, encoding: .utf8), text.hasPrefix(containerID) { unlink(lease) }
    }

    static func netnsName(_ id: String) -> String { "dockbuild-\(id.prefix(12))" }

    /// Creates the namespace and the veth pair; returns the namespace path.
    func attach(containerID id: String, ip: String) throws -> String {
        try ensureBridge()
        let ns = Self.netnsName(id)
        _ = try? Shell.run(["ip", "netns", "del", ns])
        try Shell.check(["ip", "netns", "add", ns], what: "creating network namespace \(ns)")
        let host = "veth\(id.prefix(8))"
        do {
            _ = try? Shell.run(["ip", "link", "del", host])
            try Shell.check(["ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns])
            try Shell.check(["ip", "link", "set", host, "master", bridge])
            try Shell.check(["ip", "link", "set", host, "up"])
            try Shell.check(["ip", "-n", ns, "addr", "add", "\(ip)/24", "dev", "eth0"])
            try Shell.check(["ip", "-n", ns, "link", "set", "eth0", "up"])
            try Shell.check(["ip", "-n", ns, "link", "set", "lo", "up"])
            try Shell.check(["ip", "-n", ns, "route", "add", "default", "via", gateway])
        } catch {
            detach(containerID: id)
            throw error
        }
        return "/run/netns/\(ns)"
    }

    /// MAC of eth0 inside the container's namespace.
    func macAddress(containerID id: String) -> String {
        (try? Shell.run(["ip", "netns", "exec", Self.netnsName(id), "cat", "/sys/class/net/eth0/address"]))?
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    func detach(containerID id: String) {
        _ = try? Shell.run(["ip", "link", "del", "veth\(id.prefix(8))"])
        _ = try? Shell.run(["ip", "netns", "del", Self.netnsName(id)])
    }
}

/// Namespace for `--network none`: loopback only.
enum IsolatedNetwork {
    static func create(_ id: String) throws -> String {
        let ns = BridgeNetwork.netnsName(id)
        _ = try? Shell.run(["ip", "netns", "del", ns])
        try Shell.check(["ip", "netns", "add", ns])
        try Shell.check(["ip", "-n", ns, "link", "set", "lo", "up"])
        return "/run/netns/\(ns)"
    }
}

extension FS {
    static func writeAtomicInPlace(_ s: String, to path: String) throws {
        let fd = open(path, O_WRONLY)
        guard fd >= 0 else { throw ContainersError.system("cannot open \(path)", errno: errno) }
        defer { close(fd) }
        _ = s.withCString { write(fd, $0, strlen($0)) }
    }
}
