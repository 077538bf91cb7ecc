import Foundation
import Yams
#if canImport(Glibc)
import Glibc
#endif

/// Writes a CDI spec for the NVIDIA GPUs of this host, the way
/// `nvidia-ctk cdi generate` does: one device per /dev/nvidiaN plus "all",
/// the control nodes, driver libraries and tools as shared edits.
public enum CDIGenerator {
    static let libraryPrefixes = [
        "libcuda.so", "libcudadebugger.so", "libnvidia-ml.so", "libnvidia-ptxjitcompiler.so", "libnvidia-nvvm.so",
        "libnvidia-cfg.so", "libnvidia-opencl.so", "libnvidia-gpucomp.so", "libnvidia-allocator.so",
        "libnvidia-pkcs11.so", "libnvidia-compiler.so", "libnvidia-encode.so", "libnvidia-opticalflow.so",
        "libnvcuvid.so", "libnvidia-eglcore.so", "libnvidia-glcore.so", "libnvidia-tls.so", "libnvidia-glsi.so",
        "libnvidia-fbc.so", "libnvidia-rtcore.so", "libnvoptix.so", "libGLX_nvidia.so", "libEGL_nvidia.so",
        "libGLESv2_nvidia.so", "libGLESv1_CM_nvidia.so", "libnvidia-glvkspirv.so",
    ]
    static let binaries = ["nvidia-smi", "nvidia-debugdump", "nvidia-persistenced", "nvidia-cuda-mps-control", "nvidia-cuda-mps-server"]
    static let libDirs = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib64", "/lib/x86_64-linux-gnu"]
    static let binDirs = ["/usr/bin", "/usr/local/bin", "/usr/sbin", "/bin"]

    /// Builds the spec. `devRoot` and `driverRoot` prefix host paths (for tests
    /// with a fake tree); container paths never carry them.
    public static func nvidia(devRoot: String = "/", driverRoot: String = "/", kind: String = "nvidia.com/gpu") throws -> CDISpec {
        let dr = devRoot == "/" ? "" : Sys.lexicallyClean(devRoot)
        let lr = driverRoot == "/" ? "" : Sys.lexicallyClean(driverRoot)
        let devNames = Sys.listDir(dr + "/dev")
        let gpus = devNames.compactMap { n -> Int? in
            guard n.hasPrefix("nvidia"), let i = Int(n.dropFirst(6)) else { return nil }
            return i
        }.sorted()
        guard !gpus.isEmpty else {
            throw RuntimeError(.cdi, "no NVIDIA GPU device nodes (\(dr)/dev/nvidia0, ...) found; is the driver loaded?")
        }
        func node(_ name: String) -> CDISpec.DeviceNode {
            CDISpec.DeviceNode(path: "/dev/" + name, hostPath: dr.isEmpty ? nil : dr + "/dev/" + name)
        }
        var devices = gpus.map { i in
            CDISpec.Device(name: "\(i)", containerEdits: .init(deviceNodes: [node("nvidia\(i)")]))
        }
        devices.append(CDISpec.Device(name: "all", containerEdits: .init(deviceNodes: gpus.map { node("nvidia\($0)") })))

        var common: [CDISpec.DeviceNode] = []
        for n in ["nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"] where devNames.contains(n) {
            common.append(node(n))
        }
        for n in Sys.listDir(dr + "/dev/nvidia-caps").sorted() { common.append(node("nvidia-caps/" + n)) }

        var mounts: [CDISpec.Mount] = []
        var seen = Set<String>()
        let opts = ["ro", "nosuid", "nodev", "bind"]
        for dir in libDirs {
            for name in Sys.listDir(lr + dir).sorted() where libraryPrefixes.contains(where: { name.hasPrefix($0) }) {
                let containerPath = dir + "/" + name
                guard seen.insert(containerPath).inserted else { continue }
                // Symlinks (libcuda.so.1 -> libcuda.so.550.54) are bound to the file they name.
                let host = realPath(lr + containerPath)
                mounts.append(.init(hostPath: host, containerPath: containerPath, options: opts))
            }
        }
        for dir in binDirs {
            for b in binaries where Sys.exists(lr + dir + "/" + b) && seen.insert("/usr/bin/" + b).inserted {
                mounts.append(.init(hostPath: realPath(lr + dir + "/" + b), containerPath: "/usr/bin/" + b, options: opts))
            }
        }
        for fw in Sys.listDir(lr + "/lib/firmware/nvidia").sorted() {
            let p = "/lib/firmware/nvidia/" + fw
            mounts.append(.init(hostPath: lr + p, containerPath: p, options: opts))
        }
        var env = ["NVIDIA_VISIBLE_DEVICES=void"]
        let libPaths = libDirs.filter { d in mounts.contains { $0.containerPath.hasPrefix(d + "/") } }
        if !libPaths.isEmpty { env.append("LD_LIBRARY_PATH=" + libPaths.joined(separator: ":")) }
        return CDISpec(cdiVersion: "0.6.0", kind: kind, devices: devices,
                       containerEdits: .init(env: env, deviceNodes: common, mounts: mounts))
    }

    static func realPath(_ p: String) -> String {
        guard let r = realpath(p, nil) else { return p }
        defer { free(r) }
        return String(cString: r)
    }

    /// YAML (default) or JSON text of a spec; keys in a fixed order.
    public static func encode(_ spec: CDISpec, json: Bool) throws -> String {
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            return String(decoding: try enc.encode(spec), as: UTF8.self) + "\n"
        }
        return try YAMLEncoder().encode(spec)
    }
}
