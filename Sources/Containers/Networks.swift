import Foundation
import SystemSupport
import struct Runtime.BridgeNetwork

/// A user-defined bridge network (`network create`): a Linux bridge `br-ID` with a /24 of its
/// own. Containers on it reach each other by address, and by name: their /etc/hosts files name
/// every running container of the network (its name and `--network-alias`es), kept current as
/// containers start and stop (see `ContainerManager.refreshNetworkHosts`), and the embedded DNS
/// server at 127.0.0.11 in each container's namespace answers the same names (`EmbeddedDNS`).
public struct ContainerNetwork: Codable, Sendable {
    public var name: String
    public var id: String
    /// The bridge device (`br-` and 12 characters of the id, as docker names it).
    public var bridge: String
    /// The /24 in CIDR notation, e.g. 10.90.3.0/24.
    public var subnet: String
    public var createdAt: String
    public var labels: [String: String]

    enum CodingKeys: String, CodingKey {
        case name = "Name", id = "Id", bridge = "Bridge", subnet = "Subnet", createdAt = "Created", labels = "Labels"
    }

    /// First three octets of the subnet.
    public var prefix: String { String(subnet.dropLast(5)) }
    /// The bridge's own address.
    public var gateway: String { "\(prefix).1" }
    /// The bridge, leases and rules of this network.
    public var bridgeNetwork: BridgeNetwork { BridgeNetwork(bridge: bridge, prefix: prefix) }
}

/// The user-defined networks on disk (`<root>/networks/NAME.json`).
public struct NetworkStore: Sendable {
    public let root: String
    public init(root: String) { self.root = "\(root)/networks" }

    /// Names the built-in modes take: never a user-defined network's name.
    public static let builtIn: Set = ["bridge", "host", "none", "default"]

    /// Subnets are taken from 10.90.0.0/16 upwards (`$DOCKBUILD_NETWORK_POOL` = "10.90": the first two octets).
    static func poolPrefix() -> String {
        let p = ProcessInfo.processInfo.environment["DOCKBUILD_NETWORK_POOL"] ?? "10.90"
        let o = p.split(separator: ".")
        return o.count == 2 && o.allSatisfy({ UInt8($0) != nil }) ? p : "10.90"
    }

    /// Creates network `name` with a free /24 (`subnet` when given) and its bridge.
    public func create(_ name: String, labels: [String: String] = [:], subnet: String? = nil) throws -> ContainerNetwork {
        guard ContainerStore.validName(name), !Self.builtIn.contains(name) else {
            throw ContainersError.invalidArgument("network name \"\(name)\": use two or more letters, digits, _ . - (not bridge, host, none or default)")
        }
        if (try? inspect(name)) != nil { throw ContainersError.network("network with name \(name) already exists (remove it with `dockbuild network rm \(name)`)") }
        try FS.mkdirs(root)
        // one allocation at a time on this host (the subnets are the host's, whatever the store root)
        _ = try? FileSystem.makeDirectories(StatePaths.ipamDir())
        let lock = try FileLock(path: StatePaths.ipamDir() + "/.networks.lock", mode: 0o600)
        try lock.lock()
        defer { lock.unlock() }
        let chosen: String
        if let subnet {
            let o = subnet.split(separator: ".")
            guard subnet.hasSuffix(".0/24"), o.count == 4, o.dropLast().allSatisfy({ UInt8($0) != nil }) else {
                throw ContainersError.invalidArgument("--subnet \(subnet): only /24 subnets ending in .0 are supported (e.g. 10.91.0.0/24)")
            }
            chosen = subnet
        } else {
            let used = Self.hostPrefixes()
            let pool = Self.poolPrefix()
            guard let n = (0...255).first(where: { !used.contains("\(pool).\($0)") }) else {
                throw ContainersError.network("no free /24 left in \(pool).0.0/16: remove networks, or give one with --subnet")
            }
            chosen = "\(pool).\(n).0/24"
        }
        let id = ContainerStore.newID()
        let net = ContainerNetwork(name: name, id: id, bridge: "br-\(id.prefix(12))", subnet: chosen, createdAt: Time.now(), labels: labels)
        do { try net.bridgeNetwork.ensureBridge() } catch {
            net.bridgeNetwork.teardown()
            throw ContainersError.network("network \(name): cannot set up bridge \(net.bridge): \(error)")
        }
        try FS.writeJSON(net, to: path(name), durable: true)
        return net
    }

