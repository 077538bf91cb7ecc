// A decoder for config.json that avoids Codable on the container start path.
//
// JSONDecoder spends most of its ~1.5 ms per spec in the Swift runtime (generic
// metadata and conformance look-ups for ~30 Codable types), not in parsing. This
// file maps the plain tree of SystemSupport's `FastJSON` field by field; whatever
// the parser or the mapping is unsure about makes it fail, and the caller then
// decodes with JSONDecoder, so results and error messages never differ from it.

import Foundation
import SystemSupport

// MARK: spec mapping (the same keys as the synthesized Codable conformances)

extension RuntimeSpec {
    /// Decodes config.json without Codable; throws `FastJSONFailure` for anything
    /// JSONDecoder should judge instead (see the top of this file).
    static func fastDecode(_ data: Data) throws -> RuntimeSpec {
        try RuntimeSpec(fast: FastJSON.parse(data))
    }

    init(fast json: FastJSON) throws {
        let o = try json.object()
        self.init(ociVersion: try o.required("ociVersion").string())
        if let v = try o.object("process") { process = try Process(fast: v) }
        if let v = try o.object("root") { root = try Root(fast: v) }
        hostname = try o.string("hostname")
        domainname = try o.string("domainname")
        if let a = try o.array("mounts") {
            var out: [Mount] = []
            out.reserveCapacity(a.count)
            for v in a { out.append(try Mount(fast: v.object())) }
            mounts = out
        }
        if let v = try o.object("hooks") { hooks = try Hooks(fast: v) }
        annotations = try o["annotations"]?.stringMap()
        if let v = try o.object("linux") { linux = try Linux(fast: v) }
    }
}

extension RuntimeSpec.Root {
    init(fast o: FastObject) throws {
        self.init(path: try o.required("path").string(), readonly: try o.bool("readonly"))
    }
}

extension RuntimeSpec.IDMapping {
    init(fast o: FastObject) throws {
        self.init(containerID: try o.required("containerID").uint32(),
                  hostID: try o.required("hostID").uint32(),
                  size: try o.required("size").uint32())
    }

    static func list(_ v: FastJSON?) throws -> [Self]? {
        guard let a = try v?.array() else { return nil }
        var out: [Self] = []
        out.reserveCapacity(a.count)
        for m in a { out.append(try Self(fast: m.object())) }
        return out
    }
}

extension RuntimeSpec.Mount {
    init(fast o: FastObject) throws {
        self.init(destination: try o.required("destination").string(), type: try o.string("type"),
                  source: try o.string("source"), options: try o.strings("options"))
        uidMappings = try RuntimeSpec.IDMapping.list(o["uidMappings"])
        gidMappings = try RuntimeSpec.IDMapping.list(o["gidMappings"])
    }
}

extension RuntimeSpec.Process {
    init(fast o: FastObject) throws {
        self.init(terminal: try o.bool("terminal"),
                  user: try RuntimeSpec.User(fast: o.required("user").object()),
                  args: try o.strings("args"),
                  env: try o.strings("env"),
                  cwd: try o.required("cwd").string(),
                  capabilities: try o.object("capabilities").map { try RuntimeSpec.Capabilities(fast: $0) },
                  noNewPrivileges: try o.bool("noNewPrivileges"),
                  oomScoreAdj: try o.int("oomScoreAdj"))
        if let c = try o.object("consoleSize") {
            consoleSize = RuntimeSpec.ConsoleSize(height: try c.required("height").uint(), width: try c.required("width").uint())
        }
        commandLine = try o.string("commandLine")
        if let a = try o.array("rlimits") {
            var out: [RuntimeSpec.Rlimit] = []
            out.reserveCapacity(a.count)
            for v in a {
                let r = try v.object()
                out.append(RuntimeSpec.Rlimit(type: try r.required("type").string(),
                                              hard: try r.required("hard").uint64(),
                                              soft: try r.required("soft").uint64()))
            }
            rlimits = out
        }
        apparmorProfile = try o.string("apparmorProfile")
        selinuxLabel = try o.string("selinuxLabel")
    }
}

extension RuntimeSpec.User {
    init(fast o: FastObject) throws {
        self.init(uid: try o.required("uid").uint32(), gid: try o.required("gid").uint32(),
                  umask: try o.uint32("umask"), additionalGids: try o["additionalGids"]?.uint32s())
        username = try o.string("username")
    }
}

extension RuntimeSpec.Capabilities {
    init(fast o: FastObject) throws {
        self.init(bounding: try o.strings("bounding"), effective: try o.strings("effective"),
                  inheritable: try o.strings("inheritable"), permitted: try o.strings("permitted"),
                  ambient: try o.strings("ambient"))
    }
}

