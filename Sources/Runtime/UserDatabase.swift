import Foundation

/// docker's rules for a user given as `NAME`, `UID`, `NAME:GROUP` or `UID:GID` (`USER`, `run -u`,
/// `exec -u`, `COPY --chown`, an image's config), read against an image's /etc/passwd and
/// /etc/group. The one home of these rules: containers, builds and `unpack --bundle` use it.
public struct UserDatabase: Sendable {
    /// The rows of /etc/passwd and /etc/group, split at `:`.
    public let passwd: [[String]]
    public let group: [[String]]

    public init(passwd: String, group: String) {
        func rows(_ text: String) -> [[String]] {
            text.split(separator: "\n").map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) }
        }
        self.passwd = rows(passwd)
        self.group = rows(group)
    }

    /// The files of a root filesystem, read without following a link out of it.
    public init(rootfs: String) {
        self.init(passwd: SpecGenerator.readInRoot(rootfs, "etc/passwd") ?? "", group: SpecGenerator.readInRoot(rootfs, "etc/group") ?? "")
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case noSuchUser(String)
        case noSuchGroup(String)
        public var description: String {
            switch self {
            case .noSuchUser(let u): "user \"\(u)\" is not in the image's /etc/passwd: give a numeric uid[:gid] or add the user first"
            case .noSuchGroup(let g): "group \"\(g)\" is not in the image's /etc/group: give a numeric gid"
            }
        }
    }

    public struct Resolved: Sendable, Equatable {
        public var uid: UInt32
        public var gid: UInt32
        /// The user's name when /etc/passwd has it (for its supplementary groups).
        public var name: String?
    }

    /// Resolves `spec`. A user given without a group takes its primary group from /etc/passwd;
    /// a uid not in /etc/passwd gets gid 0, or with `chownRule` (COPY --chown) the same number
    /// as the uid. An empty spec is root.
    public func resolve(_ spec: String, chownRule: Bool = false) throws(Failure) -> Resolved {
        if spec.isEmpty { return Resolved(uid: 0, gid: 0, name: passwd.first { $0.count > 3 && $0[2] == "0" }?[0] ?? "root") }
        let parts = spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let user = parts[0]
        var uid: UInt32
        var primary: UInt32?
        var name: String?
        if let n = UInt32(user) {
            uid = n
            if let row = passwd.first(where: { $0.count > 3 && UInt32($0[2]) == n }) { primary = UInt32(row[3]); name = row[0] }
        } else {
            guard let row = passwd.first(where: { $0.count > 3 && $0[0] == user }), let u = UInt32(row[2]) else {
                throw .noSuchUser(user)
            }
            uid = u
            primary = UInt32(row[3])
            name = row[0]
        }
        let gid: UInt32
        if parts.count > 1 {
            guard let g = groupID(parts[1]) else { throw .noSuchGroup(parts[1]) }
            gid = g
        } else {
            gid = primary ?? (chownRule ? uid : 0)
        }
        return Resolved(uid: uid, gid: gid, name: name)
    }

    /// A gid given as a number or a group name from /etc/group.
    public func groupID(_ nameOrNumber: String) -> UInt32? {
        if let n = UInt32(nameOrNumber) { return n }
        return group.first { $0.count > 2 && $0[0] == nameOrNumber }.flatMap { UInt32($0[2]) }
    }

    /// The groups of /etc/group that list `userName` as a member, in file order.
    public func memberGroups(of userName: String) -> [UInt32] {
        group.compactMap { row in
            guard row.count > 3, row[3].split(separator: ",").contains(where: { $0 == userName }) else { return nil }
            return UInt32(row[2])
        }
    }
}
