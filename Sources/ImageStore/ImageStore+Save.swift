// `save`: images out of the store as a docker-archive tar (docker save's manifest.json format,
// which docker load, skopeo docker-archive: and podman read) or as an OCI image layout tar.
import Foundation
import SystemSupport
import OCI
#if canImport(Glibc)
import Glibc
#endif

/// The two archive formats of `save` and `load`.
public enum ImageArchiveFormat: String, Sendable, CaseIterable {
    /// docker save's layout: manifest.json, `<config>.json`, `<diffID>/layer.tar` (uncompressed).
    case docker
    /// An OCI image layout: oci-layout, index.json, blobs/.
    case oci
}

extension ImageStore {
    /// What `save` writes for one argument: the image and the names to record with it.
    struct SaveItem {
        var descriptor: Descriptor
        var image: Image
        var names: [ImageReference]
    }

    func saveItems(_ args: [String], platform: Platform) throws -> [SaveItem] {
        var items: [SaveItem] = []
        for arg in args {
            let desc = try resolve(arg)
            // A name saves that name; an ID or digest saves the image without names (as docker does).
            var names: [ImageReference] = []
            if var ref = try? ImageReference(parsing: arg), ref.tag != nil {
                ref.digest = nil
                if try listImages().contains(where: { $0.reference == ref }) { names = [ref] }
            }
            let image = try self.image(for: desc, platform: platform)
            if let i = items.firstIndex(where: { $0.descriptor == desc }) {
                for n in names where !items[i].names.contains(n) { items[i].names.append(n) }
            } else {
                items.append(SaveItem(descriptor: desc, image: image, names: names))
            }
        }
        return items
    }

    /// Writes `images` (names, IDs or digests) as one archive to `output` ("-" for stdout).
    /// The file appears complete or not at all (temp file + rename).
    public func save(_ images: [String], format: ImageArchiveFormat, to output: String, platform: Platform = .host) throws {
        guard !images.isEmpty else { throw ImageStoreError.invalidContent("save needs at least one image") }
        let items = try saveItems(images, platform: platform)
        var cleanup: [String] = []
        defer { for c in cleanup { unlink(c) } }
        func archive(to fd: Int32) throws {
            let tar = TarWriter(fd: fd, path: output == "-" ? "standard output" : output)
            switch format {
            case .docker: try writeDockerArchive(items, tar: tar, cleanup: &cleanup)
            case .oci: try writeOCILayout(items, tar: tar)
            }
            try tar.finish()
        }
        if output == "-" { return try archive(to: 1) }
        try FileOps.io {
            try FileSystem.writeAtomically(to: output, durability: .file, temporaryPath: output + ".tmp-\(UUID().uuidString.prefix(8))",
                                           contents: archive)
        }
    }

