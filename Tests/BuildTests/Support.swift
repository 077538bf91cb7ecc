import Foundation
import Testing
import OCI
import ImageStore
@testable import Build

/// A temp store with `busybox:test` imported from the host's busybox-static.
final class Workspace {
    let dir: String
    let store: ImageStore

    static let fixtures: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fixtures/build").path
    }()

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("buildtests-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        store = try ImageStore(root: dir + "/store")
        let rootfs = dir + "/busybox-rootfs"
        try RootfsImport.makeBusyboxRootfs(at: rootfs)
        try RootfsImport.importDirectory(rootfs, store: store, tag: try ImageReference(parsing: "busybox:test"))
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    func fixture(_ name: String) -> String { Self.fixtures + "/" + name }

    /// Builds fixtures/build/NAME/Dockerfile with context NAME/ctx (or NAME when it has no ctx).
    @discardableResult
    func build(_ name: String, dockerfile: String = "Dockerfile", context: String? = nil, tag: String? = nil,
               store: ImageStore? = nil, _ configure: (inout BuildOptions) -> Void = { _ in }) throws -> BuildResult {
        let text = try String(contentsOfFile: fixture(name) + "/" + dockerfile, encoding: .utf8)
        var ctx = context
        if ctx == nil {
            ctx = FileManager.default.fileExists(atPath: fixture(name) + "/ctx") ? fixture(name) + "/ctx" : fixture(name)
        }
        var opts = BuildOptions(contextDir: ctx, dockerfileText: text, dockerfileName: name + "/" + dockerfile)
        if let tag { opts.tags = [try ImageReference(parsing: tag)] }
        configure(&opts)
        return try Builder(store: store ?? self.store, options: opts).build()
    }

    /// The image's file system, flattened into a fresh directory.
    func files(_ image: Image) throws -> String {
        let out = dir + "/fs-\(UUID().uuidString.prefix(8))"
        try Builder.exportFilesystem(image, store: store, to: out)
        return out
    }

    func read(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }
}

func stat(_ p: String) -> (mode: Int, uid: Int, gid: Int)? {
    guard let a = try? FileManager.default.attributesOfItem(atPath: p) else { return nil }
    return ((a[.posixPermissions] as? Int) ?? -1, (a[.ownerAccountID] as? Int) ?? -1, (a[.groupOwnerAccountID] as? Int) ?? -1)
}

/// Runs a program, returning status and combined output.
@discardableResult
func sh(_ args: [String], cwd: String? = nil) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, out)
}
