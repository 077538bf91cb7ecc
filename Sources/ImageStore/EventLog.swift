import Foundation
import SystemSupport
#if canImport(Glibc)
import Glibc
#endif

/// What happened to an image, a container or a volume, as `docker events` reports it.
public struct StoreEvent: Sendable, Equatable {
    public var type: String          // container, image, volume
    public var action: String        // create, start, die, tag, ...
    public var id: String            // the container ID, the image reference or ID, the volume name
    public var attributes: [String: String]
    public var timeNano: Int64

    public init(type: String, action: String, id: String, attributes: [String: String] = [:], timeNano: Int64? = nil) {
        self.type = type
        self.action = action
        self.id = id
        self.attributes = attributes
        if let timeNano { self.timeNano = timeNano } else {
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            self.timeNano = Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
        }
    }

    /// The line kept in the log (and `--format '{{json .}}'`): docker 20.10's event JSON.
    public var document: [String: Any] {
        var doc: [String: Any] = ["Type": type, "Action": action, "Actor": ["ID": id, "Attributes": attributes],
                                  "scope": "local", "time": timeNano / 1_000_000_000, "timeNano": timeNano]
        // docker's legacy fields for containers and images
        if type == "container" || type == "image" {
            doc["status"] = action
            doc["id"] = id
            if type == "container", let image = attributes["image"] { doc["from"] = image }
        }
        return doc
    }

    /// `document` as one line of JSON, keys in JSONSerialization's sorted order, written by hand: it took
    /// 6M instructions for one event (`run` records three: create, start, die; issue #19).
    var jsonLine: String {
        func q(_ s: String) -> String { JSONString.quoted(s, style: .foundation) }
        func object(_ fields: [(String, String)]) -> String {
            "{" + fields.map { q($0.0) + ":" + $0.1 }.joined(separator: ",") + "}"
        }
        // JSONSerialization's `.sortedKeys` order: case-insensitive first (`timeNano` before
        // `Type`), then by the bytes; the fixed keys are listed in that order.
        let attrs = object(attributes.sorted { a, b in
            let (x, y) = (a.key.lowercased(), b.key.lowercased())
            return x != y ? Array(x.utf8).lexicographicallyPrecedes(Array(y.utf8)) : Array(a.key.utf8).lexicographicallyPrecedes(Array(b.key.utf8))
        }.map { ($0.key, q($0.value)) })
        var fields: [(String, String)] = [("Action", q(action)), ("Actor", object([("Attributes", attrs), ("ID", q(id))]))]
        if type == "container", let image = attributes["image"] { fields.append(("from", q(image))) }
        let legacy = type == "container" || type == "image"
        if legacy { fields.append(("id", q(id))) }
        fields.append(("scope", q("local")))
        if legacy { fields.append(("status", q(action))) }
        fields += [("time", String(timeNano / 1_000_000_000)), ("timeNano", String(timeNano)), ("Type", q(type))]
        return object(fields)
    }

    init?(document d: [String: Any]) {
        guard let type = d["Type"] as? String, let action = d["Action"] as? String, let actor = d["Actor"] as? [String: Any],
              let id = actor["ID"] as? String, let t = (d["timeNano"] as? NSNumber)?.int64Value else { return nil }
        self.init(type: type, action: action, id: id, attributes: actor["Attributes"] as? [String: String] ?? [:], timeNano: t)
    }
}

/// The store's event log: the commands record what they do, since there is no daemon to watch.
/// One JSON object per line in `<root>/events.jsonl`, each appended with one write(2) under
/// O_APPEND (concurrent commands never interleave); past 4 MiB it is renamed `events.jsonl.1`
/// (the previous one dropped), so the log keeps between 4 and 8 MiB of history.
public struct EventLog: Sendable {
    public let path: String
    public static let rotateAt = 4 << 20

    public init(root: String) { path = root + "/events.jsonl" }

    /// Appends `event`; a log that cannot be written never fails the command that records.
    public func record(_ event: StoreEvent) {
        var line = Data(event.jsonLine.utf8)
        line.append(0x0a)
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var st = stat()
        if fstat(fd, &st) == 0, Int(st.st_size) > Self.rotateAt {
            // one rotation wins; a second renamer finds the file gone and does nothing
            rename(path, path + ".1")
        }
    }

    /// Every event recorded, oldest first (the rotated file, then the current one).
    public func all() -> [StoreEvent] {
        events(in: path + ".1") + events(in: path)
    }

    /// The events appended to the current file past `offset` bytes, and the new offset (for a
    /// follow). A rotation (the file got shorter) starts over at 0.
    public func read(from offset: Int) -> (events: [StoreEvent], offset: Int) {
        guard let data = FileManager.default.contents(atPath: path) else { return ([], 0) }
        let start = data.count < offset ? 0 : offset
        // only whole lines: a line being written is read next time
        guard let lastNL = data[start...].lastIndex(of: 0x0a) else { return ([], start) }
        return (Self.parse(data[start...lastNL]), lastNL + 1)
    }

    public var size: Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }

    private func events(in file: String) -> [StoreEvent] {
        guard let data = FileManager.default.contents(atPath: file) else { return [] }
        return Self.parse(data[...])
    }

    static func parse(_ data: Data.SubSequence) -> [StoreEvent] {
        data.split(separator: 0x0a).compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]).flatMap { StoreEvent(document: $0) }
        }
    }
}

extension ImageStore {
    /// The store's event log (`dockbuild events`).
    public var events: EventLog { EventLog(root: root) }
}
