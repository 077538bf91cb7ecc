// Running binaries of another CPU architecture: the kernel's binfmt_misc handlers
// (Documentation/admin-guide/binfmt-misc.rst) registered by QEMU user emulation.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether this machine can execute binaries of an architecture, natively or through a
/// QEMU user-mode interpreter registered in binfmt_misc.
///
/// Containers need the interpreter registered with the F (fix-binary) flag: the kernel opens it
/// at registration, so it works inside a root file system that does not hold it.
public enum Emulation {
    /// How an architecture can execute here.
    public enum Support: Sendable, Equatable {
        /// The CPU runs it.
        case native
        /// A binfmt_misc handler with the F flag runs it through `interpreter`.
        case emulated(interpreter: String, handler: String)
        /// It cannot run here; `reason` says why and what to do.
        case unavailable(reason: String)
    }

    /// An architecture's ELF identity (class, byte order, e_machine) and QEMU's name for it.
    struct ELF: Sendable {
        var is64: Bool
        var littleEndian: Bool
        var machine: UInt16
        var qemu: String
    }

    /// OCI (GOARCH) architecture names -> ELF identity.
    static let table: [String: ELF] = [
        "amd64": ELF(is64: true, littleEndian: true, machine: 62, qemu: "x86_64"),
        "386": ELF(is64: false, littleEndian: true, machine: 3, qemu: "i386"),
        "arm64": ELF(is64: true, littleEndian: true, machine: 183, qemu: "aarch64"),
        "arm": ELF(is64: false, littleEndian: true, machine: 40, qemu: "arm"),
        "ppc64le": ELF(is64: true, littleEndian: true, machine: 21, qemu: "ppc64le"),
        "ppc64": ELF(is64: true, littleEndian: false, machine: 21, qemu: "ppc64"),
        "s390x": ELF(is64: true, littleEndian: false, machine: 22, qemu: "s390x"),
        "riscv64": ELF(is64: true, littleEndian: true, machine: 243, qemu: "riscv64"),
        "mips64le": ELF(is64: true, littleEndian: true, machine: 8, qemu: "mips64el"),
        "mips64": ELF(is64: true, littleEndian: false, machine: 8, qemu: "mips64"),
        "mipsle": ELF(is64: false, littleEndian: true, machine: 8, qemu: "mipsel"),
        "mips": ELF(is64: false, littleEndian: false, machine: 8, qemu: "mips"),
        "loong64": ELF(is64: true, littleEndian: true, machine: 258, qemu: "loongarch64"),
    ]

    /// The OCI architecture of this build of the program.
    public static var hostArchitecture: String {
        #if arch(x86_64)
        return "amd64"
        #elseif arch(arm64)
        return "arm64"
        #elseif arch(s390x)
        return "s390x"
        #elseif arch(powerpc64le)
        return "ppc64le"
        #else
        return "unknown"
        #endif
    }

    /// Where binfmt_misc lives.
    public static let binfmtDirectory = "/proc/sys/fs/binfmt_misc"

    /// QEMU's name for an OCI architecture (`arm64` -> `aarch64`), nil when unknown.
    public static func qemuName(_ architecture: String) -> String? { table[architecture]?.qemu }

