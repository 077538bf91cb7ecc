import Foundation
import SystemSupport
#if canImport(Glibc)
import Glibc
#endif

/// The network of an ordinary user's container or RUN step (docs/rootless.md): a network
/// namespace of its own, bound to a file under the user's run-time directory, connected to the
/// host by `pasta` (Debian package `passt`), a user-mode TCP/IP stack that needs no privilege.
/// Published ports are pasta's `-t`/`-u` forwards: pasta listens on the host and relays into
/// the namespace. Nothing else of the namespace is reachable from the host, and the host's
/// loopback is not reachable from it (`--no-map-gw`).
///
/// Made inside the user's user and mount namespaces (the namespace file's bind mount lives in
/// the mount namespace every command of the user joins); `remove` ends pasta and unbinds the file.
public struct RootlessNetwork: Sendable {
    /// One published port: the host address ("" for all), host port, container port, `tcp`/`udp`.
    public struct Forward: Sendable, Hashable {
        public var hostIP: String
        public var hostPort: Int
        public var containerPort: Int
        public var proto: String
        public init(hostIP: String, hostPort: Int, containerPort: Int, proto: String) {
            self.hostIP = hostIP; self.hostPort = hostPort; self.containerPort = containerPort; self.proto = proto
        }
    }

    /// The attachment id (a container id, or a RUN's "bld..." id).
    public let id: String
    /// The network namespace to join.
    public var namespacePath: String { Self.directory + "/\(id)" }
    /// The ports pasta forwards, with the host port chosen where 0 was asked.
    public let forwards: [Forward]

    /// Where the namespace files, pasta's pid files and logs live.
    public static var directory: String { StatePaths.runtimeDir() + "/netns" }

    /// The helper's path, or nil when passt is not installed.
    public static var pasta: String? { NetTool.which("pasta") }

    /// Why an ordinary user cannot have a network namespace of its own here, or nil when it can:
    /// pasta missing, or a `/dev/net/tun` the user cannot open (Debian makes it 0666; some
    /// containers make it 0600).
    public static func unavailableReason() -> String? {
        guard pasta != nil else {
            return "pasta is not installed (Debian package passt: apt-get install passt)"
        }
        let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            return "/dev/net/tun cannot be opened by uid \(StatePaths.rootlessUID() ?? getuid()) (\(String(cString: strerror(errno)))): "
                + "make it usable by ordinary users as Debian does (as root: chmod 0666 /dev/net/tun)"
        }
        close(fd)
        return nil
    }

    /// Creates the namespace for attachment `id` and starts pasta with `forwards` (a host port
    /// of 0 gets a free one). Throws with pasta's words and what to do when it cannot.
    public static func create(id: String, forwards: [Forward]) throws -> RootlessNetwork {
        if let why = unavailableReason() {
            throw BridgeNetwork.error("the rootless network needs pasta: \(why); or run with --network none or --network host")
        }
        guard let pasta else { throw BridgeNetwork.error("pasta is not installed (apt-get install passt)") }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        remove(id: id)
        var chosen: [Forward] = []
        for var f in forwards {
            if f.hostPort == 0 { f.hostPort = try freePort(udp: f.proto == "udp") }
            chosen.append(f)
        }
        let net = RootlessNetwork(id: id, forwards: chosen)
        let ns = net.namespacePath
        do {
            guard FileManager.default.createFile(atPath: ns, contents: nil) else {
                throw BridgeNetwork.error("cannot create \(ns): \(String(cString: strerror(errno)))")
            }
            try NetTool.check(["unshare", "--net=\(ns)", "true"], what: "creating the network namespace \(ns)")
            func spec(_ proto: String) -> String {
                let list = chosen.filter { $0.proto == proto }.map {
                    ($0.hostIP.isEmpty || $0.hostIP == "0.0.0.0" ? "" : "\($0.hostIP)/") + "\($0.hostPort):\($0.containerPort)"
                }
                return list.isEmpty ? "none" : list.joined(separator: ",")
            }
            // pasta forks into the background once the namespace is configured; its output goes
            // to a file (a pipe would be held open by the daemon)
            let args = ["--config-net", "--quiet", "--no-map-gw", "--netns", ns, "--pid", "\(ns).pid",
                        "-t", spec("tcp"), "-u", spec("udp"), "-T", "none", "-U", "none"]
            let r = try NetTool.run(["sh", "-c", "exec \"$@\" >\"$0\" 2>&1", "\(ns).log", pasta] + args)
            if r.status != 0 {
                let log = (try? String(contentsOfFile: "\(ns).log", encoding: .utf8)) ?? ""
                throw BridgeNetwork.error("pasta could not connect the network namespace (exit \(r.status)): "
                    + log.trimmingCharacters(in: .whitespacesAndNewlines)
                    + (chosen.isEmpty ? "" : " (is a published host port already in use?)"))
            }
        } catch {
            remove(id: id)
            throw error
        }
        return net
    }

    /// Ends attachment `id`'s pasta and removes its namespace (idempotent; for a container whose
    /// monitor died too).
    public static func remove(id: String) {
        let ns = directory + "/\(id)"
        if let text = try? String(contentsOfFile: "\(ns).pid", encoding: .utf8),
           let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1,
           let cmd = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8), cmd.hasPrefix("pasta") {
            kill(pid, SIGTERM)
        }
        umount2(ns, Int32(MNT_DETACH))
        for f in [ns, "\(ns).pid", "\(ns).log"] { unlink(f) }
    }

    /// A port the kernel says is free now (for `-p 80` or `-P`, which pasta cannot pick itself).
    static func freePort(udp: Bool) throws -> Int {
        let fd = socket(AF_INET, (udp ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_STREAM.rawValue)) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw BridgeNetwork.error("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw BridgeNetwork.error("cannot find a free port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
