import Foundation
import ImageStore
import OCI

/// Builds small images straight into a store with GNU tar and gzip (no dependency on Archive).
enum TestImages {
    /// One gzip layer per entry of `layers` (file name -> content); returns the tagged image.
    @discardableResult
    static func make(in store: ImageStore, tag: String, layers: [[String: Data]], platform: Platform = .host) throws -> Image {
        let dir = try TempDir("test-image")
        defer { dir.remove() }
        var descs: [Descriptor] = []
        var diffIDs: [Digest] = []
        for (i, files) in layers.enumerated() {
            let root = dir.path + "/l\(i)"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            for (name, content) in files {
                let p = root + "/" + name
                try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try content.write(to: URL(fileURLWithPath: p))
            }
            try runTool(["tar", "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-C", root, "-cf", dir.path + "/l\(i).tar", "."])
            let tar = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/l\(i).tar"))
            diffIDs.append(Digest.compute(tar))
            let gz = try runTool(["gzip", "-n", "-c", dir.path + "/l\(i).tar"])
            let d = try store.writeBlob(gz)
            descs.append(Descriptor(mediaType: MediaType.layerGzip, digest: d, size: Int64(gz.count)))
        }
        let config = ImageConfig(created: "2024-01-01T00:00:00Z", platform: platform,
                                 config: ContainerConfig(cmd: ["/bin/sh"]), rootfs: RootFS(diffIDs: diffIDs))
        return try store.putImage(config: config, layers: descs, tag: try ImageReference(parsing: tag))
    }

    /// An OCI layout with one image (copied from the store), for skopeo's `oci:` transport.
    static func exportLayout(_ image: Image, from store: ImageStore, to path: String, refName: String) throws {
        try FileManager.default.createDirectory(atPath: path + "/blobs/sha256", withIntermediateDirectories: true)
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: URL(fileURLWithPath: path + "/oci-layout"))
        for d in [image.descriptor.digest, image.manifest.config.digest] + image.manifest.layers.map(\.digest) {
            try FileManager.default.copyItem(atPath: store.path(for: d), toPath: path + "/blobs/sha256/" + d.encoded)
        }
        let index = """
        {"schemaVersion":2,"manifests":[{"mediaType":"\(image.descriptor.mediaType)","digest":"\(image.descriptor.digest)","size":\(image.descriptor.size),"annotations":{"org.opencontainers.image.ref.name":"\(refName)"}}]}
        """
        try Data(index.utf8).write(to: URL(fileURLWithPath: path + "/index.json"))
    }
}
