import Foundation
import OCI
import Testing
import ImageStore
import RegistryServer
@testable import Build

/// Multi-platform builds with real foreign binaries (issue #20): Debian's arm64 busybox-static
/// and the host's amd64 one, imported through the CLI as per-platform bases and assembled into
/// an index with `dockbuild manifest`; a two-platform build whose RUN writes `uname -m` must
/// give `x86_64` in the amd64 image and `aarch64` (through QEMU's binfmt_misc handler) in the
/// arm64 one. The peers (skopeo, buildah) must read the index, and dockbuild buildah's.
///
/// Needs root, an x86-64 host, a `qemu-aarch64` binfmt_misc handler with the F flag
/// (`apt-get install qemu-user-static binfmt-support`), and `busybox-static:arm64` from Debian's
/// apt (`dpkg --add-architecture arm64 && apt-get update`); it is fetched once into
/// /var/tmp/dockbuild-test-cache. Without them the tests are skipped, saying which is missing.
@Suite(.serialized) struct ForeignRunTests {
    @Test(.enabled(if: ForeignEnv.isRootOnAMD64, "needs root on an x86-64 host"),
          .enabled(if: ForeignEnv.aarch64Handler, "no qemu-aarch64 handler with the F flag in /proc/sys/fs/binfmt_misc: apt-get install qemu-user-static binfmt-support"),
          .enabled(if: ForeignEnv.arm64Deb != nil, "cannot fetch busybox-static:arm64 with apt-get download: dpkg --add-architecture arm64 && apt-get update"),
          .enabled(if: ForeignEnv.cliBuilt, "the CLI is not built: swift build"))
    func unameInEachPlatformsImage() throws {
        let w = try ForeignWork()
        try w.makeMultiBase()
        let ctx = w.dir + "/ctx"
        try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: ctx + "/f"))
        try Data("FROM base:multi\nARG TARGETARCH\nRUN uname -m > /arch && echo $TARGETARCH > /targetarch\nCOPY f /f\n".utf8)
            .write(to: URL(fileURLWithPath: ctx + "/Dockerfile"))
        try w.ok(["build", "--platform", "linux/amd64,linux/arm64", "-t", "app:multi", ctx])

        // Through the CLI: each platform's image runs its own binaries.
        #expect(try w.ok(["run", "--rm", "--network", "none", "--platform", "linux/arm64", "app:multi", "cat", "/arch"]) == "aarch64\n")
        #expect(try w.ok(["run", "--rm", "--network", "none", "--platform", "linux/amd64", "app:multi", "cat", "/arch"]) == "x86_64\n")
        #expect(try w.ok(["run", "--rm", "--network", "none", "--platform", "linux/arm64", "base:multi", "uname", "-m"]) == "aarch64\n")

        // A RUN that fails under emulation only says for which platform.
        let bad = w.dir + "/bad"
        try FileManager.default.createDirectory(atPath: bad, withIntermediateDirectories: true)
        try Data("FROM base:multi\nRUN [ \"$(uname -m)\" = x86_64 ]\n".utf8).write(to: URL(fileURLWithPath: bad + "/Dockerfile"))
        let (bst, _, berr) = try w.run(["build", "--platform", "linux/amd64,linux/arm64", "-t", "bad:1", bad])
        #expect(bst != 0)
        #expect(berr.contains("RUN failed for linux/arm64 (Dockerfile line 2)"), "\(berr)")

        // Through the store: the index names both images, each with its platform and its files.
        let store = try ImageStore(root: w.root)
        let index = try store.index(try store.resolve("app:multi"))
        #expect(index.manifests.compactMap { $0.platform?.description } == ["linux/amd64", "linux/arm64"])
        for (arch, machine) in [("amd64", "x86_64"), ("arm64", "aarch64")] {
            let img = try store.image("app:multi", platform: try Platform(parsing: "linux/" + arch))
            #expect(img.config.architecture == arch)
            let fs = w.dir + "/fs-" + arch
            try Builder.exportFilesystem(img, store: store, to: fs)
            #expect(ForeignWork.read(fs + "/arch") == machine + "\n", "linux/\(arch)'s RUN ran \(machine) binaries")
            #expect(ForeignWork.read(fs + "/targetarch") == arch + "\n")
            #expect(ForeignWork.read(fs + "/f") == "hello\n")
        }

        // skopeo reads the index from `save --format oci`, and copies the arm64 image out of it.
        let tar = w.dir + "/app-oci.tar", layout = w.dir + "/app-oci"
        try w.ok(["save", "--format", "oci", "-o", tar, "app:multi"])
        try FileManager.default.createDirectory(atPath: layout, withIntermediateDirectories: true)
        try #require(try sh(["tar", "-C", layout, "-xf", tar]).0 == 0)
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/skopeo") {
            let (st, raw) = try sh(["skopeo", "inspect", "--raw", "oci:" + layout])
            try #require(st == 0, "skopeo inspect --raw: \(raw)")
            #expect(ForeignWork.platforms(raw) == ["linux/amd64", "linux/arm64"])
            let (cst, cout) = try sh(["skopeo", "--override-arch", "arm64", "copy", "oci:" + layout, "dir:" + w.dir + "/arm-copy"])
            #expect(cst == 0, "skopeo copy --override-arch arm64: \(cout)")
            let (ist, cfg) = try sh(["skopeo", "--override-arch", "arm64", "inspect", "--config", "oci:" + layout])
            let arch = (try? JSONSerialization.jsonObject(with: Data(cfg.utf8)) as? [String: Any])?["architecture"] as? String
            #expect(ist == 0 && arch == "arm64", "skopeo inspect --config picks the arm64 image: \(cfg)")
        }
    }

    /// Push our index to dockbuild's registry server: skopeo reads it there; buildah builds
    /// FROM it for both platforms, pushes its own manifest list, and dockbuild pulls and runs
    /// each platform of that.
    @Test(.enabled(if: ForeignEnv.isRootOnAMD64, "needs root on an x86-64 host"),
          .enabled(if: ForeignEnv.aarch64Handler, "no qemu-aarch64 handler with the F flag in /proc/sys/fs/binfmt_misc: apt-get install qemu-user-static binfmt-support"),
          .enabled(if: ForeignEnv.arm64Deb != nil, "cannot fetch busybox-static:arm64 with apt-get download: dpkg --add-architecture arm64 && apt-get update"),
          .enabled(if: ForeignEnv.cliBuilt, "the CLI is not built: swift build"),
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/buildah") && FileManager.default.isExecutableFile(atPath: "/usr/bin/skopeo"),
                   "buildah and skopeo are not installed: apt-get install buildah skopeo"))
    func indexesCrossWithBuildahThroughARegistry() throws {
        let w = try ForeignWork()
        try w.makeMultiBase()
        var cfg = RegistryServerConfiguration(root: w.dir + "/registry")
        cfg.address = "127.0.0.1:0"
        cfg.logFormat = .none
        let server = try RegistryServer(configuration: cfg)
        try server.start()
        defer { server.stop() }
        let host = "127.0.0.1:\(server.port)"
        try w.ok(["tag", "base:multi", host + "/base:multi"])
        try w.ok(["push", host + "/base:multi"])
        let (st, raw) = try sh(["skopeo", "inspect", "--raw", "--tls-verify=false", "docker://\(host)/base:multi"])
        try #require(st == 0, "skopeo inspect --raw: \(raw)")
        #expect(ForeignWork.platforms(raw) == ["linux/amd64", "linux/arm64"])

        let ctx = w.dir + "/bctx"
        try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
        try Data("FROM \(host)/base:multi\nRUN uname -m > /arch\n".utf8).write(to: URL(fileURLWithPath: ctx + "/Dockerfile"))
        let buildah = ["buildah", "--storage-driver", "vfs", "--root", w.dir + "/b-root", "--runroot", w.dir + "/b-run"]
        defer { _ = try? sh(buildah + ["rmi", "--all", "--force"]) }
        let (bst, bout) = try sh(buildah + ["build", "--tls-verify=false", "--isolation", "chroot", "--platform", "linux/amd64,linux/arm64",
                                            "--manifest", "theirs", ctx])
        try #require(bst == 0, "buildah build: \(bout)")
        let (pst, pout) = try sh(buildah + ["manifest", "push", "--all", "--tls-verify=false", "theirs", "docker://\(host)/theirs:1"])
        try #require(pst == 0, "buildah manifest push: \(pout)")

        try w.ok(["pull", "--platform", "linux/arm64", host + "/theirs:1"])
        #expect(try w.ok(["run", "--rm", "--network", "none", "--platform", "linux/arm64", host + "/theirs:1", "cat", "/arch"]) == "aarch64\n")
        #expect(try w.ok(["run", "--rm", "--network", "none", "--platform", "linux/amd64", host + "/theirs:1", "cat", "/arch"]) == "x86_64\n")
        // buildah lists the platforms in the order its parallel builds finished
        let list = try w.ok(["manifest", "inspect", host + "/theirs:1"])
        #expect(ForeignWork.platforms(list).sorted() == ["linux/amd64", "linux/arm64"])
    }

    /// A RUN for an architecture with no binfmt_misc handler fails before running anything,
    /// naming the architecture, the host's, and the Debian packages that provide the emulator.
    @Test(.enabled(if: ForeignEnv.isRootOnAMD64, "needs root on an x86-64 host"),
          .enabled(if: ForeignEnv.unregisteredArchitecture != nil,
                   "s390x, ppc64le, riscv64, mips64le and loong64 all have binfmt_misc handlers here: no architecture to refuse"))
    func missingInterpreterIsNamed() throws {
        let arch = try #require(ForeignEnv.unregisteredArchitecture)
        let ws = try Workspace()
        let rootfs = ws.dir + "/foreign-rootfs"
        try FileManager.default.createDirectory(atPath: rootfs + "/bin", withIntermediateDirectories: true)
        try Data("not really \(arch)\n".utf8).write(to: URL(fileURLWithPath: rootfs + "/bin/sh"))
        try RootfsImport.importDirectory(rootfs, store: ws.store, tag: try ImageReference(parsing: "foreign:\(arch)"),
                                         platform: try Platform(parsing: "linux/" + arch))
        let o = BuildOptions(contextDir: nil, dockerfileText: "FROM foreign:\(arch)\nRUN true\n")
        #expect { try Builder.buildPlatforms(store: ws.store, options: o, platforms: [try Platform(parsing: "linux/" + arch)]) } throws: { e in
            let m = "\(e)"
            return m.contains("linux/\(arch)") && m.contains("amd64 machine") && m.contains("qemu-user-static")
                && m.contains("binfmt-support") && m.contains("Dockerfile:2:")
        }
    }
}

