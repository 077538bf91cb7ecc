import Foundation
import SystemSupport
import struct Runtime.BridgeNetwork
import struct Runtime.RootlessNetwork
import enum Runtime.OrderedJSON
import enum Runtime.SpecGenerator

extension ContainerManager {
    /// The container as `docker inspect` shows it (the fields tools look at).
    public func inspect(_ id: String) throws -> [String: Any] {
        let c = try store.container(id)
        let r = c.record, s = c.state
        func statusName() -> String { c.isPaused ? "paused" : s.restarting == true && s.status == .running ? "restarting" : s.status.rawValue }
        var portMap: [String: Any] = [:]
        for e in r.exposedPorts { portMap[e] = NSNull() }
        for p in s.ports {
            let key = "\(p.containerPort)/\(p.proto)"
            var list = portMap[key] as? [[String: String]] ?? []
            list.append(["HostIp": p.hostIP.isEmpty ? "0.0.0.0" : p.hostIP, "HostPort": String(p.hostPort)])
            portMap[key] = list
        }
        var bindings: [String: Any] = [:]
        for p in r.ports {
            let key = "\(p.containerPort)/\(p.proto)"
            var list = bindings[key] as? [[String: String]] ?? []
            list.append(["HostIp": p.hostIP, "HostPort": p.hostPort == 0 ? "" : String(p.hostPort)])
            bindings[key] = list
        }
        let mounts: [[String: Any]] = r.mounts.map { m in
            var d: [String: Any] = ["Type": m.type.rawValue, "Destination": m.destination, "RW": !m.readOnly,
                                    "Mode": m.readOnly ? "ro" : "", "Propagation": m.type == .bind ? "rprivate" : ""]
            switch m.type {
            case .bind: d["Source"] = m.source
            case .volume:
                d["Name"] = m.source; d["Driver"] = "local"
                d["Source"] = (try? volumes.dataPath(m.source)) ?? ""
            case .tmpfs: d["Source"] = ""
            }
            return d
        }
        let running = s.status == .running
        var networks: [String: Any] = [:]
        // an ordinary user's default network: a namespace of the container's own behind pasta,
        // which copies the host's addresses into it. As rootless podman shows a slirp4netns or
        // pasta container: no address (the host's would not reach the container; its ports are
        // reached through -p), no bridge, and the namespace's file as the sandbox key.
        let pasta = r.network == "bridge" && StatePaths.isRootless
        var sandboxKey = r.network == "host" ? "" : "/run/netns/dockbuild-\(r.id.prefix(12))"
        if pasta {
            networks["bridge"] = ["IPAddress": "", "Gateway": "", "IPPrefixLen": 0, "MacAddress": "", "NetworkID": ""]
            let file = RootlessNetwork.directory + "/" + r.id
            sandboxKey = running && FileManager.default.fileExists(atPath: file) ? file : ""
        } else if r.network == "bridge" {
            networks["bridge"] = ["IPAddress": s.ipAddress, "Gateway": s.gateway, "IPPrefixLen": s.ipAddress.isEmpty ? 0 : 24,
                                  "MacAddress": s.macAddress, "NetworkID": (try? BridgeNetwork.current().bridge) ?? ""]
        } else if isUserNetwork(r.network), let n = try? self.networks.inspect(r.network) {
            networks[n.name] = ["IPAddress": s.ipAddress, "Gateway": s.gateway, "IPPrefixLen": s.ipAddress.isEmpty ? 0 : 24,
                                "MacAddress": s.macAddress, "NetworkID": n.id, "Aliases": r.networkAliases.map { $0 as Any } ?? NSNull()]
        } else {
            networks[r.network] = ["IPAddress": "", "Gateway": "", "IPPrefixLen": 0, "MacAddress": ""]
        }
        for (name, aliases) in r.moreNetworks ?? [:] {
            let n = try? self.networks.inspect(name)
            let ip = s.moreIPs?[name] ?? ""
            networks[name] = ["IPAddress": ip, "Gateway": n?.gateway ?? "", "IPPrefixLen": ip.isEmpty ? 0 : 24,
                              "MacAddress": ip.isEmpty ? "" : BridgeNetwork.macAddress(ip), "NetworkID": n?.id ?? "",
                              "Aliases": aliases.isEmpty ? NSNull() : aliases as Any]
        }
        var config: [String: Any] = [
            "Hostname": r.hostname, "User": r.user, "Tty": r.tty, "OpenStdin": r.openStdin,
            "AttachStdin": r.attach.map { $0.contains("stdin") } ?? r.openStdin,
            "AttachStdout": r.attach.map { $0.contains("stdout") } ?? true,
            "AttachStderr": r.attach.map { $0.contains("stderr") } ?? true,
            "Env": r.env, "Cmd": r.cmd.isEmpty ? NSNull() : r.cmd as Any, "Entrypoint": r.entrypoint.isEmpty ? NSNull() : r.entrypoint as Any,
            "Image": r.image, "WorkingDir": r.workingDir, "Labels": r.labels,
            "ExposedPorts": Dictionary(uniqueKeysWithValues: r.exposedPorts.map { ($0, [String: String]()) }),
            "Volumes": Dictionary(uniqueKeysWithValues: r.mounts.filter { $0.type == .volume }.map { ($0.destination, [String: String]()) }),
            "StopSignal": r.stopSignal ?? "SIGTERM",
        ]
        // docker's Config.StopTimeout is there only when set
        if let t = r.stopTimeout { config["StopTimeout"] = t }
        if let h = r.healthcheck { config["Healthcheck"] = HealthCheck.inspect(h) }
        if let sh = r.shell { config["Shell"] = sh }
        var state: [String: Any] = [
            "Status": statusName(), "Running": running, "Paused": c.isPaused, "Restarting": s.restarting == true,
            "OOMKilled": s.oomKilled, "Dead": s.status == .dead, "Pid": running ? Int(s.pid) : 0,
            "ExitCode": Int(s.exitCode), "Error": s.error, "StartedAt": s.startedAt, "FinishedAt": s.finishedAt,
        ]
        if let h = s.health { state["Health"] = HealthCheck.inspect(h) }
        let doc: [String: Any] = [
            "Id": r.id,
            "Created": r.created,
            "Path": r.argv.first ?? "",
            "Args": Array(r.argv.dropFirst()),
            "State": state,
            "Image": r.imageID,
            "ResolvConfPath": "\(c.directory)/resolv.conf",
            "HostnamePath": "\(c.directory)/hostname",
            "HostsPath": "\(c.directory)/hosts",
            "LogPath": "\(c.directory)/container.log",
            "Name": "/\(r.name)",
            "RestartCount": s.restartCount,
            "Driver": "overlay",
            "Platform": r.platform.map { String($0.prefix { $0 != "/" }) } ?? "linux",
            "HostConfig": [
                "Binds": r.mounts.filter { $0.type != .tmpfs }.map { "\($0.source):\($0.destination)\($0.readOnly ? ":ro" : "")" },
                "NetworkMode": r.network == "bridge" ? "bridge" : r.network,
                "PortBindings": bindings,
                "PublishAllPorts": r.publishAll,
                "AutoRemove": r.autoRemove,
                "Privileged": r.privileged,
                "ReadonlyRootfs": r.readOnly,
                "CapAdd": r.capAdd, "CapDrop": r.capDrop,
                "SecurityOpt": r.securityOpt.map { $0 as Any } ?? NSNull(),
                "Init": r.initProcess,
                "ExtraHosts": r.extraHosts.map { $0 as Any } ?? NSNull(),
                "Ulimits": r.ulimits.map { $0.map { ["Name": $0.name, "Soft": $0.soft, "Hard": $0.hard] as [String: Any] } as Any } ?? NSNull(),
                "ShmSize": r.shmSize ?? 67_108_864,
                "LogConfig": ["Type": r.logDriver ?? "json-file", "Config": r.logOpts ?? [:]] as [String: Any],
                "GroupAdd": r.groupAdd.map { $0 as Any } ?? NSNull(),
                "IpcMode": r.ipcMode ?? "private", "PidMode": r.pidMode ?? "", "UTSMode": r.utsMode ?? "",
                "Devices": (r.devices ?? []).map { ["PathOnHost": $0.pathOnHost, "PathInContainer": $0.pathInContainer, "CgroupPermissions": $0.cgroupPermissions] },
                "RestartPolicy": ["Name": r.restartPolicy?.name ?? "no", "MaximumRetryCount": r.restartPolicy?.maximumRetryCount ?? 0] as [String: Any],
                "Dns": r.dns ?? [], "DnsSearch": r.dnsSearch ?? [], "DnsOptions": r.dnsOptions ?? [],
                "Memory": r.memory,
                "MemorySwap": r.memorySwap,
                "NanoCpus": r.nanoCpus,
                "CpuQuota": r.nanoCpus > 0 ? r.nanoCpus / 10_000 : 0,
                "CpuPeriod": r.nanoCpus > 0 ? 100_000 : 0,
                "PidsLimit": r.pidsLimit,
                "Tmpfs": Dictionary(uniqueKeysWithValues: r.mounts.filter { $0.type == .tmpfs }.map { ($0.destination, $0.options.joined(separator: ",")) }),
                "DeviceRequests": deviceRequests(r),
            ] as [String: Any],
            "GraphDriver": ["Name": "overlay", "Data": ["UpperDir": "\(c.directory)/upper", "WorkDir": "\(c.directory)/work",
                                                        "MergedDir": store.rootfsPath(id)]],
            "Mounts": mounts,
            "Config": config,
            "NetworkSettings": [
                "IPAddress": s.ipAddress, "Gateway": s.gateway, "IPPrefixLen": s.ipAddress.isEmpty ? 0 : 24,
                "MacAddress": s.macAddress, "Ports": portMap, "Networks": networks,
                "SandboxKey": sandboxKey,
            ] as [String: Any],
        ]
        return Self.withDockerDefaults(doc, privileged: r.privileged)
    }

