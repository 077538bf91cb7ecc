// Manifest lists (`dockbuild manifest ...`, buildah/podman's local lists): an OCI image index
// (image-spec image-index.md) stored under a name like any image, edited entry by entry. Every
// edit writes a new index blob and moves the name to it in one locked read-modify-write of
// index.json, so a refused edit leaves the list as it was.
import Foundation
import OCI

/// Platform fields and annotations that `manifest add`/`annotate` set on an entry; nil leaves a
/// field as it is (or as the image's config says, for `add`).
public struct ManifestEntryEdit: Sendable, Hashable {
    public var os: String?
    public var architecture: String?
    public var variant: String?
    public var osVersion: String?
    public var osFeatures: [String]?
    public var features: [String]?
    /// Added to (or replacing keys of) the entry's annotations.
    public var annotations: [String: String]

    public init(os: String? = nil, architecture: String? = nil, variant: String? = nil, osVersion: String? = nil,
                osFeatures: [String]? = nil, features: [String]? = nil, annotations: [String: String] = [:]) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
        self.osVersion = osVersion
        self.osFeatures = osFeatures
        self.features = features
        self.annotations = annotations
    }

    /// True when the edit changes nothing.
    public var isEmpty: Bool {
        os == nil && architecture == nil && variant == nil && osVersion == nil && osFeatures == nil
            && features == nil && annotations.isEmpty
    }

    /// `entry` with this edit applied; the resulting platform is checked (`Platform.validated`).
    func apply(to entry: Descriptor) throws -> Descriptor {
        var d = entry
        if os != nil || architecture != nil || variant != nil || osVersion != nil || osFeatures != nil || features != nil {
            var p = entry.platform ?? Platform(os: "", architecture: "")
            if let os { p.os = os }
            if let architecture { p.architecture = architecture }
            if let variant { p.variant = variant.isEmpty ? nil : variant }
            if let osVersion { p.osVersion = osVersion.isEmpty ? nil : osVersion }
            if let osFeatures { p.osFeatures = osFeatures.isEmpty ? nil : osFeatures }
            if let features { p.features = features.isEmpty ? nil : features }
            if p.os.isEmpty || p.architecture.isEmpty {
                throw ImageStoreError.manifestList("entry \(entry.digest) has no platform: give both --os and --arch")
            }
            d.platform = try p.validated()
        }
        if !annotations.isEmpty {
            d.annotations = (d.annotations ?? [:]).merging(annotations) { _, new in new }
        }
        return d
    }
}

extension ImageStore {
    /// The manifest list named `name`: its descriptor and the index it points at.
    public func manifestList(_ name: ImageReference) throws -> (descriptor: Descriptor, index: ImageIndex) {
        guard let d = try listEntry(name) else { throw ImageStore.noList(name) }
        guard MediaType.isIndex(d.mediaType) else { throw ImageStore.notAList(name) }
        return (d, try index(d))
    }

    static func noList(_ name: ImageReference) -> ImageStoreError {
        .manifestList("no manifest list named \(name.familiarString) in the store; create it with `dockbuild manifest create \(name.familiarString)`")
    }

    static func notAList(_ name: ImageReference) -> ImageStoreError {
        .manifestList("\(name.familiarString) is an image, not a manifest list; give the list's name, or make one with `dockbuild manifest create LIST \(name.familiarString)`")
    }

    /// Makes the list `name` holding `images` (names, IDs or digests in the store; an index
    /// adds all its manifests). An existing name is refused unless `amend`, which adds `images`
    /// to the list already there.
    @discardableResult
    public func createManifestList(_ name: ImageReference, images: [String], amend: Bool = false) throws -> Descriptor {
        try editList(name, create: true, amend: amend) { index in
            for image in images {
                try add(try entries(for: image, edit: ManifestEntryEdit()), to: &index, list: name)
            }
        }
    }

    /// Adds `image` (a name, ID or digest in the store) to the list `name`, its platform read
    /// from its config and then overridden by `edit`; an index adds all its manifests (no
    /// `edit` then). An entry with the same digest is replaced; another digest for a platform the
    /// list already has is refused. Returns the list's new descriptor and the entries added.
    @discardableResult
    public func addToManifestList(_ name: ImageReference, image: String, edit: ManifestEntryEdit = ManifestEntryEdit()) throws -> (descriptor: Descriptor, added: [Descriptor]) {
        try addToManifestList(name, resolved: try resolve(image), label: image, edit: edit)
    }