extension RuntimeSpec.Hooks {
    init(fast o: FastObject) throws {
        self.init()
        prestart = try Self.list(o["prestart"])
        createRuntime = try Self.list(o["createRuntime"])
        createContainer = try Self.list(o["createContainer"])
        startContainer = try Self.list(o["startContainer"])
        poststart = try Self.list(o["poststart"])
        poststop = try Self.list(o["poststop"])
    }

    private static func list(_ v: FastJSON?) throws -> [RuntimeSpec.Hook]? {
        guard let a = try v?.array() else { return nil }
        var out: [RuntimeSpec.Hook] = []
        out.reserveCapacity(a.count)
        for h in a {
            let o = try h.object()
            out.append(RuntimeSpec.Hook(path: try o.required("path").string(), args: try o.strings("args"),
                                        env: try o.strings("env"), timeout: try o.int("timeout")))
        }
        return out
    }
}

extension RuntimeSpec.Linux {
    init(fast o: FastObject) throws {
        self.init()
        uidMappings = try RuntimeSpec.IDMapping.list(o["uidMappings"])
        gidMappings = try RuntimeSpec.IDMapping.list(o["gidMappings"])
        sysctl = try o["sysctl"]?.stringMap()
        if let v = try o.object("resources") { resources = try RuntimeSpec.Resources(fast: v) }
        cgroupsPath = try o.string("cgroupsPath")
        if let a = try o.array("namespaces") {
            var out: [RuntimeSpec.Namespace] = []
            out.reserveCapacity(a.count)
            for v in a {
                let n = try v.object()
                out.append(RuntimeSpec.Namespace(type: try n.required("type").string(), path: try n.string("path")))
            }
            namespaces = out
        }
        if let a = try o.array("devices") {
            var out: [RuntimeSpec.Device] = []
            out.reserveCapacity(a.count)
            for v in a {
                let d = try v.object()
                out.append(RuntimeSpec.Device(type: try d.required("type").string(), path: try d.required("path").string(),
                                              major: try d.int64("major"), minor: try d.int64("minor"),
                                              fileMode: try d.uint32("fileMode"), uid: try d.uint32("uid"),
                                              gid: try d.uint32("gid")))
            }
            devices = out
        }
        if let v = try o.object("seccomp") { seccomp = try RuntimeSpec.Seccomp(fast: v) }
        rootfsPropagation = try o.string("rootfsPropagation")
        maskedPaths = try o.strings("maskedPaths")
        readonlyPaths = try o.strings("readonlyPaths")
        mountLabel = try o.string("mountLabel")
        if let p = try o.object("personality") {
            personality = RuntimeSpec.Personality(domain: try p.required("domain").string(), flags: try p.strings("flags"))
        }
        if case .object(let offsets)? = o["timeOffsets"] {
            var out: [String: RuntimeSpec.TimeOffset] = [:]
            out.reserveCapacity(offsets.count)
            for (clock, v) in offsets {
                let t = try v.object()
                out[clock] = RuntimeSpec.TimeOffset(secs: try t.int64("secs"), nanosecs: try t.uint32("nanosecs"))
            }
            timeOffsets = out
        } else if o["timeOffsets"] != nil {
            throw FastJSONFailure("timeOffsets is not an object")
        }
    }
}

extension RuntimeSpec.Resources {
    init(fast o: FastObject) throws {
        self.init()
        if let a = try o.array("devices") {
            var out: [RuntimeSpec.DeviceCgroup] = []
            out.reserveCapacity(a.count)
            for v in a {
                let d = try v.object()
                out.append(RuntimeSpec.DeviceCgroup(allow: try d.required("allow").bool(), type: try d.string("type"),
                                                    major: try d.int64("major"), minor: try d.int64("minor"),
                                                    access: try d.string("access")))
            }
            devices = out
        }
        if let m = try o.object("memory") {
            var mem = RuntimeSpec.Memory(limit: try m.int64("limit"), reservation: try m.int64("reservation"), swap: try m.int64("swap"))
            mem.kernel = try m.int64("kernel")
            mem.kernelTCP = try m.int64("kernelTCP")
            mem.swappiness = try m.uint64("swappiness")
            mem.disableOOMKiller = try m.bool("disableOOMKiller")
            mem.useHierarchy = try m.bool("useHierarchy")
            memory = mem
        }
        if let c = try o.object("cpu") {
            var v = RuntimeSpec.CPU(shares: try c.uint64("shares"), quota: try c.int64("quota"), period: try c.uint64("period"),
                                    cpus: try c.string("cpus"), mems: try c.string("mems"))
            v.realtimeRuntime = try c.int64("realtimeRuntime")
            v.realtimePeriod = try c.uint64("realtimePeriod")
            v.idle = try c.int64("idle")
            cpu = v
        }
        if let p = try o.object("pids") { pids = RuntimeSpec.Pids(limit: try p.required("limit").int64()) }
        if let b = try o.object("blockIO") { blockIO = try RuntimeSpec.BlockIO(fast: b) }
        if let a = try o.array("hugepageLimits") {
            var out: [RuntimeSpec.HugepageLimit] = []
            out.reserveCapacity(a.count)
            for v in a {
                let h = try v.object()
                out.append(RuntimeSpec.HugepageLimit(pageSize: try h.required("pageSize").string(), limit: try h.required("limit").uint64()))
            }
            hugepageLimits = out
        }
        if let n = try o.object("network") {
            var prios: [RuntimeSpec.InterfacePriority]?
            if let a = try n.array("priorities") {
                var out: [RuntimeSpec.InterfacePriority] = []
                out.reserveCapacity(a.count)
                for v in a {
                    let p = try v.object()
                    out.append(RuntimeSpec.InterfacePriority(name: try p.required("name").string(), priority: try p.required("priority").uint32()))
                }
                prios = out
            }
            network = RuntimeSpec.Network(classID: try n.uint32("classID"), priorities: prios)
        }
        unified = try o["unified"]?.stringMap()
    }
}

