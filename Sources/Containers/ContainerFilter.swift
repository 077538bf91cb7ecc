import Foundation
import ImageStore
import OCI

/// `ps --filter`: docker's container filters. Values of one key are alternatives (any may
/// match); different keys must all match. Keys: `id` and `name` (regular expressions, a name
/// matched with and without its leading `/`), `label` (`KEY` or `KEY=VALUE`), `status`
/// (created, restarting, running, removing, paused, exited, dead), `exited` (an exit code),
/// `ancestor` (an image name, ID or ID prefix: containers of that image), `before` and `since`
/// (a container: those created before or after it), `volume` (a volume name or a mount
/// destination), `network` (the network mode), `publish` and `expose` (a port, `PORT/PROTO`),
/// `is-task` (always false: no swarm), `health` (starting, healthy, unhealthy, or `none` for containers without a health check).
public struct ContainerFilter: Sendable {
    public private(set) var terms: [String: [String]] = [:]
    static let keys: Set<String> = ["id", "name", "label", "status", "exited", "ancestor", "before", "since",
                                    "volume", "network", "publish", "expose", "is-task", "health", "isolation"]
    static let statuses: Set<String> = ["created", "restarting", "running", "removing", "paused", "exited", "dead"]
    static let healths: Set<String> = ["starting", "healthy", "unhealthy", "none"]

    /// Parses each `KEY=VALUE` given to `--filter`, with docker's messages for bad ones.
    public init(_ args: [String]) throws {
        for a in args {
            let (key, value) = try FilterTerm.split(a, keys: Self.keys)
            switch key {
            case "status" where !Self.statuses.contains(value):
                throw ContainersError.invalidArgument("invalid filter 'status=\(value)': use one of \(Self.statuses.sorted().joined(separator: ", "))")
            case "health" where !Self.healths.contains(value):
                throw ContainersError.invalidArgument("invalid filter 'health=\(value)': use one of starting, healthy, unhealthy, none")
            case "exited" where Int32(value) == nil:
                throw ContainersError.invalidArgument("invalid filter 'exited=\(value)': give an exit code, e.g. exited=0")
            case "is-task" where value != "true" && value != "false":
                throw ContainersError.invalidArgument("invalid filter 'is-task=\(value)': use true or false")
            case "id", "name":
                guard (try? NSRegularExpression(pattern: value)) != nil else {
                    throw ContainersError.invalidArgument("invalid filter '\(key)=\(value)': not a valid regular expression")
                }
            default: break
            }
            terms[key, default: []].append(value)
        }
    }

    public var isEmpty: Bool { terms.isEmpty }

    /// docker lists stopped containers without `-a` when the filter asks for a state.
    public var listsStopped: Bool { terms["status"] != nil || terms["exited"] != nil }

    /// The containers of `all` (newest first) that pass. `store` resolves `ancestor` images;
    /// `before`/`since` name containers of `all`.
    public func apply(_ all: [Container], images store: ImageStore?) throws -> [Container] {
        if terms.isEmpty { return all }
        func find(_ ref: String) throws -> Container {
            let key = ref.hasPrefix("/") ? String(ref.dropFirst()) : ref
            if let c = all.first(where: { $0.id == key || $0.name == key }) { return c }
            let m = all.filter { $0.id.hasPrefix(key.lowercased()) }
            guard m.count == 1 else { throw ContainersError.notFound(ref) }
            return m[0]
        }
        let before = try terms["before"].map { try $0.map(find) }
        let since = try terms["since"].map { try $0.map(find) }
        // ancestor: the image IDs each value names (a name that resolves, or an ID / ID prefix)
        var ancestorIDs: [Set<String>]?
        if let vals = terms["ancestor"] {
            ancestorIDs = vals.map { v in
                var ids: Set<String> = []
                if let store, let img = try? store.image(v) { ids.insert(img.id.description) }
                let hex = v.hasPrefix("sha256:") ? String(v.dropFirst(7)) : v
                if hex.count >= 4, hex.allSatisfy(\.isHexDigit) {
                    for c in all where c.record.imageID.replacingOccurrences(of: "sha256:", with: "").hasPrefix(hex.lowercased()) {
                        ids.insert(c.record.imageID)
                    }
                }
                return ids
            }
        }
        return all.filter { c in
            func any(_ key: String, _ test: (String) -> Bool) -> Bool { terms[key].map { $0.contains(where: test) } ?? true }
            func regex(_ pattern: String, _ s: String) -> Bool {
                guard let r = try? NSRegularExpression(pattern: pattern) else { return false }
                return r.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
            }
            let created = c.record.created
            return any("id") { regex($0, c.id) }
                && any("name") { regex($0, c.name) || regex($0, "/" + c.name) }
                && any("label") { l in
                    if let eq = l.firstIndex(of: "=") { return c.record.labels[String(l[..<eq])] == String(l[l.index(after: eq)...]) }
                    return c.record.labels[l] != nil
                }
                && any("status") { $0 == (c.isPaused ? "paused" : c.state.status.rawValue) }
                && any("exited") { c.state.status == .exited && Int32($0) == c.state.exitCode }
                && (ancestorIDs.map { sets in sets.contains { $0.contains(c.record.imageID) || $0.contains(c.record.image) } } ?? true)
                && (before.map { $0.allSatisfy { created < $0.record.created } } ?? true)
                && (since.map { $0.allSatisfy { created > $0.record.created } } ?? true)
                && any("volume") { v in c.record.mounts.contains { $0.source == v || $0.destination == v } }
                && any("network") { $0 == c.record.network }
                && any("publish") { p in c.state.ports.contains { Self.port(p, $0.hostPort, $0.proto) } || c.record.ports.contains { Self.port(p, $0.hostPort, $0.proto) } }
                && any("expose") { p in c.record.exposedPorts.contains { Self.portText(p, $0) } || c.record.ports.contains { Self.port(p, $0.containerPort, $0.proto) } }
                && any("is-task") { $0 == "false" }
                && any("isolation") { $0 == "default" }
                && any("health") { $0 == c.healthStatus }
        }
    }

