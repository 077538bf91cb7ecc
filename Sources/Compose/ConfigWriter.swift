import Foundation

/// `compose config`: the normalised model as YAML, in docker compose's layout (long forms,
/// keys in order, numbers that are strings quoted), for the keys dockbuild supports.
public enum ConfigWriter {
    /// A YAML value to print: mappings keep the order given.
    indirect enum Value {
        case str(String)
        case raw(String)   // a number or boolean, printed as is
        case null
        case list([Value])
        case map([(String, Value)])
    }

    /// A service's `secrets` or `configs` in long form.
    static func refs(_ r: [FileReference]) -> Value {
        .list(r.map { .map([("source", .str($0.source)), ("target", .str($0.target))]) })
    }

    public static func yaml(_ p: ComposeProject) -> String {
        var top: [(String, Value)] = [("name", .str(p.name))]
        top.append(("services", .map(p.services.map { ($0.name, service($0, p)) })))
        // the networks the services use (docker compose leaves the others out)
        let used = Set(p.services.flatMap { $0.networks.keys })
        top.append(("networks", .map(p.networks.filter { used.contains($0.key) || $0.key == "default" && used.isEmpty }.map { n in
            var f: [(String, Value)] = [("name", .str(n.name))]
            if n.external { f.append(("external", .raw("true"))) }
            if !n.labels.isEmpty { f.append(("labels", strMap(n.labels))) }
            return (n.key, .map(f))
        })))
        if !p.volumes.isEmpty {
            top.append(("volumes", .map(p.volumes.map { v in
                var f: [(String, Value)] = [("name", .str(v.name))]
                if v.external { f.append(("external", .raw("true"))) }
                if !v.labels.isEmpty { f.append(("labels", strMap(v.labels))) }
                return (v.key, .map(f))
            })))
        }
        for (key, objects) in [("secrets", p.secrets), ("configs", p.configs)] where !objects.isEmpty {
            top.append((key, .map(objects.map { o in
                (o.key, .map(o.file.map { [("file", Value.str($0))] } ?? o.environment.map { [("environment", Value.str($0))] }
                    ?? [("content", .str(o.content ?? ""))]))
            })))
        }
        var out = ""
        emit(.map(top), indent: 0, into: &out)
        return out
    }

    static func strMap(_ d: [String: String]) -> Value { .map(d.keys.sorted().map { ($0, .str(d[$0] ?? "")) }) }

