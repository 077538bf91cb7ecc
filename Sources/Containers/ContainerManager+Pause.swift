import Foundation

extension ContainerManager {
    /// Freezes every process of a running container through its cgroup's freezer, as `docker
    /// pause` does. The container stays running (`Container.isPaused`); `unpause` thaws it, and
    /// `stop`, `kill` and `rm -f` thaw it after signalling, as docker does.
    public func pause(_ id: String) throws {
        try store.withLock(id) {
            let c = try store.container(id)
            guard c.isRunning else { throw ContainersError.invalidState("container \(c.name) is not running") }
            guard !c.isPaused else { throw ContainersError.invalidState("container \(c.name) is already paused") }
            try runtime(for: id).pause(id)
            event("pause", c.record)
        }
    }

    /// Thaws a paused container.
    public func unpause(_ id: String) throws {
        try store.withLock(id) {
            let c = try store.container(id)
            guard c.isRunning, c.isPaused else { throw ContainersError.invalidState("container \(c.name) is not paused") }
            try runtime(for: id).resume(id)
            event("unpause", c.record)
        }
    }
}

extension ContainerStore {
    /// True when the cgroup of a container (`ContainerState.cgroupPaths`) is frozen or freezing:
    /// the freezer is the truth, whoever froze it (`pause`, or the runtime's own `pause`).
    static func isFrozen(_ cgroupPaths: [String: String]) -> Bool {
        // cgroup v1: the freezer hierarchy's freezer.state; v2: cgroup.freeze in the unified one
        if let p = cgroupPaths["freezer"], let s = FS.readFile("/sys/fs/cgroup/freezer\(p)/freezer.state") {
            let state = s.trimmingCharacters(in: .whitespacesAndNewlines)
            return !state.isEmpty && state != "THAWED"
        }
        if let p = cgroupPaths[""], let s = FS.readFile("/sys/fs/cgroup\(p)/cgroup.freeze") { return s.hasPrefix("1") }
        return false
    }
}
