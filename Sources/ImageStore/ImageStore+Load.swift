// `load`: images into the store from a docker-archive tar (legacy or docker 25+) or an OCI
// image layout tar, compressed or not. Everything is verified before anything is stored: a
// truncated archive, a blob that does not match its digest or a manifest that names a
// missing blob leave the store as it was.
import Archive
import CArchive
import Foundation
import OCI
#if canImport(Glibc)
import Glibc
#endif

/// One image that `load` stored.
public struct LoadedImage: Sendable, Hashable {
    public var descriptor: Descriptor
    public var id: Digest
    public var names: [ImageReference]
}

extension ImageStore {
    /// Files of an unpacked archive: path -> (file on disk, digest, size).
    struct Unpacked {
        var dir: String
        var files: [String: (file: String, digest: Digest, size: Int64)] = [:]
        var links: [String: String] = [:]

        func lookup(_ name: String) -> (file: String, digest: Digest, size: Int64)? {
            var p = Unpacked.clean(name)
            for _ in 0..<16 {
                if let f = files[p] { return f }
                guard let l = links[p] else { return nil }
                p = l
            }
            return nil
        }

        /// The directory part of a cleaned entry name ("" at the top). Not NSString's
        /// `deletingLastPathComponent`, which traps on some one-character names.
        static func parent(of name: String) -> String {
            guard let slash = name.lastIndex(of: "/") else { return "" }
            return String(name[..<slash])
        }

        static func clean(_ name: String) -> String {
            var parts: [Substring] = []
            for c in name.split(separator: "/") where c != "." && !c.isEmpty {
                if c == ".." { _ = parts.popLast() } else { parts.append(c) }
            }
            return parts.joined(separator: "/")
        }
    }

    func unpack(_ input: String, what: String) throws -> Unpacked {
        var u = Unpacked(dir: newTempPath("load"))
        try FileOps.mkdirs(u.dir)
        var n = 0
        do {
            try TarReader.forEachEntry(path: input, what: what) { entry, read in
                let name = Unpacked.clean(entry.path)
                guard !name.isEmpty, !entry.path.hasPrefix("/"), !entry.path.split(separator: "/").contains("..") else { return }
                if let target = entry.linkTarget {
                    u.links[name] = entry.isHardlink ? Unpacked.clean(target)
                        : Unpacked.clean(Unpacked.parent(of: name) + "/" + target)
                    return
                }
                guard entry.isRegular else { return }
                n += 1
                let file = "\(u.dir)/f\(n)"
                let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
                guard fd >= 0 else { throw ImageStoreError.io("cannot create", path: file, errno: errno) }
                var h = Digest.Hasher()
                var size: Int64 = 0
                do {
                    try read { buf in
                        h.update(buf)
                        size += Int64(buf.count)
                        try FileOps.writeAll(fd: fd, buf, path: file)
                    }
                } catch { close(fd); throw error }
                close(fd)
                u.files[name] = (file, h.finalize(), size)
            }
        } catch {
            FileOps.removeTree(u.dir)
            releaseTemp(u.dir)
            throw error
        }
        return u
    }

    /// Loads every image of the archive at `input` ("-" for standard input); returns what was
    /// stored. With `tag`, the (single) image gets that name too.
    public func load(from input: String, tag: ImageReference? = nil) throws -> [LoadedImage] {
        let what = input == "-" ? "the archive on standard input" : input
        let u = try unpack(input, what: what)
        defer { FileOps.removeTree(u.dir); releaseTemp(u.dir) }
        var plan: [(Descriptor, [ImageReference])] = []
        var install: [Digest: String] = [:]  // blob -> unpacked file
        var created: [Digest: Data] = [:]    // blobs made here (manifests for docker archives)

        if u.lookup("index.json") != nil {
            // An OCI layout; docker 25+ archives are one too, with a manifest.json beside it.
            try planOCILayout(u, what: what, plan: &plan, install: &install)
            if let manifestFile = u.lookup("manifest.json") { try addRepoTags(u, manifestFile: manifestFile.file, what: what, plan: &plan) }
        } else if let manifestFile = u.lookup("manifest.json") {
            try planDockerArchive(u, manifestFile: manifestFile.file, what: what, plan: &plan, install: &install, created: &created)
        } else {
            throw ImageStoreError.invalidContent("\(what) is neither a docker archive (no manifest.json) nor an OCI layout (no index.json)")
        }
        if let tag {
            guard plan.count == 1 else {
                throw ImageStoreError.invalidContent("--tag needs an archive with exactly one image; \(what) has \(plan.count)")
            }
            plan[0].1.append(tag)
        }
        // All verified: now store blobs, then names.
        for (d, file) in install.sorted(by: { $0.key < $1.key }) where !has(d) {
            try self.install(tempFile: file, as: d)
        }
        for (_, data) in created.sorted(by: { $0.key < $1.key }) { try writeBlob(data) }
        var out: [LoadedImage] = []
        for (desc, names) in plan {
            if names.isEmpty { try addUnnamed(desc) }
            for n in names { try self.tag(n, descriptor: desc) }
            out.append(LoadedImage(descriptor: desc, id: (try? imageID(of: desc)) ?? desc.digest, names: names))
        }
        return out
    }