    static func service(_ s: ComposeService, _ p: ComposeProject) -> Value {
        var f: [(String, Value)] = []
        if let b = s.build {
            var bf: [(String, Value)] = [("context", .str(b.context)), ("dockerfile", .str(b.dockerfile))]
            if let i = b.dockerfileInline { bf.append(("dockerfile_inline", .str(i))) }
            if !b.args.isEmpty { bf.append(("args", strMap(b.args))) }
            if let t = b.target { bf.append(("target", .str(t))) }
            if !b.labels.isEmpty { bf.append(("labels", strMap(b.labels))) }
            if !b.cacheFrom.isEmpty { bf.append(("cache_from", .list(b.cacheFrom.map(Value.str)))) }
            if let n = b.network { bf.append(("network", .str(n))) }
            f.append(("build", .map(bf)))
        }
        if !s.capAdd.isEmpty { f.append(("cap_add", .list(s.capAdd.map(Value.str)))) }
        if !s.capDrop.isEmpty { f.append(("cap_drop", .list(s.capDrop.map(Value.str)))) }
        if let c = s.command { f.append(("command", .list(c.map(Value.str)))) }
        if !s.configs.isEmpty { f.append(("configs", refs(s.configs))) }
        if let n = s.nanoCpus { f.append(("cpus", .raw(cpus(n)))) }
        if let c = s.containerName { f.append(("container_name", .str(c))) }
        if !s.dependsOn.isEmpty {
            f.append(("depends_on", .map(s.dependsOn.sorted { $0.service < $1.service }.map { d in
                (d.service, .map([("condition", .str(d.condition.rawValue)), ("required", .raw(d.required ? "true" : "false"))]))
            })))
        }
        if !s.devices.isEmpty { f.append(("devices", .list(s.devices.map(Value.str)))) }
        if !s.dns.isEmpty { f.append(("dns", .list(s.dns.map(Value.str)))) }
        if !s.dnsOpt.isEmpty { f.append(("dns_opt", .list(s.dnsOpt.map(Value.str)))) }
        if !s.dnsSearch.isEmpty { f.append(("dns_search", .list(s.dnsSearch.map(Value.str)))) }
        if let e = s.entrypoint { f.append(("entrypoint", .list(e.map(Value.str)))) }
        if !s.environment.isEmpty { f.append(("environment", strMap(s.environment))) }
        if !s.expose.isEmpty { f.append(("expose", .list(s.expose.map(Value.str)))) }
        if !s.extraHosts.isEmpty { f.append(("extra_hosts", .list(s.extraHosts.map(Value.str)))) }
        if let h = s.healthcheck {
            var hf: [(String, Value)] = []
            if let t = h.test { hf.append(("test", .list(t.map(Value.str)))) }
            if let v = h.timeout { hf.append(("timeout", .str(goDuration(v)))) }
            if let v = h.interval { hf.append(("interval", .str(goDuration(v)))) }
            if let v = h.retries { hf.append(("retries", .raw(String(v)))) }
            if let v = h.startPeriod { hf.append(("start_period", .str(goDuration(v)))) }
            if let v = h.startInterval { hf.append(("start_interval", .str(goDuration(v)))) }
            if h.disable { hf.append(("disable", .raw("true"))) }
            f.append(("healthcheck", .map(hf)))
        }
        if let g = s.gpus { f.append(("gpus", .str(g))) }
        if !s.groupAdd.isEmpty { f.append(("group_add", .list(s.groupAdd.map(Value.str)))) }
        if let h = s.hostname { f.append(("hostname", .str(h))) }
        f.append(("image", .str(s.image)))
        if s.initProcess { f.append(("init", .raw("true"))) }
        if !s.labels.isEmpty { f.append(("labels", strMap(s.labels))) }
        if let m = s.memLimit { f.append(("mem_limit", .str(String(m)))) }
        if let m = s.networkMode { f.append(("network_mode", .str(m))) } else {
            f.append(("networks", .map(s.networks.keys.sorted().map { k in
                let a = s.networks[k] ?? []
                return (k, a.isEmpty ? .null : .map([("aliases", .list(a.map(Value.str)))]))
            })))
        }
        if let p = s.pidsLimit { f.append(("pids_limit", .raw(String(p)))) }
        if let p = s.platform { f.append(("platform", .str(p))) }
        if !s.ports.isEmpty {
            f.append(("ports", .list(s.ports.map { pt in
                var pf: [(String, Value)] = [("mode", .str("ingress"))]
                if !pt.hostIP.isEmpty { pf.append(("host_ip", .str(pt.hostIP))) }
                pf.append(("target", .raw(String(pt.target))))
                if !pt.published.isEmpty { pf.append(("published", .str(pt.published))) }
                pf.append(("protocol", .str(pt.proto)))
                return .map(pf)
            })))
        }
        if s.privileged { f.append(("privileged", .raw("true"))) }
        if let p = s.pullPolicy { f.append(("pull_policy", .str(p))) }
        if !s.profiles.isEmpty { f.append(("profiles", .list(s.profiles.map(Value.str)))) }
        if s.readOnly { f.append(("read_only", .raw("true"))) }
        if let r = s.restart { f.append(("restart", .str(r))) }
        if s.replicas != 1 { f.append(("scale", .raw(String(s.replicas)))) }
        if !s.secrets.isEmpty { f.append(("secrets", refs(s.secrets))) }
        if !s.securityOpt.isEmpty { f.append(("security_opt", .list(s.securityOpt.map(Value.str)))) }
        if let m = s.shmSize { f.append(("shm_size", .str(String(m)))) }
        if s.stdinOpen { f.append(("stdin_open", .raw("true"))) }
        if let g = s.stopGracePeriod { f.append(("stop_grace_period", .str("\(g)s"))) }
        if let sig = s.stopSignal { f.append(("stop_signal", .str(sig))) }
        if !s.tmpfs.isEmpty { f.append(("tmpfs", .list(s.tmpfs.map(Value.str)))) }
        if s.tty { f.append(("tty", .raw("true"))) }
        if !s.ulimits.isEmpty {
            f.append(("ulimits", .map(s.ulimits.sorted { $0.name < $1.name }.map { u in
                (u.name, .map([("soft", .raw(String(u.soft))), ("hard", .raw(String(u.hard)))]))
            })))
        }
        if let u = s.user { f.append(("user", .str(u))) }
        if !s.volumes.isEmpty {
            f.append(("volumes", .list(s.volumes.map { m in
                var mf: [(String, Value)] = [("type", .str(m.type.rawValue))]
                if !m.source.isEmpty { mf.append(("source", .str(m.source))) }
                mf.append(("target", .str(m.target)))
                if m.readOnly { mf.append(("read_only", .raw("true"))) }
                switch m.type {
                case .bind: mf.append(("bind", .map([("create_host_path", .raw("true"))])))
                case .volume: mf.append(("volume", .map([])))
                case .tmpfs: break
                }
                return .map(mf)
            })))
        }
        if let w = s.workingDir { f.append(("working_dir", .str(w))) }
        return .map(f)
    }