    /// The /24 prefixes ("10.90.3") the host has routes to (its interfaces' subnets among
    /// them), from /proc/net/route (destinations in hex, little-endian).
    static func hostPrefixes() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/net/route", encoding: .utf8) else { return [] }
        var out = Set<String>()
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count > 1, let d = UInt32(f[1], radix: 16), d != 0 else { continue }
            out.insert("\(d & 0xff).\(d >> 8 & 0xff).\(d >> 16 & 0xff)")
        }
        return out
    }

    func path(_ name: String) -> String { "\(root)/\(name).json" }

    /// The network named `name` (or whose id starts with it).
    public func inspect(_ name: String) throws -> ContainerNetwork {
        if ContainerStore.validName(name), let data = FileManager.default.contents(atPath: path(name)),
           let n = try? JSONDecoder().decode(ContainerNetwork.self, from: data) {
            return n
        }
        let byID = list().filter { $0.id.hasPrefix(name) }
        if name.count >= 3, byID.count == 1 { return byID[0] }
        throw ContainersError.network("no such network: \(name) (create it with `dockbuild network create \(name)`)")
    }

    /// Every network, by name.
    public func list() -> [ContainerNetwork] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted().compactMap { f in
            FileManager.default.contents(atPath: "\(root)/\(f)").flatMap { try? JSONDecoder().decode(ContainerNetwork.self, from: $0) }
        }
    }

    /// Removes the network's record, bridge and rules (the caller checks it is unused).
    public func remove(_ name: String) throws {
        let n = try inspect(name)
        n.bridgeNetwork.teardown()
        unlink(path(n.name))
        unlink("\(root)/.\(n.name).hosts.lock")
    }
}

extension ContainerManager {
    /// The user-defined networks of this store.
    public var networks: NetworkStore { NetworkStore(root: root) }

    /// The bridge a container's network mode attaches to: dockbuild's own for `bridge`, the
    /// network's for a user-defined one, nil for the others.
    public func bridgeNetwork(_ network: String) -> BridgeNetwork? {
        if network == "bridge" { return try? BridgeNetwork.current() }
        if NetworkStore.builtIn.contains(network) || network.hasPrefix("container:") { return nil }
        return (try? networks.inspect(network))?.bridgeNetwork
    }

    /// Whether `network` is a user-defined network (names resolve on it).
    func isUserNetwork(_ network: String) -> Bool {
        !NetworkStore.builtIn.contains(network) && !network.hasPrefix("container:")
    }

    /// The containers that use network `name` (any state), first or besides.
    public func containers(onNetwork name: String) -> [Container] {
        guard let n = try? networks.inspect(name) else { return [] }
        return store.list().filter { $0.record.network == n.name || $0.record.network == n.id || $0.record.moreNetworks?[n.name] != nil }
    }

    /// `HOST:IP` entries naming every running container on `network` (its name, its aliases
    /// there) but `excluding`, with its address on that network.
    func networkPeers(_ network: String, excluding: String? = nil) -> [String] {
        containers(onNetwork: network).filter { $0.id != excluding && $0.isRunning }.sorted { $0.name < $1.name }.flatMap { c -> [String] in
            let primary = c.record.network == network
            let ip = primary ? c.state.ipAddress : c.state.moreIPs?[network] ?? ""
            guard !ip.isEmpty else { return [] }
            let aliases = primary ? c.record.networkAliases ?? [] : c.record.moreNetworks?[network] ?? []
            return ([c.name] + aliases).map { "\($0):\(ip)" }
        }
    }

    /// The user-defined networks of record `r`: its first one (when user-defined) and the others.
    func userNetworks(_ r: ContainerRecord) -> [String] {
        (isUserNetwork(r.network) ? [r.network] : []) + (r.moreNetworks ?? [:]).keys.sorted()
    }

    /// The `HOST:IP` entries of every container sharing a user-defined network with `r`.
    func allNetworkPeers(_ r: ContainerRecord, excluding: String? = nil) -> [String] {
        userNetworks(r).flatMap { networkPeers($0, excluding: excluding) }
    }

    /// Rewrites the /etc/hosts of every running container on user-defined network `network`
    /// (but `excluding`) so that each names all the others of its networks: called by a
    /// container's monitor once it runs, and again when it stops, so names of containers
    /// started later resolve too.
    public func refreshNetworkHosts(_ network: String, excluding: String? = nil) {
        guard isUserNetwork(network), let n = try? networks.inspect(network) else { return }
        // one rewrite at a time per network: the last writer read the newest states
        let lock = try? FileLock(path: "\(networks.root)/.\(n.name).hosts.lock", mode: 0o600)
        try? lock?.lock()
        defer { lock?.unlock() }
        for c in containers(onNetwork: n.name) where c.id != excluding && c.isRunning {
            try? rewriteHosts(c.id, extraHosts: (c.record.extraHosts ?? []) + allNetworkPeers(c.record, excluding: excluding))
        }
    }
}
