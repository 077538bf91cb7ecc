import Foundation
import Testing
@testable import Runtime

/// Lifecycle corners where dockbuild's runtime must act like runc (issue #16).
@Suite("lifecycle edges", .serialized)
struct LifecycleEdgeTests {
    @Test("a failing poststart or poststop hook is a warning: the remaining hooks run and start/delete succeed")
    func failingPostHooksDoNotStopTheRest() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        let sh = b.rootfs + "/bin/sh", log = b.dir + "/post.log"
        func hook(_ script: String, timeout: Int? = 5) -> RuntimeSpec.Hook {
            .init(path: sh, args: ["sh", "-c", script], env: ["PATH=\(b.rootfs)/bin"], timeout: timeout)
        }
        var s = b.spec(["sleep", "100"])
        var h = RuntimeSpec.Hooks()
        h.poststart = [hook("echo poststart-1 >> \(log); exit 3"),
                       .init(path: b.dir + "/no-such-hook"),
                       hook("sleep 30", timeout: 1),
                       hook("echo poststart-4 >> \(log)")]
        h.poststop = [hook("echo poststop-1 >> \(log); exit 7"),
                      .init(path: b.dir + "/no-such-hook"),
                      hook("echo poststop-3 >> \(log)")]
        s.hooks = h
        try b.write(s)
        try b.runtime.create(id: "post", bundle: b.dir)
        try b.runtime.start(id: "post")
        #expect(try b.runtime.state(id: "post").status == "running", "the container goes on after a failing poststart hook")
        try b.runtime.kill(id: "post", signal: SIGKILL)
        _ = try? b.runtime.wait(id: "post")
        try b.runtime.delete(id: "post")
        #expect(b.runtime.list().isEmpty)
        let lines = (readFile(log) ?? "").split(separator: "\n").map(String.init)
        #expect(lines == ["poststart-1", "poststart-4", "poststop-1", "poststop-3"], "\(lines)")
    }
}
