import Foundation
import Synchronization
import SystemSupport
import ImageStore
import OCI

/// Containers on disk under `<root>/containers/<id>/`: config.json (the record), state.json
/// (what the monitor reports), container.log (JSON lines), upper/ work/ rootfs/ (the overlay),
/// bundle/config.json (the runtime spec), attach.sock (the monitor's socket).
public final class ContainerStore: Sendable {
    public let root: String
    /// Containers seen here (saved or read) whose record says `--rm`: their record and state
    /// are written without fsync. They are removed when they stop, so a crash that loses one
    /// loses nothing a user keeps, and the fsyncs were several milliseconds of each `run --rm`.
    private let autoRemoved = Mutex<Set<String>>([])
    public var containersDir: String { "\(root)/containers" }

    public init(root: String) throws {
        self.root = root
        try FS.mkdirs("\(root)/containers")
        try FS.mkdirs("\(root)/volumes")
        // the containers' files (their upper layers hold image content) are not for other users
        ImageStore.makePrivate(root)
        chmod("\(root)/containers", 0o710)
    }

    public func directory(_ id: String) -> String { "\(containersDir)/\(id)" }

    /// Where the container's root filesystem is mounted. It lives under /run (cleared at boot),
    /// not in the container's directory: other containers' mount namespaces may keep a copy of
    /// the mount point busy for a while, and that must not stop `rm` from removing the directory.
    public func rootfsPath(_ id: String) -> String { StatePaths.rootfsDir() + "/\(id)" }

    // MARK: - records

