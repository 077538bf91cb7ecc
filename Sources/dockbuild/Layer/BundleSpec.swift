import Archive
import Foundation
import OCI
import Runtime

/// An OCI runtime-spec config.json for an unpacked image: runc's `spec` defaults, with the
/// process taken from the image config (Entrypoint + Cmd, Env, WorkingDir, User).
enum BundleSpec {
    /// `runc spec`'s defaults (`SpecGenerator.runcDefault`, the runtime's own) with the image's
    /// process: Entrypoint + Cmd (or `sh`), Env (PATH added when missing), WorkingDir, User with
    /// its groups, and the image's labels as annotations.
    static func make(config: ImageConfig, rootfs: String, terminal: Bool) throws -> RuntimeSpec {
        let c = config.config
        var args = (c?.entrypoint ?? []) + (c?.cmd ?? [])
        if args.isEmpty { args = ["sh"] }
        var spec = SpecGenerator.runcDefault(args: args, terminal: terminal)
        var env = c?.env ?? []
        if !env.contains(where: { $0.hasPrefix("PATH=") }) { env.insert(SpecGenerator.defaultPath, at: 0) }
        if terminal && !env.contains(where: { $0.hasPrefix("TERM=") }) { env.append("TERM=xterm") }
        let user = try resolveUser(c?.user ?? "", rootfs: rootfs)
        var process = spec.process ?? RuntimeSpec.Process(args: args)
        process.env = env
        process.cwd = (c?.workingDir ?? "").isEmpty ? "/" : c?.workingDir ?? "/"
        process.user = RuntimeSpec.User(uid: user.uid, gid: user.gid, additionalGids: user.additional.isEmpty ? nil : user.additional)
        spec.process = process
        if let labels = c?.labels, !labels.isEmpty { spec.annotations = labels }
        return spec
    }

    struct User { var uid: UInt32; var gid: UInt32; var additional: [UInt32] }

    /// `user`, `uid`, `user:group`, `uid:gid`: `Runtime.UserDatabase`'s rules against the image's
    /// /etc/passwd and /etc/group; a user given alone also gets the groups that list it.
    static func resolveUser(_ spec: String, rootfs: String) throws -> User {
        let db = UserDatabase(rootfs: rootfs)
        let r: UserDatabase.Resolved
        do { r = try db.resolve(spec) } catch { throw ArchiveError.invalidArgument("the image config's \(error)") }
        let additional = !spec.isEmpty && !spec.contains(":") ? (r.name.map { db.memberGroups(of: $0) } ?? []).filter { $0 != r.gid } : []
        return User(uid: r.uid, gid: r.gid, additional: additional)
    }
}
