import Foundation
import Testing

/// docker's command line as scripts rely on it (issue #17): global options before the verb,
/// exit codes, `version`/`info`, and the one Go-template engine behind every `--format`.
/// Each test runs the real binary.
@Suite(.serialized) struct CLIParityTests {
    /// Runs the binary with exactly `args` (no `--root` added), in `env` on top of ours.
    static func raw(_ s: Scenario, _ args: [String], env extra: [String: String] = [:]) throws -> Scenario.Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: s.binary)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["DOCKBUILD_ROOT"] = nil
        env["DOCKER_CONFIG"] = nil
        env["DOCKBUILD_BRIDGE"] = s.bridge
        env["DOCKBUILD_SUBNET"] = s.subnet
        env.merge(extra) { $1 }
        p.environment = env
        let dir = s.root + "/.io-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = FileManager.default.createFile(atPath: dir + "/o", contents: nil)
        _ = FileManager.default.createFile(atPath: dir + "/e", contents: nil)
        let o = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/o"))
        let e = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/e"))
        p.standardOutput = o
        p.standardError = e
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        try o.close(); try e.close()
        return Scenario.Result(status: p.terminationStatus,
                               out: (try? String(contentsOfFile: dir + "/o", encoding: .utf8)) ?? "",
                               err: (try? String(contentsOfFile: dir + "/e", encoding: .utf8)) ?? "")
    }

    static func scenario(_ tag: Int) throws -> Scenario {
        let s = try Scenario(tag)
        try #require(FileManager.default.isExecutableFile(atPath: s.binary), "\(s.binary) is missing: run `swift build` first")
        return s
    }

    // MARK: run / create flags

    /// `--label-file` (the file first, `--label` wins) and `--cidfile` (written at create, and a
    /// file that exists already refused with 125 before anything is created), as docker does.
    @Test func labelFileAndCidfile() throws {
        let s = try Self.scenario(49)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let labels = s.root + "/labels"
        try Data("# team labels\nteam=infra\ntier=web\n\n".utf8).write(to: URL(fileURLWithPath: labels))
        let cid = s.root + "/cid"
        let id = try s.ok(["create", "--label-file", labels, "--label", "tier=db", "--cidfile", cid, "busybox:test", "true"])
        #expect((try? String(contentsOfFile: cid, encoding: .utf8)) == id)
        let shown = try s.ok(["container", "inspect", "--format", "{{json .Config.Labels}}", id])
        #expect(shown.contains("\"team\":\"infra\"") && shown.contains("\"tier\":\"db\""), "\(shown)")
        let before = try s.ok(["ps", "-aq"]).split(separator: "\n").count
        let again = try s.db(["run", "--cidfile", cid, "busybox:test", "true"])
        #expect(again.status == 125 && again.err.contains("container ID file found"), "\(again)")
        #expect(try s.ok(["ps", "-aq"]).split(separator: "\n").count == before, "nothing was created")
        let bad = try s.db(["create", "--label-file", s.root + "/missing", "busybox:test"])
        #expect(bad.status == 125 && bad.err.contains("--label-file"), "\(bad)")
    }

    // MARK: global options

    @Test func rootBeforeTheVerbAndAfterIt() throws {
        let s = try Self.scenario(40)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        for args in [["--root", s.root, "images"], ["--root=\(s.root)", "images"], ["images", "--root", s.root],
                     ["--root", s.root, "image", "ls"]] {
            let r = try Self.raw(s, args)
            #expect(r.status == 0, "\(args): \(r.err)")
            #expect(r.out.contains("busybox"), "\(args) did not list the store's image: \(r.out)")
        }
        // The global one reaches the store: another root lists nothing.
        let other = s.root + "/other"
        let r = try Self.raw(s, ["--root", other, "images", "--format", "{{.Repository}}"])
        #expect(r.status == 0 && r.out.isEmpty, "\(r)")
        // After the verb wins over before it.
        let both = try Self.raw(s, ["--root", other, "images", "--root", s.root, "--format", "{{.Repository}}"])
        #expect(both.out == "busybox\n", "\(both)")
        // --root with no value is a usage error.
        let missing = try Self.raw(s, ["--root"])
        #expect(missing.status == 125, "\(missing)")
    }

    @Test func configDebugAndLogLevel() throws {
        let s = try Self.scenario(41)
        defer { s.cleanup() }
        let cfg = s.root + "/dockercfg"
        try FileManager.default.createDirectory(atPath: cfg, withIntermediateDirectories: true)
        try #"{"auths":{"localhost:5999":{"auth":"dTpw"}},"other":1}"#.write(toFile: cfg + "/config.json", atomically: true, encoding: .utf8)
        let r = try Self.raw(s, ["--config", cfg, "--root", s.root, "info", "--format", "{{.ClientInfo.ConfigFile}} {{json .RegistryConfig.Auths}}"])
        #expect(r.status == 0, "\(r)")
        #expect(r.out == "\(cfg)/config.json [\"localhost:5999\"]\n")
        // login/logout read and write that config.json: logout removes the entry, other keys stay.
        let out = try Self.raw(s, ["--config=\(cfg)", "logout", "localhost:5999"])
        #expect(out.status == 0, "\(out)")
        let after = try String(contentsOfFile: cfg + "/config.json", encoding: .utf8)
        #expect(!after.contains("localhost:5999") && after.contains("other"), "\(after)")

        #expect(try Self.raw(s, ["-D", "--root", s.root, "info", "--format", "{{.Debug}}"]).out == "true\n")
        #expect(try Self.raw(s, ["--debug", "--root", s.root, "info", "--format", "{{.ClientInfo.LogLevel}}"]).out == "debug\n")
        #expect(try Self.raw(s, ["--log-level", "warn", "--root", s.root, "info", "--format", "{{.Debug}} {{.ClientInfo.LogLevel}}"]).out == "false warn\n")
        #expect(try Self.raw(s, ["-l", "error", "--root", s.root, "info", "--format", "{{.ClientInfo.LogLevel}}"]).out == "error\n")
        let bad = try Self.raw(s, ["--log-level", "loud", "images"])
        #expect(bad.status == 125 && bad.err.contains("--log-level"), "\(bad)")
        let daemon = try Self.raw(s, ["-H", "unix:///x.sock", "ps"])
        #expect(daemon.status == 125 && daemon.err.contains("no daemon"), "\(daemon)")
        let v = try Self.raw(s, ["-v"])
        #expect(v.status == 0 && v.out.hasPrefix("dockbuild version "), "\(v)")
        let sub = try Self.raw(s, ["images", "--version"])
        #expect(sub.status == 125, "--version belongs to the top level only: \(sub)")
    }

    // MARK: exit codes

    @Test func exitCodesAsDockers() throws {
        let s = try Self.scenario(42)
        defer { s.cleanup() }
        let typo = try Self.raw(s, ["imagse"])
        #expect(typo.status == 1)
        #expect(typo.err.contains("'imagse' is not a dockbuild command") && typo.err.contains("Did you mean this?\n\timage\n\timages\n"), "\(typo.err)")
        let nested = try Self.raw(s, ["image", "lss"])
        #expect(nested.status == 1 && nested.err.contains("Did you mean this?\n\tls\n"), "\(nested)")
        let none = try Self.raw(s, ["zzzzzz"])
        #expect(none.status == 1 && !none.err.contains("Did you mean"), "\(none)")
        for usage in [["ps", "--bogus"], ["--bogus", "ps"], ["inspect"], ["images", "--format", "{{.ID"], ["images", "--filter", "nope"]] {
            let r = try Self.raw(s, usage + ["--root", s.root].filter { _ in usage.first != "--bogus" })
            #expect(r.status == 125, "\(usage) exited \(r.status): \(r.err)")
        }
        let missing = try Self.raw(s, ["inspect", "--root", s.root, "no-such-thing"])
        #expect(missing.status == 1, "\(missing)")
        let rmi = try Self.raw(s, ["rmi", "--root", s.root, "no-such-image"])
        #expect(rmi.status == 1, "\(rmi)")
        // runc's command line keeps runc's exit codes (ArgumentParser's 64 for a bad flag).
        let rt = try Self.raw(s, ["runtime", "--bogus", "state", "x"])
        #expect(rt.status != 125 && rt.status != 0, "\(rt)")
        // ArgumentParser's completion scripts still come out, and their callbacks still work
        let bash = try Self.raw(s, ["--generate-completion-script", "bash"])
        #expect(bash.status == 0 && bash.out.contains("complete") && bash.out.contains("dockbuild"), "\(bash.err)")
        let help = try Self.raw(s, ["--help"])
        #expect(help.status == 0 && help.out.contains("--log-level") && help.out.contains("version"), "\(help)")
        // grouped as docker's: management commands (with subcommands), then the common ones
        let management = help.out.range(of: "MANAGEMENT SUBCOMMANDS:"), common = help.out.range(of: "COMMON SUBCOMMANDS:")
        #expect(management != nil && common != nil, "\(help.out)")
        if let management, let common {
            #expect(help.out[management.upperBound..<common.lowerBound].contains("\n  system "), "\(help.out)")
            #expect(help.out[common.upperBound...].contains("\n  images "), "\(help.out)")
        }
    }

    @Test(.enabled(if: Scenario.canRun)) func containerErrorsAndRunStatus() throws {
        let s = try Self.scenario(43)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let run = try s.db(["run", "--rm", "busybox:test", "sh", "-c", "exit 3"])
        #expect(run.status == 3, "run returns the container's status: \(run)")
        let run64 = try s.db(["run", "--rm", "busybox:test", "sh", "-c", "exit 64"])
        #expect(run64.status == 64, "a container's 64 is not mistaken for a usage error: \(run64)")
        let notFound = try s.db(["run", "--rm", "busybox:test", "no-such-command"])
        #expect(notFound.status == 127 && notFound.err.contains("executable file not found"), "\(notFound)")
        let noImage = try s.db(["run", "--pull", "never", "no-such-image:1"])
        #expect(noImage.status == 125, "\(noImage)")
        let start = try s.db(["start", "no-such-container"])
        #expect(start.status == 1, "\(start)")
        let logs = try s.db(["logs", "no-such-container"])
        #expect(logs.status == 1, "\(logs)")
    }

    // MARK: version and info

    @Test func versionAndInfo() throws {
        let s = try Self.scenario(44)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let v = try Self.raw(s, ["version"])
        #expect(v.status == 0 && v.out.hasPrefix("Client:\n Version:") && v.out.contains("oci-image-spec"), "\(v)")
        let vj = try Self.raw(s, ["version", "--format", "json"])
        let doc = try JSONSerialization.jsonObject(with: Data(vj.out.utf8)) as? [String: Any]
        let client = doc?["Client"] as? [String: Any]
        #expect(client?["Os"] as? String == "linux")
        let comps = (doc?["Server"] as? [String: Any])?["Components"] as? [[String: Any]] ?? []
        #expect(Set(comps.compactMap { $0["Name"] as? String })
            .isSuperset(of: ["dockbuild", "oci-image-spec", "oci-runtime-spec", "oci-distribution-spec"]))
        let version = (client?["Version"] as? String) ?? "?"
        #expect(try Self.raw(s, ["version", "-f", "{{.Client.Version}}"]).out == version + "\n")

        let info = try Self.raw(s, ["--root", s.root, "info"])
        #expect(info.status == 0, "\(info)")
        for line in [" Images: 1", " Containers: 0", " Docker Root Dir: \(s.root)", " Storage Driver: overlay", " Cgroup Version: ", " Security Options:"] {
            #expect(info.out.contains(line), "info lacks \(line): \(info.out)")
        }
        let f = try Self.raw(s, ["--root", s.root, "info", "--format", "{{.Images}} {{.Containers}} {{.DockerRootDir}} {{.Rootless}}"])
        #expect(f.out == "1 0 \(s.root) \(getuid() != 0)\n", "\(f)")
        let sys = try Self.raw(s, ["system", "info", "--root", s.root, "--format", "json"])
        let obj = try JSONSerialization.jsonObject(with: Data(sys.out.utf8)) as? [String: Any]
        #expect(obj?["Images"] as? Int == 1 && obj?["CgroupVersion"] is String && obj?["SecurityOptions"] is [Any], "\(sys)")
    }

    // MARK: templates

    @Test func templateFunctionsAndErrors() throws {
        let s = try Self.scenario(45)
        defer { s.cleanup() }
        func fmt(_ t: String) throws -> Scenario.Result { try Self.raw(s, ["version", "--format", t]) }
        let cases: [(String, String)] = [
            (#"{{upper "ab"}} {{lower "AB"}} {{title "foo bar"}}"#, "AB ab Foo Bar"),
            (#"{{join (split "a,b,c" ",") "-"}}"#, "a-b-c"),
            (#"[{{pad "x" 1 2}}]{{truncate "abcdef" 3}}"#, "[ x  ]abc"),
            (#"{{println "z"}}y"#, "z\ny"),
            (#"{{json .Client.Os}} {{.Client.Os | upper}}"#, "\"linux\" LINUX"),
            (#"{{range $i, $c := .Server.Components}}{{if lt $i 2}}{{$i}}={{.Name}};{{end}}{{end}}"#, "0=dockbuild;1=oci-image-spec;"),
            (#"{{if eq .Client.Os "windows"}}w{{else if eq .Client.Os "linux"}}l{{else}}?{{end}}"#, "l"),
            (#"{{index .Server.Components 1 | json}}"#, #"{"Name":"oci-image-spec","Version":"1.1.0","Details":{}}"#),
            (#"{{len .Server.Components}} {{with .Client}}{{.Os}}{{end}} {{- "x" -}} y"#, "4 linuxxy"),
            (#"{{json "<&>"}} {{printf "%s-%d" "a" 3}} {{/* c */}}{{not true}}"#, #""\u003c\u0026\u003e" a-3 false"#),
            (#"{{index .Client "Nope"}}|{{range (index .Client "Nope")}}x{{else}}empty{{end}}"#, "<no value>|empty"),
        ]
        for (t, want) in cases {
            let r = try fmt(t)
            #expect(r.status == 0 && r.out == want + "\n", "\(t) gave \(r.out.debugDescription) (\(r.status)): \(r.err)")
        }
        // docker's error for an unknown field: while executing, exit 1.
        let unknown = try fmt("{{.Client.Nope}}")
        #expect(unknown.status == 1 && unknown.out.isEmpty && unknown.err.contains("can't evaluate field Nope"), "\(unknown)")
        // A malformed template is a usage error naming the flag: exit 125.
        for bad in ["{{.Client.Version", "{{nope 1}}", "{{if .Client}}x", "{{end}}", #"{{"unterminated}}"#] {
            let r = try fmt(bad)
            #expect(r.status == 125 && r.err.contains("--format") && r.err.contains("template: "), "\(bad): \(r)")
        }
    }

    @Test func imagesAndInspectFormats() throws {
        let s = try Self.scenario(46)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        // an image with a creation time (import sets it), for CreatedAt
        let src = s.root + "/importsrc"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        try "x".write(toFile: src + "/f", atomically: true, encoding: .utf8)
        _ = try s.ok(["import", src, "imported:1"])
        let json = try s.db(["images", "imported", "--format", "json"])
        let row = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any]
        #expect(Set(row?.keys.map { $0 } ?? []) == ["Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository",
                                                   "SharedSize", "Size", "Tag", "UniqueSize", "VirtualSize"], "\(json.out)")
        #expect(((row?["CreatedAt"] as? String) ?? "").range(of: #"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \S+$"#, options: .regularExpression) != nil,
                "\(json.out)")
        let same = try JSONSerialization.jsonObject(with: Data(try s.db(["images", "imported", "--format", "{{json .}}"]).out.utf8)) as? [String: Any]
        #expect(same?["ID"] as? String == row?["ID"] as? String && same?["CreatedAt"] as? String == row?["CreatedAt"] as? String)
        let table = try s.db(["images", "busybox", "--format", #"table {{.Repository}}\t{{.Tag}}"#])
        #expect(table.out == "REPOSITORY   TAG\nbusybox      test\n", "\(table.out.debugDescription)")
        let bad = try s.db(["images", "--format", "{{.Nope}}"])
        #expect(bad.status == 1 && bad.err.contains("can't evaluate field Nope"), "\(bad)")

        let hist = try s.db(["history", "--format", "json", "imported:1"])
        let h = try JSONSerialization.jsonObject(with: Data(hist.out.utf8)) as? [String: Any]
        #expect(Set(h?.keys.map { $0 } ?? []) == ["Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size"], "\(hist)")
        #expect(try s.db(["history", "--format", #"table {{.ID}}\t{{.Size}}"#, "imported:1"]).out.hasPrefix("IMAGE          SIZE\n"))
        _ = try s.ok(["volume", "create", "-l", "k=v", "clivol"])
        #expect(try s.db(["volume", "ls", "--format", "{{.Name}} {{.Labels}} {{.Driver}}"]).out == "clivol k=v local\n")
        let vj = try JSONSerialization.jsonObject(with: Data(try s.db(["volume", "ls", "--format", "json"]).out.utf8)) as? [String: Any]
        #expect(vj?["Name"] as? String == "clivol" && vj?["Scope"] as? String == "local")
        let vi = try s.db(["volume", "inspect", "-f", "{{.Name}} {{.Labels.k}}", "clivol"])
        #expect(vi.out == "clivol v\n", "\(vi)")

        let ij = try s.db(["inspect", "--format", "json", "busybox:test"])
        #expect(ij.status == 0 && ij.out.hasPrefix("{\"Id\":\"sha256:"), "inspect --format json prints the JSON: \(ij.out.prefix(80))")
        let id = try s.db(["inspect", "-f", "{{.Os}}/{{.Architecture}} {{len .RootFS.Layers}} {{json .Config.Cmd}}", "busybox:test"])
        let arch = try Self.raw(s, ["version", "-f", "{{.Client.Arch}}"]).out.dropLast()
        #expect(id.out == "linux/\(arch) 1 [\"sh\"]\n", "\(id)")
        let missing = try s.db(["inspect", "-f", "{{.Nope}}", "busybox:test"])
        // inspect reads documents as JSON maps, as docker does: a missing key is an error
        #expect(missing.status == 1 && missing.err.contains("map has no entry for key \"Nope\""), "\(missing)")
        let nilMap = try s.db(["inspect", "-f", "{{.Config.Labels.nope}}", "busybox:test"])
        #expect(nilMap.status == 1 && nilMap.out.isEmpty && nilMap.err.contains(#"executing "" at <.Config.Labels.nope>: "#), "\(nilMap)")
        #expect(try s.db(["inspect", "-f", #"{{index .Config "Nope"}}"#, "busybox:test"]).out == "<no value>\n")
    }

    @Test(.enabled(if: Scenario.canRun)) func psFormats() throws {
        let s = try Self.scenario(47)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let id = try s.ok(["create", "--name", "clifmt", "--label", "a=b", "busybox:test", "true"])
        let json = try s.db(["ps", "-a", "--format", "json"])
        let row = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any]
        #expect(Set(row?.keys.map { $0 } ?? []) == ["Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts", "Names",
                                                   "Networks", "Ports", "RunningFor", "Size", "State", "Status"], "\(json.out)")
        #expect(((row?["CreatedAt"] as? String) ?? "").range(of: #"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \S+$"#, options: .regularExpression) != nil,
                "CreatedAt is a timestamp: \(json.out)")
        let runningFor = (row?["RunningFor"] as? String) ?? ""
        #expect(runningFor.hasSuffix("ago"), "\(json.out)")
        #expect(row?["ID"] as? String == String(id.prefix(12)) && row?["Labels"] as? String == "a=b" && row?["Command"] as? String == "\"true\"")
        let t = try s.db(["ps", "-a", "--format", #"table {{.Names}}\t{{.State}}"#])
        #expect(t.out == "NAMES     STATE\nclifmt    created\n", "\(t.out.debugDescription)")
        let plain = try s.db(["ps", "-a", "--format", #"{{.Names}}:{{.Labels}}:{{json .Names}}:{{.Label "a"}}:{{.Label "z"}}"#])
        #expect(plain.out == "clifmt:a=b:\"clifmt\":b:\n", "\(plain)")
        let bad = try s.db(["ps", "-a", "--format", "{{.Foo}}"])
        #expect(bad.status == 1 && bad.err.contains("can't evaluate field Foo"), "\(bad)")
        let badParse = try s.db(["ps", "--format", "{{.Foo"])
        #expect(badParse.status == 125, "\(badParse)")
        let ci = try s.db(["inspect", "-f", "{{.Name}} {{.State.Status}} {{.Config.Labels.a}} {{json .Config.Labels}}", "clifmt"])
        #expect(ci.out == "/clifmt created b {\"a\":\"b\"}\n" || ci.out == "clifmt created b {\"a\":\"b\"}\n", "\(ci)")
        let cj = try s.db(["container", "inspect", "--format", "json", "clifmt"])
        #expect(cj.status == 0 && cj.out.hasPrefix("{"), "\(cj.out.prefix(80))")
    }

    // MARK: system df / prune

    @Test(.enabled(if: Scenario.canRun)) func systemDfAndPrune() throws {
        let s = try Self.scenario(48)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        let src = s.root + "/importsrc"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        try "x".write(toFile: src + "/f", atomically: true, encoding: .utf8)
        _ = try s.ok(["import", src, "unused:1"])
        let id = try s.ok(["create", "busybox:test", "true"])
        func df() throws -> [String: [String: Any]] {
            let r = try Self.raw(s, ["--root", s.root, "system", "df", "--format", "json"])
            var rows: [String: [String: Any]] = [:]
            for line in r.out.split(separator: "\n") {
                if let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let t = o["Type"] as? String { rows[t] = o }
            }
            return rows
        }
        let before = try df()
        #expect(before["Images"]?["TotalCount"] as? String == "2" && before["Images"]?["Active"] as? String == "1", "\(before)")
        #expect(before["Containers"]?["TotalCount"] as? String == "1" && before["Containers"]?["Active"] as? String == "0", "\(before)")
        let table = try Self.raw(s, ["--root", s.root, "system", "df"])
        #expect(table.out.hasPrefix("TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\nImages          2         1"), "\(table.out)")
        // Without -f it asks; no answer removes nothing.
        let asked = try Self.raw(s, ["--root", s.root, "system", "prune"])
        #expect(asked.status == 0 && asked.out.contains("Are you sure you want to continue? [y/N]"), "\(asked)")
        #expect(try df()["Containers"]?["TotalCount"] as? String == "1")
        // -f: the stopped container goes; -a: then every image no container uses.
        let pruned = try Self.raw(s, ["--root", s.root, "system", "prune", "-a", "-f"])
        #expect(pruned.status == 0 && pruned.out.contains("Deleted Containers:\n\(id)") && pruned.out.contains("untagged: unused:1")
                && pruned.out.contains("untagged: busybox:test") && pruned.out.contains("Total reclaimed space:"), "\(pruned)")
        let after = try df()
        #expect(after["Images"]?["TotalCount"] as? String == "0" && after["Containers"]?["TotalCount"] as? String == "0", "\(after)")
    }

    /// Issue #19: `dockbuild VERB ...` is parsed with that command alone (DirectParse) rather
    /// than the whole command tree; what each command line prints, help, usage errors, unknown
    /// commands and exit codes included, is the same as with the tree's parse
    /// (`DOCKBUILD_DIRECT_PARSE=0`). Time columns are left out: two runs may straddle a second.
    @Test(.enabled(if: Scenario.canRun)) func directParseMatchesTheTree() throws {
        let s = try Self.scenario(112)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        _ = try s.ok(["create", "--name", "direct1", "--label", "a=b", "busybox:test", "true"])
        _ = try s.ok(["create", "--name", "direct2", "busybox:test", "sh", "-c", "echo hi there"])
        let cases: [[String]] = [
            ["images", "-q"], ["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}"],
            ["images", "busybox", "--no-trunc", "--format", "{{.ID}}"], ["image", "ls", "-q"],
            ["images", "-f", "bogus=1"], ["images", "--bogus"], ["images", "-h"], ["images", "help"],
            ["image", "inspect", "busybox:test"], ["inspect", "-f", "{{.Id}} {{.Os}}", "busybox:test"],
            ["inspect", "direct1"], ["container", "inspect", "-f", "{{.Name}} {{.Config.Labels}}", "direct1"],
            ["inspect", "no-such-thing"], ["inspect"],
            ["ps", "-a", "--format", "{{.Names}} {{.Image}} {{.Command}} {{.State}} {{.Labels}}"], ["ps", "-aq"],
            ["container", "ls", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"], ["ps", "--last", "x"], ["ps", "-ah"],
            ["version", "--format", "{{.Client.Version}}"], ["help", "images"], ["imagez"], ["image", "lz"],
            // a validate() that prints its own message: once
            ["create", "--dns", "dns.google", "busybox:test"], ["run", "--rm", "--add-host", "nohost", "busybox:test", "true"],
        ]
        for c in cases {
            let args = ["--root", s.root] + c
            let direct = try Self.raw(s, args)
            let tree = try Self.raw(s, args, env: ["DOCKBUILD_DIRECT_PARSE": "0"])
            #expect(direct.status == tree.status && direct.out == tree.out && direct.err == tree.err,
                    "\(c): direct \(direct) tree \(tree)")
        }
        // and the cases print what they should (the comparison above is not of two empty outputs)
        #expect(try Self.raw(s, ["--root", s.root, "ps", "-a", "--format", "{{.Names}}"]).out == "direct2\ndirect1\n")
        #expect(try Self.raw(s, ["--root", s.root, "images", "-h"]).out.contains("USAGE: dockbuild images"))
    }
}
