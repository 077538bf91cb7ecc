import Foundation
import Runtime

/// Parsers for the `run`/`create` flags of issue #17 that shape the container's /etc files,
/// limits, namespaces, stop and restart behaviour and devices. Same contract as `FlagValue`:
/// a value in range, or one line naming the flag, the value and the accepted form.
extension FlagValue {
    // MARK: - /etc/hosts and /etc/resolv.conf

    /// True for an IPv4 or IPv6 address in its usual notation.
    public static func isIPAddress(_ s: String) -> Bool {
        var a4 = in_addr(), a6 = in6_addr()
        return inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1
    }

    /// What a name written into /etc/hosts or /etc/resolv.conf may hold: no space, no control
    /// character and no `#`, which would add lines or comments to the file.
    static func isFileWord(_ s: String) -> Bool {
        !s.isEmpty && s.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value != 0x7f && $0 != "#" }
    }

    /// `--add-host HOST:IP` (docker 25's `HOST=IP` too; an IPv6 address may be bracketed), or
    /// `HOST:host-gateway`. Returned as docker keeps it in HostConfig.ExtraHosts: `HOST:IP`.
    public static func extraHost(_ text: String, flag: String = "--add-host") throws -> String {
        func bad(_ why: String) -> ContainersError {
            .invalidArgument("\(flag) \(quote(text)): \(why); give HOST:IP, e.g. db.local:10.0.0.5, HOST:::1 or HOST:host-gateway")
        }
        guard let sep = text.firstIndex(of: "=") ?? text.firstIndex(of: ":") else { throw bad("no IP address") }
        let host = String(text[..<sep])
        var ip = String(text[text.index(after: sep)...])
        guard isFileWord(host), host.utf8.count <= 255 else { throw bad("the host name is empty or has spaces, # or control characters") }
        if ip.hasPrefix("[") && ip.hasSuffix("]") && ip.count > 2 { ip = String(ip.dropFirst().dropLast()) }
        guard ip == "host-gateway" || isIPAddress(ip) else { throw bad("\(quote(ip)) is not an IP address") }
        return "\(host):\(ip)"
    }

    /// `--dns`: a name server's IP address.
    public static func dnsServer(_ text: String, flag: String = "--dns") throws -> String {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard isIPAddress(t) else {
            throw ContainersError.invalidArgument("\(flag) \(quote(text)): not an IP address; give a name server's address, e.g. 1.1.1.1 or 2606:4700::1111")
        }
        return t
    }

    /// `--dns-search`: a domain (letters, digits, `-`, `_`, `.`), or `.` for no search domain.
    public static func dnsSearch(_ text: String, flag: String = "--dns-search") throws -> String {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t == "." { return t }
        guard (1...255).contains(t.utf8.count), !t.hasPrefix("."), !t.hasPrefix("-"), !t.contains(".."),
              t.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw ContainersError.invalidArgument("\(flag) \(quote(text)): not a domain; give a domain such as example.com (or . for none)")
        }
        return t
    }

    /// `--dns-option`: one resolver option (`ndots:2`, `timeout:1`, `rotate`, ...).
    public static func dnsOption(_ text: String, flag: String = "--dns-option") throws -> String {
        guard isFileWord(text) else {
            throw ContainersError.invalidArgument("\(flag) \(quote(text)): give one resolver option without spaces, e.g. ndots:2 or rotate")
        }
        return text
    }

    // MARK: - limits and groups

    /// `--ulimit NAME=SOFT[:HARD]` (HARD defaults to SOFT; -1 is unlimited), docker's names.
    public static func ulimit(_ text: String, flag: String = "--ulimit") throws -> Ulimit {
        func bad(_ why: String) -> ContainersError {
            .invalidArgument("\(flag) \(quote(text)): \(why); give NAME=SOFT[:HARD] (-1 for unlimited) with NAME one of \(Ulimit.names.keys.sorted().joined(separator: ", ")), e.g. nofile=1024:2048")
        }
        let kv = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard kv.count == 2 else { throw bad("no limit given") }
        let name = kv[0].trimmingCharacters(in: .whitespaces).lowercased()
        guard Ulimit.names[name] != nil else { throw bad("unknown limit \(quote(kv[0]))") }
        let values = kv[1].split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(values.count) else { throw bad("too many values") }
        let numbers = try values.map { v -> Int64 in
            guard let n = Int64(v.trimmingCharacters(in: .whitespaces)), n >= -1 else { throw bad("\(quote(v)) is not a whole number from -1 up") }
            return n
        }
        let soft = numbers[0], hard = numbers.count == 2 ? numbers[1] : numbers[0]
        if hard != -1 && (soft == -1 || soft > hard) {
            throw bad("the soft limit \(soft) is above the hard limit \(hard)")
        }
        return Ulimit(name: name, soft: soft, hard: hard)
    }

    /// `--shm-size`: the size of the container's /dev/shm, more than 0 bytes (0 leaves docker's 64m).
    public static func shmSize(_ text: String, flag: String = "--shm-size") throws -> Int64 {
        try bytes(text, flag: flag)
    }

    /// `--group-add`: a gid (0 to 4294967294) or a group name to look up in the image's /etc/group.
    public static func groupAdd(_ text: String, flag: String = "--group-add") throws -> String {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let n = UInt32(t), n != UInt32.max { return t }
        guard !t.isEmpty, t.utf8.count <= 256, t.first?.isNumber == false, !t.hasPrefix("-"),
              t.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.$".contains($0)) }) else {
            throw ContainersError.invalidArgument("\(flag) \(quote(text)): give a gid (0 to 4294967294) or a group name from the image's /etc/group")
        }
        return t
    }

    // MARK: - namespaces

    /// `--ipc`, `--pid`, `--uts`: one of `modes`, or `container:NAME` where `container` allows.
    /// "" and "private" mean the container's own namespace (returned as nil).
    public static func namespaceMode(_ text: String, flag: String, modes: [String], container: Bool) throws -> String? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.isEmpty || t == "private" { return nil }
        if modes.contains(t) { return t }
        if container, t.hasPrefix("container:"), t.count > 10, ContainerStore.validName(String(t.dropFirst(10))) { return t }
        let forms = (["private"] + modes + (container ? ["container:NAME"] : [])).joined(separator: ", ")
        throw ContainersError.invalidArgument("\(flag) \(quote(text)): give \(forms)")
    }

    // MARK: - stopping

    /// `--stop-signal`: a signal name (`SIGUSR1`, `USR1`, `RTMIN+3`) or number (1 to 64), kept as given.
    public static func stopSignal(_ text: String, flag: String = "--stop-signal") throws -> String {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard Runtime.signalNumber(t) != nil else {
            throw ContainersError.invalidArgument("\(flag) \(quote(text)): not a signal; give a name such as SIGTERM, SIGINT or USR1, or a number from 1 to 64")
        }
        return t
    }

    /// `--stop-timeout`: whole seconds from 0 up, or -1 to wait without a limit (kept as -1).
    public static func stopTimeout(_ text: String, flag: String = "--stop-timeout") throws -> Int {
        _ = try timeoutSeconds(text, flag: flag)
        return Int(text.trimmingCharacters(in: .whitespaces)) ?? -1
    }

    // MARK: - devices

    /// `--device HOST[:CONTAINER][:PERMISSIONS]` (docker's forms: `/dev/sdc`, `/dev/sdc:/dev/xvdc`,
    /// `/dev/sdc:rw`, `/dev/sdc:/dev/xvdc:rwm`); PERMISSIONS some of r, w, m (default rwm).
    /// Whether a `--device` value names a CDI device (`vendor.com/class=name`, as docker 25
    /// takes it) rather than a host path.
    public static func isCDIDevice(_ value: String) -> Bool {
        guard !value.hasPrefix("/"), let eq = value.firstIndex(of: "=") else { return false }
        return value[..<eq].contains("/") && !value[value.index(after: eq)...].isEmpty
    }

    public static func device(_ text: String, flag: String = "--device") throws -> DeviceMapping {
        func bad(_ why: String) -> ContainersError {
            .invalidArgument("\(flag) \(quote(text)): \(why); give HOST[:CONTAINER][:PERMISSIONS] with absolute paths and PERMISSIONS of r, w, m, e.g. /dev/sdc:/dev/xvdc:rw")
        }
        func isPermissions(_ p: String) -> Bool {
            !p.isEmpty && p.count <= 3 && p.allSatisfy { "rwm".contains($0) } && Set(p).count == p.count
        }
        let f = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var host = f[0], ctr = f[0], perms = "rwm"
        switch f.count {
        case 1: break
        case 2:
            if isPermissions(f[1]) { perms = f[1] } else { ctr = f[1] }
        case 3:
            ctr = f[1]
            guard isPermissions(f[2]) else { throw bad("\(quote(f[2])) is not a set of permissions") }
            perms = f[2]
        default: throw bad("too many fields")
        }
        for p in [host, ctr] {
            guard p.hasPrefix("/"), !p.contains("\0"), !p.split(separator: "/").contains("..") else {
                throw bad("\(quote(p)) is not an absolute path without ..")
            }
        }
        host = URL(fileURLWithPath: host).standardizedFileURL.path
        ctr = URL(fileURLWithPath: ctr).standardizedFileURL.path
        return DeviceMapping(pathOnHost: host, pathInContainer: ctr, cgroupPermissions: perms)
    }

    // MARK: - restart

    /// `--restart no|always|unless-stopped|on-failure[:N]` (N restarts at most, 0 or none: no
    /// limit); nil for "no".
    public static func restartPolicy(_ text: String, flag: String = "--restart") throws -> RestartPolicy? {
        func bad(_ why: String) -> ContainersError {
            .invalidArgument("\(flag) \(quote(text)): \(why); give no, always, unless-stopped or on-failure[:MAX-RETRIES]")
        }
        let t = text.trimmingCharacters(in: .whitespaces)
        let parts = t.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        switch parts[0] {
        case "", "no":
            guard parts.count == 1 else { throw bad("\"no\" takes no retry count") }
            return nil
        case "always", "unless-stopped":
            guard parts.count == 1 else { throw bad("a retry count goes with on-failure only") }
            return RestartPolicy(name: parts[0])
        case "on-failure":
            guard parts.count == 2 else { return RestartPolicy(name: "on-failure") }
            guard let n = Int(parts[1]), n >= 0, n <= Int(Int32.max) else { throw bad("\(quote(parts[1])) is not a number of retries") }
            return RestartPolicy(name: "on-failure", maximumRetryCount: n)
        default:
            throw bad("unknown policy")
        }
    }
}
