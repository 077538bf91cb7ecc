// A container's record (config.json) and state (state.json) without Codable: `ps -a`
// reads both for every container, and JSONDecoder spent most of that time in the Swift
// runtime's metadata and conformance look-ups (~70 fields and six nested types), not in
// parsing. The mapping follows the synthesized conformances key for key (a non-optional
// field is required, an optional one is nil when absent or null, unknown keys are
// ignored); on anything unexpected it gives up and the caller uses JSONDecoder, so
// results and errors are the same (see SystemSupport's FastJSON).
import Foundation
import SystemSupport
import OCI

extension ContainerState {
    /// The state, or `FastJSONFailure` where JSONDecoder should judge instead.
    static func fastDecode(_ data: Data) throws -> ContainerState {
        let o = try FastJSON.parse(data).object()
        var s = ContainerState()
        s.status = try req(o.rawValue("status", as: Status.self))
        s.pid = try o.required("pid").int32()
        s.monitorPid = try o.required("monitorPid").int32()
        s.monitorStartTime = try o.required("monitorStartTime").uint64()
        s.exitCode = try o.required("exitCode").int32()
        s.oomKilled = try o.required("oomKilled").bool()
        s.startedAt = try o.required("startedAt").string()
        s.finishedAt = try o.required("finishedAt").string()
        s.error = try o.required("error").string()
        s.ipAddress = try o.required("ipAddress").string()
        s.moreIPs = try o.stringMap("moreIPs")
        s.gateway = try o.required("gateway").string()
        s.macAddress = try o.required("macAddress").string()
        s.ports = try req(o.list("ports") { try PortBinding(fast: $0.object()) })
        s.restartCount = try o.required("restartCount").int()
        s.restarting = try o.bool("restarting")
        s.manuallyStopped = try o.bool("manuallyStopped")
        s.cgroupPaths = try o.required("cgroupPaths").stringMap()
        s.ociRuntime = try o.strings("ociRuntime")
        s.health = try o.object("health").map { try HealthState(fast: $0) }
        return s
    }
}

extension ContainerRecord {
    /// The record, or `FastJSONFailure` where JSONDecoder should judge instead.
    static func fastDecode(_ data: Data) throws -> ContainerRecord {
        try ContainerRecord(fast: FastJSON.parse(data).object())
    }

    init(fast o: FastObject) throws {
        id = try o.required("id").string()
        name = try o.required("name").string()
        created = try o.required("created").string()
        image = try o.required("image").string()
        imageID = try o.required("imageID").string()
        imageDescriptor = try Descriptor(fast: o.required("imageDescriptor").object())
        chainID = try o.string("chainID")
        entrypoint = try o.required("entrypoint").strings()
        cmd = try o.required("cmd").strings()
        env = try o.required("env").strings()
        workingDir = try o.required("workingDir").string()
        user = try o.required("user").string()
        hostname = try o.required("hostname").string()
        tty = try o.required("tty").bool()
        openStdin = try o.required("openStdin").bool()
        labels = try o.required("labels").stringMap()
        exposedPorts = try o.required("exposedPorts").strings()
        stopSignal = try o.string("stopSignal")
        autoRemove = try o.required("autoRemove").bool()
        readOnly = try o.required("readOnly").bool()
        privileged = try o.required("privileged").bool()
        capAdd = try o.required("capAdd").strings()
        capDrop = try o.required("capDrop").strings()
        initProcess = try o.required("initProcess").bool()
        mounts = try req(o.list("mounts") { try MountPoint(fast: $0.object()) })
        ports = try req(o.list("ports") { try PortBinding(fast: $0.object()) })
        publishAll = try o.required("publishAll").bool()
        network = try o.required("network").string()
        memory = try o.required("memory").int64()
        memorySwap = try o.required("memorySwap").int64()
        nanoCpus = try o.required("nanoCpus").int64()
        pidsLimit = try o.required("pidsLimit").int64()
        gpus = try o.string("gpus")
        securityOpt = try o.strings("securityOpt")
        extraHosts = try o.strings("extraHosts")
        networkAliases = try o.strings("networkAliases")
        moreNetworks = try o.map("moreNetworks") { try $0.strings() }
        dns = try o.strings("dns")
        dnsSearch = try o.strings("dnsSearch")
        dnsOptions = try o.strings("dnsOptions")
        ulimits = try o.list("ulimits") { v in
            let u = try v.object()
            return Ulimit(name: try u.required("name").string(), soft: try u.required("soft").int64(), hard: try u.required("hard").int64())
        }
        shmSize = try o.int64("shmSize")
        platform = try o.string("platform")
        cdiDevices = try o.strings("cdiDevices")
        attach = try o.strings("attach")
        logDriver = try o.string("logDriver")
        logOpts = try o.stringMap("logOpts")
        groupAdd = try o.strings("groupAdd")
        ipcMode = try o.string("ipcMode")
        pidMode = try o.string("pidMode")
        utsMode = try o.string("utsMode")
        stopTimeout = try o.int("stopTimeout")
        devices = try o.list("devices") { v in
            let d = try v.object()
            return DeviceMapping(pathOnHost: try d.required("pathOnHost").string(), pathInContainer: try d.required("pathInContainer").string(),
                                 cgroupPermissions: try d.required("cgroupPermissions").string())
        }
        restartPolicy = try o.object("restartPolicy").map {
            RestartPolicy(name: try $0.required("name").string(), maximumRetryCount: try $0.required("maximumRetryCount").int())
        }
        healthcheck = try o.object("healthcheck").map {
            HealthConfig(test: try $0.strings("Test"), interval: try $0.int64("Interval"), timeout: try $0.int64("Timeout"),
                         startPeriod: try $0.int64("StartPeriod"), startInterval: try $0.int64("StartInterval"),
                         retries: try $0.int("Retries"))
        }
        shell = try o.strings("shell")
    }
}

extension PortBinding {
    init(fast o: FastObject) throws {
        self.init(hostIP: try o.required("hostIP").string(), hostPort: try o.required("hostPort").int(),
                  containerPort: try o.required("containerPort").int(), proto: try o.required("proto").string())
    }
}

extension MountPoint {
    init(fast o: FastObject) throws {
        self.init(type: try req(o.rawValue("type", as: Kind.self)), source: try o.required("source").string(),
                  destination: try o.required("destination").string(), readOnly: try o.required("readOnly").bool(),
                  options: try o.required("options").strings(), anonymous: try o.required("anonymous").bool())
    }
}

extension HealthState {
    init(fast o: FastObject) throws {
        self.init(status: try req(o.rawValue("status", as: Status.self)), failingStreak: try o.required("failingStreak").int(),
                  log: try req(o.list("log") { v in
                      let r = try v.object()
                      return HealthResult(start: try r.required("start").string(), end: try r.required("end").string(),
                                          exitCode: try r.required("exitCode").int(), output: try r.required("output").string())
                  }))
    }
}

/// A value a non-optional field must have.
private func req<T>(_ v: T?) throws -> T {
    guard let v else { throw FastJSONFailure("missing a required field") }
    return v
}
