import Foundation
import Testing
@testable import Runtime
import SystemSupport

/// The fast config.json decoder must give exactly what JSONDecoder gives, or refuse.
@Suite("fast spec decoder")
struct FastDecodeTests {
    /// Every optional section filled, with escapes, non-ASCII text, integer extremes,
    /// explicit nulls and keys the model does not know (ignored, as by JSONDecoder).
    static let fullSpec = #"""
    {
      "ociVersion": "1.2.0",
      "unknownTopLevel": {"nested": [1, 2.5e3, -0.5, true, null, "x"]},
      "process": {
        "terminal": true,
        "consoleSize": {"height": 40, "width": 18446744073709551615},
        "user": {"uid": 4294967295, "gid": 0, "umask": 18, "additionalGids": [5, 10, 4294967294], "username": "r\u00f6\u00f6t"},
        "args": ["sh", "-c", "echo \"hi\" \\ \/ \b\f\n\r\t \u0000 \u00e9 \ud83d\ude00 \u20AC caf\u00e9 ü 😀"],
        "commandLine": "sh -c true",
        "env": ["PATH=/usr/bin:/bin", "EMPTY=", "UNI=\u65e5\u672c"],
        "cwd": "/w\u00f6rk",
        "capabilities": {
          "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL"], "effective": ["CAP_KILL"], "inheritable": [],
          "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"], "ambient": ["CAP_NET_BIND_SERVICE"]
        },
        "rlimits": [
          {"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1024},
          {"type": "RLIMIT_CORE", "hard": 18446744073709551615, "soft": 0}
        ],
        "noNewPrivileges": false,
        "apparmorProfile": "unconfined",
        "oomScoreAdj": -1000,
        "selinuxLabel": "system_u:system_r:svirt_lxc_net_t:s0:c124,c675",
        "ioPriority": {"class": "IOPRIO_CLASS_IDLE"}
      },
      "root": {"path": "rootfs", "readonly": true},
      "hostname": "h\u00f6st",
      "domainname": "example.org",
      "unusedNull": null,
      "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro", "nosuid"],
         "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
         "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 1}]},
        {"destination": "/tmp"}
      ],
      "hooks": {
        "prestart": [{"path": "/bin/pre", "args": ["pre", "a"], "env": ["K=V"], "timeout": 5}],
        "createRuntime": [{"path": "/bin/cr"}, {"path": "/bin/cr2", "args": ["cr2"], "env": ["A=1"], "timeout": 1}],
        "createContainer": [{"path": "/bin/cc", "args": [], "env": [], "timeout": 0}],
        "startContainer": [{"path": "/bin/sc", "args": ["sc"], "env": ["B="], "timeout": 3}],
        "poststart": [{"path": "/bin/ps", "args": ["ps"], "timeout": 9}, {"path": "/bin/ps2", "env": []}],
        "poststop": [{"path": "/bin/stop", "args": ["stop", "now"], "env": ["C=\\"], "timeout": 2147483648}]
      },
      "annotations": {"org.example.k": "v", "esc\"aped": "line\nbreak", "": "", "\u00e9": "\ud834\udd1e"},
      "linux": {
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}, {"containerID": 1, "hostID": 100000, "size": 65535}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"},
        "resources": {
          "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"},
            {"allow": true, "type": "b", "major": -1, "minor": -1}
          ],
          "memory": {"limit": 536870912, "reservation": 268435456, "swap": -1, "kernel": 0, "kernelTCP": 9223372036854775807,
                     "swappiness": 60, "disableOOMKiller": true, "useHierarchy": false, "checkBeforeUpdate": true},
          "cpu": {"shares": 1024, "quota": -9223372036854775808, "period": 100000, "realtimeRuntime": 950000,
                  "realtimePeriod": 1000000, "cpus": "0-1", "mems": "0", "idle": 1, "burst": 5},
          "pids": {"limit": 32768},
          "blockIO": {
            "weight": 500, "leafWeight": 65535,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 300, "leafWeight": 10}, {"major": 8, "minor": 16}],
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
            "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 18446744073709551615}],
            "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 1000}],
            "throttleWriteIOPSDevice": []
          },
          "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}],
          "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}, {"name": "lo", "priority": 0}]},
          "unified": {"memory.high": "max", "io.weight": "default 100"}
        },
        "cgroupsPath": "/dockbuild/c\u00e9",
        "namespaces": [
          {"type": "pid"}, {"type": "network", "path": "/proc/1234/ns/net"}, {"type": "mount"}, {"type": "ipc"},
          {"type": "uts"}, {"type": "user", "path": null}, {"type": "cgroup"}, {"type": "time"}
        ],
        "devices": [
          {"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0},
          {"type": "b", "path": "/dev/sda", "major": 8, "minor": 0}
        ],
        "seccomp": {
          "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
          "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
          "flags": ["SECCOMP_FILTER_FLAG_LOG"],
          "listenerPath": "/run/l.sock", "listenerMetadata": "m\\u00e9ta",
          "syscalls": [
            {"names": ["getcwd", "chmod"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                      {"index": 1, "value": 18446744073709551615, "valueTwo": 4294967295, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
          ]
        },
        "rootfsPropagation": "rslave",
        "maskedPaths": ["/proc/kcore", "/sys/firmware"],
        "readonlyPaths": ["/proc/sys"],
        "mountLabel": "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811",
        "personality": {"domain": "LINUX32", "flags": []},
        "timeOffsets": {"monotonic": {"secs": -86400, "nanosecs": 999999999}, "boottime": {"secs": 1}},
        "intelRdt": {"closID": "x"}
      }
    }
    """#

    /// Records for each property path (array indices and dictionary keys folded) whether
    /// some occurrence holds a value.
    static func walk(_ value: Any, path: String, into seen: inout [String: Bool]) {
        let m = Mirror(reflecting: value)
        switch m.displayStyle {
        case .optional:
            seen[path] = (seen[path] ?? false) || !m.children.isEmpty
            if let inner = m.children.first { walk(inner.value, path: path, into: &seen) }
        case .struct:
            for c in m.children { walk(c.value, path: path + "." + (c.label ?? "?"), into: &seen) }
        case .collection:
            for c in m.children { walk(c.value, path: path + "[]", into: &seen) }
        case .dictionary:
            for c in m.children {
                if let v = Mirror(reflecting: c.value).children.dropFirst().first { walk(v.value, path: path + "{}", into: &seen) }
            }
        default: break
        }
    }

    /// JSONDecoder's answer, the reference.
    func reference(_ data: Data) throws -> RuntimeSpec {
        try JSONDecoder().decode(RuntimeSpec.self, from: data)
    }

    func encoded(_ spec: RuntimeSpec, pretty: Bool) throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys]
        return try enc.encode(spec)
    }

    @Test("runc default specs decode as with JSONDecoder", arguments: [(false, false), (true, false), (false, true), (true, true)])
    func runcDefaults(terminal: Bool, rootless: Bool) throws {
        let spec = SpecGenerator.runcDefault(args: ["sh", "-c", "echo \"$HOME\" ü"], terminal: terminal, rootless: rootless)
        for pretty in [false, true] {
            let data = try encoded(spec, pretty: pretty)
            let fast = try RuntimeSpec.fastDecode(data)
            #expect(fast == (try reference(data)))
            #expect(fast == spec)
        }
    }

    @Test("docker default spec decodes as with JSONDecoder")
    func dockerDefault() throws {
        let spec = SpecGenerator.dockerDefault(args: ["/bin/true"], env: ["A=b c"], cwd: "/srv",
                                               user: .init(uid: 1000, gid: 1000, umask: 0o22, additionalGids: [4, 27]))
        let data = try encoded(spec, pretty: false)
        #expect(try RuntimeSpec.fastDecode(data) == spec)
        #expect(try RuntimeSpec.fastDecode(data) == (try reference(data)))
    }

    @Test("every section filled, with escapes, unicode and extreme integers")
    func fullSpec() throws {
        let data = Data(Self.fullSpec.utf8)
        let fast = try RuntimeSpec.fastDecode(data)
        let ref = try reference(data)
        #expect(fast == ref)
        // Spot checks that the fields are really there (so equality is not between two empties).
        #expect(fast.process?.args?[2] == "echo \"hi\" \\ / \u{8}\u{c}\n\r\t \u{0} é 😀 € café ü 😀")
        #expect(fast.process?.user.uid == UInt32.max)
        #expect(fast.process?.consoleSize?.width == UInt.max)
        #expect(fast.process?.rlimits?.last?.hard == UInt64.max)
        #expect(fast.process?.oomScoreAdj == -1000)
        #expect(fast.linux?.resources?.cpu?.quota == Int64.min)
        #expect(fast.linux?.resources?.memory?.kernelTCP == Int64.max)
        #expect(fast.linux?.seccomp?.syscalls?[1].args?[1].value == UInt64.max)
        #expect(fast.linux?.timeOffsets?["monotonic"]?.nanosecs == 999_999_999)
        #expect(fast.annotations?["\u{e9}"] == "\u{1D11E}")
        #expect(fast.hooks?.poststop?.first?.timeout == 2_147_483_648)
        #expect(fast.linux?.namespaces?.count == 8)
        #expect(fast.domainname == "example.org")
        // Every optional field of the model is set somewhere in this spec, so that a field
        // the fast decoder forgets cannot hide behind nil == nil (new model fields land here too).
        var seen: [String: Bool] = [:]
        Self.walk(fast, path: "spec", into: &seen)
        #expect(seen.filter { !$0.value }.keys.sorted() == [])
        #expect(seen.count > 100)
        // And the same after a round trip through JSONEncoder.
        let again = try encoded(ref, pretty: true)
        #expect(try RuntimeSpec.fastDecode(again) == ref)
    }

    @Test("a spec written by runc spec decodes as with JSONDecoder")
    func runcSpecFile() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/sbin/runc"), "runc is missing; apt-get install runc")
        let dir = FileManager.default.temporaryDirectory.path + "/fast-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for rootless in [false, true] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/sbin/runc")
            p.arguments = ["spec", "--bundle", dir] + (rootless ? ["--rootless"] : [])
            try? FileManager.default.removeItem(atPath: dir + "/config.json")
            try p.run()
            p.waitUntilExit()
            let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))
            let fast = try RuntimeSpec.fastDecode(data)
            #expect(fast == (try reference(data)))
            #expect(fast.linux?.maskedPaths?.isEmpty == false)
            let loaded = try Runtime.loadSpecAndBytes(bundle: dir)
            #expect(loaded.spec == fast)
            #expect(loaded.bytes == data)
        }
    }

    @Test("the parser decodes strings, numbers and structure exactly")
    func parserValues() throws {
        let v = try FastJSON.parse(Data(#" { "a" : [ "\u0041\u00DF\uD83D\uDE00\/" , -12 , 0.1 , 1E+2 , true , false , null , { } , [ ] ] } "#.utf8))
        #expect(v == .object(["a": .array([.string("Aß😀/"), .number("-12"), .number("0.1"), .number("1E+2"),
                                           .bool(true), .bool(false), .null, .object([:]), .array([])])]))
        #expect(try FastJSON.number("0.1").double() == 0.1)
        #expect(try FastJSON.number("1E+2").double() == 100)
        #expect(try FastJSON.number("-9223372036854775808").int64() == Int64.min)
        #expect(try FastJSON.number("18446744073709551615").uint64() == UInt64.max)
        #expect(try FastJSON.number("-2147483648").int32() == Int32.min)
        #expect(try FastJSON.number("65535").uint16() == UInt16.max)
        for (text, conv) in [("18446744073709551616", "u64"), ("-1", "u64"), ("9223372036854775808", "i64"),
                             ("-9223372036854775809", "i64"), ("4294967296", "u32"), ("2147483648", "i32"),
                             ("65536", "u16"), ("1.0", "i64"), ("1e2", "u64"), ("-0", "i64")] {
            let n = FastJSON.number(text)
            #expect(throws: FastJSONFailure.self, "\(text) as \(conv)") {
                switch conv {
                case "u64": _ = try n.uint64()
                case "i64": _ = try n.int64()
                case "u32": _ = try n.uint32()
                case "i32": _ = try n.int32()
                default: _ = try n.uint16()
                }
            }
        }
    }

    @Test("invalid JSON is refused by the fast path (and by JSONDecoder)", arguments: [
        "", " ", "{", "}", "{\"ociVersion\":\"1\"", "{\"ociVersion\":\"1\"} x",
        "{\"ociVersion\":'1'}", "{ociVersion:\"1\"}", "{\"ociVersion\":\"1\" \"hostname\":\"h\"}",
        "{\"ociVersion\":\"1\",\"process\":{\"user\":{\"uid\":01,\"gid\":0},\"cwd\":\"/\"}}",
        "{\"ociVersion\":\"1\",\"hostname\":\"a\tb\"}", "{\"ociVersion\":\"\\x\"}", "{\"ociVersion\":\"\\u12\"}",
        "{\"ociVersion\":\"\\ud800\"}", "{\"ociVersion\":\"\\udc00x\"}", "{\"ociVersion\":\"\\ud800\\u0041\"}",
        "{\"ociVersion\":\"1\",\"hostname\":tru}", "{\"ociVersion\":\"1\",\"mounts\":[1,]}",
        "{\"ociVersion\":\"1\",\"linux\":{\"resources\":{\"pids\":{\"limit\":-}}}}",
        "{\"ociVersion\":\"1\",\"linux\":{\"resources\":{\"pids\":{\"limit\":1.}}}}",
        "{\"ociVersion\":\"1\",\"linux\":{\"resources\":{\"pids\":{\"limit\":1e}}}}",
    ])
    func invalidJSON(text: String) throws {
        let data = Data(text.utf8)
        #expect(throws: FastJSONFailure.self) { try RuntimeSpec.fastDecode(data) }
        #expect(throws: (any Error).self) { try reference(data) }
    }

    @Test("invalid UTF-8 and over-deep nesting are refused")
    func invalidBytes() throws {
        for bad: [UInt8] in [[0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0xFF], [0x80]] {
            let data = Data("{\"ociVersion\":\"".utf8) + Data(bad) + Data("\"}".utf8)
            #expect(throws: FastJSONFailure.self, "\(bad)") { try RuntimeSpec.fastDecode(data) }
        }
        let deep = "{\"ociVersion\":\"1\",\"x\":" + String(repeating: "[", count: 300) + String(repeating: "]", count: 300) + "}"
        #expect(throws: FastJSONFailure.self) { try RuntimeSpec.fastDecode(Data(deep.utf8)) }
        // Valid multi-byte text passes.
        let ok = Data("{\"ociVersion\":\"\u{7FF}\u{800}\u{FFFF}\u{10000}\u{10FFFF}\"}".utf8)
        #expect(try RuntimeSpec.fastDecode(ok).ociVersion == "\u{7FF}\u{800}\u{FFFF}\u{10000}\u{10FFFF}")
    }

    @Test("wrong types and missing fields are refused", arguments: [
        #"{"ociVersion": 1}"#,
        #"{}"#,
        #"[]"#,
        #"{"ociVersion": "1", "process": {"user": {"uid": "0", "gid": 0}, "cwd": "/"}}"#,
        #"{"ociVersion": "1", "process": {"user": {"uid": 0, "gid": 0}}}"#,
        #"{"ociVersion": "1", "process": {"user": {"uid": -1, "gid": 0}, "cwd": "/"}}"#,
        #"{"ociVersion": "1", "process": {"user": {"uid": 4294967296, "gid": 0}, "cwd": "/"}}"#,
        #"{"ociVersion": "1", "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "terminal": 1}}"#,
        #"{"ociVersion": "1", "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["a", null]}}"#,
        #"{"ociVersion": "1", "mounts": {"destination": "/"}}"#,
        #"{"ociVersion": "1", "mounts": [{"type": "proc"}]}"#,
        #"{"ociVersion": "1", "annotations": {"a": 1}}"#,
        #"{"ociVersion": "1", "root": {"path": null}}"#,
        #"{"ociVersion": "1", "linux": {"resources": {"blockIO": {"weight": 65536}}}}"#,
        #"{"ociVersion": "1", "linux": {"resources": {"pids": {}}}}"#,
        #"{"ociVersion": "1", "linux": {"timeOffsets": []}}"#,
        #"{"ociVersion": "1", "linux": {"timeOffsets": {"boottime": {"secs": "1"}}}}"#,
        #"{"ociVersion": "1", "linux": {"seccomp": {"defaultAction": "A", "syscalls": [{"names": ["x"], "action": "B", "args": [{"index": 0, "value": 1}]}]}}}"#,
        #"{"ociVersion": "1", "linux": {"namespaces": [{"path": "/x"}]}}"#,
        #"{"ociVersion": "1", "linux": {"devices": [{"type": "c", "path": "/dev/x", "major": 1.5}]}}"#,
    ])
    func wrongTypes(text: String) throws {
        let data = Data(text.utf8)
        #expect(throws: FastJSONFailure.self) { try RuntimeSpec.fastDecode(data) }
        #expect(throws: (any Error).self) { try reference(data) }
    }

    /// Writes config.json into a fresh dir and returns the dir.
    func bundle(_ text: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.path + "/fast-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        return dir
    }

    @Test("a refused spec gets JSONDecoder's error message")
    func fallbackMessage() throws {
        let dir = try bundle(#"{"ociVersion": "1", "process": {"user": {"uid": "0", "gid": 0}, "cwd": "/"}}"#)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let err = try #require(throws: RuntimeError.self) { try Runtime.loadSpecAndBytes(bundle: dir) }
        #expect("\(err)".contains("\(dir)/config.json: wrong type at process.user.uid"))

        let dir2 = try bundle(#"{"ociVersion": "1", "process": {"user": {"uid": 0, "gid": 0}}}"#)
        defer { try? FileManager.default.removeItem(atPath: dir2) }
        let err2 = try #require(throws: RuntimeError.self) { try Runtime.loadSpecAndBytes(bundle: dir2) }
        #expect("\(err2)".contains("\(dir2)/config.json: missing process.cwd"))
    }

    @Test("what only the fast path refuses is decoded by JSONDecoder instead", arguments: [
        // Duplicate keys: which one wins is JSONDecoder's choice.
        #"{"ociVersion": "1", "hostname": "first", "hostname": "second"}"#,
        // JSONDecoder tolerates trailing commas; strict JSON does not.
        #"{"ociVersion": "1", "hostname": "h",}"#,
        #"{"ociVersion": "1", "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["a",]}}"#,
        // Integers written as fractions, exponents or negative zero.
        #"{"ociVersion": "1", "process": {"user": {"uid": 1.0, "gid": 0}, "cwd": "/"}}"#,
        #"{"ociVersion": "1", "process": {"user": {"uid": 1e3, "gid": 0}, "cwd": "/"}}"#,
        #"{"ociVersion": "1", "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "oomScoreAdj": -0}}"#,
        // A byte order mark.
        "\u{FEFF}{\"ociVersion\": \"1\"}",
    ])
    func fallbackDecodes(text: String) throws {
        let data = Data(text.utf8)
        #expect(throws: FastJSONFailure.self) { try RuntimeSpec.fastDecode(data) }
        let dir = try bundle(text)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let viaDecoder = Result { try reference(data) }
        let viaLoad = Result { try Runtime.loadSpecAndBytes(bundle: dir).spec }
        switch (viaDecoder, viaLoad) {
        case (.success(let a), .success(let b)): #expect(a == b)
        case (.failure, .failure): break
        default: Issue.record("loadSpecAndBytes gave \(viaLoad), JSONDecoder \(viaDecoder)")
        }
    }

    /// state.json, in both forms the runtime writes (config.json's own bytes spliced in by
    /// create; the whole record encoded after update), reads back the same both ways.
    @Test func stateRecords() throws {
        let b = try Bundle.make()
        defer { b.cleanup() }
        try b.write(b.spec(["sleep", "100"]))
        _ = try b.runtime.create(id: "rec", bundle: b.dir)
        defer { try? b.runtime.delete(id: "rec", force: true) }
        func check(_ form: String) throws {
            let data = try Data(contentsOf: URL(fileURLWithPath: b.runtime.dir("rec") + "/state.json"))
            let fast = try ContainerRecord.fastDecode(data)
            let slow = try JSONDecoder().decode(ContainerRecord.self, from: data)
            #expect(fast.id == "rec" && fast.pid > 0 && fast.startTime > 0 && fast.cgroup != nil, "\(form)")
            #expect(fast.id == slow.id && fast.bundle == slow.bundle && fast.rootfs == slow.rootfs && fast.pid == slow.pid
                    && fast.startTime == slow.startTime && fast.created == slow.created, "\(form)")
            #expect(fast.spec == slow.spec && fast.cgroup == slow.cgroup, "\(form)")
            #expect(fast.spec.process?.args == ["sleep", "100"], "\(form)")
        }
        try check("spliced")
        var record = try b.runtime.loadRecord("rec")
        record.specJSON = nil
        try b.runtime.saveRecord(record)
        try check("encoded")
        #expect(try b.runtime.state(id: "rec").status == "created")
        // A damaged record is refused by both decoders, with the runtime's own message
        // (then the good one goes back, so that delete can stop the waiting container).
        let path = b.runtime.dir("rec") + "/state.json"
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        try Data("{\"id\":\"rec\",".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: RuntimeError.self) { try b.runtime.state(id: "rec") }
        try good.write(to: URL(fileURLWithPath: path))
        try b.runtime.delete(id: "rec", force: true)
        #expect(!FileManager.default.fileExists(atPath: b.runtime.dir("rec")))
    }
}
