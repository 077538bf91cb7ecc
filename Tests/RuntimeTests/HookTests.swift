import Foundation
import Testing
@testable import Runtime

@Suite("hooks", .serialized)
struct HookTests {
    @Test("all six hooks run in order with the state on stdin")
    func order() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let log = b.rootfs + "/hooks.log"
        let sh = b.rootfs + "/bin/sh"
        func hook(_ name: String, inContainer: Bool = false) -> RuntimeSpec.Hook {
            let path = inContainer ? "/bin/sh" : sh
            let file = inContainer ? "/hooks.log" : log
            return .init(path: path, args: ["sh", "-c", "read -r s; echo \"\(name) $s\" >> \(file)"], env: ["PATH=/bin"], timeout: 5)
        }
        var s = b.spec(["sh", "-c", "echo process >> /hooks.log"])
        var h = RuntimeSpec.Hooks()
        h.prestart = [hook("prestart")]
        h.createRuntime = [hook("createRuntime")]
        h.createContainer = [.init(path: sh, args: ["sh", "-c", "read -r s; echo \"createContainer $s\" >> \(log); readlink /proc/self/ns/uts > \(b.rootfs)/cc-uts"], env: ["PATH=\(b.rootfs)/bin"], timeout: 5)]
        h.startContainer = [hook("startContainer", inContainer: true)]
        h.poststart = [hook("poststart")]
        h.poststop = [hook("poststop")]
        s.hooks = h
        s.annotations = ["org.example": "yes"]
        try b.write(s)
        let rt = b.runtime
        let created = try rt.create(id: "hk", bundle: b.dir)
        try rt.start(id: "hk")
        #expect(try rt.wait(id: "hk") == 0)
        try rt.delete(id: "hk")
        // createContainer ran in the container's namespaces (uts here), not the runtime's.
        let ccUTS = readFile(b.rootfs + "/cc-uts")?.trimmingCharacters(in: .whitespacesAndNewlines)
        let hostUTS = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/uts")
        #expect(ccUTS != nil && ccUTS != hostUTS)
        let lines = (readFile(log) ?? "").split(separator: "\n").map(String.init)
        let names = lines.map { $0.split(separator: " ").first.map(String.init) ?? "" }
        // The process and poststart run at the same time once the process is executed.
        #expect(names == ["prestart", "createRuntime", "createContainer", "startContainer", "process", "poststart", "poststop"]
                || names == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "process", "poststop"], "\(names)")
        func state(_ name: String) throws -> ContainerState {
            let line = try #require(lines.first { $0.hasPrefix(name + " ") })
            return try JSONDecoder().decode(ContainerState.self, from: Data(line.dropFirst(name.count + 1).utf8))
        }
        #expect(try state("prestart").status == "created")
        #expect(try state("prestart").pid == created.pid)
        #expect(try state("createContainer").id == "hk")
        #expect(try state("poststart").status == "running")
        #expect(try state("poststop").status == "stopped")
        #expect(try state("poststop").annotations == ["org.example": "yes"])
        #expect(try state("prestart").bundle == b.dir)
    }

    @Test("a failing prestart hook fails create and cleans up; a hook past its timeout is killed")
    func failures() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        var s = b.spec(["true"])
        var h = RuntimeSpec.Hooks()
        h.prestart = [.init(path: b.rootfs + "/bin/false")]
        s.hooks = h
        try b.write(s)
        #expect(throws: RuntimeError.self) { try b.runtime.create(id: "bad", bundle: b.dir) }
        #expect(b.runtime.list().isEmpty)
        h.prestart = [.init(path: b.rootfs + "/bin/sleep", args: ["sleep", "10"], timeout: 1)]
        s.hooks = h
        try b.write(s)
        let t0 = Date()
        #expect(throws: RuntimeError.self) { try b.runtime.create(id: "slow", bundle: b.dir) }
        #expect(Date().timeIntervalSince(t0) < 5)
    }
}
