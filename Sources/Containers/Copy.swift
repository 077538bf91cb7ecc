import Archive
import Foundation
import SystemSupport

extension ContainerManager {
    /// Copies between the host and a container's filesystem (`cp`); the rootfs is mounted for
    /// the copy when the container is not running. Paths inside are resolved within the rootfs,
    /// so symlinks in the container never lead outside it.
    public func copy(_ id: String, containerPath: String, hostPath: String, toContainer: Bool) throws {
        let c = try store.container(id)
        let wasMounted = FS.isMountPoint(store.rootfsPath(id))
        let rootfs = try mountRootfs(c.record)
        defer { if !wasMounted && !c.isRunning { FS.unmount(rootfs) } }
        let inside = try Self.resolveInRoot(rootfs, containerPath)
        if toContainer {
            guard FS.exists(hostPath) else { throw ContainersError.invalidArgument("cp: \(hostPath) does not exist") }
            try Shell.check(["cp", "-a", "--", hostPath, inside], what: "copying \(hostPath) into the container")
        } else {
            guard FS.exists(inside) || (try? FileManager.default.destinationOfSymbolicLink(atPath: inside)) != nil else {
                throw ContainersError.invalidArgument("cp: \(containerPath) does not exist in container \(c.name)")
            }
            // rootless: the copy is the user's own on the host, not a subordinate id it cannot change
            let keep = StatePaths.isRootless ? ["--no-preserve=ownership"] : []
            try Shell.check(["cp", "-a"] + keep + ["--", inside, hostPath], what: "copying \(containerPath) out of the container")
        }
    }

    /// Resolves `path` as the container would see it, following symlinks inside `root` only.
    static func resolveInRoot(_ root: String, _ path: String) throws -> String {
        do { return try InRootPath.resolve(path, in: root) } catch {
            throw ContainersError.invalidArgument("cp: \(error)")
        }
    }
}
