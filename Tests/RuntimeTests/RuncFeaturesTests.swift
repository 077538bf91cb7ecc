import Foundation
import Testing
@testable import Runtime

/// `features` and `--version` in runc's shape: callers such as containerd read them to learn
/// what the runtime supports. Compared with the runc installed here.
@Suite struct RuncFeaturesTests {
    static let pkg = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    func output(_ args: [String]) throws -> (Int32, Data) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: args[0])
        p.arguments = Array(args.dropFirst())
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        try p.run()
        let d = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, d)
    }

    @Test func featuresCoverWhatRuncOffers() throws {
        let bin = Self.pkg + "/.build/debug/dockbuild-runc"
        try #require(FileManager.default.isExecutableFile(atPath: bin))
        let (status, data) = try output([bin, "features"])
        #expect(status == 0)
        let ours = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(ours["ociVersionMin"] as? String == "1.0.0")
        let linux = try #require(ours["linux"] as? [String: Any])
        let seccomp = try #require(linux["seccomp"] as? [String: Any])
        #expect(seccomp["enabled"] as? Bool == true)
        #expect((seccomp["archs"] as? [String] ?? []).contains("SCMP_ARCH_X86_64"))
        // Every option listed is one the runtime's own parser takes.
        for o in ours["mountOptions"] as? [String] ?? [] {
            let parsed = MountOptions.parse([o])
            #expect(parsed.flags != 0 || parsed.propagation != 0 || parsed.attrSet != 0 || parsed.attrClear != 0
                    || parsed.bind || ["defaults", "rw", "suid", "dev", "exec", "async", "nomand", "atime", "diratime",
                                       "norelatime", "nostrictatime", "loud", "symfollow", "noacl", "noiversion",
                                       "nolazytime", "rrelatime", "ratime", "rnostrictatime", "rrw", "rsuid", "rdev",
                                       "rexec", "rdiratime", "rsymfollow"].contains(o), "\(o)")
        }
        guard let runc = ["/usr/sbin/runc", "/usr/bin/runc"].first(where: FileManager.default.isExecutableFile(atPath:)) else { return }
        let theirs = try #require(try JSONSerialization.jsonObject(with: try output([runc, "features"]).1) as? [String: Any])
        #expect(Set(ours.keys) == Set(theirs.keys))
        // the same top-level order and indentation as runc prints (Go's MarshalIndent)
        let text = String(decoding: data, as: UTF8.self), theirText = String(decoding: try output([runc, "features"]).1, as: UTF8.self)
        func topKeys(_ t: String) -> [String] {
            t.split(separator: "\n").filter { $0.hasPrefix("    \"") }.map { String($0.dropFirst(5).prefix { $0 != "\"" }) }
        }
        #expect(topKeys(text) == topKeys(theirText), "\(topKeys(text)) vs \(topKeys(theirText))")
        #expect(text.hasPrefix("{\n    \"ociVersionMin\": \"1.0.0\",\n"))
        let theirLinux = try #require(theirs["linux"] as? [String: Any])
        #expect(Set(linux.keys) == Set(theirLinux.keys))
        // runc's mount options, namespaces and capabilities are all here (tmpcopyup aside:
        // accepted, not implemented, so not claimed).
        let missing = Set(theirs["mountOptions"] as? [String] ?? []).subtracting(ours["mountOptions"] as? [String] ?? [])
        #expect(missing.subtracting(["tmpcopyup"]).isEmpty, "\(missing)")
        #expect(Set(theirLinux["namespaces"] as? [String] ?? []).isSubset(of: Set(linux["namespaces"] as? [String] ?? [])))
        #expect(Set(theirLinux["capabilities"] as? [String] ?? []).isSubset(of: Set(linux["capabilities"] as? [String] ?? [])))
    }

    @Test func versionInRuncsShape() throws {
        let bin = Self.pkg + "/.build/debug/dockbuild-runc"
        try #require(FileManager.default.isExecutableFile(atPath: bin))
        for flag in ["--version", "-v"] {
            let (status, data) = try output([bin, flag])
            let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
            #expect(status == 0)
            #expect(lines.first?.hasPrefix("dockbuild-runc version ") == true)
            #expect(lines.contains("spec: 1.0.2"))
            #expect(lines.contains { $0.hasPrefix("libseccomp: 2.") })
        }
    }

    /// `-h`, `--help` and `help` in runc's layout; usage errors exit 1 as runc's do (not
    /// ArgumentParser's 64). Compared with the runc installed here.
    @Test func helpAndUsageErrorsInRuncsShape() throws {
        let bin = Self.pkg + "/.build/debug/dockbuild-runc"
        try #require(FileManager.default.isExecutableFile(atPath: bin))
        let (status, data) = try output([bin, "-h"])
        let text = String(decoding: data, as: UTF8.self)
        #expect(status == 0)
        for flag in ["--help", "help"] { #expect(String(decoding: try output([bin, flag]).1, as: UTF8.self) == text, "\(flag)") }
        func sections(_ t: String) -> [String] { t.split(separator: "\n").filter { $0.hasSuffix(":") && $0.allSatisfy { $0.isUppercase || $0 == " " || $0 == ":" } }.map(String.init) }
        #expect(sections(text) == ["NAME:", "USAGE:", "VERSION:", "COMMANDS:", "GLOBAL OPTIONS:"], "\(text)")
        #expect(text.hasPrefix("NAME:\n   dockbuild-runc - "))
        #expect(text.contains("\n   dockbuild-runc [global options] command [command options] [arguments...]\n"))
        /// The first word of each row of a section (a command or a flag).
        func rows(_ t: String, _ section: String) -> Set<String> {
            let lines = t.split(separator: "\n", omittingEmptySubsequences: false)
            guard let start = lines.firstIndex(of: Substring(section)) else { return [] }
            return Set(lines[(start + 1)...].prefix { $0.hasPrefix("   ") }.compactMap { $0.split(separator: " ").first.map { String($0.trimmingCharacters(in: .punctuationCharacters.subtracting(["-"]))) } })
        }
        #expect(rows(text, "COMMANDS:").isSuperset(of: ["create", "start", "state", "kill", "delete", "run", "exec", "list", "ps",
                                                          "spec", "update", "pause", "resume", "events", "features", "help"]))
        // Bad usage: exit 1 with the reason on stderr.
        let root = NSTemporaryDirectory() + "runc-usage-\(getpid())"
        for args in [["start"], ["kill"], ["update", "--pids-limit", "lots", "x"], ["run", "--bogus", "x"]] {
            let ours = try RuncDropInTests.call([bin, "--root", root] + args)
            #expect(ours.code == 1 && !ours.err.isEmpty, "\(args): \(ours)")
        }
        guard let runc = ["/usr/sbin/runc", "/usr/bin/runc"].first(where: FileManager.default.isExecutableFile(atPath:)) else { return }
        let theirs = String(decoding: try output([runc, "-h"]).1, as: UTF8.self)
        #expect(sections(theirs) == sections(text))
        // What runc lists is here too (checkpoint/restore and --criu aside: no CRIU support).
        #expect(rows(theirs, "COMMANDS:").subtracting(["checkpoint", "restore"]).isSubset(of: rows(text, "COMMANDS:")),
                "\(rows(theirs, "COMMANDS:").subtracting(rows(text, "COMMANDS:")))")
        #expect(rows(theirs, "GLOBAL OPTIONS:").subtracting(["--criu"]) == rows(text, "GLOBAL OPTIONS:"),
                "runc \(rows(theirs, "GLOBAL OPTIONS:")) ours \(rows(text, "GLOBAL OPTIONS:"))")
        for args in [["start"], ["kill"], ["update", "--pids-limit", "lots", "x"]] {
            #expect(try RuncDropInTests.call([runc, "--root", root] + args).code == 1, "runc \(args)")
        }
        // A verb's help: NAME, USAGE, OPTIONS as runc's, with every option runc's verb has.
        for verb in ["kill", "delete", "update", "events", "list", "ps", "create", "start"] {
            let mine = String(decoding: try output([bin, verb, "-h"]).1, as: UTF8.self)
            let theirsVerb = String(decoding: try output([runc, verb, "-h"]).1, as: UTF8.self)
            #expect(mine == String(decoding: try output([bin, "help", verb]).1, as: UTF8.self), "\(verb)")
            #expect(mine.hasPrefix("NAME:\n   dockbuild-runc \(verb) - ") && mine.contains("\nUSAGE:\n   dockbuild-runc \(verb) "), "\(mine)")
            let theirOptions = rows(theirsVerb, "OPTIONS:"), myOptions = rows(mine, "OPTIONS:")
            #expect(theirOptions.isSubset(of: myOptions), "\(verb): runc \(theirOptions) ours \(myOptions)")
            #expect(!myOptions.contains("--help"), "\(verb)")
        }
    }

    /// `--debug` adds `level=debug` records where errors go (the `--log` file, else stderr),
    /// in the same text or JSON shape as runc's; without it there are none.
    @Test func debugRecords() throws {
        let bin = Self.pkg + "/.build/debug/dockbuild-runc"
        try #require(FileManager.default.isExecutableFile(atPath: bin))
        let root = NSTemporaryDirectory() + "runc-debug-\(getpid())-\(UInt32.random(in: 0...UInt32.max))", log = root + ".log"
        defer { unlink(log) }
        func records() -> [[String: String]] {
            (readFile(log) ?? "").split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
        }
        for args in [["--debug", "--log", log, "--log-format", "json", "state", "nosuch"],
                     ["--log", log, "--log-format", "json", "--debug", "ps", "nosuch"]] {   // the fast path and ArgumentParser's verbs
            unlink(log)
            #expect(try RuncDropInTests.call([bin, "--root", root] + args).code == 1)
            let r = records()
            #expect(r.count >= 2 && r.allSatisfy { Set($0.keys) == ["level", "msg", "time"] }, "\(args): \(r)")
            #expect(r.first?["level"] == "debug" && r.last?["level"] == "error", "\(args): \(r)")
        }
        unlink(log)
        _ = try RuncDropInTests.call([bin, "--root", root, "--log", log, "--log-format", "json", "state", "nosuch"])
        #expect(records().map { $0["level"] } == ["error"], "no debug records without --debug")
        let text = try RuncDropInTests.call([bin, "--root", root, "--debug", "state", "nosuch"])
        #expect(text.err.split(separator: "\n").first?.contains(" level=debug msg=\"state container") == true, "\(text)")
    }

    /// `state` as runc 1.1 prints it (checked against runc on this machine): runc's key order,
    /// two-space indent, annotations only when present, no trailing newline.
    @Test func stateInRuncsLayout() {
        var st = ContainerState(ociVersion: "1.0.2-dev", id: "s1", status: "running", pid: 42, bundle: "/b", rootfs: "/b/rootfs",
                                created: "2026-12-05T12:59:18.07171Z", owner: "", annotations: nil)
        #expect(st.runcJSON == """
        {
          "ociVersion": "1.0.2-dev",
          "id": "s1",
          "pid": 42,
          "status": "running",
          "bundle": "/b",
          "rootfs": "/b/rootfs",
          "created": "2026-12-05T12:59:18.07171Z",
          "owner": ""
        }
        """)
        st.annotations = ["b": "2", "a": "<1>"]
        #expect(st.runcJSON.hasSuffix("  \"owner\": \"\",\n  \"annotations\": {\n    \"a\": \"\\u003c1\\u003e\",\n    \"b\": \"2\"\n  }\n}"))
    }

    /// Errors on stderr as runc writes them: a logrus line without `--log` (text, or JSON with
    /// `--log-format json`), the bare message with `--log` (the line goes to the file). Compared
    /// with runc's own output for a missing container.
    @Test func errorsInRuncsShape() throws {
        let bin = Self.pkg + "/.build/debug/dockbuild-runc"
        try #require(FileManager.default.isExecutableFile(atPath: bin))
        let root = NSTemporaryDirectory() + "runc-errors-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        func stderr(_ args: [String]) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: args[0])
            p.arguments = Array(args.dropFirst())
            let e = Pipe()
            p.standardError = e
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            let d = e.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: d, as: UTF8.self))
        }
        let text = try stderr([bin, "--root", root, "delete", "nosuch"])
        #expect(text.0 == 1 && text.1.range(of: #"^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" level=error msg="container \\"nosuch\\" does not exist in .*"\n$"#,
                                              options: .regularExpression) != nil, "\(text)")
        let json = try stderr([bin, "--root", root, "--log-format", "json", "delete", "nosuch"])
        let obj = try JSONSerialization.jsonObject(with: Data(json.1.utf8)) as? [String: String]
        #expect(obj?["level"] == "error" && obj?["msg"]?.contains("does not exist") == true && obj?.keys.sorted() == ["level", "msg", "time"])
        let log = root + ".log"
        defer { unlink(log) }
        let logged = try stderr([bin, "--root", root, "--log", log, "delete", "nosuch"])
        #expect(logged.1.hasPrefix("container \"nosuch\" does not exist"), "\(logged)")
        #expect(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("level=error msg="))
        if let runc = ["/usr/sbin/runc", "/usr/bin/runc"].first(where: FileManager.default.isExecutableFile(atPath:)) {
            let theirs = try stderr([runc, "--root", root, "delete", "nosuch"])
            #expect(theirs.0 == text.0 && theirs.1.hasPrefix("time=\"") && theirs.1.contains(" level=error msg=\""), "\(theirs)")
        }
    }
}
