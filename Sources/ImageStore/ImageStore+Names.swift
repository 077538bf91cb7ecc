// Names: index.json of the layout maps full references to descriptors.
import Foundation
import SystemSupport
import Synchronization
import OCI
#if canImport(Glibc)
import Glibc
#endif

/// One entry of the store's index: a name (nil for a dangling image) and what it points at.
public struct ImageEntry: Sendable, Hashable {
    public var reference: ImageReference?
    public var descriptor: Descriptor
}

extension ImageStore {
    var indexPath: String { root + "/index.json" }

    func readIndex() throws -> ImageIndex {
        // The file's identity, from the descriptor the bytes are read through: index.json is
        // only ever replaced by a rename (a new inode), so an unchanged identity is unchanged
        // content, and the last decoded index is reused (`run` read and decoded it twice: the
        // pull check and `create`, ~10M instructions each with 100 images).
        let fd = open(indexPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ImageStoreError.io("cannot open", path: indexPath, errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ImageStoreError.io("cannot stat", path: indexPath, errno: errno) }
        let key = IndexCache.Key(path: indexPath, device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
                                 mtime: [Int64(st.st_mtim.tv_sec), Int64(st.st_mtim.tv_nsec)],
                                 ctime: [Int64(st.st_ctim.tv_sec), Int64(st.st_ctim.tv_nsec)])
        if let hit = IndexCache.last.withLock({ $0?.key == key ? $0?.index : nil }) { return hit }
        let data = try FileOps.readFile(fd: fd, path: indexPath, size: Int(st.st_size))
        let index: ImageIndex
        do { index = try ImageIndex.decode(data) } catch {
            throw ImageStoreError.invalidContent("\(indexPath) is damaged (\(error)); restore it or remove the store root")
        }
        IndexCache.last.withLock { $0 = (key, index) }
        return index
    }

    func writeIndex(_ index: ImageIndex) throws {
        try writeSortedIndex(ImageStore.canonicalOrder(index))
    }

    private func writeSortedIndex(_ sorted: ImageIndex) throws {
        try FileOps.writeAtomically(try CanonicalJSON.encode(sorted), to: indexPath, tempDir: tempDir)
    }

    /// The index with its entries in the order index.json keeps them: by name, then digest.
    static func canonicalOrder(_ index: ImageIndex) -> ImageIndex {
        var idx = index
        idx.manifests.sort { a, b in
            let na = a.annotations?[AnnotationKey.refName] ?? "", nb = b.annotations?[AnnotationKey.refName] ?? ""
            return na != nb ? na < nb : a.digest < b.digest
        }
        return idx
    }

    /// Read-modify-write of index.json under the cross-process lock.
    func updateIndex<R>(_ body: (inout ImageIndex) throws -> R) throws -> R {
        try indexMutex.withLock { _ in
            try FileOps.io { try indexLock.lock(exclusive: true) }
            defer { indexLock.unlock() }
            var idx = try readIndex()
            let before = idx
            let r = try body(&idx)
            // Unchanged (a rebuild naming the image its tag already names): no write, no fsync.
            let after = ImageStore.canonicalOrder(idx)
            if after != ImageStore.canonicalOrder(before) { try writeSortedIndex(after) }
            return r
        }
    }

    static func entryName(_ d: Descriptor) -> String? { d.annotations?[AnnotationKey.refName] }

    /// How a name is recorded: `name:tag` (`:latest` when neither tag nor digest is given), or
    /// `name@digest` for a reference by digest alone (`pull busybox@sha256:…` makes no tag).
    static func indexKey(_ name: ImageReference) -> String {
        var ref = name
        if ref.tag == nil, ref.digest != nil { return ref.description }
        ref.digest = nil
        if ref.tag == nil { ref.tag = ImageReference.defaultTag }
        return ref.description
    }

    /// Points `name` at `descriptor` (a manifest or an index already in the store). The image
    /// that `name` pointed at before keeps its other names, or stays as a dangling image.
    public func tag(_ name: ImageReference, descriptor: Descriptor) throws {
        guard has(descriptor.digest) else { throw ImageStoreError.blobNotFound(descriptor.digest) }
        let key = ImageStore.indexKey(name)
        defer { events.record(StoreEvent(type: "image", action: "tag", id: descriptor.digest.description, attributes: ["name": name.familiarString])) }
        try updateIndex { idx in
            let old = idx.manifests.first { ImageStore.entryName($0) == key }
            idx.manifests.removeAll { ImageStore.entryName($0) == key || ($0.digest == descriptor.digest && ImageStore.entryName($0) == nil) }
            var d = Descriptor(mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size)
            d.annotations = [AnnotationKey.refName: key]
            idx.manifests.append(d)
            if let old, old.digest != descriptor.digest, !idx.manifests.contains(where: { $0.digest == old.digest }) {
                var dangling = old
                dangling.annotations = nil
                idx.manifests.append(dangling)
            }
        }
    }

    /// Records an image without a name (a dangling image, `<none>` in `images`), so that gc
    /// keeps it until `image prune` or `rmi`.
    public func addUnnamed(_ descriptor: Descriptor) throws {
        guard has(descriptor.digest) else { throw ImageStoreError.blobNotFound(descriptor.digest) }
        try updateIndex { idx in
            if !idx.manifests.contains(where: { $0.digest == descriptor.digest }) {
                idx.manifests.append(Descriptor(mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size))
            }
        }
    }

    /// Removes a name; returns what it pointed at. When `keepDangling` and no other name points at
    /// the image, it stays as a dangling entry; otherwise it becomes garbage for `gc()`.
    @discardableResult
    public func untag(_ name: ImageReference, keepDangling: Bool = false) throws -> Descriptor? {
        let key = ImageStore.indexKey(name)
        let old: Descriptor? = try updateIndex { idx in
            guard var old = idx.manifests.first(where: { ImageStore.entryName($0) == key }) else { return nil }
            old.annotations = nil
            idx.manifests.removeAll { ImageStore.entryName($0) == key }
            if keepDangling, !idx.manifests.contains(where: { $0.digest == old.digest }) {
                idx.manifests.append(old)
            }
            return old
        }
        if let old { events.record(StoreEvent(type: "image", action: "untag", id: old.digest.description, attributes: ["name": name.familiarString])) }
        return old
    }

    /// Removes every index entry (names and dangling) that points at `digest`; returns the
    /// names removed.
    @discardableResult
    public func removeImage(_ digest: Digest) throws -> [ImageReference] {
        let names: [ImageReference] = try updateIndex { idx in
            let names = idx.manifests.filter { $0.digest == digest }.compactMap(ImageStore.entryName)
            idx.manifests.removeAll { $0.digest == digest }
            return names.compactMap { try? ImageReference.parseNormalized($0) }
        }
        for n in names { events.record(StoreEvent(type: "image", action: "untag", id: digest.description, attributes: ["name": n.familiarString])) }
        events.record(StoreEvent(type: "image", action: "delete", id: digest.description,
                                 attributes: names.first.map { ["name": $0.familiarString] } ?? [:]))
        return names
    }

    /// Every entry of the index, sorted by name (dangling images last).
    public func listImages() throws -> [ImageEntry] {
        let idx = try readIndex()
        var named: [ImageEntry] = []
        var dangling: [ImageEntry] = []
        for d in idx.manifests {
            var clean = d
            clean.annotations = nil
            if let n = ImageStore.entryName(d) {
                named.append(ImageEntry(reference: try? ImageReference.parseNormalized(n), descriptor: clean))
            } else {
                dangling.append(ImageEntry(reference: nil, descriptor: clean))
            }
        }
        return named.sorted { ($0.reference?.description ?? "") < ($1.reference?.description ?? "") } + dangling
    }

    /// The names that point at `digest`.
    public func names(for digest: Digest) throws -> [ImageReference] {
        try listImages().filter { $0.descriptor.digest == digest }.compactMap(\.reference)
    }

    /// Finds an image as docker does: a name (`busybox`, `docker.io/library/busybox:latest`,
    /// `name@sha256:...`), a full digest or ID (`sha256:...`), or a unique prefix of an image ID
    /// or manifest digest (`3f57d9401f8d`).
    public func resolve(_ name: String) throws -> Descriptor {
        // A name as the store records it (`name:tag`, normalised) is found by comparing the
        // recorded strings: `listImages` parses every stored name (~100K instructions each, a
        // fifth of `run`'s own work with 100 images, twice: the pull check and `create`).
        // Anything else (a digest, an ID prefix, a name not stored) takes the full look-up.
        if (try? Digest(parsing: name)) == nil, let ref = try? ImageReference(parsing: name), ref.digest == nil {
            let key = ImageStore.indexKey(ref)
            if var d = try readIndex().manifests.first(where: { ImageStore.entryName($0) == key }) {
                d.annotations = nil
                return d
            }
        }
        return try resolve(name, in: try listImages())
    }

    /// `resolve` over `entries` (what `listImages` returned), for a caller that needs the list
    /// too: reading and decoding the index is most of a look-up.
    public func resolve(_ name: String, in entries: [ImageEntry]) throws -> Descriptor {
        if let d = try? Digest(parsing: name) {
            if let e = entries.first(where: { $0.descriptor.digest == d }) { return e.descriptor }
            if let e = entries.first(where: { (try? imageID(of: $0.descriptor)) == d }) { return e.descriptor }
            throw ImageStoreError.imageNotFound(name)
        }
        var parseError: (any Error)?
        do {
            let ref = try ImageReference(parsing: name)
            if let digest = ref.digest {
                if let e = entries.first(where: { $0.descriptor.digest == digest }) { return e.descriptor }
                if has(digest), let t = try? sniffMediaType(digest) {
                    return Descriptor(mediaType: t, digest: digest, size: size(of: digest) ?? 0)
                }
            } else if let e = entries.first(where: { $0.reference == ref }) {
                return e.descriptor
            }
        } catch {
            parseError = error
        }
        let lower = name.lowercased()
        if lower.count >= 1, lower.count <= 128, lower.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) {
            var matches: [Digest: Descriptor] = [:]
            for e in entries {
                if e.descriptor.digest.encoded.hasPrefix(lower) { matches[e.descriptor.digest] = e.descriptor }
                if let id = try? imageID(of: e.descriptor), id.encoded.hasPrefix(lower) { matches[e.descriptor.digest] = e.descriptor }
            }
            if matches.count == 1, let only = matches.values.first { return only }
            if matches.count > 1 {
                throw ImageStoreError.ambiguous(name, candidates: matches.keys.sorted().map { String($0.encoded.prefix(12)) })
            }
        }
        if let parseError { throw parseError }
        throw ImageStoreError.imageNotFound(name)
    }