    /// How `architecture` (an OCI name: amd64, arm64, s390x, ...) can execute here. Mounts
    /// binfmt_misc first when it is not mounted (as root).
    public static func support(architecture: String, binfmtDir: String = binfmtDirectory) -> Support {
        let host = hostArchitecture
        if architecture == host || (host == "amd64" && architecture == "386") { return .native }
        guard let elf = table[architecture] else {
            return .unavailable(reason: "the architecture \(architecture) is unknown to dockbuild (known: \(table.keys.sorted().joined(separator: ", ")))")
        }
        let package = "install Debian's qemu-user-static and binfmt-support (apt-get install qemu-user-static binfmt-support), "
            + "then check that \(binfmtDir)/qemu-\(elf.qemu) exists with flags F (update-binfmts --enable qemu-\(elf.qemu))"
        if binfmtDir == binfmtDirectory { mountBinfmt() }
        guard FileManager.default.fileExists(atPath: binfmtDir + "/status") else {
            return .unavailable(reason: "binfmt_misc is not mounted at \(binfmtDir) and could not be mounted, so no \(architecture) (\(elf.qemu)) emulator can run: mount it (mount -t binfmt_misc binfmt_misc \(binfmtDir)) and \(package)")
        }
        let header = elfHeader(elf)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: binfmtDir)) ?? []).filter { $0 != "register" && $0 != "status" }.sorted()
        var withoutF: String?
        for name in names {
            guard let text = try? String(contentsOfFile: binfmtDir + "/" + name, encoding: .utf8),
                  let entry = Entry(parsing: text), entry.enabled, entry.matches(header) else { continue }
            if entry.flags.contains("F") { return .emulated(interpreter: entry.interpreter, handler: name) }
            withoutF = withoutF ?? name
        }
        if let withoutF {
            return .unavailable(reason: "the binfmt_misc handler \(withoutF) for \(architecture) (\(elf.qemu)) lacks the F (fix-binary) flag, so it cannot run inside a container's root file system: \(package)")
        }
        return .unavailable(reason: "no emulator for \(architecture) (\(elf.qemu)) is registered in binfmt_misc: \(package)")
    }

    /// Mounts binfmt_misc at its usual place when it is not mounted; failures are ignored (the
    /// caller reports what is missing).
    static func mountBinfmt() {
        guard !FileManager.default.fileExists(atPath: binfmtDirectory + "/status"), geteuid() == 0 else { return }
        _ = mount("binfmt_misc", binfmtDirectory, "binfmt_misc", 0, nil)
    }

    /// The first 20 bytes of an executable ELF file for `elf` (what QEMU's handlers match).
    static func elfHeader(_ elf: ELF) -> [UInt8] {
        var h: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, elf.is64 ? 2 : 1, elf.littleEndian ? 1 : 2, 1, 0]
        h += [UInt8](repeating: 0, count: 8)
        let type: UInt16 = 2
        for v in [type, elf.machine] {
            let lo = UInt8(v & 0xff), hi = UInt8(v >> 8)
            h += elf.littleEndian ? [lo, hi] : [hi, lo]
        }
        return h
    }

    /// One binfmt_misc handler file.
    struct Entry {
        var enabled = false
        var interpreter = ""
        var flags = ""
        var offset = 0
        var magic: [UInt8] = []
        var mask: [UInt8] = []

        init?(parsing text: String) {
            for line in text.split(separator: "\n") {
                let l = line.trimmingCharacters(in: .whitespaces)
                if l == "enabled" { enabled = true }
                else if l.hasPrefix("interpreter ") { interpreter = String(l.dropFirst("interpreter ".count)) }
                else if l.hasPrefix("flags:") { flags = l.dropFirst("flags:".count).trimmingCharacters(in: .whitespaces) }
                else if l.hasPrefix("offset ") { offset = Int(l.dropFirst("offset ".count)) ?? 0 }
                else if l.hasPrefix("magic ") { magic = Self.hex(String(l.dropFirst("magic ".count))) }
                else if l.hasPrefix("mask ") { mask = Self.hex(String(l.dropFirst("mask ".count))) }
            }
            if magic.isEmpty { return nil }   // an extension (E) handler, not a magic one
        }

        static func hex(_ s: String) -> [UInt8] {
            var out: [UInt8] = []
            var it = s.makeIterator()
            while let a = it.next(), let b = it.next() {
                guard let v = UInt8(String([a, b]), radix: 16) else { return [] }
                out.append(v)
            }
            return out
        }

        func matches(_ header: [UInt8]) -> Bool {
            guard offset >= 0, offset + magic.count <= header.count else { return false }
            for (i, m) in magic.enumerated() {
                let k = i < mask.count ? mask[i] : 0xff
                if header[offset + i] & k != m & k { return false }
            }
            return true
        }
    }
}
