import Foundation
import OCI
import Archive
import ImageStore

/// Where a build's result goes besides the store (`--output`).
public enum BuildOutput: Sendable, Equatable {
    /// The store only (the default; `-t` names it).
    case image
    /// An OCI image layout tar or a docker-archive tar at `dest`.
    case archive(ImageArchiveFormat, dest: String)
    /// The image's file system, flattened, into the directory `dest`.
    case local(dest: String)
    /// Pushed to a registry (`--push`).
    case registry

    /// Parses `type=oci,dest=x.tar`, `type=docker,dest=...`, `type=local,dest=DIR`, `type=registry`,
    /// `type=image`, or a bare path (a local directory, as docker does).
    public init(parsing spec: String) throws {
        var kv: [String: String] = [:]
        for part in spec.split(separator: ",") {
            guard let eq = part.firstIndex(of: "=") else {
                if !spec.contains("=") { self = .local(dest: spec); return }
                throw BuildError.invalidOption("--output \(spec): `\(part)` is not key=value")
            }
            kv[part[..<eq].lowercased()] = String(part[part.index(after: eq)...])
        }
        switch kv["type"]?.lowercased() {
        case "oci", "docker":
            guard let d = kv["dest"] else { throw BuildError.invalidOption("--output \(spec): needs dest=FILE.tar") }
            self = .archive(kv["type"]?.lowercased() == "oci" ? .oci : .docker, dest: d)
        case "local":
            guard let d = kv["dest"] else { throw BuildError.invalidOption("--output \(spec): needs dest=DIR") }
            self = .local(dest: d)
        case "tar":
            guard let d = kv["dest"] else { throw BuildError.invalidOption("--output \(spec): needs dest=FILE") }
            self = .archive(.oci, dest: d)
        case "registry": self = .registry
        case "image", nil: self = .image
        case let t?: throw BuildError.invalidOption("--output type=\(t): use image, oci, docker, local or registry")
        }
    }
}

extension Builder {
    /// Sends a built image where `outputs` say, in order: an archive, a directory, or each of
    /// `tags` pushed to its registry (`pushed` hears of each push and its manifest digest).
    public static func deliver(_ image: Image, to outputs: [BuildOutput], store: ImageStore, tags: [ImageReference],
                               pushed: (ImageReference, Digest) -> Void = { _, _ in }) throws {
        for o in outputs {
            switch o {
            case .archive(let format, let dest): try store.save([image.descriptor.digest.description], format: format, to: dest)
            case .local(let dest): try exportFilesystem(image, store: store, to: dest)
            case .registry:
                for t in tags { pushed(t, try push(image, store: store, to: t)) }
            case .image: break
            }
        }
    }

    /// Writes the image's flattened file system into `dest` (created if needed).
    public static func exportFilesystem(_ image: Image, store: ImageStore, to dest: String) throws {
        try FS.mkdirs(dest)
        let diffIDs = image.config.rootfs.diffIDs
        guard diffIDs.count == image.manifest.layers.count else {
            throw BuildError.system("image \(image.id) has \(image.manifest.layers.count) layers but \(diffIDs.count) diff_ids; it is corrupt")
        }
        for (l, diffID) in zip(image.manifest.layers, diffIDs) {
            try LayerApplier.apply(layer: store.path(for: l.digest), to: dest, options: .init(whiteouts: .apply, expectedDiffID: diffID))
        }
    }
}

/// Imports a root file system directory as a one-layer image: how the tests and the demo
/// make a base image offline (e.g. from Debian's busybox-static).
public enum RootfsImport {
    @discardableResult
    public static func importDirectory(_ dir: String, store: ImageStore, tag: ImageReference?,
                                       config: ContainerConfig = ContainerConfig(env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]),
                                       platform: Platform = .host) throws -> Image {
        let out = "\(store.tempDir)/import-\(UUID().uuidString.prefix(12))"
        let info = try LayerWriter.write(directory: dir, to: out, compression: .default, options: .init(sourceDateEpoch: 0))
        try store.adoptFile(at: out, digest: info.digest)
        let cfg = ImageConfig(created: "1970-01-01T00:00:00Z", platform: platform, config: config,
                              rootfs: RootFS(diffIDs: [info.diffID]),
                              history: [History(created: "1970-01-01T00:00:00Z", createdBy: "dockbuild import \((dir as NSString).lastPathComponent)")])
        return try store.putImage(config: cfg, layers: [Descriptor(mediaType: info.mediaType, digest: info.digest, size: info.size)], tag: tag)
    }

    /// A minimal busybox root file system (static busybox, applet links, /etc/passwd and /etc/group)
    /// built in `dir` from the host's busybox-static.
    public static func makeBusyboxRootfs(at dir: String, busybox: String = "/bin/busybox") throws {
        guard FileManager.default.isExecutableFile(atPath: busybox) else {
            throw BuildError.notFound("\(busybox) not found: install Debian's busybox-static (apt-get install busybox-static)")
        }
        for d in ["bin", "etc", "tmp", "root", "home", "var", "usr/bin", "usr/sbin", "sbin"] { try FS.mkdirs(dir + "/" + d) }
        chmod(dir + "/tmp", 0o1777)
        chmod(dir + "/root", 0o700)
        guard let st = FS.follow(busybox) else { throw FS.sys("stat", busybox) }
        try FS.copyFile(busybox, dir + "/bin/busybox", st: st)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: busybox)
        p.arguments = ["--list"]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let list = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        for applet in list.split(separator: "\n") where applet != "busybox" {
            symlink("busybox", dir + "/bin/" + applet)
        }
        let passwd = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
        let group = "root:x:0:\ndaemon:x:1:\nusers:x:100:\nnogroup:x:65534:\n"
        _ = FileManager.default.createFile(atPath: dir + "/etc/passwd", contents: Data(passwd.utf8))
        _ = FileManager.default.createFile(atPath: dir + "/etc/group", contents: Data(group.utf8))
    }
}
