import Foundation
import ImageStore
import SystemSupport

/// A named volume: a directory under `<root>/volumes/<name>/_data` that outlives containers.
public struct Volume: Codable, Sendable {
    public var name: String
    public var driver = "local"
    public var createdAt: String
    public var labels: [String: String]
    public var anonymous: Bool
    public var mountpoint: String
    /// The local driver's options (`volume create --opt`): `type`, `device` and `o`, as mount(8)
    /// takes them. A volume with options is mounted from them once, at its `_data` directory
    /// (`VolumeStore.mountedDataPath`), and containers bind that mount.
    public var options: [String: String]?

    enum CodingKeys: String, CodingKey {
        case name = "Name", driver = "Driver", createdAt = "CreatedAt", labels = "Labels", anonymous = "Anonymous", mountpoint = "Mountpoint"
        case options = "Options"
    }

    /// The mount a container gets for a volume with options: (type, source, options).
    /// `type=none` with `o=bind` binds `device`; any other type mounts `device` as that file
    /// system with `o`'s options (as docker's local driver).
    public var optionMount: (type: String, source: String, options: [String])? {
        guard let o = options, !o.isEmpty, let type = o["type"], let device = o["device"] else { return nil }
        let opts = (o["o"] ?? "").split(separator: ",").map(String.init).filter { !$0.isEmpty }
        if type == "none" { return ("bind", device, opts.contains("bind") || opts.contains("rbind") ? opts : ["rbind"] + opts) }
        return (type, device, opts)
    }

    /// docker's local driver: only `type`, `device` and `o`; `type` and `device` go together.
    public static func validateOptions(_ o: [String: String]) throws {
        for k in o.keys.sorted() where !["type", "device", "o"].contains(k) {
            throw ContainersError.invalidArgument("--opt \(k): invalid option \"\(k)\" (the local driver takes type, device and o)")
        }
        if !o.isEmpty, o["type"] == nil || o["device"] == nil {
            throw ContainersError.invalidArgument("--opt: give type and device together, e.g. --opt type=tmpfs --opt device=tmpfs --opt o=size=100m")
        }
        if o["type"] == "none", let d = o["device"], !FS.isDir(d) && !FS.exists(d) {
            throw ContainersError.invalidArgument("--opt device=\(d): no such file or directory to bind")
        }
    }
}

/// Named volumes on disk.
public struct VolumeStore: Sendable {
    public let root: String
    public init(root: String) { self.root = "\(root)/volumes" }

    public func dataPath(_ name: String) throws -> String {
        let p = "\(root)/\(name)/_data"
        guard FS.isDir(p) else { throw ContainersError.volume("no such volume: \(name) (create it with `dockbuild volume create \(name)`)") }
        return p
    }

    public static func validName(_ n: String) -> Bool {
        ContainerStore.validName(n)
    }

    /// Creates the volume when missing; returns it either way (docker's `volume create` is idempotent).
    @discardableResult
    public func create(_ name: String?, labels: [String: String] = [:], options: [String: String] = [:], anonymous: Bool = false) throws -> Volume {
        try Volume.validateOptions(options)
        let n = name ?? ContainerStore.newID()
        guard Self.validName(n) else {
            throw ContainersError.volume("\"\(n)\" is not a valid volume name: use two or more letters, digits, _ . - (starting with a letter or digit)")
        }
        if let v = try? inspect(n) { return v }
        let dir = "\(root)/\(n)"
        try FS.mkdirs("\(dir)/_data")
        let v = Volume(name: n, createdAt: Time.now(), labels: labels, anonymous: anonymous, mountpoint: "\(dir)/_data",
                       options: options.isEmpty ? nil : options)
        try FS.writeJSON(v, to: "\(dir)/volume.json")
        EventLog(root: (root as NSString).deletingLastPathComponent).record(StoreEvent(type: "volume", action: "create", id: n, attributes: ["driver": "local"]))
        return v
    }

    public func inspect(_ name: String) throws -> Volume {
        guard let d = FileManager.default.contents(atPath: "\(root)/\(name)/volume.json"),
              let v = try? JSONDecoder().decode(Volume.self, from: d) else {
            throw ContainersError.volume("no such volume: \(name)")
        }
        return v
    }

    public func list() -> [Volume] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.sorted().compactMap { try? inspect($0) }
    }

    /// The path to bind into a container. A volume made with `--opt` is mounted from its
    /// options once, at its `_data` directory, the first time a container needs it, and every
    /// container binds that one mount (docker's local driver shares one mount too), so two
    /// containers on a tmpfs volume see the same files. The last container to stop unmounts it
    /// (`release`).
    public func mountedDataPath(_ name: String) throws -> String {
        let path = try dataPath(name)
        guard let o = try inspect(name).options, let type = o["type"], let device = o["device"] else { return path }
        let lock: FileLock
        do { lock = try FileLock(path: "\(root)/\(name)/mount.lock"); try lock.lock() } catch {
            throw ContainersError.system("cannot lock volume \(name) to mount it", errno: error.errno)
        }
        defer { lock.unlock() }
        if FS.isMountPoint(path) { return path }
        var args = ["mount", "-t", type]
        if let opts = o["o"], !opts.isEmpty { args += ["-o", opts] }
        args += ["--", device, path]
        try Shell.check(args, what: "mounting volume \(name) (type=\(type) device=\(device))")
        return path
    }

    /// Unmounts a volume made with `--opt` when the last container using it stops (docker's
    /// local driver does the same: a tmpfs volume's files live as long as some container uses it).
    public func release(_ name: String) {
        guard let v = try? inspect(name), v.options?["type"] != nil, let path = try? dataPath(name),
              let lock = try? FileLock(path: "\(root)/\(name)/mount.lock"), (try? lock.lock()) != nil else { return }
        defer { lock.unlock() }
        FS.unmount(path)
    }

    public func remove(_ name: String) throws {
        _ = try inspect(name)
        // a volume mounted from its options: unmount it first, so that only the volume's own
        // directory is removed and never what the mount shows (a bound host directory)
        let data = "\(root)/\(name)/_data"
        FS.unmount(data)
        guard !FS.isMountPoint(data) else {
            throw ContainersError.volume("volume \(name) is still mounted at \(data) and cannot be unmounted; stop the containers using it")
        }
        do { try FileSystem.removeTree("\(root)/\(name)") } catch {
            throw ContainersError.system("cannot remove volume \(name) (\(error.path))", errno: error.errno)
        }
        EventLog(root: (root as NSString).deletingLastPathComponent).record(StoreEvent(type: "volume", action: "destroy", id: name, attributes: ["driver": "local"]))
    }

    /// True when the volume directory holds nothing yet (docker then copies the image's content in).
    public func isEmpty(_ name: String) -> Bool {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(root)/\(name)/_data")) ?? []).isEmpty
    }
}