    /// Nano-CPUs as a decimal number of CPUs (`0.5`).
    static func cpus(_ n: Int64) -> String {
        var t = String(format: "%.9f", Double(n) / 1e9)
        while t.hasSuffix("0") { t.removeLast() }
        if t.hasSuffix(".") { t.removeLast() }
        return t
    }

    /// Nanoseconds as Go prints a time.Duration (`1m30s`, `500ms`).
    static func goDuration(_ ns: Int64) -> String {
        if ns == 0 { return "0s" }
        if ns % 1_000_000_000 != 0 && ns < 1_000_000_000 {
            return ns % 1_000_000 == 0 ? "\(ns / 1_000_000)ms" : "\(ns)ns"
        }
        let total = ns / 1_000_000_000, h = total / 3600, m = (total % 3600) / 60, sec = total % 60
        return (h > 0 ? "\(h)h" : "") + (h > 0 || m > 0 ? "\(m)m" : "") + "\(sec)s"
    }

    static func emit(_ v: Value, indent: Int, into out: inout String) {
        let pad = String(repeating: " ", count: indent)
        switch v {
        case let .map(pairs):
            for (k, val) in pairs {
                out += pad + quote(k) + ":"
                switch val {
                case let .map(p) where p.isEmpty: out += " {}\n"
                case let .list(l) where l.isEmpty: out += " []\n"
                case .map: out += "\n"; emit(val, indent: indent + 2, into: &out)
                case .list: out += "\n"; emit(val, indent: indent + 2, into: &out)
                default: out += " " + scalar(val) + "\n"
                }
            }
        case let .list(items):
            for it in items {
                switch it {
                case let .map(p) where !p.isEmpty:
                    var sub = ""
                    emit(it, indent: indent + 2, into: &sub)
                    out += pad + "- " + sub.dropFirst(indent + 2)
                default: out += pad + "- " + scalar(it) + "\n"
                }
            }
        default: out += pad + scalar(v) + "\n"
        }
    }

    static func scalar(_ v: Value) -> String {
        switch v {
        case let .str(s): return quote(s)
        case let .raw(s): return s
        case .null: return "null"
        case .map: return "{}"
        case .list: return "[]"
        }
    }

    /// Plain when YAML reads it back as the same string, else double-quoted.
    static func quote(_ s: String) -> String {
        let reserved: Set = ["", "~", "null", "true", "false", "yes", "no", "on", "off", "y", "n"]
        let leading = "?:,[]{}#&*!|>'\"%@`"
        let first = s.first ?? " "
        let dashOK = first != "-" || (s.count > 1 && s.dropFirst().first != " ")
        let plain = !reserved.contains(s.lowercased()) && Double(s) == nil && Int(s) == nil
            && !leading.contains(first) && dashOK && first != " " && s.last != " " && s.last != ":"
            && !s.contains(": ") && !s.contains(" #") && !s.contains(where: { "\"\\".contains($0) })
            && s.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7f }
        if plain { return s }
        var q = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": q += "\\\""
            case "\\": q += "\\\\"
            case "\n": q += "\\n"
            case "\t": q += "\\t"
            default:
                if u.value < 0x20 { q += String(format: "\\x%02X", u.value) } else { q.unicodeScalars.append(u) }
            }
        }
        return q + "\""
    }
}