/// What the foreign-binary tests need from this machine, probed once.
enum ForeignEnv {
    static let isRootOnAMD64: Bool = {
        #if arch(x86_64)
        return getuid() == 0
        #else
        return false
        #endif
    }()

    /// The repository's debug CLI.
    static let cli: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path + "/.build/debug/dockbuild"
    static let cliBuilt: Bool = FileManager.default.isExecutableFile(atPath: cli)

    /// Debian's names for the handlers qemu-user-static registers (`qemu-NAME`), by OCI architecture.
    static let qemuHandlers: [(oci: String, qemu: String)] = [
        ("s390x", "s390x"), ("ppc64le", "ppc64le"), ("riscv64", "riscv64"), ("mips64le", "mips64el"), ("loong64", "loongarch64"),
    ]

    /// Whether binfmt_misc has an enabled qemu-aarch64 handler with the F (fix-binary) flag.
    static let aarch64Handler: Bool = handler("qemu-aarch64")

    static func handler(_ name: String) -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/sys/fs/binfmt_misc/" + name, encoding: .utf8) else { return false }
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        return lines.contains("enabled") && lines.contains { $0.hasPrefix("flags:") && $0.contains("F") }
    }

    /// An architecture with no handler registered here (for the missing-interpreter error).
    static let unregisteredArchitecture: String? = {
        guard FileManager.default.fileExists(atPath: "/proc/sys/fs/binfmt_misc/status") else { return "s390x" }
        return qemuHandlers.first { !FileManager.default.fileExists(atPath: "/proc/sys/fs/binfmt_misc/qemu-" + $0.qemu) }?.oci
    }()

    static let cacheDir = "/var/tmp/dockbuild-test-cache"

    /// busybox-static:arm64's .deb, fetched from Debian's apt once into `cacheDir` (a temp dir
    /// and a rename, so concurrent runs never see half a file); nil when it cannot be fetched.
    static let arm64Deb: String? = {
        let path = cacheDir + "/busybox-static_arm64.deb"
        if FileManager.default.fileExists(atPath: path) { return path }
        guard getuid() == 0 else { return nil }
        let tmp = cacheDir + "/fetch-\(getpid())-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        do {
            try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
            guard try sh(["timeout", "120", "apt-get", "download", "-q", "busybox-static:arm64"], cwd: tmp).0 == 0,
                  let deb = try FileManager.default.contentsOfDirectory(atPath: tmp).first(where: { $0.hasSuffix(".deb") })
            else { return nil }
            guard rename(tmp + "/" + deb, path) == 0 else { return nil }
            return path
        } catch { return nil }
    }()
}

