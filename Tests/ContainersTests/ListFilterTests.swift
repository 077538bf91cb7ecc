import Foundation
import Testing

/// `ps --filter/-n/-l/-s` and `images --filter label/before/since` (issue #17), run through the
/// real binary as docker documents them.
@Suite(.serialized) struct ListFilterTests {
    @Test(.enabled(if: Scenario.canRun)) func psFiltersLastLatestAndSize() throws {
        let s = try Scenario(70)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        try s.makeBusyboxImage(tag: "other:test", cmd: ["true"])   // another config: another image
        _ = try s.ok(["create", "--network", "none", "--name", "one", "-l", "app=web", "busybox:test", "true"])
        usleep(20_000)
        #expect(try s.db(["run", "--network", "none", "--name", "two", "busybox:test", "sh", "-c", "exit 3"]).status == 3)
        usleep(20_000)
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "three", "-l", "app=db", "busybox:test",
                      "sh", "-c", "head -c 3000 /dev/zero > /written; sleep 30"])
        usleep(20_000)
        _ = try s.ok(["run", "--network", "none", "--name", "four", "other:test", "true"])
        func names(_ args: [String]) throws -> [String] {
            try s.ok(["ps"] + args + ["--format", "{{.Names}}"]).split(separator: "\n").map(String.init)
        }
        #expect(try names([]) == ["three"])
        // a state filter lists stopped containers without -a, as docker does
        #expect(try names(["-f", "status=exited"]) == ["four", "two"])
        #expect(try names(["-f", "status=created"]) == ["one"])
        #expect(try names(["-f", "status=running", "-f", "status=created"]) == ["three", "one"])
        #expect(try names(["--filter", "exited=3"]) == ["two"])
        #expect(try names(["-a", "-f", "label=app"]) == ["three", "one"])
        #expect(try names(["-a", "-f", "label=app=db"]) == ["three"])
        #expect(try names(["-a", "-f", "name=^t"]) == ["three", "two"])
        #expect(try names(["-a", "-f", "name=^/on"]) == ["one"])
        #expect(try names(["-a", "-f", "ancestor=other:test"]) == ["four"])
        #expect(try names(["-a", "-f", "ancestor=busybox:test", "-f", "status=exited"]) == ["two"])
        #expect(try names(["-a", "-f", "since=two"]) == ["four", "three"])
        #expect(try names(["-a", "-f", "before=two"]) == ["one"])
        #expect(try names(["-a", "-f", "network=none", "-f", "label=app=web"]) == ["one"])
        let idPrefix = String(try s.ok(["ps", "-q", "-f", "name=three"]).prefix(6))
        #expect(try names(["-f", "id=" + idPrefix]) == ["three"])
        // -n N and -l: the newest, in every state
        #expect(try names(["-n", "2"]) == ["four", "three"])
        #expect(try names(["--last", "3"]) == ["four", "three", "two"])
        #expect(try names(["-l"]) == ["four"])
        // -s: a SIZE column with what the container wrote and the virtual size
        let sized = try s.ok(["ps", "-s"]).split(separator: "\n").map(String.init)
        #expect(sized.first?.hasSuffix("SIZE") == true && sized.count == 2, "\(sized)")
        #expect(Scenario.eventually { ((try? s.ok(["ps", "-s", "--format", "{{.Size}}"])) ?? "").hasPrefix("3kB (virtual ") },
                "\((try? s.ok(["ps", "-s", "--format", "{{.Size}}"])) ?? "")")
        // bad filters: one line naming the filter, exit 125, nothing listed
        for (f, words) in [("status=zzz", "invalid filter 'status=zzz'"), ("colour=red", "invalid filter 'colour'"),
                           ("nonsense", "bad format of filter"), ("exited=x", "exit code"), ("name=(", "regular expression")] {
            let r = try s.db(["ps", "-f", f])
            #expect(r.status == 125 && r.err.contains(words) && r.out.isEmpty, "\(f): \(r)")
        }
        #expect(try s.db(["kill", "three"]).status == 0)
    }

    @Test(.enabled(if: Scenario.canRun)) func imagesFilters() throws {
        let s = try Scenario(71)
        defer { s.cleanup() }
        let tar = s.root + "/rootfs.tar"
        _ = try Shell.run(["tar", "-cf", tar, "-C", "/etc", "hostname"])
        _ = try s.ok(["import", tar, "first:1"])
        sleep(1)   // image times have a one-second resolution
        _ = try s.ok(["import", "-c", "LABEL tier=gold", "-c", "LABEL team=core", tar, "gold:1"])
        sleep(1)
        _ = try s.ok(["import", "-c", "LABEL tier=silver", tar, "silver:1"])
        func repos(_ args: [String]) throws -> [String] {
            try s.ok(["images"] + args + ["--format", "{{.Repository}}"]).split(separator: "\n").map(String.init)
        }
        #expect(try repos([]) == ["silver", "gold", "first"])
        #expect(try repos(["-a"]) == ["silver", "gold", "first"])
        #expect(try repos(["-f", "label=tier"]) == ["silver", "gold"])
        #expect(try repos(["-f", "label=tier=gold"]) == ["gold"])
        #expect(try repos(["-f", "label=tier", "-f", "label=team=core"]) == ["gold"], "label filters must all match")
        #expect(try repos(["-f", "before=gold:1"]) == ["first"])
        #expect(try repos(["-f", "since=gold:1"]) == ["silver"])
        #expect(try repos(["-f", "dangling=false", "-f", "reference=g*"]) == ["gold"])
        for (f, words) in [("dangling=maybe", "true or false"), ("colour=red", "invalid filter 'colour'"),
                           ("before=no-such:1", "no-such")] {
            let r = try s.db(["images", "-f", f])
            #expect(r.status != 0 && r.err.contains(words) && r.out.isEmpty, "\(f): \(r)")
        }
    }

    /// `logs --since/--until/--details`: docker's time forms (RFC 3339, Unix time, a duration
    /// before now), and the bad value refused with docker's words.
    @Test(.enabled(if: Scenario.canRun)) func logsSinceUntilDetails() throws {
        let s = try Scenario(72)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        _ = try s.db(["run", "--network", "none", "--name", "talk", "busybox:test", "sh", "-c", "echo one; sleep 2; echo two"])
        let stamped = try s.ok(["logs", "-t", "talk"]).split(separator: "\n").map(String.init)
        try #require(stamped.count == 2, "\(stamped)")
        let t1 = String(stamped[0].split(separator: " ")[0]), t2 = String(stamped[1].split(separator: " ")[0])
        #expect(try s.ok(["logs", "--since", t2, "talk"]) == "two")
        #expect(try s.ok(["logs", "--until", t1, "talk"]) == "one")
        #expect(try s.ok(["logs", "--since", "1s", "--until", "1s", "talk"]).isEmpty)
        #expect(try s.ok(["logs", "--since", "10m", "talk"]) == "one\ntwo")
        #expect(try s.ok(["logs", "--since", "0", "talk"]) == "one\ntwo")
        #expect(try s.ok(["logs", "--since", "2000-01-01", "-n", "1", "talk"]) == "two")
        let future = String(Int(Date().timeIntervalSince1970) + 3600)
        #expect(try s.ok(["logs", "--since", future, "talk"]).isEmpty)
        #expect(try s.db(["logs", "--details", "talk"]).out == " one\n two\n")
        let bad = try s.db(["logs", "--since", "yesterday", "talk"])
        #expect(bad.status == 125 && bad.err.contains("invalid value for \"since\""), "\(bad)")
    }
}
