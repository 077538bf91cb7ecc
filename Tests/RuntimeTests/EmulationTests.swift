import Foundation
import Testing
@testable import Runtime

/// `Emulation.support` against binfmt_misc directories written here (the kernel's file format):
/// a missing handler and one without the F flag are refused with the packages to install.
@Suite struct EmulationTests {
    /// A directory shaped like /proc/sys/fs/binfmt_misc with the given handler files.
    func binfmtDir(_ handlers: [String: String]) throws -> String {
        let dir = "/var/tmp/emulationtests-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data("enabled\n".utf8).write(to: URL(fileURLWithPath: dir + "/status"))
        for (name, text) in handlers { try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/" + name)) }
        return dir
    }

    @Test func missingHandlerNamesThePackages() throws {
        let dir = try binfmtDir([:])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard case let .unavailable(reason) = Emulation.support(architecture: "s390x", binfmtDir: dir) else {
            Issue.record("s390x without a handler should be unavailable")
            return
        }
        #expect(reason.contains("no emulator for s390x (s390x)"))
        #expect(reason.contains("apt-get install qemu-user-static binfmt-support"))
    }

    @Test func handlerWithoutFixBinaryIsRefused() throws {
        let dir = try binfmtDir(["qemu-s390x": s390xBigEndian(flags: "P")])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard case let .unavailable(reason) = Emulation.support(architecture: "s390x", binfmtDir: dir) else {
            Issue.record("a handler without F cannot run inside a container's root")
            return
        }
        #expect(reason.contains("qemu-s390x") && reason.contains("F (fix-binary)"))
    }

    @Test func handlerWithFixBinaryEmulates() throws {
        let dir = try binfmtDir(["qemu-s390x": s390xBigEndian(flags: "POCF")])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(Emulation.support(architecture: "s390x", binfmtDir: dir)
                == .emulated(interpreter: "/usr/libexec/qemu-binfmt/s390x-binfmt-P", handler: "qemu-s390x"))
        #expect(Emulation.support(architecture: Emulation.hostArchitecture, binfmtDir: dir) == .native)
        #expect(Emulation.support(architecture: "vax", binfmtDir: dir) != .native)
    }

    /// s390x's real magic (big-endian ELF64, e_machine 22), as update-binfmts registers it.
    func s390xBigEndian(flags: String) -> String {
        "enabled\ninterpreter /usr/libexec/qemu-binfmt/s390x-binfmt-P\nflags: \(flags)\noffset 0\n"
            + "magic 7f454c4602020100000000000000000000020016\nmask ffffffffffffff00fffffffffffffffffffeffff\n"
    }
}