    /// `addToManifestList` for a manifest or index the store holds by digest, named or not
    /// (one platform's manifest of a pulled index, say).
    @discardableResult
    public func addToManifestList(_ name: ImageReference, manifest: Descriptor, edit: ManifestEntryEdit = ManifestEntryEdit()) throws -> (descriptor: Descriptor, added: [Descriptor]) {
        try addToManifestList(name, resolved: manifest, label: manifest.digest.description, edit: edit)
    }

    private func addToManifestList(_ name: ImageReference, resolved: Descriptor, label: String, edit: ManifestEntryEdit) throws -> (descriptor: Descriptor, added: [Descriptor]) {
        var new: [Descriptor] = []
        let desc = try editList(name) { index in
            new = try entries(for: resolved, label: label, edit: edit)
            try add(new, to: &index, list: name)
        }
        return (desc, new)
    }

    /// Changes the platform fields and annotations of the list's entry for `entry` (a digest,
    /// or an image in the store whose manifest the list holds). Returns the list's new
    /// descriptor and the changed entry.
    @discardableResult
    public func annotateManifestList(_ name: ImageReference, entry: String, edit: ManifestEntryEdit) throws -> (descriptor: Descriptor, entry: Descriptor) {
        var changed: Descriptor?
        let desc = try editList(name) { index in
            let digests = entryDigests(entry, in: index)
            guard let i = index.manifests.firstIndex(where: { digests.contains($0.digest) }) else {
                throw ImageStoreError.manifestList("\(name.familiarString) has no entry for \(entry); see `dockbuild manifest inspect \(name.familiarString)` for its digests, or add the image with `dockbuild manifest add`")
            }
            index.manifests[i] = try edit.apply(to: index.manifests[i])
            try ImageStore.checkPlatforms(index.manifests, list: name)
            changed = index.manifests[i]
        }
        guard let changed else { throw ImageStoreError.manifestList("\(name.familiarString): the entry for \(entry) was not changed") }
        return (desc, changed)
    }

    /// Takes the entry for `entry` (a digest, or an image in the store whose manifest the list
    /// holds) out of the list `name`; returns the list's new descriptor.
    @discardableResult
    public func removeFromManifestList(_ name: ImageReference, entry: String) throws -> Descriptor {
        try editList(name) { index in
            let digests = entryDigests(entry, in: index)
            guard index.manifests.contains(where: { digests.contains($0.digest) }) else {
                throw ImageStoreError.manifestList("\(name.familiarString) has no entry for \(entry); see `dockbuild manifest inspect \(name.familiarString)` for its digests")
            }
            index.manifests.removeAll { digests.contains($0.digest) }
        }
    }

    /// Removes the list `name` (not the images it lists); returns the index's digest.
    @discardableResult
    public func removeManifestList(_ name: ImageReference) throws -> Digest {
        let key = ImageStore.indexKey(name)
        let digest: Digest = try updateIndex { idx in
            guard let cur = idx.manifests.first(where: { ImageStore.entryName($0) == key }) else { throw ImageStore.noList(name) }
            guard MediaType.isIndex(cur.mediaType) else { throw ImageStore.notAList(name) }
            idx.manifests.removeAll { ImageStore.entryName($0) == key }
            return cur.digest
        }
        events.record(StoreEvent(type: "image", action: "untag", id: digest.description, attributes: ["name": name.familiarString]))
        return digest
    }

    // MARK: internals

    /// The digests `entry` can mean in `index`: the digest it spells, and the manifest of the
    /// image of that name in the store when the digest alone matches no entry.
    func entryDigests(_ entry: String, in index: ImageIndex) -> Set<Digest> {
        var digests: Set<Digest> = []
        if let d = try? Digest(parsing: entry) { digests.insert(d) }
        if digests.isEmpty || !index.manifests.contains(where: { digests.contains($0.digest) }) {
            if let d = try? resolve(entry) { digests.insert(d.digest) }
        }
        return digests
    }

    func listEntry(_ name: ImageReference) throws -> Descriptor? {
        let key = ImageStore.indexKey(name)
        return try readIndex().manifests.first { ImageStore.entryName($0) == key }.map {
            Descriptor(mediaType: $0.mediaType, digest: $0.digest, size: $0.size)
        }
    }

    /// The index entries `image` contributes: its manifest with the platform of its config (and
    /// `edit`), or every manifest of an index as the index lists them.
    func entries(for image: String, edit: ManifestEntryEdit) throws -> [Descriptor] {
        try entries(for: try resolve(image), label: image, edit: edit)
    }

