import Foundation

/// What a CDI device request adds to a container (container-device-interface spec: containerEdits).
struct CDIEdits {
    struct MountEdit { var hostPath: String; var containerPath: String; var type: String?; var options: [String]? }
    var env: [String] = []
    var devices: [OCISpec.Device] = []
    var mounts: [MountEdit] = []
}

/// Reads CDI specs (JSON) from the CDI directories and resolves `--gpus` requests against them.
enum CDI {
    /// `$DOCKBUILD_CDI_DIRS` (colon separated), else /etc/cdi and /var/run/cdi.
    static var directories: [String] {
        if let d = ProcessInfo.processInfo.environment["DOCKBUILD_CDI_DIRS"], !d.isEmpty {
            return d.split(separator: ":").map(String.init)
        }
        return ["/etc/cdi", "/var/run/cdi"]
    }

    private struct SpecFile: Decodable {
        var cdiVersion: String
        var kind: String
        var devices: [DeviceEntry]
        var containerEdits: Edits?
    }
    private struct DeviceEntry: Decodable { var name: String; var containerEdits: Edits }
    private struct Edits: Decodable {
        var env: [String]?
        var deviceNodes: [Node]?
        var mounts: [MountEntry]?
    }
    private struct Node: Decodable {
        var path: String; var hostPath: String?; var type: String?; var major: Int64?; var minor: Int64?
        var fileMode: UInt32?; var uid: UInt32?; var gid: UInt32?
    }
    private struct MountEntry: Decodable { var hostPath: String; var containerPath: String; var type: String?; var options: [String]? }

    /// Resolves `--gpus all|N|device=0,1` to CDI edits for the `nvidia.com/gpu` kind (or any kind ending in /gpu).
    static func gpuEdits(_ request: String) throws -> CDIEdits {
        var specs: [(String, SpecFile)] = []
        for dir in directories {
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
            for f in files where f.hasSuffix(".json") {
                let p = "\(dir)/\(f)"
                guard let d = FileManager.default.contents(atPath: p) else { continue }
                do { specs.append((p, try JSONDecoder().decode(SpecFile.self, from: d))) } catch {
                    throw ContainersError.invalidArgument("CDI spec \(p) cannot be read: \(error)")
                }
            }
        }
        let gpuSpecs = specs.filter { $0.1.kind.hasSuffix("/gpu") }
        guard !gpuSpecs.isEmpty else {
            throw ContainersError.invalidArgument("--gpus \(request): no CDI spec for GPUs in \(directories.joined(separator: ", ")); generate one (e.g. `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.json`)")
        }
        var all: [(String, SpecFile, DeviceEntry)] = []
        for (p, s) in gpuSpecs { for d in s.devices where d.name != "all" { all.append((p, s, d)) } }
        var chosen: [(String, SpecFile, DeviceEntry)]
        var req = request.trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
        if req.hasPrefix("count=") { req = String(req.dropFirst(6)) }
        if req == "all" || req == "-1" { chosen = all }
        else if req.hasPrefix("device=") || req.hasPrefix("\"device=") {
            let names = req.replacingOccurrences(of: "\"", with: "").dropFirst(7).split(separator: ",").map(String.init)
            chosen = try names.map { n in
                guard let m = all.first(where: { $0.2.name == n }) else {
                    throw ContainersError.invalidArgument("--gpus: no GPU named \"\(n)\" in the CDI specs (have: \(all.map { $0.2.name }.joined(separator: ", ")))")
                }
                return m
            }
        } else if let n = Int(req), n >= 0 {
            guard n <= all.count else { throw ContainersError.invalidArgument("--gpus \(n): only \(all.count) GPU(s) are described by the CDI specs") }
            chosen = Array(all.prefix(n))
        } else {
            throw ContainersError.invalidArgument("--gpus \"\(request)\": expected all, a number, or device=NAME[,NAME]")
        }
        var edits = CDIEdits()
        var seenSpecs = Set<String>()
        func apply(_ e: Edits?) throws {
            guard let e else { return }
            edits.env += e.env ?? []
            for n in e.deviceNodes ?? [] {
                let host = n.hostPath ?? n.path
                var major = n.major, minor = n.minor, type = n.type
                var st = stat()
                if stat(host, &st) == 0 {
                    let isChar = (st.st_mode & S_IFMT) == S_IFCHR
                    type = type ?? (isChar ? "c" : "b")
                    major = major ?? Sys.major(UInt64(st.st_rdev))
                    minor = minor ?? Sys.minor(UInt64(st.st_rdev))
                }
                guard let t = type, let ma = major, let mi = minor else {
                    throw ContainersError.invalidArgument("CDI device node \(n.path): \(host) does not exist and the spec gives no type/major/minor")
                }
                edits.devices.append(.init(path: n.path, type: t, major: ma, minor: mi, fileMode: n.fileMode ?? 0o666, uid: n.uid, gid: n.gid))
            }
            for m in e.mounts ?? [] { edits.mounts.append(.init(hostPath: m.hostPath, containerPath: m.containerPath, type: m.type, options: m.options)) }
        }
        for (p, s, d) in chosen {
            if seenSpecs.insert(p).inserted { try apply(s.containerEdits) }
            try apply(d.containerEdits)
        }
        return edits
    }
}
