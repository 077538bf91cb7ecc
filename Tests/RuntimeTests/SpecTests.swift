import Foundation
import Testing
@testable import Runtime

@Suite("spec model")
struct SpecTests {
    @Test("runc's own config.json decodes and round-trips")
    func runcSpec() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/spec-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/runc")
        p.arguments = ["spec", "--bundle", dir]
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/sbin/runc"), "runc is missing; apt-get install runc")
        try p.run()
        p.waitUntilExit()
        let spec = try Runtime.loadSpec(bundle: dir)
        #expect(spec.process?.args == ["sh"])
        #expect(spec.linux?.namespaces?.map(\.type).contains("pid") == true)
        let again = try JSONDecoder().decode(RuntimeSpec.self, from: JSONEncoder().encode(spec))
        #expect(again == spec)
        #expect(SpecGenerator.runcDefault().linux?.maskedPaths == spec.linux?.maskedPaths)
    }

    @Test("mount options map to flags and data")
    func mountOptions() {
        let p = MountOptions.parse(["nosuid", "rbind", "ro", "rslave", "mode=755", "size=1m"])
        #expect(p.bind)
        #expect(p.flags & MountOptions.MS_RDONLY != 0)
        #expect(p.flags & MountOptions.MS_REC != 0)
        #expect(p.propagation == MountOptions.MS_SLAVE | MountOptions.MS_REC)
        #expect(p.data == ["mode=755", "size=1m"])
    }

    @Test("the docker-like seccomp profile compiles to BPF")
    func seccompCompiles() throws {
        let bpf = try SeccompCompiler.compile(DefaultSeccompProfile.docker)
        #expect(bpf.count > 100 && bpf.count % 8 == 0)
    }
}