/// A temp directory with a dockbuild root, driven through the CLI.
final class ForeignWork {
    let dir: String
    var root: String { dir + "/root" }

    init() throws {
        dir = "/var/tmp/foreignrun-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    /// Runs `dockbuild VERB --root ROOT ARGS`, requiring exit 0; returns standard output.
    @discardableResult
    func ok(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let (status, out, err) = try run(args)
        try #require(status == 0, "dockbuild \(args.joined(separator: " ")) exited \(status): \(err)\(out)", sourceLocation: sourceLocation)
        return out
    }

    /// Runs the CLI with `--root` after the verb(s), standard output and error kept apart.
    func run(_ args: [String]) throws -> (Int32, String, String) {
        let verbs = args.first == "manifest" ? 2 : 1
        let full = Array(args.prefix(verbs)) + ["--root", root] + args.dropFirst(verbs)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ForeignEnv.cli)
        p.arguments = full
        let outPath = dir + "/.out-\(UUID().uuidString.prefix(8))", errPath = outPath + ".err"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outPath); try? FileManager.default.removeItem(atPath: errPath) }
        let o = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath)), e = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = o
        p.standardError = e
        try p.run()
        p.waitUntilExit()
        try? o.close()
        try? e.close()
        return (p.terminationStatus, Self.read(outPath) ?? "", Self.read(errPath) ?? "")
    }

    /// A busybox root file system: BINARY at /bin/busybox and a link per applet.
    func makeRootfs(_ rootfs: String, busybox: String) throws {
        let fm = FileManager.default
        for d in ["bin", "etc", "tmp"] { try fm.createDirectory(atPath: rootfs + "/" + d, withIntermediateDirectories: true) }
        try fm.copyItem(atPath: busybox, toPath: rootfs + "/bin/busybox")
        let (st, list) = try sh(["/bin/busybox", "--list"])
        try #require(st == 0)
        for applet in list.split(separator: "\n") where applet != "busybox" {
            try fm.createSymbolicLink(atPath: rootfs + "/bin/" + applet, withDestinationPath: "busybox")
        }
        try Data("root:x:0:0:root:/root:/bin/sh\n".utf8).write(to: URL(fileURLWithPath: rootfs + "/etc/passwd"))
    }

    /// `base:amd64` (the host's busybox-static), `base:arm64` (Debian's arm64 one) and the
    /// index `base:multi` over both, all through the CLI.
    func makeMultiBase() throws {
        let deb = try #require(ForeignEnv.arm64Deb)
        let x = dir + "/arm64-deb"
        let (st, out) = try sh(["dpkg-deb", "-x", deb, x])
        try #require(st == 0, "dpkg-deb -x: \(out)")
        try makeRootfs(dir + "/rootfs-arm64", busybox: x + "/bin/busybox")
        try makeRootfs(dir + "/rootfs-amd64", busybox: "/bin/busybox")
        try ok(["import", "--platform", "linux/arm64", dir + "/rootfs-arm64", "base:arm64"])
        try ok(["import", "--platform", "linux/amd64", dir + "/rootfs-amd64", "base:amd64"])
        try ok(["manifest", "create", "base:multi", "base:amd64", "base:arm64"])
    }

    static func read(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The `os/architecture` of each entry of an index (or manifest list) in JSON.
    static func platforms(_ json: String) -> [String] {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let ms = obj["manifests"] as? [[String: Any]] else { return [] }
        return ms.compactMap { m in
            guard let p = m["platform"] as? [String: Any], let os = p["os"] as? String, let a = p["architecture"] as? String else { return nil }
            return os + "/" + a
        }
    }
}
