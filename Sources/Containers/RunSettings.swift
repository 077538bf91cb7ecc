import Foundation
import Runtime

/// `--ulimit name=soft[:hard]`: one resource limit of the container's processes (docker's
/// HostConfig.Ulimits entry). -1 is unlimited.
public struct Ulimit: Codable, Sendable, Hashable {
    public var name: String
    public var soft: Int64
    public var hard: Int64
    public init(name: String, soft: Int64, hard: Int64) { self.name = name; self.soft = soft; self.hard = hard }

    /// docker's names and the kernel's rlimit each stands for.
    public static let names: [String: String] = [
        "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
        "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE",
        "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
        "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
    ]
}

/// `--restart`: what the container's monitor does when the container's process exits
/// (docker's HostConfig.RestartPolicy).
public struct RestartPolicy: Codable, Sendable, Hashable {
    /// "no", "on-failure", "always" or "unless-stopped".
    public var name: String
    /// For on-failure: the most restarts (0: no limit).
    public var maximumRetryCount: Int
    public init(name: String, maximumRetryCount: Int = 0) { self.name = name; self.maximumRetryCount = maximumRetryCount }

    /// Whether a container that is not running should be started again when the machine
    /// comes back (what dockerd does with its containers at boot; `start --all` here): `always`
    /// whatever happened, `unless-stopped` unless `stop`/`kill` ended it, `on-failure` after
    /// a non-zero status or a run cut short (the monitor gone: docker's 255), not after `stop`.
    /// A container never started stays as it is.
    public func wantsRunning(_ s: ContainerState) -> Bool {
        guard s.status == .exited || s.status == .dead else { return false }
        switch name {
        case "always": return true
        case "unless-stopped": return s.manuallyStopped != true
        case "on-failure": return s.manuallyStopped != true && (s.status == .dead || s.exitCode != 0)
        default: return false
        }
    }
}

/// `--device HOST[:CONTAINER[:PERMISSIONS]]` (docker's HostConfig.Devices entry).
public struct DeviceMapping: Codable, Sendable, Hashable {
    public var pathOnHost: String
    public var pathInContainer: String
    /// Some of r, w and m.
    public var cgroupPermissions: String
    public init(pathOnHost: String, pathInContainer: String, cgroupPermissions: String) {
        self.pathOnHost = pathOnHost; self.pathInContainer = pathInContainer; self.cgroupPermissions = cgroupPermissions
    }
}

extension DeviceMapping {
    /// The host's device node behind the mapping (links followed): its type, numbers and mode,
    /// or why it cannot be given to a container.
    func hostDevice() throws -> RuntimeSpec.Device {
        var st = stat()
        guard stat(pathOnHost, &st) == 0 else {
            throw ContainersError.invalidArgument("--device \(pathOnHost): cannot use it: \(String(cString: strerror(errno)))")
        }
        let fmt = st.st_mode & S_IFMT
        guard fmt == S_IFCHR || fmt == S_IFBLK else {
            throw ContainersError.invalidArgument("--device \(pathOnHost): not a character or block device")
        }
        let rdev = UInt64(st.st_rdev)
        return .init(type: fmt == S_IFCHR ? "c" : "b", path: pathInContainer, major: Int64(Sys.major(rdev)), minor: Int64(Sys.minor(rdev)),
                     fileMode: UInt32(st.st_mode & 0o777), uid: 0, gid: 0)
    }
}
