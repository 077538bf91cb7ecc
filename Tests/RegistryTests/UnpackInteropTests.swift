import Archive
import Foundation
import ImageStore
import OCI
import Testing
@testable import Registry

@Suite("Interop: skopeo push -> dockbuild pull -> unpack = umoci unpack")
struct UnpackInteropTests {
    @Test(arguments: RegistryKind.allCases)
    func pulledImageUnpacksToTheSameTreeAsUmoci(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let (src, sdir) = try newStore()
        defer { sdir.remove() }
        // Three layers, the last one deleting a file of the first (a whiteout).
        let image = try TestImages.make(in: src, tag: "example.com/tree:1", layers: [
            ["etc/os-release": Data("ID=test\n".utf8), "usr/bin/app": randomBytes(100_000, seed: 3), "tmp/gone": Data("x".utf8)],
            ["usr/share/doc/readme": Data("read me\n".utf8), "etc/os-release": Data("ID=test2\n".utf8)],
            ["tmp/.wh.gone": Data(), "var/lib/state": Data("1".utf8)],
        ])
        let work = try TempDir("unpack-interop")
        defer { work.remove() }
        try TestImages.exportLayout(image, from: src, to: work.path + "/layout", refName: "1")
        try skopeo(["copy", "--dest-tls-verify=false", "oci:\(work.path)/layout:1", "docker://\(registry.host)/interop/tree:1"])

        // dockbuild's way: pull, then apply the layers.
        let (store, dir) = try newStore()
        defer { dir.remove() }
        let client = RegistryClient(registry: registry.host, credentials: .none)
        _ = try await client.pull(try ImageReference(parsing: "\(registry.host)/interop/tree:1"), into: store)
        let pulled = try store.image("\(registry.host)/interop/tree:1")
        let mine = work.path + "/mine"
        try FileManager.default.createDirectory(atPath: mine, withIntermediateDirectories: true)
        for l in pulled.manifest.layers {
            try LayerApplier.apply(layer: store.path(for: l.digest), to: mine)
        }

        // The peers' way: skopeo copy back to a layout, umoci unpack.
        try skopeo(["copy", "--src-tls-verify=false", "docker://\(registry.host)/interop/tree:1", "oci:\(work.path)/peer:1"])
        try runTool(["umoci", "unpack", "--image", "\(work.path)/peer:1", work.path + "/bundle"])
        let theirs = work.path + "/bundle/rootfs"

        #expect(try treeListing(mine) == treeListing(theirs))
        #expect(!FileManager.default.fileExists(atPath: mine + "/tmp/gone"))
        #expect(try String(contentsOfFile: mine + "/etc/os-release", encoding: .utf8) == "ID=test2\n")
    }
}

/// Every path under `root` with its type and, for files, content digest.
func treeListing(_ root: String) throws -> [String] {
    let fm = FileManager.default
    guard let e = fm.enumerator(atPath: root) else { throw TestError("cannot list \(root)") }
    var out: [String] = []
    while let rel = e.nextObject() as? String {
        let p = root + "/" + rel
        let attrs = try fm.attributesOfItem(atPath: p)
        let type = attrs[.type] as? FileAttributeType
        if type == .typeRegular {
            out.append("f \(rel) \(Digest.compute(try Data(contentsOf: URL(fileURLWithPath: p))))")
        } else if type == .typeDirectory {
            out.append("d \(rel)")
        } else if type == .typeSymbolicLink {
            out.append("l \(rel) \(try fm.destinationOfSymbolicLink(atPath: p))")
        } else {
            out.append("? \(rel)")
        }
    }
    return out.sorted()
}
