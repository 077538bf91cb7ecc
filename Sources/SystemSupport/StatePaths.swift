import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The one place that decides where dockbuild keeps its state, for root and for an ordinary
/// user (rootless). Root: the store in `/var/lib/dockbuild`, run-time state (mounted root
/// filesystems, IP leases, the runtime's state) in `/run/dockbuild`. An ordinary user: the
/// store in `$XDG_DATA_HOME/dockbuild` (`~/.local/share/dockbuild`), run-time state in
/// `$XDG_RUNTIME_DIR/dockbuild`, or `/tmp/dockbuild-UID` (0700, checked to be the user's own)
/// where no runtime directory is set.
///
/// Inside the rootless user namespace the process runs as uid 0, so "rootless" is not read
/// from `geteuid()` there: the join marks the environment with `_DOCKBUILD_ROOTLESS=UID`.
public enum StatePaths {
    /// The variable the rootless user-namespace join sets to the caller's host uid.
    public static let rootlessEnv = "_DOCKBUILD_ROOTLESS"

    /// The host uid of the ordinary user dockbuild works for; nil when it runs as real root.
    public static func rootlessUID(environment: [String: String] = ProcessInfo.processInfo.environment) -> uid_t? {
        if let v = environment[rootlessEnv], let uid = uid_t(v) { return uid }
        let euid = geteuid()
        return euid == 0 ? nil : euid
    }

    /// True for an ordinary user, inside the rootless user namespace or not.
    public static var isRootless: Bool { rootlessUID() != nil }

    /// True in a process that joined the rootless user namespace (it runs as uid 0 there).
    public static var inRootlessNamespace: Bool {
        ProcessInfo.processInfo.environment[rootlessEnv].flatMap { uid_t($0) } != nil
    }

    /// The directory of run-time state (cleared at boot): `/run/dockbuild` for root,
    /// `$XDG_RUNTIME_DIR/dockbuild` or `/tmp/dockbuild-UID` for an ordinary user.
    public static func runtimeDir(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        guard let uid = rootlessUID(environment: environment) else { return "/run/dockbuild" }
        if let x = environment["XDG_RUNTIME_DIR"], x.hasPrefix("/") { return x + "/dockbuild" }
        return "/tmp/dockbuild-\(uid)"
    }

    /// The default store root: `$DOCKBUILD_ROOT`, else `/var/lib/dockbuild` for root, else
    /// `$XDG_DATA_HOME/dockbuild` (`$HOME/.local/share/dockbuild`).
    public static func dataRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let env = environment["DOCKBUILD_ROOT"], !env.isEmpty { return env }
        guard rootlessUID(environment: environment) != nil else { return "/var/lib/dockbuild" }
        if let x = environment["XDG_DATA_HOME"], x.hasPrefix("/") { return x + "/dockbuild" }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + "/.local/share/dockbuild"
    }

    /// Where the root filesystems of containers are mounted (one directory per container).
    public static func rootfsDir() -> String { runtimeDir() + "/rootfs" }

    /// Where a bridge's IP leases live.
    public static func ipamDir() -> String { runtimeDir() + "/ipam" }

    /// Makes `path` (and its parents) when missing and, for an ordinary user, checks that it is
    /// the user's own and closed to others: state in a directory someone else owns could be read
    /// or replaced by them. Root's directories are left as they are.
    package static func ensurePrivateDirectory(_ path: String) throws(SystemError) {
        if !FileManager.default.fileExists(atPath: path) {
            _ = try FileSystem.makeDirectories(path, mode: 0o700)
        }
        try checkOwned(path)
    }

    /// For an ordinary user: `path`, when it exists, must be owned by the user (uid 0 inside
    /// the rootless namespace, which is the same host uid) and not writable by others.
    package static func checkOwned(_ path: String) throws(SystemError) {
        guard isRootless else { return }
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw SystemError("inspect", path: path)
        }
        let me = geteuid()
        guard (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == me else {
            let owner = st.st_uid == 65534 ? "another user" : "uid \(st.st_uid)"
            throw SystemError("use", path: path, errno: EACCES,
                              hint: "it is owned by \(owner), not by you: remove it, or point dockbuild at a directory "
                                  + "of your own (--root or $DOCKBUILD_ROOT for the store, $XDG_RUNTIME_DIR for run-time state)")
        }
        if st.st_mode & 0o022 != 0 { chmod(path, st.st_mode & 0o755) }
    }
}
