import Foundation
import OCI
import Testing
@testable import Containers

/// `--log-driver` and `--log-opt` as docker's json-file driver (issue #17): rotation by
/// `max-size` into `max-file` files, `logs` reading across the rotated files, the `none`
/// driver, `inspect`'s HostConfig.LogConfig and docker's refusals of bad values.
@Suite(.serialized) struct LogDriverTests {
    static func scenario(_ tag: Int) throws -> Scenario {
        let s = try Scenario(tag)
        try #require(FileManager.default.isExecutableFile(atPath: s.binary), "\(s.binary) is missing: run `swift build` first")
        try s.makeBusyboxImage()
        return s
    }

    func logConfig(_ s: Scenario, _ name: String) throws -> [String: Any] {
        try #require((try s.inspect(name)["HostConfig"] as? [String: Any])?["LogConfig"] as? [String: Any])
    }

    func logFiles(_ s: Scenario, _ name: String) throws -> [String] {
        let id = try s.ok(["inspect", "--format", "{{.Id}}", name]).trimmingCharacters(in: .whitespacesAndNewlines)
        let dir = "\(s.root)/containers/\(id)"
        return try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("container.log") }.sorted()
    }

    @Test(.enabled(if: Scenario.canRun)) func rotationKeepsMaxFiles() throws {
        let s = try Self.scenario(100)
        defer { s.cleanup() }
        // 300 lines of ~80 bytes of JSON each: about 24 kB through a 2 kB limit, 3 files kept
        _ = try s.ok(["run", "--network", "none", "--name", "rot", "--log-opt", "max-size=2k", "--log-opt", "max-file=3",
                      "busybox:test", "sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done"])
        #expect(try logFiles(s, "rot") == ["container.log", "container.log.1", "container.log.2"])
        let lines = try s.ok(["logs", "rot"]).split(separator: "\n").map(String.init)
        // the newest lines, in order, from the oldest kept file to the current one
        #expect(lines.last == "line-299")
        #expect(lines.count > 20 && lines.count < 300, "\(lines.count) lines kept")
        let numbers = lines.compactMap { Int($0.dropFirst(5)) }
        #expect(numbers == Array((300 - numbers.count)..<300), "consecutive, oldest first")
        #expect(try s.ok(["logs", "--tail", "2", "rot"]) == "line-298\nline-299")
        let cfg = try logConfig(s, "rot")
        #expect(cfg["Type"] as? String == "json-file")
        #expect(cfg["Config"] as? [String: String] == ["max-size": "2k", "max-file": "3"])
    }

    @Test(.enabled(if: Scenario.canRun)) func oneFileIsCut() throws {
        let s = try Self.scenario(101)
        defer { s.cleanup() }
        _ = try s.ok(["run", "--network", "none", "--name", "cut", "--log-opt", "max-size=1k",
                      "busybox:test", "sh", "-c", "i=0; while [ $i -lt 100 ]; do echo line-$i; i=$((i+1)); done"])
        #expect(try logFiles(s, "cut") == ["container.log"])
        let lines = try s.ok(["logs", "cut"]).split(separator: "\n")
        #expect(lines.last == "line-99" && lines.count < 100)
        // the default: everything kept, LogConfig as docker shows it
        _ = try s.ok(["run", "--network", "none", "--name", "all", "busybox:test", "sh", "-c", "seq 1 100"])
        #expect(try s.ok(["logs", "all"]).split(separator: "\n").count == 100)
        let cfg = try logConfig(s, "all")
        #expect(cfg["Type"] as? String == "json-file" && (cfg["Config"] as? [String: String]) == [:])
    }

    @Test(.enabled(if: Scenario.canRun)) func followAcrossRotation() throws {
        let s = try Self.scenario(102)
        defer { s.cleanup() }
        _ = try s.ok(["run", "-d", "--network", "none", "--name", "fol", "--log-opt", "max-size=1k", "--log-opt", "max-file=2",
                      "busybox:test", "sh", "-c", "sleep 1; i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); usleep 20000; done"])
        let r = try s.db(["logs", "-f", "fol"])
        #expect(r.status == 0)
        let numbers = r.out.split(separator: "\n").compactMap { Int($0.dropFirst(5)) }
        #expect(numbers == Array(0..<200), "follow sees every line through rotations: \(numbers.count) lines")
    }

    @Test(.enabled(if: Scenario.canRun)) func noneDriver() throws {
        let s = try Self.scenario(103)
        defer { s.cleanup() }
        // attached output still reaches the terminal; nothing is stored
        #expect(try s.ok(["run", "--network", "none", "--name", "quiet", "--log-driver", "none", "busybox:test", "echo", "hi"]) == "hi")
        #expect(try logFiles(s, "quiet").isEmpty)
        let r = try s.db(["logs", "quiet"])
        #expect(r.status != 0 && r.err.contains("configured logging driver does not support reading"), "\(r.err)")
        #expect(try logConfig(s, "quiet")["Type"] as? String == "none")
    }

    @Test(.enabled(if: Scenario.canRun)) func badValuesAreUsageErrors() throws {
        let s = try Self.scenario(104)
        defer { s.cleanup() }
        for (args, says) in [
            (["--log-driver", "syslog"], "use json-file or none"),
            (["--log-opt", "max-size=lots"], "max-size"),
            (["--log-opt", "max-file=0"], "max-file=0"),
            (["--log-opt", "max-file=3"], "max-file needs max-size"),
            (["--log-opt", "compress"], "KEY=VALUE"),
            (["--log-opt", "labels=x"], "unknown log opt 'labels'"),
            (["--log-driver", "none", "--log-opt", "max-size=1m"], "takes no options"),
        ] {
            let r = try s.db(["run", "--rm", "--network", "none"] + args + ["busybox:test", "true"])
            #expect(r.status == 125, "\(args): \(r.status)")
            #expect(r.err.contains(says), "\(args): \(r.err)")
        }
        #expect(try s.ok(["ps", "-a", "-q"]).isEmpty, "nothing was created")
    }
}
