import Foundation
import Testing
import OCI
import ImageStore
@testable import Build

/// The same Dockerfile built by buildah (Debian's package, vfs, chroot isolation) gives the same config.
@Suite(.serialized) struct BuildahTests {
    @Test func configMatchesBuildah() throws {
        let ws = try Workspace()
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/buildah") else {
            Issue.record("buildah is not installed: apt-get install buildah")
            return
        }
        let ours = try ws.build("config").image.config.config ?? ContainerConfig()
        let base = ws.dir + "/busybox.tar"
        try ws.store.save(["busybox:test"], format: .oci, to: base)
        let df = ws.dir + "/Dockerfile.buildah"
        let text = try String(contentsOfFile: ws.fixture("config") + "/Dockerfile", encoding: .utf8)
            .replacingOccurrences(of: "FROM busybox:test", with: "FROM oci-archive:\(base)")
        try Data(text.utf8).write(to: URL(fileURLWithPath: df))
        let broot = ws.dir + "/buildah"
        let common = ["buildah", "--storage-driver", "vfs", "--root", broot + "/root", "--runroot", broot + "/run"]
        let (st, out) = try sh(common + ["bud", "--format", "docker", "--isolation", "chroot", "-f", df, "-t", "cmp", ws.fixture("config")])
        try #require(st == 0, "buildah bud failed: \(out)")
        let (ist, json) = try sh(common + ["inspect", "--type", "image", "cmp"])
        try #require(ist == 0, "buildah inspect: \(json)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let docker = try #require(obj["Docker"] as? [String: Any])
        let cfgData = try JSONSerialization.data(withJSONObject: docker["config"] ?? [:])
        var theirs = try JSONDecoder().decode(ContainerConfig.self, from: cfgData)
        theirs.labels?.removeValue(forKey: "io.buildah.version")
        #expect(ours.env == theirs.env)
        #expect(ours.cmd == theirs.cmd)
        #expect(ours.entrypoint == theirs.entrypoint)
        #expect(ours.workingDir == theirs.workingDir)
        #expect(ours.user == theirs.user)
        // docker (BuildKit) expands port ranges in EXPOSE; buildah keeps `9000-9001/udp` as written.
        var theirPorts: Set<String> = []
        for p in theirs.exposedPorts?.keys ?? [:].keys {
            let parts = p.split(separator: "/")
            let range = parts[0].split(separator: "-").compactMap { Int($0) }
            if range.count == 2 { for n in range[0]...range[1] { theirPorts.insert("\(n)/\(parts[1])") } } else { theirPorts.insert(p) }
        }
        #expect(Set(ours.exposedPorts?.keys ?? [:].keys) == theirPorts)
        #expect(ours.volumes == theirs.volumes)
        #expect(ours.labels == theirs.labels)
        #expect(ours.stopSignal == theirs.stopSignal)
        #expect(ours.healthcheck == theirs.healthcheck)
        #expect(ours.shell == theirs.shell)
        #expect(ours.onBuild == theirs.onBuild)
        _ = try? sh(common + ["rmi", "--all", "--force"])
    }
}