    public func ids() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: containersDir)) ?? []
        return names.filter { $0.count == 64 && FS.exists("\(containersDir)/\($0)/config.json") }.sorted()
    }

    public func record(_ id: String) throws -> ContainerRecord {
        let p = "\(directory(id))/config.json"
        guard let d = FileManager.default.contents(atPath: p) else { throw ContainersError.notFound(id) }
        do {
            // Without Codable where it can (Models+FastDecode.swift); the same record.
            let r = try (try? ContainerRecord.fastDecode(d)) ?? JSONDecoder().decode(ContainerRecord.self, from: d)
            if r.autoRemove { autoRemoved.withLock { _ = $0.insert(id) } }
            return r
        } catch {
            throw ContainersError.invalidState("\(p) is damaged (\(error)); remove the container with `dockbuild rm -f \(id.prefix(12))`")
        }
    }

    /// The id and name a record gives, decoded alone: a name look-up reads every record, and
    /// the whole of each (`ContainerRecord`'s Codable) was 5x the cost. Nil where those two
    /// cannot be read (then neither can the whole record).
    func idAndName(_ id: String) -> (id: String, name: String)? {
        struct IDAndName: Decodable { var id: String; var name: String }
        guard let d = FileManager.default.contents(atPath: "\(directory(id))/config.json") else { return nil }
        // Without Codable where it can (see Models+FastDecode.swift); the same two strings.
        if let o = try? FastJSON.parse(d).object(), let id = try? o.required("id").string(),
           let name = try? o.required("name").string() {
            return (id, name)
        }
        guard let r = try? JSONDecoder().decode(IDAndName.self, from: d) else { return nil }
        return (r.id, r.name)
    }

    public func save(_ r: ContainerRecord) throws {
        autoRemoved.withLock { if r.autoRemove { $0.insert(r.id) } else { $0.remove(r.id) } }
        try FS.writeJSON(r, to: "\(directory(r.id))/config.json", durable: !r.autoRemove)
    }

    public func rawState(_ id: String) -> ContainerState {
        guard let d = FileManager.default.contents(atPath: "\(directory(id))/state.json"),
              let s = (try? ContainerState.fastDecode(d)) ?? (try? JSONDecoder().decode(ContainerState.self, from: d))
        else { return ContainerState() }
        return s
    }

    public func saveState(_ id: String, _ s: ContainerState) throws {
        try FS.writeJSON(s, to: "\(directory(id))/state.json", durable: !autoRemoved.withLock { $0.contains(id) })
    }

    /// Changes the state under the container's lock so the monitor and the CLI never lose a write.
    @discardableResult
    public func updateState(_ id: String, _ f: (inout ContainerState) -> Void) throws -> ContainerState {
        try withLock(id) {
            var s = rawState(id)
            f(&s)
            try saveState(id, s)
            return s
        }
    }

    /// State with liveness checked. A container recorded as running whose monitor is gone
    /// (killed, crashed, the machine's OOM killer) is `dead`, as docker calls a container it
    /// lost track of: its processes may still run and its rootfs may still be mounted until
    /// `stop`, `rm` or `start` reap it (`ContainerManager.reapDead`). The first look that can
    /// take the container's lock records the moment the loss was noticed as FinishedAt, so
    /// `ps` and `inspect` show a real time instead of year 1.
    public func state(_ id: String) -> ContainerState {
        var s = rawState(id)
        guard s.status == .running, !Self.monitorAlive(s) else { return s }
        Self.markDead(&s)
        // best effort: never wait here, a caller may already hold the lock
        if let saved = try? withLockIfFree(id, {
            var fresh = rawState(id)
            guard fresh.status == .running, !Self.monitorAlive(fresh) else { return fresh }
            Self.markDead(&fresh)
            try saveState(id, fresh)
            return fresh
        }) { return saved }
        return s
    }

    static func markDead(_ s: inout ContainerState) {
        s.status = .dead
        s.ports = []  // the port forwarders lived in the monitor
        s.health?.status = .unhealthy  // so did the health checks (docker's status once they stop)
        if s.exitCode == 0 { s.exitCode = 255 }
        if Time.parse(s.finishedAt).map({ $0.timeIntervalSince1970 <= 0 }) ?? true { s.finishedAt = Time.now() }
        if s.error.isEmpty {
            s.error = "the container's monitor (pid \(s.monitorPid)) is gone; its processes may still run: `dockbuild stop` or `dockbuild rm -f` kills and cleans up"
        }
    }

    public func container(_ id: String) throws -> Container {
        let s = state(id)
        return Container(record: try record(id), state: s, directory: directory(id),
                         isPaused: s.status == .running && Self.isFrozen(s.cgroupPaths))
    }

    public func list() -> [Container] { listWithDamaged().containers }

    /// Every container, newest first, and the ids whose record cannot be read, in one pass
    /// (`ps -a` lists both; reading every record twice was a tenth of its time).
    public func listWithDamaged() -> (containers: [Container], damaged: [String]) {
        var out: [Container] = []
        var damaged: [String] = []
        for id in ids() {
            if let c = try? container(id) { out.append(c) } else { damaged.append(id) }
        }
        return (out.sorted { $0.record.created > $1.record.created }, damaged)
    }

    /// Finds a container by full id, name, or unique id prefix.
    public func lookup(_ ref: String) throws -> Container {
        let key = ref.hasPrefix("/") ? String(ref.dropFirst()) : ref
        let all = ids()
        if all.contains(key) { return try container(key) }
        // only records that can be read whole count (a damaged one is `rm -f`'s, by id)
        let named = all.compactMap { dir in idAndName(dir).map { (dir: dir, id: $0.id, name: $0.name) } }
        if let byName = named.first(where: { $0.name == key && (try? record($0.dir)) != nil }) { return try container(byName.id) }
        let lower = key.lowercased()
        guard !lower.isEmpty, lower.allSatisfy({ $0.isHexDigit }) else { throw ContainersError.notFound(ref) }
        let matches = named.filter { $0.id.hasPrefix(lower) && (try? record($0.dir)) != nil }
        if matches.count == 1 { return try container(matches[0].id) }
        if matches.isEmpty { throw ContainersError.notFound(ref) }
        throw ContainersError.ambiguous(ref, candidates: matches.map { String($0.id.prefix(12)) })
    }

    /// Containers whose record cannot be read (a damaged config.json), which `list` leaves out.
    public func damagedIDs() -> [String] { listWithDamaged().damaged }

    /// The id `ref` (a full id or a unique id prefix) names when that container's record can no
    /// longer be read (a damaged config.json); nil otherwise. `rm -f` removes such containers.
    public func damagedID(_ ref: String) -> String? {
        let key = ref.lowercased()
        guard !key.isEmpty, key.allSatisfy(\.isHexDigit) else { return nil }
        let matches = ids().filter { $0.hasPrefix(key) }
        guard matches.count == 1, let id = matches.first, (try? record(id)) == nil else { return nil }
        return id
    }

    public func nameInUse(_ name: String) -> String? {
        // A name of plain characters (all that `validName` allows: JSON writes them unescaped)
        // is in a record's bytes when it is its name: a record without them is skipped unparsed
        // (`run` and `create` check a name against every other container, issue #19).
        let plain = !name.isEmpty && name.utf8.allSatisfy { Self.plainNameByte($0) }
        for id in ids() {
            if plain, let d = FileManager.default.contents(atPath: "\(directory(id))/config.json"), !Self.contains(d, name) { continue }
            if let r = idAndName(id), r.name == name, (try? record(id)) != nil { return id }
        }
        return nil
    }

    static func plainNameByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x2E || c == 0x2D
    }

    /// Whether `data` holds the UTF-8 bytes of `text`.
    static func contains(_ data: Data, _ text: String) -> Bool {
        let needle = Array(text.utf8)
        return data.withUnsafeBytes { hay in
            needle.withUnsafeBytes { n in
                guard let h = hay.baseAddress, let nb = n.baseAddress, n.count > 0 else { return false }
                // each place of the first byte (memchr), then the rest compared (memmem is GNU's only)
                let first = Int32(needle[0])
                var at = 0
                while hay.count - at >= n.count, let p = memchr(h + at, first, hay.count - at - n.count + 1) {
                    if memcmp(p, nb, n.count) == 0 { return true }
                    at = h.distance(to: UnsafeRawPointer(p)) + 1
                }
                return false
            }
        }
    }

    // MARK: - locking

    /// Runs `body` holding an exclusive flock on the container's lock file.
    public func withLock<T>(_ id: String, _ body: () throws -> T) throws -> T {
        let p = "\(directory(id))/lock"
        let lock: FileLock
        do { lock = try FileLock(path: p, mode: 0o600) } catch { throw ContainersError.system("cannot open \(p)", errno: error.errno) }
        do { try lock.lock() } catch { throw ContainersError.system("cannot lock \(p)", errno: error.errno) }
        defer { lock.unlock() }
        return try body()
    }

    /// Like `withLock`, but nil at once when another holder has the lock.
    func withLockIfFree<T>(_ id: String, _ body: () throws -> T) throws -> T? {
        guard let lock = FileLock(existing: "\(directory(id))/lock"), lock.tryLock() else { return nil }
        defer { lock.unlock() }
        return try body()
    }

    // MARK: - liveness

    /// Start time of a process (field 22 of /proc/<pid>/stat), nil when it does not exist.
    public static func processStartTime(_ pid: Int32) -> UInt64? { processStat(pid)?.start }

    /// A process's start time and whether it has begun to exit (PF_EXITING, 0x4, in its flags:
    /// field 9), from one read of /proc/<pid>/stat; nil when it does not exist or is a zombie.
    static func processStat(_ pid: Int32) -> (start: UInt64, exiting: Bool)? {
        guard pid > 0, let s = FS.readFile("/proc/\(pid)/stat"),
              let close = s.lastIndex(of: ")") else { return nil }
        let fields = s[s.index(after: close)...].split(separator: " ")
        // fields[0] is state (field 3): flags are field 9 -> index 6, start time field 22 -> index 19
        guard fields.count > 19, fields[0] != "Z", let start = UInt64(fields[19]) else { return nil }
        return (start, (UInt64(fields[6]) ?? 0) & 0x4 != 0)
    }

    /// Whether the monitor runs. One that has begun to exit (killed: the kernel marks it exiting
    /// before it closes its files, so a foreground `run` sees its attach socket end while its
    /// process is not yet a zombie) is gone already.
    static func monitorAlive(_ s: ContainerState) -> Bool {
        guard let p = processStat(s.monitorPid), !p.exiting else { return false }
        return s.monitorStartTime == 0 || p.start == s.monitorStartTime
    }

    // MARK: - ids and names

    public static func newID() -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        let fd = open("/dev/urandom", O_RDONLY)
        if fd >= 0 { _ = read(fd, &bytes, 32); close(fd) } else { for i in 0..<32 { bytes[i] = UInt8.random(in: 0...255) } }
        return bytes.map { String(format: "%02x", $0) }.joined()
    }

    static let adjectives = ["admiring", "brave", "calm", "dazzling", "eager", "focused", "gallant", "happy", "jolly",
                             "keen", "loving", "modest", "nifty", "optimistic", "quirky", "relaxed", "serene",
                             "tender", "upbeat", "vibrant", "wizardly", "zealous"]
    static let surnames = ["archimedes", "babbage", "curie", "darwin", "euclid", "feynman", "galileo", "hopper",
                           "hypatia", "kepler", "lovelace", "meitner", "newton", "noether", "pascal", "ritchie",
                           "shannon", "thompson", "turing", "wozniak", "yalow"]

    public func generateName() -> String {
        for _ in 0..<100 {
            let n = "\(Self.adjectives.randomElement() ?? "calm")_\(Self.surnames.randomElement() ?? "turing")"
            if nameInUse(n) == nil { return n }
        }
        return "c_\(Self.newID().prefix(12))"
    }

    /// docker's rule for container and volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (two characters at least).
    public static func validName(_ n: String) -> Bool {
        guard n.count >= 2, let f = n.first, f.isLetter || f.isNumber else { return false }
        return n.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }
    }
}