    private func planDockerArchive(_ u: Unpacked, manifestFile: String, what: String,
                                   plan: inout [(Descriptor, [ImageReference])],
                                   install: inout [Digest: String], created: inout [Digest: Data]) throws {
        struct Entry: Decodable {
            var Config: String
            var RepoTags: [String]?
            var Layers: [String]
        }
        let entries: [Entry]
        do {
            entries = try JSONDecoder().decode([Entry].self, from: try FileOps.readFile(manifestFile))
        } catch {
            throw ImageStoreError.invalidContent("manifest.json of \(what) is not a docker save manifest: \(error)")
        }
        guard !entries.isEmpty else { throw ImageStoreError.invalidContent("manifest.json of \(what) lists no images") }
        for (n, e) in entries.enumerated() {
            guard let cfg = u.lookup(e.Config) else {
                throw ImageStoreError.invalidContent("manifest.json entry \(n) names config \(e.Config), which is not in \(what)")
            }
            let configData = try FileOps.readFile(cfg.file)
            let config: ImageConfig
            do { config = try ImageConfig.decode(configData) } catch {
                throw ImageStoreError.invalidContent("config \(e.Config) in \(what): \(error)")
            }
            guard config.rootfs.diffIDs.count == e.Layers.count else {
                throw ImageStoreError.invalidContent("config \(e.Config) lists \(config.rootfs.diffIDs.count) diff_ids but manifest.json lists \(e.Layers.count) layers")
            }
            install[cfg.digest] = cfg.file
            var layers: [Descriptor] = []
            for (i, l) in e.Layers.enumerated() {
                guard let f = u.lookup(l) else {
                    throw ImageStoreError.invalidContent("manifest.json names layer \(l), which is not in \(what)")
                }
                let compression = TarReader.sniffCompression(f.file)
                try verifyDiffID(file: f.file, digest: f.digest, expected: config.rootfs.diffIDs[i], layer: "\(f.digest) (\(l)) in \(what)")
                let type = switch compression {
                case .uncompressed: MediaType.layer
                case .gzip: MediaType.layerGzip
                case .zstd: MediaType.layerZstd
                }
                layers.append(Descriptor(mediaType: type, digest: f.digest, size: f.size))
                install[f.digest] = f.file
            }
            let manifest = ImageManifest(config: Descriptor(mediaType: MediaType.imageConfig, digest: cfg.digest, size: cfg.size), layers: layers)
            let data = try CanonicalJSON.encode(manifest)
            let desc = Descriptor.of(data, mediaType: MediaType.imageManifest)
            created[desc.digest] = data
            var names: [ImageReference] = []
            for t in e.RepoTags ?? [] {
                do { names.append(try ImageReference(parsing: t)) } catch {
                    throw ImageStoreError.invalidContent("manifest.json of \(what) has an invalid RepoTag: \(error)")
                }
            }
            plan.append((desc, names))
        }
    }

    /// Names from a docker 25+ manifest.json (RepoTags by config) for the images of its index.json.
    private func addRepoTags(_ u: Unpacked, manifestFile: String, what: String, plan: inout [(Descriptor, [ImageReference])]) throws {
        struct Entry: Decodable {
            var Config: String
            var RepoTags: [String]?
        }
        guard let entries = try? JSONDecoder().decode([Entry].self, from: try FileOps.readFile(manifestFile)) else { return }
        for e in entries {
            guard let cfg = u.lookup(e.Config), let tags = e.RepoTags, !tags.isEmpty else { continue }
            for i in plan.indices {
                guard let m = try? manifestConfigDigests(u, plan[i].0), m.contains(cfg.digest) else { continue }
                for t in tags {
                    guard let r = try? ImageReference(parsing: t) else {
                        throw ImageStoreError.invalidContent("manifest.json of \(what) has an invalid RepoTag \"\(t)\"")
                    }
                    if !plan[i].1.contains(r) { plan[i].1.append(r) }
                }
            }
        }
    }

    /// Config digests reachable from an unpacked descriptor.
    private func manifestConfigDigests(_ u: Unpacked, _ d: Descriptor) throws -> Set<Digest> {
        guard let f = u.lookup("blobs/\(d.digest.algorithm.rawValue)/\(d.digest.encoded)") else { return [] }
        let data = try FileOps.readFile(f.file)
        if MediaType.isIndex(d.mediaType) {
            var out = Set<Digest>()
            for m in try ImageIndex.decode(data).manifests { out.formUnion(try manifestConfigDigests(u, m)) }
            return out
        }
        return [try ImageManifest.decode(data).config.digest]
    }

