import Foundation
import Testing
@testable import Containers
import OCI
import SystemSupport

/// The Codable-free decoders of a container's record and state give exactly what
/// JSONDecoder gives, or refuse, and the store then uses JSONDecoder.
@Suite struct StoreFastDecodeTests {
    static func canonical<T: Encodable>(_ v: T) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(v), as: UTF8.self)
    }

    static let digest = "sha256:" + String(repeating: "ab", count: 32)

    /// Every field set, with escapes, non-ASCII text, integer extremes and unknown keys.
    static let fullRecord = #"""
    {"id": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "name": "w\u00f6rk-1",
     "created": "2026-12-05T20:00:00.123456789Z", "image": "busybox:test", "imageID": "\#(digest)",
     "imageDescriptor": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "\#(digest)", "size": 528,
                         "annotations": {"org.opencontainers.image.ref.name": "test"},
                         "platform": {"os": "linux", "architecture": "amd64", "variant": "v2", "os.version": "6.1",
                                      "os.features": ["a"], "features": []}, "artifactType": "application/x.a+json"},
     "chainID": "\#(digest)", "entrypoint": ["/bin/sh", "-c"], "cmd": ["echo \"hi\" \\ \/ \n\t \u00e9 \ud83d\ude00 日本"],
     "env": ["PATH=/usr/bin:/bin", "EMPTY="], "workingDir": "/w", "user": "1000:1000", "hostname": "h",
     "tty": true, "openStdin": false, "labels": {"a": "1", "esc\"aped": "line\nbreak", "": ""},
     "exposedPorts": ["80/tcp", "53/udp"], "stopSignal": "SIGTERM", "autoRemove": true, "readOnly": false,
     "privileged": true, "capAdd": ["NET_ADMIN"], "capDrop": ["ALL"], "initProcess": true,
     "mounts": [{"type": "bind", "source": "/srv", "destination": "/srv", "readOnly": true, "options": ["rbind"], "anonymous": false},
                {"type": "volume", "source": "v1", "destination": "/data", "readOnly": false, "options": [], "anonymous": true},
                {"type": "tmpfs", "source": "", "destination": "/tmp", "readOnly": false, "options": ["size=1m"], "anonymous": false}],
     "ports": [{"hostIP": "127.0.0.1", "hostPort": 8080, "containerPort": 80, "proto": "tcp"}],
     "publishAll": false, "network": "none", "memory": 9223372036854775807, "memorySwap": -1, "nanoCpus": 1500000000,
     "pidsLimit": 0, "gpus": "all", "securityOpt": ["no-new-privileges"], "extraHosts": ["h:10.0.0.1"],
     "networkAliases": ["web"], "moreNetworks": {"n1": ["a", "b"], "n2": []}, "dns": ["10.0.0.53"],
     "dnsSearch": ["example.org"], "dnsOptions": ["ndots:2"], "ulimits": [{"name": "nofile", "soft": 1024, "hard": 4096}],
     "shmSize": 67108864, "platform": "linux/amd64", "cdiDevices": ["vendor.com/gpu=all"], "attach": ["stdout"],
     "logDriver": "json-file", "logOpts": {"max-size": "1m"}, "groupAdd": ["10"], "ipcMode": "host",
     "pidMode": "container:x", "utsMode": "host", "stopTimeout": -1,
     "devices": [{"pathOnHost": "/dev/fuse", "pathInContainer": "/dev/fuse", "cgroupPermissions": "rwm"}],
     "restartPolicy": {"name": "on-failure", "maximumRetryCount": 3},
     "healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 1000000000, "Timeout": 2, "StartPeriod": 0,
                     "StartInterval": 5, "Retries": 3},
     "shell": ["/bin/sh", "-c"], "unknownField": {"nested": [1, 2.5, null]}}
    """#

    /// Only the non-optional fields.
    static let minimalRecord = #"""
    {"id": "x", "name": "n", "created": "c", "image": "i", "imageID": "d",
     "imageDescriptor": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "\#(digest)", "size": 0},
     "entrypoint": [], "cmd": [], "env": [], "workingDir": "", "user": "", "hostname": "", "tty": false, "openStdin": false,
     "labels": {}, "exposedPorts": [], "autoRemove": false, "readOnly": false, "privileged": false, "capAdd": [],
     "capDrop": [], "initProcess": false, "mounts": [], "ports": [], "publishAll": false, "network": "bridge",
     "memory": 0, "memorySwap": 0, "nanoCpus": 0, "pidsLimit": 0}
    """#

    /// The optional fields present as explicit nulls.
    static var nullRecord: String {
        let nulls = ["chainID", "stopSignal", "gpus", "securityOpt", "extraHosts", "networkAliases", "moreNetworks", "dns",
                     "dnsSearch", "dnsOptions", "ulimits", "shmSize", "platform", "cdiDevices", "attach", "logDriver", "logOpts",
                     "groupAdd", "ipcMode", "pidMode", "utsMode", "stopTimeout", "devices", "restartPolicy", "healthcheck", "shell"]
        return String(minimalRecord.dropLast()) + ", " + nulls.map { "\"\($0)\": null" }.joined(separator: ", ") + "}"
    }

    static let fullState = #"""
    {"status": "running", "pid": 2147483647, "monitorPid": 12, "monitorStartTime": 18446744073709551615, "exitCode": -1,
     "oomKilled": true, "startedAt": "2026-12-05T20:00:00Z", "finishedAt": "0001-01-01T00:00:00Z", "error": "caf\u00e9 \"x\"",
     "ipAddress": "10.0.0.2", "moreIPs": {"n1": "10.1.0.2"}, "gateway": "10.0.0.1", "macAddress": "02:42:0a:00:00:02",
     "ports": [{"hostIP": "", "hostPort": 0, "containerPort": 53, "proto": "udp"}], "restartCount": 4, "restarting": false,
     "manuallyStopped": true, "cgroupPaths": {"": "/sys/fs/cgroup/x"}, "ociRuntime": ["runc", "--root", "/run/x"],
     "health": {"status": "unhealthy", "failingStreak": 3, "log": [{"start": "s", "end": "e", "exitCode": -1, "output": "o\n"}]},
     "future": true}
    """#

    static func sameRecord(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let data = Data(text.utf8)
        let slow = try JSONDecoder().decode(ContainerRecord.self, from: data)
        let fast = try ContainerRecord.fastDecode(data)
        #expect(try canonical(fast) == canonical(slow), sourceLocation: sourceLocation)
    }

    static func sameState(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let data = Data(text.utf8)
        let slow = try JSONDecoder().decode(ContainerState.self, from: data)
        let fast = try ContainerState.fastDecode(data)
        #expect(try canonical(fast) == canonical(slow), sourceLocation: sourceLocation)
    }

    @Test func recordsDecodeAlikeBothWays() throws {
        for doc in [Self.fullRecord, Self.minimalRecord, Self.nullRecord] {
            try Self.sameRecord(doc)
            // and as the store writes it back (sorted keys, no whitespace)
            try Self.sameRecord(Self.canonical(JSONDecoder().decode(ContainerRecord.self, from: Data(doc.utf8))))
        }
    }

    @Test func statesDecodeAlikeBothWays() throws {
        try Self.sameState(Self.fullState)
        try Self.sameState(Self.canonical(ContainerState()))
        var s = ContainerState()
        s.health = HealthState()
        s.status = .exited
        try Self.sameState(Self.canonical(s))
    }

    /// Documents JSONDecoder rejects are rejected by the fast path too (so the store reports
    /// JSONDecoder's error, or `rawState` its default).
    @Test func badDocumentsAreRefusedByBoth() throws {
        let bad = [
            Self.minimalRecord.replacingOccurrences(of: #""tty": false"#, with: #""tty": "no""#),
            Self.minimalRecord.replacingOccurrences(of: #""tty": false,"#, with: ""),
            Self.minimalRecord.replacingOccurrences(of: #""tty": false"#, with: #""tty": null"#),
            Self.minimalRecord.replacingOccurrences(of: #""memory": 0"#, with: #""memory": 9223372036854775808"#),
            Self.minimalRecord.replacingOccurrences(of: #""size": 0"#, with: #""size": -1"#),
            Self.minimalRecord.replacingOccurrences(of: #""mounts": []"#,
                                                    with: #""mounts": [{"type": "nfs", "source": "", "destination": "/", "readOnly": false, "options": [], "anonymous": false}]"#),
            String(Self.minimalRecord.dropLast()),
        ]
        for doc in bad {
            let data = Data(doc.utf8)
            #expect(throws: (any Error).self, "\(doc)") { try JSONDecoder().decode(ContainerRecord.self, from: data) }
            #expect(throws: FastJSONFailure.self, "\(doc)") { try ContainerRecord.fastDecode(data) }
        }
        for doc in [Self.fullState.replacingOccurrences(of: #""status": "running""#, with: #""status": "paused""#),
                    Self.fullState.replacingOccurrences(of: #""exitCode": -1,"#, with: ""),
                    Self.fullState.replacingOccurrences(of: #""pid": 2147483647"#, with: #""pid": 2147483648"#)] {
            let data = Data(doc.utf8)
            #expect(throws: (any Error).self) { try JSONDecoder().decode(ContainerState.self, from: data) }
            #expect(throws: FastJSONFailure.self) { try ContainerState.fastDecode(data) }
        }
    }

    /// What the fast path refuses but JSONDecoder accepts still reads, through the store,
    /// as JSONDecoder reads it; a damaged record reports JSONDecoder's error.
    @Test func storeFallsBackToJSONDecoder() throws {
        let root = "/var/tmp/dbfast-\(getpid())-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try ContainerStore(root: root)
        let id = String(repeating: "c", count: 64)
        try FileManager.default.createDirectory(atPath: store.directory(id), withIntermediateDirectories: true)
        let refused = [
            // a duplicate key and a descriptor with urls: left to JSONDecoder
            Self.fullRecord.replacingOccurrences(of: #""tty": true,"#, with: #""tty": true, "tty": false,"#),
            Self.fullRecord.replacingOccurrences(of: #""size": 528,"#, with: #""size": 528, "urls": ["https://example.com/b"],"#),
        ]
        for doc in refused {
            let data = Data(doc.utf8)
            #expect(throws: FastJSONFailure.self) { try ContainerRecord.fastDecode(data) }
            try data.write(to: URL(fileURLWithPath: "\(store.directory(id))/config.json"))
            let slow = try JSONDecoder().decode(ContainerRecord.self, from: data)
            #expect(try Self.canonical(store.record(id)) == Self.canonical(slow))
        }
        // the id and name alone (name look-ups), fast or not, are JSONDecoder's
        struct IDAndName: Decodable { var id: String; var name: String }
        for doc in refused + [Self.fullRecord, Self.minimalRecord, #"{"id": "a\u00e9", "name": "n", "other": 1}"#] {
            try Data(doc.utf8).write(to: URL(fileURLWithPath: "\(store.directory(id))/config.json"))
            let slow = try JSONDecoder().decode(IDAndName.self, from: Data(doc.utf8))
            let got = try #require(store.idAndName(id))
            #expect(got.id == slow.id && got.name == slow.name)
        }
        try Data(#"{"id": 1, "name": "n"}"#.utf8).write(to: URL(fileURLWithPath: "\(store.directory(id))/config.json"))
        #expect(store.idAndName(id) == nil)
        let state = Self.fullState.replacingOccurrences(of: #""pid": 2147483647,"#, with: #""pid": 2147483647, "pid": 7,"#)
        #expect(throws: FastJSONFailure.self) { try ContainerState.fastDecode(Data(state.utf8)) }
        try Data(state.utf8).write(to: URL(fileURLWithPath: "\(store.directory(id))/state.json"))
        #expect(try Self.canonical(store.rawState(id)) == Self.canonical(JSONDecoder().decode(ContainerState.self, from: Data(state.utf8))))

        let damaged = Data(Self.minimalRecord.replacingOccurrences(of: #""tty": false"#, with: #""tty": 1"#).utf8)
        try damaged.write(to: URL(fileURLWithPath: "\(store.directory(id))/config.json"))
        var expected = ""
        do { _ = try JSONDecoder().decode(ContainerRecord.self, from: damaged) } catch { expected = "\(error)" }
        #expect(!expected.isEmpty)
        do {
            _ = try store.record(id)
            Issue.record("a damaged record was read")
        } catch {
            #expect("\(error)".contains(expected))
        }
    }

    /// The records and states the CLI writes decode alike both ways.
    @Test func documentsTheStoreWritesDecodeAlike() throws {
        try #require(Scenario.canRun, "needs root and busybox-static")
        let s = try Scenario(91)
        defer { s.cleanup() }
        try s.makeBusyboxImage()
        try s.ok(["create", "--network", "none", "--name", "plain", "busybox:test", "true"])
        try s.ok(["create", "--network", "none", "--name", "flags", "--rm", "-e", "A=\"q\"\\", "-l", "k=v\u{1F600}",
                  "--ulimit", "nofile=1024:2048", "--restart", "no", "--health-cmd", "true", "--dns", "10.0.0.53",
                  "--add-host", "h:10.0.0.1", "--stop-timeout", "3", "-w", "/tmp", "busybox:test", "sh", "-c", "echo \"x\""])
        try s.ok(["run", "--network", "none", "--name", "ran", "busybox:test", "true"])
        let store = try ContainerStore(root: s.root)
        #expect(store.ids().count == 3)
        for id in store.ids() {
            let record = try String(contentsOfFile: "\(store.directory(id))/config.json", encoding: .utf8)
            try Self.sameRecord(record)
            if let state = try? String(contentsOfFile: "\(store.directory(id))/state.json", encoding: .utf8) {
                try Self.sameState(state)
            }
        }
    }
}
