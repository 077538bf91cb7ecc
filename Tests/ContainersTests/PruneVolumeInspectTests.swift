import Foundation
import Testing
@testable import Containers

/// `inspect --type`, `volume create --opt` / `volume inspect` as docker prints them, and the
/// prune prompts and filters (issue #17), through the real binary.
@Suite(.serialized) struct PruneVolumeInspectTests {
    @Test(.enabled(if: Scenario.canRun)) func inspectTypeAndVolumes() throws {
        let s = try Scenario(73)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        // docker 20.10's document: seven fields, four-space indent, {} for no labels/options
        _ = try s.ok(["volume", "create", "plain"])
        let doc = try s.ok(["volume", "inspect", "plain"])
        let mp = s.root + "/volumes/plain/_data"
        #expect(doc.range(of: #"^\[\n    \{\n        "CreatedAt": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",\n        "Driver": "local",\n        "Labels": \{\},\n        "Mountpoint": ""#
                          + NSRegularExpression.escapedPattern(for: mp) + #"",\n        "Name": "plain",\n        "Options": \{\},\n        "Scope": "local"\n    \}\n\]$"#,
                          options: .regularExpression) != nil, "\(doc)")
        // --opt: a tmpfs volume is mounted from its options in the container
        #expect(try s.ok(["volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=10m", "--label", "a=b", "scratch"]) == "scratch")
        #expect(try s.ok(["volume", "inspect", "-f", "{{.Options}} {{.Labels}} {{.Scope}}", "scratch"]) == "map[device:tmpfs o:size=10m type:tmpfs] map[a:b] local")
        let mounted = try s.ok(["run", "--rm", "--network", "none", "-v", "scratch:/data", "busybox:test", "grep", " /data ", "/proc/mounts"])
        #expect(mounted.hasPrefix("tmpfs /data tmpfs") && mounted.contains("size=10240k"), "\(mounted)")
        // one mount shared by the containers using it, as docker's local driver: what one writes
        // in a tmpfs volume the other reads; the last one to stop unmounts it
        _ = try s.ok(["run", "-d", "--name", "w1", "--network", "none", "-v", "scratch:/data", "busybox:test", "sh", "-c",
                      "echo shared > /data/f; sleep 60"])
        #expect(Scenario.eventually(5) { (try? s.ok(["run", "--rm", "--network", "none", "-v", "scratch:/data", "busybox:test", "cat", "/data/f"])) == "shared" })
        let data = "\(s.root)/volumes/scratch/_data"
        #expect(FS.isMountPoint(data))
        _ = try s.ok(["rm", "-f", "w1"])
        #expect(Scenario.eventually(5) { !FS.isMountPoint(data) }, "unmounted when no container uses it")
        // type=none,o=bind binds the device path; removing the volume never touches the device's files
        let device = "\(s.root)/device-dir"
        try FileManager.default.createDirectory(atPath: device, withIntermediateDirectories: true)
        try "kept\n".write(toFile: "\(device)/hostname", atomically: true, encoding: .utf8)
        _ = try s.ok(["volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", "device=\(device)", "hostdir"])
        _ = try s.ok(["run", "-d", "--name", "w2", "--network", "none", "-v", "hostdir:/data:ro", "busybox:test", "sleep", "60"])
        #expect(try s.ok(["exec", "w2", "cat", "/data/hostname"]) == "kept")
        _ = try s.ok(["volume", "rm", "-f", "hostdir"])
        _ = try s.ok(["rm", "-f", "w2"])
        #expect(try String(contentsOfFile: "\(device)/hostname", encoding: .utf8) == "kept\n", "the bound directory is left alone")
        for (opts, words) in [(["--opt", "foo=bar"], "invalid option \"foo\""), (["--opt", "type=tmpfs"], "type and device together"),
                              (["--opt", "nonsense"], "KEY=VALUE"), (["-d", "nfs"], "only the local driver")] {
            let r = try s.db(["volume", "create"] + opts + ["bad-one"])
            #expect(r.status == 125 && r.err.contains(words), "\(opts): \(r)")
        }
        #expect(!(try s.ok(["volume", "ls", "-q"]).contains("bad-one")))
        // inspect --type: only that kind is looked up
        _ = try s.ok(["create", "--network", "none", "--name", "box", "busybox:test", "true"])
        #expect(try s.ok(["inspect", "--type", "volume", "-f", "{{.Name}}", "plain"]) == "plain")
        #expect(try s.ok(["inspect", "--type", "container", "-f", "{{.Name}}", "box"]) == "/box")
        #expect(try s.ok(["inspect", "--type", "image", "-f", "{{.RepoTags}}", "busybox:test"]) == "[busybox:test]")
        let notImage = try s.db(["inspect", "--type", "image", "box"])
        #expect(notImage.status == 1 && notImage.err.contains("no such image"), "\(notImage)")
        let notContainer = try s.db(["inspect", "--type", "container", "busybox:test"])
        #expect(notContainer.status == 1 && notContainer.err.contains("no such container"), "\(notContainer)")
        let badType = try s.db(["inspect", "--type", "network", "box"])
        #expect(badType.status == 125 && badType.err.contains("is not a valid value for --type"), "\(badType)")
    }

    @Test(.enabled(if: Scenario.canRun)) func prunePromptsAndFilters() throws {
        let s = try Scenario(74)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        _ = try s.ok(["create", "--network", "none", "--name", "keep", "-l", "keep=yes", "busybox:test", "true"])
        _ = try s.ok(["create", "--network", "none", "--name", "drop", "busybox:test", "true"])
        func names() throws -> [String] { try s.ok(["ps", "-a", "--format", "{{.Names}}"]).split(separator: "\n").map(String.init).sorted() }
        // no answer, or anything but y/yes: nothing removed, exit 0
        for answer in [nil, "n\n", "maybe\n"] {
            let r = try s.db(["container", "prune"], input: answer)
            #expect(r.status == 0 && r.out.hasPrefix("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] "), "\(r)")
            #expect(try names() == ["drop", "keep"])
        }
        let yes = try s.db(["container", "prune", "--filter", "label!=keep"], input: "y\n")
        #expect(yes.status == 0 && yes.out.contains("Deleted Containers:\n") && yes.out.hasSuffix("Total reclaimed space: 0B\n"), "\(yes)")
        #expect(try names() == ["keep"])
        // until: only containers created before it
        #expect(try s.db(["container", "prune", "-f", "--filter", "until=1h"]).status == 0)
        #expect(try names() == ["keep"])
        #expect(try s.db(["container", "prune", "-f", "--filter", "until=" + String(Int(Date().timeIntervalSince1970) + 60)]).status == 0)
        #expect(try names().isEmpty)
        let bad = try s.db(["container", "prune", "-f", "--filter", "colour=red"])
        #expect(bad.status == 125 && bad.err.contains("invalid filter 'colour'"), "\(bad)")
        // volume prune: the same prompt; label filters
        _ = try s.ok(["volume", "create", "--label", "tier=a", "va"])
        _ = try s.ok(["volume", "create", "vb"])
        #expect(try s.db(["volume", "prune", "-a"], input: "no\n").status == 0)
        #expect(try s.ok(["volume", "ls", "-q"]) == "va\nvb")
        let v = try s.db(["volume", "prune", "-a", "--filter", "label=tier"], input: "yes\n")
        #expect(v.status == 0 && v.out.contains("Deleted Volumes:\nva\n"), "\(v)")
        #expect(try s.ok(["volume", "ls", "-q"]) == "vb")
        #expect(try s.db(["volume", "prune", "-f", "--filter", "until=1h"]).status == 125, "volume prune takes no until, as docker")
    }

    /// `commit --change` (the instructions `import --change` takes) and `--pause` (docker's default
    /// freezes a running container while its layer is written, and thaws it after).
    @Test(.enabled(if: Scenario.canRun)) func commitChangesAndPause() throws {
        let s = try Scenario(75)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "live", "busybox:test", "sh", "-c", "echo made > /made; sleep 30"])
        #expect(Scenario.eventually { (try? s.ok(["exec", "live", "cat", "/made"])) == "made" })
        _ = try s.ok(["commit", "-c", "ENV FOO=bar", "--change", #"CMD ["cat", "/made"]"#, "-c", "LABEL tier=gold", "live", "snap:1"])
        #expect(try s.ok(["run", "--rm", "--network", "none", "snap:1"]) == "made")
        #expect(try s.ok(["inspect", "-f", "{{index .Config.Labels \"tier\"}} {{range .Config.Env}}{{.}};{{end}}", "snap:1"]) == "gold PATH=/bin;FOO=bar;")
        #expect(try s.ok(["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "live"]) == "running false", "thawed after the commit")
        // a paused container stays paused; --pause=false leaves a running one running
        _ = try s.ok(["pause", "live"])
        _ = try s.ok(["commit", "live", "snap:2"])
        #expect(try s.ok(["inspect", "-f", "{{.State.Paused}}", "live"]) == "true")
        _ = try s.ok(["unpause", "live"])
        _ = try s.ok(["commit", "--pause=false", "live", "snap:3"])
        #expect(try s.ok(["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "live"]) == "running false")
        // an instruction import --change does not take: refused before anything is written
        let bad = try s.db(["commit", "-c", "RUN echo no", "live", "snap:4"])
        #expect(bad.status == 1 && bad.err.contains("RUN is not allowed"), "\(bad)")
        #expect(try s.db(["inspect", "--type", "image", "snap:4"]).status != 0)
        #expect(try s.db(["kill", "live"]).status == 0)
    }

    /// `exec --env-file` (the same file format as `run --env-file`) and `exec --privileged`
    /// (every capability this process can hand on, whatever the container has).
    @Test(.enabled(if: Scenario.canRun)) func execEnvFileAndPrivileged() throws {
        let s = try Scenario(76)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let file = s.root + "/vars"
        try "A=1\n# a comment\n\nB=two words\nC=from file\n".write(toFile: file, atomically: true, encoding: .utf8)
        _ = try s.ok(["run", "-d", "--network", "none", "--cap-drop", "ALL", "--name", "ex", "busybox:test", "sleep", "30"])
        // -e wins over the file, as in docker (the file is read first)
        #expect(try s.ok(["exec", "--env-file", file, "-e", "C=flag", "ex", "sh", "-c", "echo $A/$B/$C"]) == "1/two words/flag")
        func capEff(_ extra: [String]) throws -> UInt64 {
            let line = try s.ok(["exec"] + extra + ["ex", "grep", "CapEff", "/proc/self/status"])
            return UInt64(line.split(separator: "\t").last.map(String.init) ?? "", radix: 16) ?? 99
        }
        #expect(try capEff([]) == 0, "the container dropped every capability")
        let all = try capEff(["--privileged"])
        #expect(all & (1 << 21) != 0 && all & 1 != 0, "CAP_SYS_ADMIN and CAP_CHOWN: \(String(all, radix: 16))")
        let bad = try s.db(["exec", "--env-file", s.root + "/missing", "ex", "true"])
        #expect(bad.status == 125 && bad.err.contains("--env-file"), "\(bad)")
        #expect(try s.db(["kill", "ex"]).status == 0)
    }

    /// A relative `--root` (before or after the command): its paths end up in mount options and
    /// runtime bundles read from other directories, so the root is made absolute first.
    @Test(.enabled(if: Scenario.canRun)) func relativeRootBuildsAndRuns() throws {
        let s = try Scenario(77)
        defer { s.cleanup() }
        let ctx = s.root + "/ctx"
        try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: ctx + "/busybox")
        try "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo built > /made\"]\n"
            .write(toFile: ctx + "/Dockerfile", atomically: true, encoding: .utf8)
        let b = try Shell.run(["sh", "-c", "cd \(s.root) && \(s.binary) build --root rel -t rel:1 ctx"])
        #expect(b.0 == 0, "\(b)")
        let r = try Shell.run(["sh", "-c", "cd \(s.root) && \(s.binary) --root ./rel run --rm --network none rel:1 /bin/busybox cat /made"])
        #expect(r.0 == 0 && r.1 == "built\n", "\(r)")
    }
}