extension RuntimeSpec.BlockIO {
    init(fast o: FastObject) throws {
        self.init()
        weight = try o.uint16("weight")
        leafWeight = try o.uint16("leafWeight")
        if let a = try o.array("weightDevice") {
            var out: [RuntimeSpec.WeightDevice] = []
            out.reserveCapacity(a.count)
            for v in a {
                let d = try v.object()
                out.append(RuntimeSpec.WeightDevice(major: try d.required("major").int64(), minor: try d.required("minor").int64(),
                                                    weight: try d.uint16("weight"), leafWeight: try d.uint16("leafWeight")))
            }
            weightDevice = out
        }
        throttleReadBpsDevice = try Self.throttles(o["throttleReadBpsDevice"])
        throttleWriteBpsDevice = try Self.throttles(o["throttleWriteBpsDevice"])
        throttleReadIOPSDevice = try Self.throttles(o["throttleReadIOPSDevice"])
        throttleWriteIOPSDevice = try Self.throttles(o["throttleWriteIOPSDevice"])
    }

    private static func throttles(_ v: FastJSON?) throws -> [RuntimeSpec.ThrottleDevice]? {
        guard let a = try v?.array() else { return nil }
        var out: [RuntimeSpec.ThrottleDevice] = []
        out.reserveCapacity(a.count)
        for t in a {
            let d = try t.object()
            out.append(RuntimeSpec.ThrottleDevice(major: try d.required("major").int64(), minor: try d.required("minor").int64(),
                                                  rate: try d.required("rate").uint64()))
        }
        return out
    }
}

extension RuntimeSpec.Seccomp {
    init(fast o: FastObject) throws {
        self.init(defaultAction: try o.required("defaultAction").string(), defaultErrnoRet: try o.uint32("defaultErrnoRet"),
                  architectures: try o.strings("architectures"))
        flags = try o.strings("flags")
        listenerPath = try o.string("listenerPath")
        listenerMetadata = try o.string("listenerMetadata")
        if let a = try o.array("syscalls") {
            var out: [RuntimeSpec.Syscall] = []
            out.reserveCapacity(a.count)
            for v in a {
                let s = try v.object()
                var args: [RuntimeSpec.SyscallArg]?
                if let al = try s.array("args") {
                    var list: [RuntimeSpec.SyscallArg] = []
                    list.reserveCapacity(al.count)
                    for x in al {
                        let g = try x.object()
                        list.append(RuntimeSpec.SyscallArg(index: try g.required("index").uint32(), value: try g.required("value").uint64(),
                                                           valueTwo: try g.uint64("valueTwo"), op: try g.required("op").string()))
                    }
                    args = list
                }
                out.append(RuntimeSpec.Syscall(names: try s.required("names").strings(), action: try s.required("action").string(),
                                               errnoRet: try s.uint32("errnoRet"), args: args))
            }
            syscalls = out
        }
    }
}

// MARK: state.json (start, state, kill, delete read it back in a process of their own)

extension ContainerRecord {
    /// Decodes state.json without Codable; throws `FastJSONFailure` for anything
    /// JSONDecoder should judge instead.
    static func fastDecode(_ data: Data) throws -> ContainerRecord {
        let o = try FastJSON.parse(data).object()
        return ContainerRecord(id: try o.required("id").string(), bundle: try o.required("bundle").string(),
                               rootfs: try o.required("rootfs").string(), pid: try o.required("pid").int32(),
                               startTime: try o.required("startTime").uint64(), created: try o.required("created").string(),
                               spec: try RuntimeSpec(fast: o.required("spec")),
                               cgroup: try o.object("cgroup").map { try Cgroup(fast: $0) })
    }
}

extension Cgroup {
    init(fast o: FastObject) throws {
        self.init(version: try o.required("version").string(), paths: try o.required("paths").stringMap(),
                  createdParents: try o.strings("createdParents"))
    }
}
