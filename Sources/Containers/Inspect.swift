import Foundation
import struct Runtime.BridgeNetwork

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
        if r.network == "bridge" {
            networks["bridge"] = ["IPAddress": s.ipAddress, "Gateway": s.gateway, "IPPrefixLen": s.ipAddress.isEmpty ? 0 : 24,
                                  "MacAddress": s.macAddress, "NetworkID": (try? BridgeNetwork.current().bridge) ?? ""]
        } else {
            networks[r.network] = ["IPAddress": "", "Gateway": "", "IPPrefixLen": 0, "MacAddress": ""]
        }
        var config: [String: Any] = [
            "Hostname": r.hostname, "User": r.user, "Tty": r.tty, "OpenStdin": r.openStdin, "AttachStdin": r.openStdin,
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
        return [
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
                "SandboxKey": r.network == "host" ? "" : "/run/netns/dockbuild-\(r.id.prefix(12))",
            ] as [String: Any],
        ]
    }

    /// JSON text for `inspect` of several containers (docker prints an array).
    public func inspectJSON(_ ids: [String]) throws -> String {
        let objs = try ids.map { try inspect($0) }
        let d = try JSONSerialization.data(withJSONObject: objs, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: d, as: UTF8.self)
    }

    /// One sample of cpu (ns), memory (bytes) and pids from the container's cgroup.
    public struct Stats: Sendable {
        public var cpuNanos: UInt64
        public var memoryUsage: UInt64
        public var memoryLimit: UInt64
        public var pids: UInt64
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
        return Stats(cpuNanos: cpu?.uint64Value ?? 0, memoryUsage: (memUsage?["usage"] as? NSNumber)?.uint64Value ?? 0,
                     memoryLimit: limit, pids: pids?.uint64Value ?? 0)
    }
}
