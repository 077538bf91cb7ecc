// The Dockerfile instructions `docker import --change` / `docker commit --change` accept,
// applied to an image config.
import Foundation
import OCI

/// Applies `--change` instructions (CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD,
/// SHELL, STOPSIGNAL, USER, VOLUME, WORKDIR) to a config.
public enum ConfigChange {
    public static let allowed = ["CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD",
                                 "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"]

    public static func apply(_ changes: [String], to config: inout ImageConfig) throws {
        var c = config.config ?? ContainerConfig()
        for change in changes { try apply(change, to: &c) }
        config.config = c
    }

    static func fail(_ change: String, _ why: String) -> ImageStoreError {
        .invalidContent("--change \"\(change)\": \(why)")
    }

    public static func apply(_ change: String, to c: inout ContainerConfig) throws {
        let trimmed = change.trimmingCharacters(in: .whitespacesAndNewlines)
        let keywordEnd = trimmed.firstIndex(where: \.isWhitespace) ?? trimmed.endIndex
        let keyword = trimmed[..<keywordEnd].uppercased()
        let rest = trimmed[keywordEnd...].trimmingCharacters(in: .whitespaces)
        guard allowed.contains(keyword) else {
            throw fail(change, "\(keyword.isEmpty ? "empty instruction" : "\(keyword) is not allowed") (allowed: \(allowed.joined(separator: ", ")))")
        }
        guard !rest.isEmpty else { throw fail(change, "\(keyword) needs an argument") }
        let shell = c.shell ?? ["/bin/sh", "-c"]
        switch keyword {
        case "CMD": c.cmd = try jsonOrShell(rest, shell: shell, change)
        case "ENTRYPOINT": c.entrypoint = try jsonOrShell(rest, shell: shell, change)
        case "SHELL":
            guard let a = jsonArray(rest), !a.isEmpty else { throw fail(change, "SHELL takes a JSON array, e.g. SHELL [\"/bin/bash\", \"-c\"]") }
            c.shell = a
        case "ENV":
            var env = c.env ?? []
            for (k, v) in try pairs(rest, change, allowSpaceForm: true) {
                env.removeAll { $0 == k || $0.hasPrefix(k + "=") }
                env.append("\(k)=\(v)")
            }
            c.env = env
        case "LABEL":
            var labels = c.labels ?? [:]
            for (k, v) in try pairs(rest, change, allowSpaceForm: false) { labels[k] = v }
            c.labels = labels
        case "EXPOSE":
            var ports = c.exposedPorts ?? [:]
            for p in try words(rest, change) {
                let parts = p.split(separator: "/", maxSplits: 1)
                let proto = parts.count == 2 ? parts[1].lowercased() : "tcp"
                guard let first = parts.first, !first.isEmpty,
                      first.split(separator: "-").allSatisfy({ UInt16($0) != nil }), ["tcp", "udp", "sctp"].contains(proto) else {
                    throw fail(change, "\"\(p)\" is not a port (e.g. 80, 53/udp, 8000-8010/tcp)")
                }
                ports["\(first)/\(proto)"] = EmptyObject()
            }
            c.exposedPorts = ports
        case "VOLUME":
            var vols = c.volumes ?? [:]
            for v in try jsonArray(rest) ?? words(rest, change) {
                guard !v.isEmpty else { throw fail(change, "empty volume path") }
                vols[v] = EmptyObject()
            }
            c.volumes = vols
        case "USER": c.user = rest
        case "WORKDIR":
            c.workingDir = rest.hasPrefix("/") ? rest : ((c.workingDir ?? "/") as NSString).appendingPathComponent(rest)
        case "STOPSIGNAL": c.stopSignal = rest
        case "ONBUILD":
            let inner = rest.split(separator: " ").first.map { $0.uppercased() } ?? ""
            guard !["ONBUILD", "FROM", "MAINTAINER"].contains(inner) else { throw fail(change, "ONBUILD \(inner) is not allowed") }
            c.onBuild = (c.onBuild ?? []) + [rest]
        case "HEALTHCHECK":
            c.healthcheck = try healthcheck(rest, shell: shell, change)
        default: break
        }
    }

    static func jsonArray(_ s: String) -> [String]? {
        guard s.hasPrefix("[") else { return nil }
        return try? JSONDecoder().decode([String].self, from: Data(s.utf8))
    }

    static func jsonOrShell(_ s: String, shell: [String], _ change: String) throws -> [String] {
        if let a = jsonArray(s) { return a }
        return shell + [s]
    }

