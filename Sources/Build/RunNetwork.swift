import Foundation
import Runtime
import SystemSupport
#if canImport(Glibc)
import Glibc
#endif

/// The network of one RUN, as `docker build` gives it: by default its own namespace on the
/// bridge network (a veth, an address from the shared pool, NAT to the outside), so a RUN
/// neither sees the host's interfaces and loopback traffic nor reaches services bound to the
/// host's 127.0.0.1; `none` is a namespace with loopback only; `host` is the host's network
/// (an explicit choice). Torn down after the step; the attachment is recorded in the step's
/// directory so that the leftovers of a killed build can be removed later.
struct RunNetwork {
    /// `default`, `host` or `none`.
    let mode: String
    /// Attachment id: "bld" + random hex (never a container id, which is all hex).
    let id: String
    var ip = ""
    var bridge: BridgeNetwork?
    /// An ordinary user's default: a namespace connected by pasta (docs/rootless.md).
    var rootless = false
    /// The namespace the RUN joins; nil: a fresh one from the runtime (`none`) or none at all (`host`).
    var namespacePath: String?

    /// Sets up the network for `mode`, recording it in `stepDir` first.
    static func setUp(_ mode: String, stepDir: String) throws -> RunNetwork {
        let id = "bld" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(9).lowercased()
        var n = RunNetwork(mode: mode, id: id)
        guard n.mode == "default" else { return n }
        if StatePaths.isRootless {
            // An ordinary user has no bridge: a namespace of the RUN's own, connected by pasta
            // (docs/rootless.md); recorded first, as the bridge's attachment
            n.rootless = true
            do {
                try Data("\(id) pasta\n".utf8).write(to: URL(fileURLWithPath: stepDir + "/" + BuildSession.networkFile))
                n.namespacePath = try RootlessNetwork.create(id: id, forwards: []).namespacePath
            } catch {
                n.tearDown()
                throw BuildError.system("cannot set up the RUN's network: \(error)")
            }
            return n
        }
        let b: BridgeNetwork
        do { b = try BridgeNetwork.current() } catch { throw BuildError.system("RUN network: \(error)") }
        n.bridge = b
        do {
            n.ip = try b.allocate(containerID: id, holderPid: getpid())
            // recorded before anything exists, so a crash in between leaves nothing unrecorded
            try Data("\(id) \(b.bridge) \(b.prefix) \(n.ip)\n".utf8).write(to: URL(fileURLWithPath: stepDir + "/" + BuildSession.networkFile))
            n.namespacePath = try b.attach(containerID: id, ip: n.ip)
        } catch {
            n.tearDown()
            throw BuildError.system("cannot set up the RUN's network namespace on bridge \(b.bridge) (\(b.subnet)): \(error); "
                                    + "use --network host or --network none to build without the bridge")
        }
        return n
    }

    /// Removes the namespace and the veth and gives the address back.
    func tearDown() {
        if rootless { RootlessNetwork.remove(id: id) }
        guard let bridge else { return }
        bridge.detach(containerID: id)
        if !ip.isEmpty { bridge.release(ip: ip, containerID: id) }
    }

    /// Tears down an attachment recorded by `setUp` (for a dead build's leftovers).
    static func tearDown(record text: String) {
        let f = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        if f.count == 2, f[0].hasPrefix("bld"), f[1] == "pasta" { RootlessNetwork.remove(id: f[0]); return }
        guard f.count >= 4, f[0].hasPrefix("bld") else { return }
        var n = RunNetwork(mode: "default", id: f[0])
        n.bridge = BridgeNetwork(bridge: f[1], prefix: f[2])
        n.ip = f[3]
        n.tearDown()
    }

    /// Applies the network to a RUN's spec: a namespace to join, a fresh one, or the host's.
    func apply(to spec: inout RuntimeSpec) {
        spec.linux?.namespaces?.removeAll { $0.type == "network" }
        switch mode {
        case "host": break
        default: spec.linux?.namespaces?.append(.init(type: "network", path: namespacePath))
        }
    }

    /// `/etc/hosts` for the RUN: localhost, plus the sandbox's name on its address.
    var hosts: String {
        var s = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        if !ip.isEmpty { s += "\(ip)\tbuildkitsandbox\n" }
        return s
    }

    /// `/etc/resolv.conf` for the RUN: the host's in the host's network; in a namespace of its
    /// own, the host's without loopback name servers (public fallbacks when none is left).
    func resolvConf(hostFile: String = "/etc/resolv.conf") -> String {
        let text = (try? String(contentsOfFile: hostFile, encoding: .utf8)) ?? ""
        return mode == "host" ? text : ResolvConf.forNamespace(hostText: text)
    }
}
