import Foundation
import Runtime
import ImageStore
#if canImport(Glibc)
import Glibc
#endif

extension Runner {
    /// RUN through the Runtime library: an overlay (parent layers + skeleton, fresh upper) mounted
    /// here, a runtime spec with docker's defaults for the image's user, env and workdir, the RUN's
    /// mounts as spec mounts, output through a pipe.
    static func runWithRuntime(_ req: RunRequest, tmp: String, onOutput: (String) -> Void) throws -> Outcome {
        let id = "dockbuild-run-\(UUID().uuidString.prefix(12).lowercased())"
        let base = "\(tmp)/\(id)"
        let upper = base + "/upper", work = base + "/work", merged = base + "/merged", skel = base + "/skel", bundle = base + "/bundle"
        for d in [upper, work, merged, skel, bundle] { try FS.mkdirs(d) }
        defer { FS.removeTree(work); FS.removeTree(merged); FS.removeTree(skel); FS.removeTree(bundle) }
        try makeSkeleton(skel, req)
        try BuildInterrupts.check()
        let net = try RunNetwork.setUp(req.network, stepDir: base)
        defer { net.tearDown() }
        let hosts = base + "/hosts", resolv = base + "/resolv.conf"
        // (FS.writeAtomic, not FileManager.createFile: that fsyncs, and these die with the step)
        try FS.writeAtomic(Data(net.hosts.utf8), to: hosts)
        try FS.writeAtomic(Data(net.resolvConf().utf8), to: resolv)
        do {
            // volatile: the unmount would otherwise sync the whole file system the upper is on
            // (everything any program left dirty there, the layer blobs being written in the
            // background included) before the next step could start; the upper becomes the layer's
            // snapshot, which is derived from the layer's blob (fsynced) like a COPY's staging tree
            try Overlay.mount(lowers: req.lowers + [skel], upper: upper, work: work, at: merged, flags: 0, volatile: true)
        } catch {
            throw BuildError.system("cannot mount the RUN overlay: \(error)")
        }
        defer { umount2(merged, Int32(MNT_DETACH)) }

        var spec = SpecGenerator.dockerDefault(args: req.argv, env: req.env, cwd: req.workdir.isEmpty ? "/" : req.workdir,
                                               user: .init(uid: req.uid, gid: req.gid, additionalGids: req.additionalGids.isEmpty ? nil : req.additionalGids), hostname: "buildkitsandbox", rootfs: merged)
        spec.root = .init(path: merged, readonly: false)
        var mounts = spec.mounts ?? []
        mounts.append(.init(destination: "/etc/hosts", type: "bind", source: hosts, options: ["rbind", "ro"]))
        mounts.append(.init(destination: "/etc/resolv.conf", type: "bind", source: resolv, options: ["rbind", "ro"]))
        for (m, src) in req.mounts {
            let dest = "/" + cleanPath(m.target)
            switch m.kind {
            case .tmpfs:
                let size = m.sizeLimit > 0 ? ["size=\(m.sizeLimit)"] : []
                mounts.append(.init(destination: dest, type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev"] + size))
            default: mounts.append(.init(destination: dest, type: "bind", source: src, options: ["rbind", m.readOnly ? "ro" : "rw"]))
            }
        }
        spec.mounts = mounts
        net.apply(to: &spec)
        spec.linux?.cgroupsPath = nil
        spec.process?.rlimits = nil   // inherit the builder's limits

        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw FS.sys("create", "a pipe for RUN output") }
        let devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { if devnull >= 0 { close(devnull) } }
        var options = CreateOptions()
        options.stdin = devnull
        options.stdout = fds[1]
        options.stderr = fds[1]
        let rt = Runtime(root: tmp + "/runtime")
        do {
            try BuildInterrupts.register(run: id, runtimeRoot: rt.root)
            _ = try rt.create(id: id, bundle: bundle, spec: spec, options: options)
            try BuildInterrupts.check()   // a signal between register and create found nothing to kill
        } catch let e as RuntimeError where e.execExitCode != nil {
            // The RUN's program cannot run (the runtime now says so at create): the step
            // fails with docker's status (127/126) and the message as its output.
            close(fds[0]); close(fds[1])
            try? rt.delete(id: id, force: true)
            BuildInterrupts.unregister(run: id)
            onOutput(e.message)
            return Outcome(status: e.execExitCode ?? 127, output: e.message + "\n", upper: upper)
        } catch {
            close(fds[0]); close(fds[1])
            try? rt.delete(id: id, force: true)
            BuildInterrupts.unregister(run: id)
            throw BuildError.system("cannot create the RUN container: \(error)")
        }
        defer { BuildInterrupts.unregister(run: id) }
        close(fds[1])
        var output = Data()
        let status: Int32
        do {
            try rt.start(id: id)
            readLines(fds[0], into: &output, onOutput: onOutput)
            status = try rt.wait(id: id)
        } catch {
            close(fds[0])
            try? rt.delete(id: id, force: true)
            throw BuildError.system("RUN container failed: \(error)")
        }
        close(fds[0])
        try? rt.delete(id: id, force: true)
        return Outcome(status: status, output: String(decoding: output, as: UTF8.self), upper: upper)
    }
}
