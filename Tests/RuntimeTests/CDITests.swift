import Foundation
import Testing
@testable import Runtime

@Suite("CDI", .serialized)
struct CDITests {
    /// A fake NVIDIA host: device nodes made with mknod (same numbers as /dev/null) and a driver tree.
    static func fakeHost(_ base: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: base + "/dev", withIntermediateDirectories: true)
        for n in ["nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"] {
            #expect(mknod(base + "/dev/" + n, S_IFCHR | 0o666, dev_t(259)) == 0)
        }
        let lib = base + "/usr/lib/x86_64-linux-gnu"
        try fm.createDirectory(atPath: lib, withIntermediateDirectories: true)
        try "fake cuda 550\n".write(toFile: lib + "/libcuda.so.550.54", atomically: true, encoding: .utf8)
        try fm.createSymbolicLink(atPath: lib + "/libcuda.so.1", withDestinationPath: "libcuda.so.550.54")
        try fm.createDirectory(atPath: base + "/usr/bin", withIntermediateDirectories: true)
        try "#!/bin/sh\necho fake nvidia-smi\n".write(toFile: base + "/usr/bin/nvidia-smi", atomically: true, encoding: .utf8)
        chmod(base + "/usr/bin/nvidia-smi", 0o755)
    }

    @Test("generate finds devices and libraries; YAML and JSON specs load back")
    func generate() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let host = b.dir + "/host"
        try CDITests.fakeHost(host)
        let spec = try CDIGenerator.nvidia(devRoot: host, driverRoot: host)
        #expect(spec.devices.map(\.name) == ["0", "1", "all"])
        #expect(spec.containerEdits?.deviceNodes?.map(\.path) == ["/dev/nvidiactl", "/dev/nvidia-uvm"])
        let mounts = spec.containerEdits?.mounts ?? []
        #expect(mounts.contains { $0.containerPath == "/usr/lib/x86_64-linux-gnu/libcuda.so.1" && $0.hostPath.hasSuffix("libcuda.so.550.54") })
        #expect(mounts.contains { $0.containerPath == "/usr/bin/nvidia-smi" })
        let dir = b.dir + "/cdi"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try CDIGenerator.encode(spec, json: false).write(toFile: dir + "/nvidia.yaml", atomically: true, encoding: .utf8)
        var other = spec
        other.kind = "example.com/thing"
        try CDIGenerator.encode(other, json: true).write(toFile: dir + "/thing.json", atomically: true, encoding: .utf8)
        let reg = try CDIRegistry.load(directories: [dir])
        #expect(reg.deviceNames.contains("nvidia.com/gpu=all"))
        #expect(reg.deviceNames.contains("example.com/thing=1"))
        #expect(throws: RuntimeError.self) { try reg.edits(for: "nvidia.com/gpu=7") }
        #expect(throws: RuntimeError.self) { try reg.edits(for: "gpu") }
    }

    @Test("nvidia.com/gpu=all puts the devices, libraries and tools into a container")
    func applyAndRun() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let host = b.dir + "/host"
        try CDITests.fakeHost(host)
        let reg = CDIRegistry(specs: [try CDIGenerator.nvidia(devRoot: host, driverRoot: host)])
        var s = b.spec(["sh", "-c", "ls /dev | grep nvidia | sort | tr '\\n' ' '; echo; cat /usr/lib/x86_64-linux-gnu/libcuda.so.1; sh /usr/bin/nvidia-smi; echo $NVIDIA_VISIBLE_DEVICES"])
        try reg.apply(["nvidia.com/gpu=all"], to: &s)
        let r = try b.run(s)
        #expect(r.code == 0, "stderr: \(r.err)")
        #expect(r.out == "nvidia-uvm nvidia0 nvidia1 nvidiactl \nfake cuda 550\nfake nvidia-smi\nvoid\n")
    }
}