    /// Splits on whitespace, honouring "double", 'single' quotes and backslash escapes.
    static func words(_ s: String, _ change: String) throws -> [String] {
        var out: [String] = []
        var cur = ""
        var inWord = false
        var quote: Character?
        var escape = false
        for ch in s {
            if escape { cur.append(ch); escape = false; inWord = true; continue }
            if ch == "\\" && quote != "'" { escape = true; continue }
            if let q = quote {
                if ch == q { quote = nil } else { cur.append(ch) }
                continue
            }
            if ch == "\"" || ch == "'" { quote = ch; inWord = true; continue }
            if ch.isWhitespace {
                if inWord { out.append(cur); cur = ""; inWord = false }
                continue
            }
            cur.append(ch)
            inWord = true
        }
        if quote != nil { throw fail(change, "unterminated quote") }
        if inWord { out.append(cur) }
        return out
    }

    /// `k=v k2="v 2"`, or for ENV the old form `k value with spaces`.
    static func pairs(_ s: String, _ change: String, allowSpaceForm: Bool) throws -> [(String, String)] {
        let ws = try words(s, change)
        if let first = ws.first, !first.contains("=") {
            guard allowSpaceForm, let space = s.firstIndex(where: \.isWhitespace) else {
                throw fail(change, "expected key=value")
            }
            return [(String(s[..<space]), s[space...].trimmingCharacters(in: .whitespaces))]
        }
        return try ws.map { w in
            guard let eq = w.firstIndex(of: "="), eq != w.startIndex else { throw fail(change, "\"\(w)\" is not key=value") }
            return (String(w[..<eq]), String(w[w.index(after: eq)...]))
        }
    }

    /// Durations like 30s, 1m30s, 500ms in nanoseconds.
    static func duration(_ s: String, _ change: String) throws -> Int64 {
        var total: Double = 0
        var num = ""
        var i = s.startIndex
        let units: [(String, Double)] = [("ms", 1e6), ("us", 1e3), ("ns", 1), ("h", 3.6e12), ("m", 6e10), ("s", 1e9)]
        while i < s.endIndex {
            let ch = s[i]
            if ch.isNumber || ch == "." { num.append(ch); i = s.index(after: i); continue }
            guard let (u, f) = units.first(where: { s[i...].hasPrefix($0.0) }), let v = Double(num) else {
                throw fail(change, "\"\(s)\" is not a duration (e.g. 30s, 1m30s)")
            }
            total += v * f
            num = ""
            i = s.index(i, offsetBy: u.count)
        }
        guard num.isEmpty, !s.isEmpty else { throw fail(change, "\"\(s)\" is not a duration (e.g. 30s, 1m30s)") }
        return Int64(total)
    }

    static func healthcheck(_ s: String, shell: [String], _ change: String) throws -> HealthConfig {
        if s.uppercased() == "NONE" { return HealthConfig(test: ["NONE"]) }
        var h = HealthConfig()
        var rest = Substring(s)
        while rest.hasPrefix("--") {
            let end = rest.firstIndex(where: \.isWhitespace) ?? rest.endIndex
            let flag = rest[rest.index(rest.startIndex, offsetBy: 2)..<end]
            rest = rest[end...].drop(while: \.isWhitespace)
            guard let eq = flag.firstIndex(of: "=") else { throw fail(change, "HEALTHCHECK option --\(flag) needs =value") }
            let name = flag[..<eq], value = String(flag[flag.index(after: eq)...])
            switch name {
            case "interval": h.interval = try duration(value, change)
            case "timeout": h.timeout = try duration(value, change)
            case "start-period": h.startPeriod = try duration(value, change)
            case "start-interval": h.startInterval = try duration(value, change)
            case "retries":
                guard let r = Int(value), r >= 0 else { throw fail(change, "--retries must be a number") }
                h.retries = r
            default: throw fail(change, "unknown HEALTHCHECK option --\(name)")
            }
        }
        guard rest.uppercased().hasPrefix("CMD") else { throw fail(change, "HEALTHCHECK needs NONE or CMD <command>") }
        let cmd = rest.dropFirst(3).trimmingCharacters(in: .whitespaces)
        guard !cmd.isEmpty else { throw fail(change, "HEALTHCHECK CMD needs a command") }
        if let a = jsonArray(cmd) { h.test = ["CMD"] + a } else { h.test = ["CMD-SHELL", cmd] }
        _ = shell
        return h
    }
}
