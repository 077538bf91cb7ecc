import Foundation
import Testing

/// `dockbuild network create|ls|inspect|rm` and `run --network NAME --network-alias A`: a
/// user-defined bridge whose containers reach each other by name, including names of
/// containers started after them.
@Suite(.serialized) struct NetworkCLITests {
    @Test(.enabled(if: Scenario.canRun)) func containersResolveEachOtherByNameAndAlias() throws {
        let s = try Scenario(151)
        defer { s.cleanup() }
        try #require(FileManager.default.isExecutableFile(atPath: s.binary), "\(s.binary) is missing: run `swift build` first")
        try s.makeBusyboxImage()
        let id = try s.ok(["network", "create", "--label", "team=db", "backnet"])
        #expect(id.count == 64)
        #expect(try s.db(["network", "create", "backnet"]).status != 0)
        #expect(try s.db(["network", "create", "host"]).status != 0)
        #expect(try s.ok(["network", "ls", "-q"]) == "backnet")
        #expect(try s.ok(["network", "ls", "-q", "--filter", "label=team=web"]) == "")
        let doc = try s.ok(["network", "inspect", "backnet"])
        let bridge = "br-\(id.prefix(12))"
        #expect(doc.contains("\"\(bridge)\"") && doc.contains("\"team\": \"db\""), "\(doc)")
        #expect(FileManager.default.fileExists(atPath: "/sys/class/net/\(bridge)"))

        // `first` starts alone; `second` (alias db) comes later: each resolves the other
        _ = try s.ok(["run", "-d", "--network", "backnet", "--name", "first", "busybox:test", "sleep", "300"])
        _ = try s.ok(["run", "-d", "--network", "backnet", "--name", "second", "--network-alias", "db", "busybox:test", "sleep", "300"])
        for name in ["second", "db"] {
            let r = try s.db(["exec", "first", "ping", "-c", "1", "-W", "3", name])
            #expect(r.status == 0, "first -> \(name): \(r.out) \(r.err)")
        }
        #expect(try s.db(["exec", "second", "ping", "-c", "1", "-W", "3", "first"]).status == 0)
        let ip = try s.ok(["inspect", "--format", "{{(index .NetworkSettings.Networks \"backnet\").IPAddress}}", "second"])
        #expect(ip.hasPrefix("10.") && !ip.hasPrefix("10.89."), "\(ip)")
        #expect(try s.ok(["exec", "first", "cat", "/etc/hosts"]).contains("\(ip)\tdb"))
        // a container on the default bridge does not see the network's names
        #expect(try s.db(["run", "--rm", "busybox:test", "ping", "-c", "1", "-W", "1", "second"]).status != 0)
        // a stopped container's name leaves the others' hosts files; a start brings it back
        _ = try s.ok(["stop", "-t", "0", "second"])
        #expect(!(try s.ok(["exec", "first", "cat", "/etc/hosts"]).contains("\tsecond")))
        _ = try s.ok(["start", "second"])
        let again = try s.db(["exec", "first", "ping", "-c", "1", "-W", "3", "second"])
        let hostsNow = try s.ok(["exec", "first", "cat", "/etc/hosts"])
        #expect(again.status == 0, "\(again.out) \(again.err) \(hostsNow)")
        // --network-alias needs a user-defined network; an unknown network is refused
        #expect(try s.db(["create", "--network-alias", "x", "busybox:test"]).err.contains("user-defined network"))
        #expect(try s.db(["create", "--network", "nosuch", "busybox:test"]).status != 0)
        // in use: not removed; unused: removed with its bridge
        let busy = try s.db(["network", "rm", "backnet"])
        #expect(busy.status != 0 && busy.err.contains("in use"), "\(busy.err)")
        _ = try s.ok(["rm", "-f", "first", "second"])
        #expect(try s.ok(["network", "rm", "backnet"]) == "backnet")
        #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/\(bridge)"))
        #expect(try s.ok(["network", "ls", "-q"]) == "")
    }
}