    private func writeDockerArchive(_ items: [SaveItem], tar: TarWriter, cleanup: inout [String]) throws {
        struct Entry: Encodable {
            var Config: String
            var RepoTags: [String]?
            var Layers: [String]
        }
        var files: [String: String] = [:]  // archive name -> source file
        var data: [String: Data] = [:]
        var manifest: [Entry] = []
        for item in items {
            let img = item.image
            let configName = "\(img.id.encoded).json"
            data[configName] = img.configData
            var layers: [String] = []
            for (i, layer) in img.manifest.layers.enumerated() {
                guard i < img.config.rootfs.diffIDs.count else {
                    throw ImageStoreError.invalidContent("image \(img.id) has more layers than diff_ids in its config")
                }
                let diffID = img.config.rootfs.diffIDs[i]
                let name = "\(diffID.encoded)/layer.tar"
                layers.append(name)
                if files[name] != nil { continue }
                let src = path(for: layer.digest)
                guard FileOps.exists(src) else { throw ImageStoreError.blobNotFound(layer.digest) }
                if TarReader.sniffCompression(src) == .uncompressed {
                    files[name] = src
                } else {
                    // docker-archive layers are plain tars: decompress into a temp file, checking the diffID.
                    let t = newTempPath("save")
                    defer { releaseTemp(t) }
                    cleanup.append(t)
                    let out = open(t, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                    guard out >= 0 else { throw ImageStoreError.io("cannot create", path: t, errno: errno) }
                    var h = Digest.Hasher()
                    do {
                        try TarReader.decompress(path: src, what: "layer \(layer.digest)") { buf in
                            h.update(buf)
                            try FileOps.writeAll(fd: out, buf, path: t)
                        }
                    } catch { close(out); throw error }
                    close(out)
                    let got = h.finalize()
                    guard got == diffID else {
                        throw ImageStoreError.invalidContent("layer \(layer.digest) decompresses to \(got), but the config says \(diffID); the image is corrupt")
                    }
                    files[name] = t
                }
            }
            let tags = item.names.map { $0.familiarString }
            manifest.append(Entry(Config: configName, RepoTags: tags.isEmpty ? nil : tags, Layers: layers))
        }
        var dirs = Set<String>()
        for name in files.keys { dirs.insert(String(name.split(separator: "/")[0])) }
        data["manifest.json"] = try CanonicalJSON.encode(manifest)
        var repos: [String: [String: String]] = [:]
        for (item, e) in zip(items, manifest) {
            guard let top = e.Layers.last?.split(separator: "/").first else { continue }
            for n in item.names { repos[n.familiarName, default: [:]][n.tag ?? "latest"] = String(top) }
        }
        if !repos.isEmpty { data["repositories"] = try CanonicalJSON.encode(repos) }
        let names = (Array(files.keys) + Array(data.keys) + dirs.map { $0 + "/" }).sorted()
        for n in names {
            if n.hasSuffix("/") { try tar.addDirectory(n) } else if let d = data[n] { try tar.addFile(n, data: d) } else if let f = files[n] {
                try tar.addFile(n, contentsOf: f)
            }
        }
    }

    private func writeOCILayout(_ items: [SaveItem], tar: TarWriter) throws {
        var entries: [Descriptor] = []
        var blobs = Set<Digest>()
        for item in items {
            // Save the whole index when all its manifests are here, else the chosen manifest.
            var top = item.descriptor
            if MediaType.isIndex(top.mediaType) {
                let idx = try index(top)
                if !idx.manifests.allSatisfy({ has($0.digest) }) { top = item.image.descriptor }
            }
            var reached = reachable(from: top)
            for d in reached where !has(d) { reached.remove(d) }
            if top == item.image.descriptor {
                reached = [top.digest, item.image.manifest.config.digest]
                for l in item.image.manifest.layers {
                    guard has(l.digest) else { throw ImageStoreError.blobNotFound(l.digest) }
                    reached.insert(l.digest)
                }
            }
            blobs.formUnion(reached)
            var clean = Descriptor(mediaType: top.mediaType, digest: top.digest, size: top.size)
            if item.names.isEmpty {
                entries.append(clean)
            }
            for n in item.names {
                clean.annotations = [AnnotationKey.containerdImageName: n.description,
                                     AnnotationKey.refName: n.tag ?? ImageReference.defaultTag]
                entries.append(clean)
            }
        }
        try tar.addFile("oci-layout", data: try CanonicalJSON.encode(ImageLayoutHeader()))
        try tar.addFile("index.json", data: try CanonicalJSON.encode(ImageIndex(manifests: entries)))
        try tar.addDirectory("blobs/")
        for alg in Set(blobs.map(\.algorithm)).sorted(by: { $0.rawValue < $1.rawValue }) {
            try tar.addDirectory("blobs/\(alg.rawValue)/")
        }
        for d in blobs.sorted() {
            try tar.addFile("blobs/\(d.algorithm.rawValue)/\(d.encoded)", contentsOf: path(for: d))
        }
    }
}