    func entries(for d: Descriptor, label image: String, edit: ManifestEntryEdit) throws -> [Descriptor] {
        if MediaType.isIndex(d.mediaType) {
            guard edit.isEmpty else {
                throw ImageStoreError.manifestList("\(image) is a multi-platform index; platform flags and annotations apply to one image: add it, then change its entries with `dockbuild manifest annotate`")
            }
            let children = try index(d).manifests
            guard !children.isEmpty else { throw ImageStoreError.manifestList("\(image) is an empty index; there is nothing to add") }
            return children
        }
        let img = try self.image(for: d)
        let c = img.config
        var platform = Platform(os: c.os, architecture: c.architecture, variant: c.variant,
                                osVersion: c.osVersion, osFeatures: c.osFeatures)
        platform = platform.normalized()
        let entry = Descriptor(mediaType: d.mediaType, digest: d.digest, size: d.size,
                               platform: platform, artifactType: nil)
        return [try edit.apply(to: entry)]
    }

    /// Puts `new` into `index`: an entry with the same digest is replaced in place, others are
    /// appended; then no two entries may claim one platform.
    func add(_ new: [Descriptor], to index: inout ImageIndex, list: ImageReference) throws {
        for e in new {
            if let i = index.manifests.firstIndex(where: { $0.digest == e.digest }) {
                index.manifests[i] = e
                index.manifests = index.manifests.enumerated().filter { $0.offset == i || $0.element.digest != e.digest }.map(\.element)
            } else {
                index.manifests.append(e)
            }
        }
        try ImageStore.checkPlatforms(index.manifests, list: list)
    }

    /// Refuses two different manifests for the same platform (after normalisation: arm64 and
    /// arm64/v8 are one). Entries that are not images (attestations: `unknown/unknown`, or
    /// marked with `vnd.docker.reference.type`) and entries without a platform are not compared.
    static func checkPlatforms(_ manifests: [Descriptor], list: ImageReference) throws {
        struct Key: Hashable { var os, arch: String; var variant, osVersion: String?; var osFeatures, features: [String] }
        var seen: [Key: Digest] = [:]
        for m in manifests {
            guard let p = m.platform, p.os != "unknown", m.annotations?["vnd.docker.reference.type"] == nil else { continue }
            let n = p.normalized()
            let key = Key(os: n.os, arch: n.architecture, variant: n.variant, osVersion: n.osVersion,
                          osFeatures: (n.osFeatures ?? []).sorted(), features: (n.features ?? []).sorted())
            if let other = seen[key], other != m.digest {
                throw ImageStoreError.manifestList("\(list.familiarString) would have two manifests for \(p) (\(other) and \(m.digest)); a list holds one image per platform: tell them apart with --variant or --os-version, or use another list")
            }
            seen[key] = m.digest
        }
    }

    /// Reads the list `name` (a new empty one with `create`), lets `body` change it, writes the
    /// result and points `name` at it, all under the index lock: concurrent edits of one list
    /// queue up instead of losing each other's entries, and a `body` that throws leaves the list
    /// as it was. The previous index blob is left for gc.
    func editList(_ name: ImageReference, create: Bool = false, amend: Bool = false,
                  _ body: (inout ImageIndex) throws -> Void) throws -> Descriptor {
        // The gc lease first: taking it while holding the index lock could wait on a gc that
        // waits on the index lock.
        try takeLease()
        let key = ImageStore.indexKey(name)
        let desc: Descriptor = try updateIndex { idx in
            var index = ImageIndex(manifests: [])
            if let cur = idx.manifests.first(where: { ImageStore.entryName($0) == key }) {
                guard !create || amend else {
                    throw ImageStoreError.manifestList("\(name.familiarString) already exists in the store; pass --amend to add to it, or choose another name")
                }
                guard MediaType.isIndex(cur.mediaType) else { throw ImageStore.notAList(name) }
                index = try self.index(Descriptor(mediaType: cur.mediaType, digest: cur.digest, size: cur.size))
            } else if !create {
                throw ImageStore.noList(name)
            }
            try body(&index)
            index.schemaVersion = 2
            index.mediaType = MediaType.imageIndex
            let desc = try putJSON(index, mediaType: MediaType.imageIndex)
            idx.manifests.removeAll { ImageStore.entryName($0) == key }
            var d = Descriptor(mediaType: desc.mediaType, digest: desc.digest, size: desc.size)
            d.annotations = [AnnotationKey.refName: key]
            idx.manifests.append(d)
            return desc
        }
        events.record(StoreEvent(type: "image", action: "tag", id: desc.digest.description, attributes: ["name": name.familiarString]))
        return desc
    }
}
