import Foundation

extension ContainerManager {
    /// Gives container `id` a new name, in any state, as `docker rename` does: the name follows
    /// `create --name`'s rules (a leading `/` is dropped) and must not name another container.
    /// Only the record changes; a running container keeps running (its hostname stays).
    public func rename(_ id: String, to newName: String) throws {
        let clean = newName.hasPrefix("/") ? String(newName.dropFirst()) : newName
        guard !clean.isEmpty else { throw ContainersError.invalidArgument("the new name is empty: give a name such as web-1") }
        guard ContainerStore.validName(clean) else {
            throw ContainersError.invalidArgument("invalid container name \"\(clean)\": use two or more letters, digits, _ . - (starting with a letter or digit)")
        }
        try store.withLock(id) {
            var r = try store.record(id)
            guard r.name != clean else {
                throw ContainersError.invalidArgument("container \(r.name) already has the name \"\(clean)\": renaming a container to its current name does nothing")
            }
            if let other = store.nameInUse(clean), other != id { throw ContainersError.nameInUse(clean, id: other) }
            let oldName = r.name
            r.name = clean
            try store.save(r)
            event("rename", r, ["oldName": "/" + oldName])
        }
    }
}