/// Small file helpers: directories and atomic JSON writes.
enum FS {
    static func mkdirs(_ p: String) throws {
        do { try FileSystem.makeDirectories(p) } catch { throw ContainersError.system("cannot create \(error.path)", errno: error.errno) }
    }

    static func exists(_ p: String) -> Bool { access(p, F_OK) == 0 }

    static func isDir(_ p: String) -> Bool {
        var st = stat()
        return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Temp file, fsync, rename: a crash leaves the old or the new record, never a mix.
    /// `durable: false` skips the fsync for files the monitor writes afresh at every start
    /// (the bundle's spec, hosts, hostname, resolv.conf): each fsync cost a `run` 0.5-3 ms here.
    static func writeAtomic(_ data: Data, to path: String, durable: Bool = true) throws {
        do { try FileSystem.writeAtomically(data, to: path, durability: durable ? .file : .none) } catch {
            throw ContainersError.system("cannot write \(path)", errno: error.errno)
        }
    }

    static func writeJSON<T: Encodable>(_ v: T, to path: String, durable: Bool = true) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        try writeAtomic(try enc.encode(v), to: path, durable: durable)
    }

    static func isMountPoint(_ p: String) -> Bool {
        guard let m = readFile("/proc/self/mountinfo") else { return false }
        for line in m.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count > 4, unescape(String(f[4])) == p { return true }
        }
        return false
    }

    /// Reads a whole file with read(2) until EOF (procfs files report size 0, so size-based readers truncate them).
    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buf, buf.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\040", with: " ").replacingOccurrences(of: "\\011", with: "\t")
            .replacingOccurrences(of: "\\012", with: "\n").replacingOccurrences(of: "\\134", with: "\\")
    }

    /// Unmounts `p` (lazily when busy) if it is a mount point.
    static func unmount(_ p: String) {
        while isMountPoint(p) {
            if umount2(p, 0) != 0 {
                if umount2(p, Int32(MNT_DETACH)) != 0 { return }
            }
        }
    }
}
