import Foundation
import OCI
import Testing
@testable import Containers

/// `inspect` of a container and `ps`'s COMMAND as docker 20.10 prints them (issue #17),
/// compared with docker on this machine: Go's field order, four-space indent, no HTML escaping,
/// the fields docker always has, and the command quoted as strconv.Quote.
@Suite(.serialized) struct InspectLayoutTests {
    @Test(.enabled(if: Scenario.canRun)) func inspectAndCommandAsDocker() throws {
        let s = try Scenario(109)
        defer { s.cleanup() }
        try #require(FileManager.default.isExecutableFile(atPath: s.binary), "\(s.binary) is missing: run `swift build` first")
        try s.makeBusyboxImage()
        _ = try s.ok(["create", "--name", "lay", "--network", "none", "busybox:test", "sh", "-c", "echo \"x y\" a>b&"])
        let text = try s.db(["inspect", "lay"]).out
        #expect(text.hasPrefix("[\n    {\n        \"Id\": \""), "\(text.prefix(60))")
        #expect(text.contains("\"echo \\\"x y\\\" a>b&\""), "no \\u003e escapes, as docker's API writes")
        // the top-level keys in docker's order
        let keys = text.split(separator: "\n").filter { $0.hasPrefix("        \"") && !$0.hasPrefix("         ") }
            .compactMap { $0.split(separator: "\"").dropFirst().first.map(String.init) }
        #expect(keys == ["Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath", "HostnamePath", "HostsPath", "LogPath",
                         "Name", "RestartCount", "Driver", "Platform", "MountLabel", "ProcessLabel", "AppArmorProfile", "ExecIDs",
                         "HostConfig", "GraphDriver", "Mounts", "Config", "NetworkSettings"], "\(keys)")
        #expect(text.contains("\"State\": {\n            \"Status\": \"created\",\n            \"Running\": false,"))
        // fields docker always shows, with its values for a container that does not use them
        #expect(try s.ok(["inspect", "--format", "{{.HostConfig.CpuShares}} {{.HostConfig.Runtime}} {{json .HostConfig.ReadonlyPaths}}", "lay"])
                == "0 runc [\"/proc/bus\",\"/proc/fs\",\"/proc/irq\",\"/proc/sys\",\"/proc/sysrq-trigger\"]")
        #expect(try s.ok(["inspect", "--format", "{{.Config.AttachStdout}} {{.NetworkSettings.Bridge}}|{{.NetworkSettings.HairpinMode}}", "lay"])
                == "true |false")
        // COMMAND: arguments with a space in single quotes, cut at 20, Go-quoted
        #expect(try s.ok(["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]) == "\"sh -c 'echo \\\"x y\\\" a>b&'\"")
        #expect(try s.ok(["ps", "-a", "--format", "{{.Command}}"]) == "\"sh -c 'echo \\\"x y\\\" a…\"")
        // a container, an image and a volume in one array, as docker's top-level inspect
        _ = try s.ok(["volume", "create", "vol1"])
        let mixed = try s.db(["inspect", "lay", "busybox:test", "vol1", "nosuch"])
        #expect(mixed.status == 1 && mixed.err.contains("No such object: nosuch"), "\(mixed.err)")
        let docs = try #require(try JSONSerialization.jsonObject(with: Data(mixed.out.utf8)) as? [[String: Any]])
        #expect(docs.count == 3 && (docs[0]["Name"] as? String) == "/lay" && (docs[1]["RepoTags"] as? [String]) == ["busybox:test"]
                && (docs[2]["Name"] as? String) == "vol1", "\(mixed.out.prefix(300))")
    }

    @Test(.enabled(if: Scenario.canRun)) func statsAsDocker() throws {
        let s = try Scenario(110)
        defer { s.cleanup() }
        try #require(FileManager.default.isExecutableFile(atPath: s.binary), "\(s.binary) is missing: run `swift build` first")
        try s.makeBusyboxImage()
        _ = try s.ok(["run", "-d", "--name", "st", "--network", "none", "busybox:test", "sleep", "60"])
        let table = try s.ok(["stats", "--no-stream"]).split(separator: "\n").map(String.init)
        // docker's columns (the MEM USAGE column is as wide as its longest value)
        let header = try #require(table.first)
        #expect(header.hasPrefix("CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   "), "\(header)")
        #expect(header.hasSuffix("MEM %     NET I/O   BLOCK I/O   PIDS"), "\(header)")
        let json = try s.ok(["stats", "--no-stream", "--format", "json", "st"])
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String])
        #expect(obj.keys.sorted() == ["BlockIO", "CPUPerc", "Container", "ID", "MemPerc", "MemUsage", "Name", "NetIO", "PIDs"])
        #expect(obj["Container"] == "st" && obj["Name"] == "st" && obj["PIDs"] == "1" && obj["NetIO"] == "0B / 0B", "\(obj)")
        let mem = try #require(obj["MemUsage"])
        #expect(mem.range(of: #"^[0-9.]+(B|KiB|MiB) / [0-9.]+(MiB|GiB|TiB)$"#, options: .regularExpression) != nil, "\(mem)")
        #expect(try s.ok(["stats", "--no-stream", "--format", "table {{.Name}}\t{{.PIDs}}", "st"]) == "NAME      PIDS\nst        1")
        _ = try s.ok(["rm", "-f", "st"])
    }

    /// Image sizes as docker counts them: the files' bytes, uncompressed, not the gzip blobs.
    @Test(.enabled(if: Scenario.canRun)) func imageSizesUncompressed() throws {
        let s = try Scenario(111)
        defer { s.cleanup() }
        try #require(FileManager.default.isExecutableFile(atPath: s.binary), "\(s.binary) is missing: run `swift build` first")
        let dir = "\(s.root)/src"
        try FileManager.default.createDirectory(atPath: "\(dir)/d", withIntermediateDirectories: true)
        // 5000 zero bytes gzip to almost nothing; a hard link and a symlink add no bytes
        try Data(count: 5000).write(to: URL(fileURLWithPath: "\(dir)/d/zeros"))
        try "12345".write(toFile: "\(dir)/five", atomically: true, encoding: .utf8)
        try FileManager.default.linkItem(atPath: "\(dir)/d/zeros", toPath: "\(dir)/hard")
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/soft", withDestinationPath: "five")
        _ = try s.ok(["import", dir, "sized:1"])
        #expect(try s.ok(["inspect", "--format", "{{.Size}} {{.VirtualSize}}", "sized:1"]) == "5005 5005")
        #expect(try s.ok(["images", "--format", "{{.Size}}", "sized"]) == "5kB")
        #expect(try s.ok(["history", "--format", "{{.Size}}", "sized:1"]) == "5kB")
        let blob = try s.ok(["inspect", "--format", "{{(index .Manifest.layers 0).size}}", "sized:1"])
        #expect((Int(blob) ?? 0) < 1000, "the blob is compressed: \(blob)")
        // three significant digits (Go's %.3g), and the table's columns padded as docker's tabwriter
        let big = "\(s.root)/big"
        try FileManager.default.createDirectory(atPath: big, withIntermediateDirectories: true)
        try Data(count: 1_234_567).write(to: URL(fileURLWithPath: "\(big)/zeros"))
        _ = try s.ok(["import", big, "sized:2"])
        #expect(try s.ok(["images", "--format", "table {{.Repository}}\t{{.Tag}}\t{{.Size}}", "sized:2"])
                == "REPOSITORY   TAG       SIZE\nsized        2         1.23MB")
    }
}
