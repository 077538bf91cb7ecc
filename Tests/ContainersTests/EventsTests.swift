import Foundation
import Testing

/// `dockbuild events` (issue #17): the commands record docker's events in the store's log, and
/// `events` reads, filters, formats and follows it, through the real binary.
@Suite(.serialized) struct EventsTests {
    @Test(.enabled(if: Scenario.canRun)) func lifecycleFiltersFormatAndFollow() throws {
        let s = try Scenario(80)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let id = try s.ok(["run", "-d", "--network", "none", "--name", "ev1", "-l", "tier=web", "busybox:test", "sh", "-c", "sleep 30"])
        _ = try s.ok(["pause", "ev1"]); _ = try s.ok(["unpause", "ev1"])
        _ = try s.ok(["rename", "ev1", "ev2"])
        _ = try s.db(["stop", "-t", "1", "ev2"])
        _ = try s.ok(["rm", "ev2"])
        _ = try s.ok(["volume", "create", "vol1"])
        _ = try s.ok(["tag", "busybox:test", "other:1"])
        _ = try s.ok(["rmi", "other:1"])
        func lines(_ args: [String]) throws -> [String] {
            try s.ok(["events", "--since", "0", "--until", "0s"] + args).split(separator: "\n").map(String.init)
        }
        // docker's order for one container's life
        let actions = try lines(["-f", "container=" + String(id.prefix(12)), "--format", "{{.Action}}"])
        #expect(actions == ["create", "start", "pause", "unpause", "rename", "kill", "die", "stop", "destroy"], "\(actions)")
        let die = try lines(["-f", "event=die", "--format", "{{.Type}} {{.Actor.Attributes.name}} {{.Actor.Attributes.tier}} {{.Actor.Attributes.exitCode}} {{.status}}"])
        #expect(die == ["container ev2 web 137 die"] || die == ["container ev2 web 143 die"], "\(die)")
        // the default line: time, type, action, id, sorted attributes
        let create = try #require(try lines(["-f", "event=create", "-f", "type=container"]).first)
        #expect(create.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z container create [0-9a-f]{64} \(image=busybox:test, name=ev1, tier=web\)$"#,
                             options: .regularExpression) != nil, "\(create)")
        #expect(try lines(["-f", "type=volume", "--format", "{{.Action}} {{.Actor.ID}}"]) == ["create vol1"])
        #expect(try lines(["-f", "type=image", "-f", "image=other:1", "--format", "{{.Action}}"]) == ["tag", "untag"])
        #expect(try lines(["-f", "label=tier=web", "-f", "event=start", "--format", "{{.Actor.Attributes.name}}"]) == ["ev1"])
        let json = try #require(try lines(["-f", "event=destroy", "--format", "json"]).first)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(obj["Type"] as? String == "container" && obj["scope"] as? String == "local" && obj["id"] as? String == id)
        // the window: nothing before --since, nothing after --until
        #expect(try s.ok(["events", "--since", "1h", "--until", "2h"]).isEmpty)
        // follow: a later run shows up in a running `events` (its output to a file, never a pipe)
        let out = s.root + "/follow.txt"
        let fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: s.binary)
        p.arguments = ["events", "--root", s.root, "-f", "event=start", "--format", "{{.Actor.Attributes.name}}"]
        p.standardOutput = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { p.terminate() } }
        usleep(300_000)
        _ = try s.ok(["run", "--rm", "--network", "none", "--name", "later", "busybox:test", "true"])
        #expect(Scenario.eventually(5) { ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "") == "later\n" },
                "\((try? String(contentsOfFile: out, encoding: .utf8)) ?? "")")
        p.terminate()
        // bad input: one line, exit 125
        for (args, words) in [(["-f", "colour=red"], "invalid filter 'colour'"), (["-f", "type=ship"], "type=ship"),
                              (["--since", "yesterday"], "invalid value for \"since\""), (["--format", "{{.Nope"], "invalid --format")] {
            let r = try s.db(["events", "--until", "0s"] + args)
            #expect(r.status == 125 && r.err.contains(words), "\(args): \(r)")
        }
    }
}