    /// The fields docker always shows that dockbuild has nothing of its own for, with docker's
    /// values for a container that does not use them (so that `{{.HostConfig.CpuShares}}` and
    /// the like work as in docker); a field already set is kept.
    static func withDockerDefaults(_ doc: [String: Any], privileged: Bool) -> [String: Any] {
        let none = NSNull()
        let top: [String: Any] = ["MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": none]
        let host: [String: Any] = [
            "ContainerIDFile": "", "VolumeDriver": "", "VolumesFrom": none, "CgroupnsMode": "host", "Cgroup": "", "Links": none,
            "OomScoreAdj": 0, "UsernsMode": "", "Runtime": "runc", "ConsoleSize": [0, 0], "Isolation": "", "CpuShares": 0,
            "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [Any](), "BlkioDeviceReadBps": [Any](),
            "BlkioDeviceWriteBps": [Any](), "BlkioDeviceReadIOps": [Any](), "BlkioDeviceWriteIOps": [Any](),
            "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "DeviceCgroupRules": none,
            "KernelMemory": 0, "KernelMemoryTCP": 0, "MemoryReservation": 0, "MemorySwappiness": none, "OomKillDisable": false,
            "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
            "MaskedPaths": privileged ? none : SpecGenerator.defaultMaskedPaths,
            "ReadonlyPaths": privileged ? none : SpecGenerator.defaultReadonlyPaths,
        ]
        let config: [String: Any] = ["Domainname": "", "StdinOnce": false, "OnBuild": none]
        let net: [String: Any] = [
            "Bridge": "", "SandboxID": "", "HairpinMode": false, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": none, "SecondaryIPv6Addresses": none, "EndpointID": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "IPv6Gateway": "",
        ]
        let endpoint: [String: Any] = [
            "IPAMConfig": none, "Links": none, "Aliases": none, "NetworkID": "", "EndpointID": "", "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DriverOpts": none,
        ]
        func fill(_ d: Any?, _ defaults: [String: Any]) -> [String: Any] {
            (d as? [String: Any] ?? [:]).merging(defaults) { mine, _ in mine }
        }
        var out = fill(doc, top)
        out["HostConfig"] = fill(doc["HostConfig"], host)
        out["Config"] = fill(doc["Config"], config)
        var n = fill(doc["NetworkSettings"], net)
        if let nets = n["Networks"] as? [String: Any] {
            n["Networks"] = nets.mapValues { fill($0, endpoint) }
        }
        out["NetworkSettings"] = n
        return out
    }