    /// Media type of a stored JSON document, from its `mediaType` field or its shape.
    func sniffMediaType(_ digest: Digest) throws -> String {
        struct Probe: Decodable { var mediaType: String?; var manifests: [Descriptor]?; var config: Descriptor? }
        let p = try JSONDecoder().decode(Probe.self, from: try readBlob(digest))
        if let t = p.mediaType { return t }
        if p.manifests != nil { return MediaType.imageIndex }
        if p.config != nil { return MediaType.imageManifest }
        throw ImageStoreError.invalidContent("blob \(digest) is not a manifest or index")
    }

    // MARK: holds

    /// Marks `digest` (an image's manifest or index) as needed by `holder` (e.g.
    /// `container-<id>`): gc keeps it and `rmi` refuses it without `-f`. `durable: false` skips
    /// the fsyncs, for holders that do not outlive a crash (a `run --rm` container).
    public func hold(_ digest: Digest, by holder: String, durable: Bool = true) throws {
        try FileOps.writeAtomically(Data(digest.description.utf8), to: holdPath(holder), tempDir: tempDir, durable: durable)
    }

    public func release(holder: String) { unlink(holdPath(holder)) }

    /// Holders and the digest each needs.
    public func holds() -> [String: Digest] {
        var out: [String: Digest] = [:]
        let dir = root + "/holds"
        for n in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            if let data = try? FileOps.readFile(dir + "/" + n),
               let d = try? Digest(parsing: String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) {
                out[n] = d
            }
        }
        return out
    }

    func holdPath(_ holder: String) -> String {
        let safe = String(holder.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" })
        return root + "/holds/" + safe
    }
}

/// The last index.json a store of this process decoded, by the identity of the file it came from.
enum IndexCache {
    struct Key: Equatable, Sendable {
        var path: String
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var mtime: [Int64]
        var ctime: [Int64]
    }
    static let last = Mutex<(key: Key, index: ImageIndex)?>(nil)
}
