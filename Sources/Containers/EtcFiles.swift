import Foundation

/// The contents of the /etc/hosts and /etc/resolv.conf the monitor bind-mounts into a
/// container, with docker's layout: default entries, `--add-host` lines, then the
/// container's own address; `--dns*` replacing the host's name servers, search list and
/// options each on its own.
enum EtcFiles {
    /// docker's default entries of a container's /etc/hosts.
    static let defaultHosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
        + "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"

    /// The /etc/hosts of container `r` with `extraHosts` (`HOST:IP`) for its `--add-host` entries:
    /// the defaults (the host's file with `--network host`), those entries, its own address.
    static func hosts(_ r: ContainerRecord, extraHosts: [String], gateway: String, ownIP: String) -> String {
        var base = defaultHosts
        if r.network == "host" { base = (try? String(contentsOfFile: "/etc/hosts", encoding: .utf8)) ?? base }
        return hosts(base: base, extraHosts: extraHosts, gateway: r.network == "host" ? "127.0.0.1" : gateway,
                     ownIP: ownIP, hostname: r.hostname)
    }

    /// /etc/hosts: `base` (the defaults, or the host's file with `--network host`), then one
    /// `IP<TAB>HOST` line per extra host (`host-gateway` read as `gateway`, and left out when
    /// there is none), then `ownIP<TAB>hostname`.
    static func hosts(base: String, extraHosts: [String], gateway: String, ownIP: String, hostname: String) -> String {
        var out = base
        if !out.isEmpty && !out.hasSuffix("\n") { out += "\n" }
        for e in extraHosts {
            guard let sep = e.firstIndex(of: ":") else { continue }
            var ip = String(e[e.index(after: sep)...])
            if ip == "host-gateway" { ip = gateway }
            if ip.isEmpty { continue }
            out += "\(ip)\t\(e[..<sep])\n"
        }
        if !ownIP.isEmpty { out += "\(ownIP)\t\(hostname)\n" }
        return out
    }

    /// /etc/resolv.conf from the host's: without any `--dns*` it is the host's file (loopback
    /// name servers dropped when `dropLoopback`, as they cannot be reached from another network
    /// namespace); otherwise docker's three parts, each given or else the host's.
    static func resolvConf(host: String, dns: [String], search: [String], options: [String], dropLoopback: Bool) -> String {
        let lines = host.split(separator: "\n").map(String.init)
        func isLoopbackServer(_ l: String) -> Bool {
            let f = l.split(whereSeparator: { $0 == " " || $0 == "\t" })
            return f.count >= 2 && f[0] == "nameserver" && (f[1].hasPrefix("127.") || f[1] == "::1")
        }
        if dns.isEmpty && search.isEmpty && options.isEmpty {
            let kept = dropLoopback ? lines.filter { !isLoopbackServer($0) } : lines
            return kept.joined(separator: "\n") + "\n"
        }
        func fields(_ key: String) -> [String] {
            lines.flatMap { l -> [String] in
                let f = l.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                guard f.first == key, !(dropLoopback && isLoopbackServer(l)) else { return [] }
                return Array(f.dropFirst())
            }
        }
        var out = ""
        let searchList = search.isEmpty ? fields("search") : search
        if !searchList.isEmpty, searchList != ["."] { out += "search \(searchList.joined(separator: " "))\n" }
        for s in dns.isEmpty ? fields("nameserver") : dns { out += "nameserver \(s)\n" }
        let opts = options.isEmpty ? fields("options") : options
        if !opts.isEmpty { out += "options \(opts.joined(separator: " "))\n" }
        return out
    }
}

extension EtcFiles {
    /// The /etc/resolv.conf of a container on a user-defined network (docker's): the embedded
    /// DNS server (`--dns` servers are where it forwards to), the search list (`--dns-search`,
    /// else the host's), and `ndots:0` with the options (`--dns-option`, else the host's).
    static func embeddedResolvConf(host: String, search: [String], options: [String]) -> String {
        func fields(_ key: String) -> [String] {
            host.split(separator: "\n").flatMap { l -> [String] in
                let f = l.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                return f.first == key ? Array(f.dropFirst()) : []
            }
        }
        var out = ""
        let searchList = search.isEmpty ? fields("search") : search
        if !searchList.isEmpty, searchList != ["."] { out += "search \(searchList.joined(separator: " "))\n" }
        out += "nameserver \(EmbeddedDNS.address)\n"
        var opts = options.isEmpty ? fields("options") : options
        if !opts.contains(where: { $0.hasPrefix("ndots:") }) { opts.insert("ndots:0", at: 0) }
        out += "options \(opts.joined(separator: " "))\n"
        return out
    }
}

extension ContainerManager {
    /// Rewrites the /etc/hosts of running container `id` in place (the container sees it at
    /// once: its /etc/hosts is a bind mount of that file) with `extraHosts` (`HOST:IP`) in
    /// place of its `--add-host` entries. Compose uses it to name a project's services to each
    /// other as they come and go. The next start writes the file from the record again.
    public func rewriteHosts(_ id: String, extraHosts: [String]) throws {
        let c = try store.container(id)
        guard c.isRunning else { return }
        let text = EtcFiles.hosts(c.record, extraHosts: extraHosts, gateway: c.state.gateway, ownIP: c.state.ipAddress)
        let path = "\(c.directory)/hosts"
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { throw ContainersError.system("cannot open \(path)", errno: errno) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ContainersError.system("cannot write \(path)", errno: errno) }
            off += n
        }
    }
}