    /// JSON text for `inspect` of several containers (docker prints an array).
    /// `docker inspect`'s text: the objects in docker's field order (Go's struct order; map
    /// keys sorted), four-space indent, `<`, `>` and `&` left as they are.
    public func inspectJSON(_ ids: [String]) throws -> String {
        let objs = try ids.map { try inspect($0) }
        return OrderedJSON.array(objs.map { Self.dockerOrdered($0, path: "") }).indented("    ", escapeHTML: false)
    }

    /// docker's field order per object (types.ContainerJSON and what it holds), by path from the
    /// top (`[]` for an array's elements, `*` for any key of a map). Objects not listed are maps:
    /// their keys sorted, as Go writes maps; a listed object's other keys follow, sorted.
    static let dockerFieldOrder: [String: [String]] = [
        "": ["Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath", "HostnamePath", "HostsPath", "LogPath", "Node",
             "Name", "RestartCount", "Driver", "Platform", "MountLabel", "ProcessLabel", "AppArmorProfile", "ExecIDs", "HostConfig",
             "GraphDriver", "SizeRw", "SizeRootFs", "Mounts", "Config", "NetworkSettings"],
        "State": ["Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid", "ExitCode", "Error", "StartedAt",
                  "FinishedAt", "Health"],
        "State.Health": ["Status", "FailingStreak", "Log"],
        "State.Health.Log[]": ["Start", "End", "ExitCode", "Output"],
        "HostConfig": ["Binds", "ContainerIDFile", "LogConfig", "NetworkMode", "PortBindings", "RestartPolicy", "AutoRemove",
                       "VolumeDriver", "VolumesFrom", "CapAdd", "CapDrop", "CgroupnsMode", "Dns", "DnsOptions", "DnsSearch",
                       "ExtraHosts", "GroupAdd", "IpcMode", "Cgroup", "Links", "OomScoreAdj", "PidMode", "Privileged",
                       "PublishAllPorts", "ReadonlyRootfs", "SecurityOpt", "StorageOpt", "Tmpfs", "UTSMode", "UsernsMode", "ShmSize",
                       "Sysctls", "Runtime", "ConsoleSize", "Isolation", "CpuShares", "Memory", "NanoCpus", "CgroupParent",
                       "BlkioWeight", "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
                       "BlkioDeviceWriteIOps", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetCpus",
                       "CpusetMems", "Devices", "DeviceCgroupRules", "DeviceRequests", "KernelMemory", "KernelMemoryTCP",
                       "MemoryReservation", "MemorySwap", "MemorySwappiness", "OomKillDisable", "PidsLimit", "Ulimits", "CpuCount",
                       "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth", "Mounts", "MaskedPaths", "ReadonlyPaths", "Init"],
        "HostConfig.LogConfig": ["Type", "Config"],
        "HostConfig.RestartPolicy": ["Name", "MaximumRetryCount"],
        "HostConfig.PortBindings.*[]": ["HostIp", "HostPort"],
        "HostConfig.Devices[]": ["PathOnHost", "PathInContainer", "CgroupPermissions"],
        "HostConfig.DeviceRequests[]": ["Driver", "Count", "DeviceIDs", "Capabilities", "Options"],
        "HostConfig.Ulimits[]": ["Name", "Hard", "Soft"],
        "HostConfig.Mounts[]": ["Type", "Source", "Target", "ReadOnly", "Consistency", "BindOptions", "VolumeOptions", "TmpfsOptions"],
        "GraphDriver": ["Data", "Name"],
        "Mounts[]": ["Type", "Name", "Source", "Destination", "Driver", "Mode", "RW", "Propagation"],
        "Config": ["Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts", "Tty",
                   "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Image", "Volumes", "WorkingDir",
                   "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild", "Labels", "StopSignal", "StopTimeout", "Shell"],
        "Config.Healthcheck": ["Test", "Interval", "Timeout", "StartPeriod", "Retries"],
        "NetworkSettings": ["Bridge", "SandboxID", "HairpinMode", "LinkLocalIPv6Address", "LinkLocalIPv6PrefixLen", "Ports",
                            "SandboxKey", "SecondaryIPAddresses", "SecondaryIPv6Addresses", "EndpointID", "Gateway",
                            "GlobalIPv6Address", "GlobalIPv6PrefixLen", "IPAddress", "IPPrefixLen", "IPv6Gateway", "MacAddress",
                            "Networks"],
        "NetworkSettings.Ports.*[]": ["HostIp", "HostPort"],
        "NetworkSettings.Networks.*": ["IPAMConfig", "Links", "Aliases", "NetworkID", "EndpointID", "Gateway", "IPAddress",
                                       "IPPrefixLen", "IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "MacAddress",
                                       "DriverOpts"],
    ]