    static func port(_ want: String, _ port: Int, _ proto: String) -> Bool {
        portText(want, "\(port)/\(proto)")
    }

    /// `80` matches `80/tcp`; `80/udp` only itself.
    static func portText(_ want: String, _ have: String) -> Bool {
        let w = want.contains("/") ? want.lowercased() : want + "/tcp"
        let h = have.contains("/") ? have.lowercased() : have + "/tcp"
        return w == h
    }
}

/// `container prune --filter` (and `volume prune --filter label`): docker's `until=TIME`
/// (created before: an RFC 3339 time, a Unix time or a duration before now), `label=KEY[=VALUE]`
/// and `label!=KEY[=VALUE]`.
public struct PruneFilter: Sendable {
    public var until: [Date] = []
    public var labels: [String] = []
    public var notLabels: [String] = []

    public init(_ args: [String], allowUntil: Bool = true, now: Date = Date()) throws {
        for a in args {
            if a.hasPrefix("label!=") { notLabels.append(String(a.dropFirst(7))); continue }
            guard let eq = a.firstIndex(of: "=") else {
                throw ContainersError.invalidArgument("bad format of filter (expected name=value): \(a)")
            }
            let key = String(a[..<eq]), value = String(a[a.index(after: eq)...])
            switch key {
            case "label": labels.append(value)
            case "until" where allowUntil: until.append(try LogReader.parseTime(value, flag: "until", now: now))
            default:
                throw ContainersError.invalidArgument("invalid filter '\(key)': use \(allowUntil ? "until, " : "")label or label!")
            }
        }
    }

    static func has(_ labels: [String: String], _ want: String) -> Bool {
        if let eq = want.firstIndex(of: "=") { return labels[String(want[..<eq])] == String(want[want.index(after: eq)...]) }
        return labels[want] != nil
    }

    /// Whether something with these labels, created at `created`, may be pruned.
    public func matches(labels l: [String: String], created: Date?) -> Bool {
        labels.allSatisfy { Self.has(l, $0) } && !notLabels.contains { Self.has(l, $0) }
            && (until.isEmpty || created.map { c in until.allSatisfy { c < $0 } } == true)
    }
}

/// `events --filter`: docker's keys. Values of one key are alternatives; different keys must
/// all match. `container=` (a name, an ID or an ID prefix), `image=` (the container's image, or
/// an image event's name or ID), `event=` (the action), `label=KEY[=VALUE]`,
/// `type=container|image|volume|network`, `volume=` (a volume name).
public struct EventFilter: Sendable {
    public private(set) var terms: [String: [String]] = [:]
    static let keys: Set<String> = ["container", "image", "event", "label", "type", "volume", "network", "scope"]

    public init(_ args: [String]) throws {
        for a in args {
            let (key, value) = try FilterTerm.split(a, keys: Self.keys)
            if key == "type", !["container", "image", "volume", "network", "daemon", "plugin", "node", "service", "secret", "config"].contains(value) {
                throw ContainersError.invalidArgument("invalid filter 'type=\(value)': use container, image, volume or network")
            }
            terms[key, default: []].append(value)
        }
    }

    public func matches(_ e: StoreEvent) -> Bool {
        func any(_ key: String, _ test: (String) -> Bool) -> Bool { terms[key].map { $0.contains(where: test) } ?? true }
        let name = e.attributes["name"] ?? ""
        return any("type") { $0 == e.type }
            && any("event") { $0 == e.action }
            && any("container") { c in e.type == "container" && (e.id == c || name == c || (c.count >= 3 && e.id.hasPrefix(c))) }
            && any("image") { i in
                let short = i.contains(":") || i.contains("@") ? i : i + ":latest"
                if e.type == "container" { return e.attributes["image"] == i || e.attributes["image"] == short }
                return e.type == "image" && (name == i || name == short || e.id == i || e.id.hasPrefix("sha256:" + i) || e.id.hasPrefix(i))
            }
            && any("label") { l in
                if let eq = l.firstIndex(of: "=") { return e.attributes[String(l[..<eq])] == String(l[l.index(after: eq)...]) }
                return e.attributes[l] != nil
            }
            && any("volume") { e.type == "volume" && e.id == $0 }
            && any("network") { _ in false }
            && any("scope") { $0 == "local" }
    }
}

/// One `--filter KEY=VALUE`, with docker's messages: no `=`, or a key the command does not take.
enum FilterTerm {
    static func split(_ a: String, keys: Set<String>) throws -> (key: String, value: String) {
        guard let eq = a.firstIndex(of: "=") else {
            throw ContainersError.invalidArgument("bad format of filter (expected name=value): \(a)")
        }
        let key = a[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
        guard keys.contains(key) else {
            throw ContainersError.invalidArgument("invalid filter '\(key)': use one of \(keys.sorted().joined(separator: ", "))")
        }
        return (key, String(a[a.index(after: eq)...]))
    }
}
