import Archive
import Foundation
import ImageStore
import OCI
#if canImport(Glibc)
import Glibc
#endif

/// Named build contexts (`--build-context NAME=VALUE`, BuildKit's): a local directory, an image
/// (`docker-image://REF`) or an image in an OCI layout (`oci-layout://PATH[:TAG|@DIGEST]`),
/// standing in for NAME wherever a FROM, `COPY --from` or `RUN --mount from=` names it.
extension Builder {
    func namedContext(_ name: String, line: Int) throws -> StageState? {
        guard let value = options.buildContexts[name] else { return nil }
        lock.lock()
        let known = namedStates[name]
        lock.unlock()
        if let known { return known }
        var st: StageState
        if value.hasPrefix("docker-image://") {
            st = try imageState(String(value.dropFirst("docker-image://".count)), line: line)
        } else if value.hasPrefix("oci-layout://") {
            st = try layoutState(String(value.dropFirst("oci-layout://".count)), name: name, line: line)
        } else if value.contains("://") {
            throw err(line, "--build-context \(name)=\(value): use a directory, docker-image://REF or oci-layout://PATH")
        } else {
            st = try directoryState(value, name: name, line: line)
        }
        st.name = name
        lock.lock()
        namedStates[name] = st
        lock.unlock()
        return st
    }

    /// A directory as a one-layer state: its files owned by root, as the main context's are.
    func directoryState(_ dir: String, name: String, line: Int) throws -> StageState {
        guard let st = FS.follow(dir), FS.isDir(st) else {
            throw err(line, "--build-context \(name)=\(dir): not a directory; give a directory, docker-image://REF or oci-layout://PATH")
        }
        let out = try cache.tempDir("named") + "/layer.tar.gz"
        defer { FS.removeTree((out as NSString).deletingLastPathComponent) }
        let info: LayerInfo
        do {
            var o = writerOptions
            o.owner = (0, 0)
            info = try LayerWriter.write(directory: dir, to: out, compression: .default, options: o)
            try store.adoptFile(at: out, digest: info.digest)
        } catch {
            throw err(line, "--build-context \(name)=\(dir): cannot read the directory: \(error)")
        }
        let layer = LayerRef(descriptor: Descriptor(mediaType: info.mediaType, digest: info.digest, size: info.size), diffID: info.diffID)
        var cfg = ImageConfig(platform: options.platform)
        cfg.rootfs = RootFS(diffIDs: [info.diffID])
        cfg.config = ContainerConfig(env: ["PATH=" + Self.defaultPath])
        cfg.history = []
        return StageState(config: cfg, layers: [.ready(layer)], key: "context:" + info.diffID.encoded, name: name)
    }

    /// An image of an OCI layout directory, loaded into the store (blobs verified as `load` does).
    func layoutState(_ spec: String, name: String, line: Int) throws -> StageState {
        var path = spec
        var pick: String?
        if let at = spec.lastIndex(of: "@") {
            path = String(spec[..<at]); pick = String(spec[spec.index(after: at)...])
        } else if let colon = spec.lastIndex(of: ":"), !spec[spec.index(after: colon)...].contains("/") {
            path = String(spec[..<colon]); pick = String(spec[spec.index(after: colon)...])
        }
        guard FS.exists(path + "/index.json") else {
            throw err(line, "--build-context \(name)=oci-layout://\(spec): \(path) is not an OCI layout (no index.json)")
        }
        let tmp = try cache.tempDir("layout")
        defer { FS.removeTree(tmp) }
        let loaded: [LoadedImage]
        do {
            var o = LayerWriter.Options(sync: false)
            o.xattrs = false
            _ = try LayerWriter.write(directory: path, to: tmp + "/layout.tar", compression: .none, options: o)
            loaded = try store.load(from: tmp + "/layout.tar")
        } catch {
            throw err(line, "--build-context \(name)=oci-layout://\(spec): \(error)")
        }
        let chosen = loaded.first { img in
            guard let pick else { return true }
            return img.descriptor.digest.description == pick || img.names.contains { $0.tag == pick || $0.description.hasSuffix(":" + pick) }
        }
        guard let chosen, pick != nil || loaded.count == 1 else {
            throw err(line, "--build-context \(name)=oci-layout://\(spec): the layout holds \(loaded.count) images; pick one with :TAG or @sha256:DIGEST")
        }
        return try imageState(chosen.descriptor.digest.description, line: line)
    }
}