    /// A value of `inspect`'s dictionary as ordered JSON (see `dockerFieldOrder`).
    static func dockerOrdered(_ value: Any, path: String) -> OrderedJSON {
        switch value {
        case let d as [String: Any]:
            var order = dockerFieldOrder[path]
            if order == nil, let dot = path.lastIndex(of: ".") { order = dockerFieldOrder[path[..<dot] + ".*"] }
            let rank = Dictionary((order ?? []).enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
            let keys = d.keys.sorted { a, b in
                switch (rank[a], rank[b]) {
                case let (x?, y?): return x < y
                case (.some, nil): return true
                case (nil, .some): return false
                case (nil, nil): return a < b
                }
            }
            return .object(keys.map { k in (k, dockerOrdered(d[k] as Any, path: path.isEmpty ? k : path + "." + k)) })
        case let a as [Any]:
            return .array(a.map { dockerOrdered($0, path: path + "[]") })
        case let s as String: return .string(s)
        case let b as Bool: return .bool(b)
        case let i as Int: return .int(Int64(i))
        case let i as Int32: return .int(Int64(i))
        case let i as Int64: return .int(i)
        case let u as UInt64: return .uint(u)
        case let u as UInt32: return .uint(UInt64(u))
        case let x as Double: return x == x.rounded() && abs(x) < 9e15 ? .int(Int64(x)) : .string(String(x))
        case let n as NSNumber:
            if String(cString: n.objCType) == "c" { return .bool(n.boolValue) }
            return n.doubleValue == Double(n.int64Value) ? .int(n.int64Value) : .string(n.stringValue)
        case is NSNull: return .null
        case Optional<Any>.none: return .null
        default: return .string("\(value)")
        }
    }

    /// One sample of cpu (ns), memory (bytes, less the inactive page cache as docker counts
    /// it), pids, block I/O (bytes read and written) and network I/O (bytes received and sent on
    /// the container's interfaces other than lo).
    public struct Stats: Sendable {
        public var cpuNanos: UInt64
        public var memoryUsage: UInt64
        public var memoryLimit: UInt64
        public var pids: UInt64
        public var blockRead: UInt64 = 0
        public var blockWrite: UInt64 = 0
        public var netReceived: UInt64 = 0
        public var netSent: UInt64 = 0
    }

    /// HostConfig.DeviceRequests as docker 25 shows them: `--gpus` as a request for the gpu
    /// capability, `--device vendor/class=name` as CDI device IDs.
    func deviceRequests(_ r: ContainerRecord) -> Any {
        var out: [[String: Any]] = []
        if let g = r.gpus {
            out.append(["Driver": "cdi", "Count": g == "all" ? -1 : (Int(g) ?? 0), "DeviceIDs": NSNull(), "Capabilities": [["gpu"]], "Options": [:]])
        }
        if let names = r.cdiDevices {
            out.append(["Driver": "cdi", "Count": 0, "DeviceIDs": names, "Capabilities": NSNull(), "Options": [:]])
        }
        return out.isEmpty ? NSNull() : out
    }

    public func stats(_ id: String) throws -> Stats {
        let d = try runtime(for: id).stats(id)
        let cpu = ((d["cpu"] as? [String: Any])?["usage"] as? [String: Any])?["total"] as? NSNumber
        let memUsage = ((d["memory"] as? [String: Any])?["usage"] as? [String: Any])
        let pids = (d["pids"] as? [String: Any])?["current"] as? NSNumber
        var limit = (memUsage?["limit"] as? NSNumber)?.uint64Value ?? 0
        if limit == 0 || limit > 1 << 60 { limit = UInt64(ProcessInfo.processInfo.physicalMemory) }
        var usage = (memUsage?["usage"] as? NSNumber)?.uint64Value ?? 0
        // docker's calculateMemUsageUnixNoCache: the inactive file pages are not the container's
        let raw = (d["memory"] as? [String: Any])?["raw"] as? [String: Any]
        if let inactive = ((raw?["total_inactive_file"] ?? raw?["inactive_file"]) as? NSNumber)?.uint64Value, inactive < usage {
            usage -= inactive
        }
        var out = Stats(cpuNanos: cpu?.uint64Value ?? 0, memoryUsage: usage, memoryLimit: limit, pids: pids?.uint64Value ?? 0)
        for e in ((d["blkio"] as? [String: Any])?["ioServiceBytesRecursive"] as? [[String: Any]]) ?? [] {
            let v = (e["value"] as? NSNumber)?.uint64Value ?? 0
            switch (e["op"] as? String)?.lowercased() {
            case "read": out.blockRead &+= v
            case "write": out.blockWrite &+= v
            default: break
            }
        }
        let pid = store.state(id).pid
        if pid > 0, let dev = try? String(contentsOfFile: "/proc/\(pid)/net/dev", encoding: .utf8) {
            // "  eth0: rxbytes rxpackets ... (8 receive fields) txbytes ..."
            for line in dev.split(separator: "\n").dropFirst(2) {
                let parts = line.split(separator: ":", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) != "lo" else { continue }
                let f = parts[1].split(separator: " ").compactMap { UInt64($0) }
                if f.count >= 9 { out.netReceived &+= f[0]; out.netSent &+= f[8] }
            }
        }
        return out
    }
}