    private func planOCILayout(_ u: Unpacked, what: String, plan: inout [(Descriptor, [ImageReference])],
                               install: inout [Digest: String]) throws {
        guard let idxFile = u.lookup("index.json") else { return }
        let index: ImageIndex
        do { index = try ImageIndex.decode(try FileOps.readFile(idxFile.file)) } catch {
            throw ImageStoreError.invalidContent("index.json of \(what): \(error)")
        }
        func blob(_ d: Descriptor, from parent: String) throws -> (file: String, digest: Digest, size: Int64) {
            guard let f = u.lookup("blobs/\(d.digest.algorithm.rawValue)/\(d.digest.encoded)") else {
                throw ImageStoreError.invalidContent("\(parent) names blob \(d.digest), which is not in \(what)")
            }
            let actual = d.digest.algorithm == .sha256 ? f.digest : try ImageStore.hashFile(f.file, algorithm: d.digest.algorithm)
            guard actual == d.digest else {
                throw ImageStoreError.invalidContent("blob \(d.digest) in \(what) is corrupt: its content hashes to \(actual)")
            }
            guard f.size == d.size else {
                throw ImageStoreError.invalidContent("blob \(d.digest) in \(what) has \(f.size) bytes, but \(parent) says \(d.size)")
            }
            return f
        }
        var verified: [Digest: Digest] = [:]  // layer -> diffID checked
        func walk(_ d: Descriptor, from parent: String) throws {
            let f = try blob(d, from: parent)
            install[d.digest] = f.file
            if MediaType.isIndex(d.mediaType) {
                let idx: ImageIndex
                do { idx = try ImageIndex.decode(try FileOps.readFile(f.file)) } catch {
                    throw ImageStoreError.invalidContent("index \(d.digest) in \(what): \(error)")
                }
                // Indexes may list platforms that were never fetched (docker save, partial pulls):
                // skip absent children, but an index with none of them is an error.
                let present = idx.manifests.filter { u.lookup("blobs/\($0.digest.algorithm.rawValue)/\($0.digest.encoded)") != nil }
                guard !present.isEmpty || idx.manifests.isEmpty else {
                    throw ImageStoreError.invalidContent("index \(d.digest) in \(what) names manifests none of which are in the archive")
                }
                for m in present { try walk(m, from: "index \(d.digest)") }
            } else if MediaType.isManifest(d.mediaType) {
                let m: ImageManifest
                do { m = try ImageManifest.decode(try FileOps.readFile(f.file)) } catch {
                    throw ImageStoreError.invalidContent("manifest \(d.digest) in \(what): \(error)")
                }
                try walk(m.config, from: "manifest \(d.digest)")
                for l in m.layers { try walk(l, from: "manifest \(d.digest)") }
                // The layers must be what the config says they are (its diff_ids name the snapshots).
                guard MediaType.isConfig(m.config.mediaType), let cfgFile = install[m.config.digest] else { return }
                let config: ImageConfig
                do { config = try ImageConfig.decode(try FileOps.readFile(cfgFile)) } catch {
                    throw ImageStoreError.invalidContent("config \(m.config.digest) in \(what): \(error)")
                }
                guard config.rootfs.diffIDs.count == m.layers.count else {
                    throw ImageStoreError.invalidContent("config \(m.config.digest) in \(what) lists \(config.rootfs.diffIDs.count) diff_ids but manifest \(d.digest) has \(m.layers.count) layers; the archive is corrupt")
                }
                for (l, expected) in zip(m.layers, config.rootfs.diffIDs) where verified[l.digest] != expected {
                    guard let lf = install[l.digest] else { continue }
                    try verifyDiffID(file: lf, digest: l.digest, expected: expected, layer: "\(l.digest) in \(what)")
                    verified[l.digest] = expected
                }
            }
        }
        guard !index.manifests.isEmpty else { throw ImageStoreError.invalidContent("index.json of \(what) lists no images") }
        for d in index.manifests {
            try walk(d, from: "index.json")
            var names: [ImageReference] = []
            if let full = d.annotations?[AnnotationKey.containerdImageName], let r = try? ImageReference(parsing: full) {
                names.append(r)
            } else if let ref = d.annotations?[AnnotationKey.refName], ref.contains(":") || ref.contains("/"),
                      let r = try? ImageReference(parsing: ref) {
                names.append(r)
            }
            let clean = Descriptor(mediaType: d.mediaType, digest: d.digest, size: d.size)
            if let i = plan.firstIndex(where: { $0.0 == clean }) {
                plan[i].1.append(contentsOf: names.filter { !plan[i].1.contains($0) })
            } else {
                plan.append((clean, names))
            }
        }
    }

    /// Checks that the layer file's uncompressed stream hashes to `expected` (a plain tar's
    /// diffID is its digest; compressed ones are read through the decompressors, trailers checked).
    func verifyDiffID(file: String, digest: Digest, expected: Digest, layer: String) throws {
        if TarReader.sniffCompression(file) == .uncompressed && digest.algorithm == expected.algorithm {
            guard digest == expected else {
                throw ImageStoreError.invalidContent(ArchiveError.diffIDMismatch(layer: layer, expected: expected, actual: digest).description)
            }
            return
        }
        do {
            try LayerDigest.verify(layer: file, named: layer, expected: expected)
        } catch let e as ArchiveError {
            if case .diffIDMismatch = e { throw ImageStoreError.invalidContent(e.description) }
            throw ImageStoreError.invalidContent("layer \(layer) is unreadable: \(e)")
        }
    }
}
