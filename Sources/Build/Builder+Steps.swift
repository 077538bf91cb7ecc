import Foundation
import SystemSupport
import OCI
import Archive
import ImageStore
import Dockerfile
#if canImport(Glibc)
import Glibc
#endif

extension Builder {
    func stepKey(_ parts: [String]) -> String {
        Digest.compute(Data(parts.joined(separator: "\u{1}").utf8)).encoded
    }

    /// The parent file system as a read-only view of the store's layer snapshots (unpacks
    /// layers the first time they are needed). Layers whose blobs are still being written are
    /// seen where they were made (they join the snapshotter at the end of the build).
    func view(_ st: StageState) throws -> LayerView {
        do {
            let firstPending = st.layers.firstIndex { $0.pending != nil } ?? st.layers.endIndex
            let top = st.layers[firstPending...]
            if top.allSatisfy({ $0.pending != nil }) {
                let below = try store.snapshotter.lowers(st.layers[..<firstPending].map { try $0.stored() }.map(\.snapshotLayer))
                return LayerView(dirs: top.compactMap { $0.pending?.dir }.reversed() + below)
            }
            // A stored layer over one being written (a cache hit over a step that ran): its
            // snapshot needs the chain of diffIDs below it, so wait for them; the layers under it
            // are then unpacked from their blobs.
            return LayerView(dirs: try store.snapshotter.lowers(st.layers.map { try $0.stored() }.map(\.snapshotLayer)))
        } catch let e as BuildError {
            throw e
        } catch {
            throw BuildError.system("cannot unpack the layers of \(st.name): \(error)")
        }
    }

    /// (no fsync by the writer: `ImageStore.adoptFile` fsyncs the blob before it names it)
    var writerOptions: LayerWriter.Options { LayerWriter.Options(sourceDateEpoch: options.sourceDateEpoch, sync: false) }

    /// Looks a step up in the cache; on a hit applies it to `st`.
    func hit(_ key: String, _ st: inout StageState, createdBy: String) -> Bool {
        guard !options.noCache else {
            startContextPrefetchOnce()
            return false
        }
        // a step another stage of this build ran: its layer, seen where it was made
        if let made = layerExports.layer(forKey: key) {
            advance(&st, layer: .pending(made), created: created, key: key, createdBy: createdBy)
            return true
        }
        guard let rec = cache.lookup(key) else {
            startContextPrefetchOnce()
            return false
        }
        apply(rec, key: key, &st, createdBy: createdBy)
        return true
    }

    func apply(_ rec: CacheRecord, key: String, _ st: inout StageState, createdBy: String) {
        advance(&st, layer: rec.layer.map(StageLayer.ready), created: rec.created, key: key, createdBy: createdBy)
    }

    /// Moves `st` past a step: its layer (none for a metadata-only step), its history entry, its
    /// key; `created` (the step's time) keeps the latest reused time for the image.
    func advance(_ st: inout StageState, layer: StageLayer?, created c: String?, key: String, createdBy: String) {
        if let layer { st.layers.append(layer) }
        if let c {
            lock.lock()
            if latestCached.map({ c > $0 }) ?? true { latestCached = c }
            lock.unlock()
        }
        history(&st, createdBy, empty: layer == nil)
        st.key = key
        record(key)
    }

    /// Turns a finished directory (staging tree or overlay upper) into a layer in the store,
    /// keeps the directory as that layer's unpacked form, and records the step in the cache.
    /// The layer's blob is written in the background (`LayerExports`): the next steps need only
    /// the directory and this step's key; the cache record follows the blob into the store.
    func commit(dir: String, fromUpper: Bool, key: String, _ st: inout StageState, createdBy: String) throws {
        try layerExports.check()
        guard !FS.list(dir).isEmpty else {
            FS.removeTree(dir)
            let rec = CacheRecord(layer: nil, created: created)
            try cache.save(key, rec)
            apply(rec, key: key, &st, createdBy: createdBy)
            return
        }
        let layer = PendingLayer(dir: dir, step: createdBy, parents: st.layers)
        let store = self.store, cache = self.cache, created = self.created
        let compression = options.compression, writerOptions = self.writerOptions
        try layerExports.submit(layer, key: key) {
            let out = "\(store.tempDir)/layer-\(UUID().uuidString.prefix(12))"
            let info: LayerInfo
            do {
                info = fromUpper
                    ? try LayerDiff.fromOverlayUpper(dir, to: out, compression: compression, options: writerOptions)
                    : try LayerWriter.write(directory: dir, to: out, compression: compression, options: writerOptions)
                try LayerExports.checkNotInterrupted(createdBy)
                try store.adoptFile(at: out, digest: info.digest, verify: false)
            } catch {
                unlink(out)
                throw BuildError.system("cannot write the layer for `\(createdBy)`: \(error)")
            }
            let ref = LayerRef(descriptor: Descriptor(mediaType: info.mediaType, digest: info.digest, size: info.size), diffID: info.diffID)
            do {
                try LayerExports.checkNotInterrupted(createdBy)
                try cache.save(key, CacheRecord(layer: ref, created: created))
            } catch {
                throw BuildError.system("cannot record `\(createdBy)` in the build cache: \(error)")
            }
            return ref
        }
        advance(&st, layer: .pending(layer), created: created, key: key, createdBy: createdBy)
    }

    // MARK: WORKDIR

    func workdirLayer(_ wd: String, _ st: inout StageState) throws -> Bool {
        let user = st.config.config?.user ?? ""
        let key = stepKey([st.key, "WORKDIR", wd, user])
        let by = "WORKDIR " + wd
        if hit(key, &st, createdBy: by) { return true }
        let v = try view(st)
        let staging = try cache.tempDir("workdir")
        if !v.isDirectory(wd) {
            try FS.mkdirs(staging + wd)
            if !user.isEmpty, let ids = try? v.resolveUser(user, chownRule: false) {
                var p = wd
                while p != "/" && !v.isDirectory(p) { lchown(staging + p, ids.uid, ids.gid); p = (p as NSString).deletingLastPathComponent }
            }
            copyAncestorMetadata(staging: staging, path: wd, view: v)
        }
        try commit(dir: staging, fromUpper: false, key: key, &st, createdBy: by)
        return false
    }

    /// Gives staging directories that exist in the parent image the parent's mode, owner and times,
    /// so a layer never changes a directory it only passes through.
    func copyAncestorMetadata(staging: String, path: String, view: LayerView) {
        var p = (path as NSString).deletingLastPathComponent
        var chain: [String] = []
        while p != "/" && !p.isEmpty { chain.append(p); p = (p as NSString).deletingLastPathComponent }
        chain.append("/")
        for a in chain {
            guard let host = view.resolve(a, followFinal: true), let st = FS.info(host), FS.isDir(st) else { continue }
            let sp = a == "/" ? staging : staging + a
            guard FS.exists(sp) else { continue }
            chmod(sp, st.st_mode & 0o7777)
            lchown(sp, st.st_uid, st.st_gid)
            FS.setTimes(sp, st)
        }
    }

    // MARK: RUN

    func runStep(_ ins: RunInstruction, mounts specs: [Mount], line: Int, _ st: inout StageState, number: Int) throws -> Bool {
        try checkRunnable(st, line: line)
        let cc = st.config.config ?? ContainerConfig()
        var scriptFiles: [String: String] = [:]
        var argv: [String]
        let command = ins.command
        if !command.prependShell {
            argv = command.arguments
        } else {
            var text = command.arguments.joined(separator: " ")
            if !command.files.isEmpty {
                let trimmed = text.trimmingCharacters(in: .whitespaces)
                if command.files.count == 1, trimmed.hasPrefix("<<"), !trimmed.contains(" ") {
                    // BuildKit hands a RUN heredoc to the shell (or runs it as a script) unchanged,
                    // whatever the delimiter's quoting: the shell expands its variables, not the builder.
                    let body = command.files[0].content
                    if body.hasPrefix("#!") {
                        let path = "/.dockbuild-heredoc-\(number)"
                        scriptFiles[path] = body
                        argv = [path]
                    } else {
                        argv = shell(cc) + [body]
                    }
                    return try execRun(ins, mounts: specs, line: line, argv: argv, scriptFiles: scriptFiles, &st, number: number)
                }
                for h in command.files { text += "\n" + h.content + h.name }
            }
            argv = shell(cc) + [text]
        }
        return try execRun(ins, mounts: specs, line: line, argv: argv, scriptFiles: scriptFiles, &st, number: number)
    }

    /// A COPY/ADD heredoc body, with variables expanded unless its delimiter was quoted (left as is when it
    /// does not expand). Quotes are kept as written, as BuildKit does (`Hello '${name}'!` gives `Hello 'world'!`).
    func heredocBody(_ content: String, expand: Bool, _ st: StageState) -> String {
        guard expand else { return content }
        var raw = lex
        raw.skipProcessQuotes = true
        return (try? raw.processWord(content, env: expansionEnv(st))) ?? content
    }

    func execRun(_ ins: RunInstruction, mounts specs: [Mount], line: Int, argv: [String], scriptFiles: [String: String],
                 _ st: inout StageState, number: Int) throws -> Bool {
        let cc = st.config.config ?? ContainerConfig()
        // The process environment: image env, then ARGs not set by ENV, PATH by default.
        var env = cc.env ?? []
        for (k, v) in st.args.sorted(by: { $0.key < $1.key }) where !env.contains(where: { $0.hasPrefix(k + "=") }) {
            env.append(k + "=" + v)
        }
        if !env.contains(where: { $0.hasPrefix("PATH=") }) { env.insert("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", at: 0) }
        var sshCount = 0
        let mounts = try specs.map { spec -> RunMount in
            defer { if spec.type == .ssh { sshCount += 1 } }
            return try RunMount(spec, file: dockerfile.fileName, line: line, sshIndex: sshCount)
        }
        let network = ins.flagsUsed.contains("network") ? ins.network : options.network
        guard ["default", "host", "none"].contains(network) else { throw err(line, "--network=\(network): use default, host or none") }
        if ins.security != "sandbox" { throw err(line, "--security=\(ins.security) is not supported; only sandbox") }
        let user = cc.user ?? ""
        let workdir = cc.workingDir ?? "/"
        // Bind mounts from the context or another stage are inputs: their content goes into the key.
        // Context sources are opened and digested now; their filtered views are built on a miss.
        let staging = try RunMountStaging(tmp: cache.tmp)
        var tempMounts: [String] = []
        defer {
            staging.cleanup()
            for t in tempMounts { RunMountStaging.unmount(t) }
        }
        var contextSources: [Int: ContextBindSource] = [:]
        defer { for c in contextSources.values { close(c.fd) } }
        var mountKeys: [String] = []
        for (i, m) in mounts.enumerated() {
            var k = "\(m.kind.rawValue):\(m.target):\(m.id ?? ""):\(m.readOnly)"
            if m.kind == .bind {
                if let from = m.from {
                    k += ":from=" + (try sourceState(from, line: line).key) + ":" + (m.source ?? "/")
                } else {
                    let src = try contextBindSource(m.source, line: line)
                    contextSources[i] = src
                    k += ":ctx=" + src.digest
                }
            } else if m.kind == .cache, let from = m.from {
                k += ":from=" + (try sourceState(from, line: line).key) + ":" + (m.source ?? "/")
            }
            mountKeys.append(k)
        }
        // BuildKit's `RUN |N k=v ...`: every ARG of the stage in declaration order, valued from
        // the step's environment (an ENV of the same name wins), empty when unset.
        let envMap = Dictionary(env.map { kv -> (String, String) in
            let i = kv.firstIndex(of: "=") ?? kv.endIndex
            return (String(kv[..<i]), i == kv.endIndex ? "" : String(kv[kv.index(after: i)...]))
        }, uniquingKeysWith: { $1 })
        let argsText = st.argOrder.isEmpty ? "" : "|\(st.argOrder.count) " + st.argOrder.map { "\($0)=\(envMap[$0] ?? "")" }.joined(separator: " ") + " "
        let by = "RUN " + argsText + argv.joined(separator: " ") + " # buildkit"
        let key = stepKey([st.key, "RUN", argv.joined(separator: "\u{0}"), env.joined(separator: "\u{0}"), user, workdir, network,
                           mountKeys.joined(separator: "\u{0}"), scriptFiles.sorted(by: { $0.key < $1.key }).map { $0.key + $0.value }.joined()])
        if hit(key, &st, createdBy: by) { return true }

        let v = try view(st)
        let ids: (uid: UInt32, gid: UInt32) = user.isEmpty ? (0, 0) : try {
            do { return try v.resolveUser(user, chownRule: false) } catch { throw err(line, "USER \(user): \(error)") }
        }()
        var resolved: [(RunMount, String)] = []
        var secretEnv: [String] = []
        var cacheLocks: [FileLock] = []
        defer { for l in cacheLocks { l.unlock() } }
        /// Opens `source` inside a stage's or image's root (mounted read-only for the step).
        func openInState(_ from: String, _ source: String?, _ what: String) throws -> Int32 {
            let root = try mountedRoot(try sourceState(from, line: line))
            tempMounts.append(root.path)
            do { return try InRootPath.openPath(source ?? "", in: root.path) } catch {
                throw err(line, "\(what): source \(source ?? "/") in \(from) is not usable: \(error); give a path inside \(from)")
            }
        }
        for (i, m) in mounts.enumerated() {
            switch m.kind {
            case .cache:
                let name = Digest.compute(Data((m.id ?? m.target).utf8)).encoded.prefix(32)
                var d = "\(cache.dir)/mounts/\(name)"
                // sharing=locked waits for the builds using the cache; private takes a throw-away
                // directory of its own when another build holds it; shared (default) just mounts it.
                if m.sharing != .shared {
                    let lock = try FS.io { try FileLock(path: d + ".lock", mode: 0o600) }
                    cacheLocks.append(lock)
                    if m.sharing == .locked {
                        try FS.io { try lock.lock() }
                    } else if !lock.tryLock() {
                        d = staging.fresh("cache-private")
                    }
                }
                let fresh = !FS.exists(d)
                if fresh {
                    if let from = m.from {
                        // Seeded once from `from`'s `source`, copied: the cache never shares storage with a stage.
                        let fd = try openInState(from, m.source, "--mount=type=cache")
                        defer { close(fd) }
                        let seed = try staging.bindReadOnly(fd, what: "\(from):\(m.source ?? "/")")
                        guard let sst = FS.follow(seed), FS.isDir(sst) else {
                            throw err(line, "--mount=type=cache: source \(m.source ?? "/") in \(from) is not a directory; a cache mount starts from a directory")
                        }
                        let t = try cache.tempDir("cache-seed")
                        do { try FS.copyTree(seed, t, skip: { _ in false }, owner: nil, keepOwner: true, mode: nil) } catch {
                            FS.removeTree(t)
                            throw error
                        }
                        cache.adopt(t, as: d)
                    } else {
                        try FS.mkdirs(d)
                    }
                }
                if fresh || m.mode != nil { chmod(d, m.mode.map { mode_t($0) } ?? 0o755) }
                if fresh || m.uid != nil || m.gid != nil {
                    lchown(d, m.uid ?? 0, m.gid ?? 0)
                }
                resolved.append((m, d))
            case .secret:
                guard let src = options.secrets[m.id ?? ""] else {
                    if m.required { throw err(line, "secret `\(m.id ?? "")` is required; pass --secret id=\(m.id ?? ""),src=FILE") }
                    continue
                }
                guard let data = FileManager.default.contents(atPath: src) else {
                    throw err(line, "secret `\(m.id ?? "")`: cannot read \(src); check the path given with --secret")
                }
                if let name = m.env {
                    // `env=`: the value as an environment variable of this step only.
                    secretEnv.append(name + "=" + String(decoding: data, as: UTF8.self))
                    if i < specs.count, specs[i].target == nil { continue }   // env= alone: no file
                }
                var sm = m
                sm.readOnly = true
                let copy = try staging.secretFile(data, mode: mode_t(m.mode ?? 0o400), uid: m.uid ?? 0, gid: m.gid ?? 0, what: m.id ?? "")
                resolved.append((sm, copy))
            case .tmpfs:
                resolved.append((m, ""))
            case .ssh:
                // The agent's socket, given with --ssh, bound at the target; SSH_AUTH_SOCK names
                // the first one. Without it the mount is skipped, or the step fails if required.
                guard let sock = options.ssh[m.id ?? "default"] else {
                    if m.required { throw err(line, "--mount=type=ssh,id=\(m.id ?? "default") needs an SSH agent: pass --ssh \(m.id ?? "default")[=SOCKET]") }
                    continue
                }
                guard let st = FS.follow(sock), st.st_mode & S_IFMT == S_IFSOCK else {
                    throw err(line, "--ssh \(m.id ?? "default")=\(sock): not a socket; give the agent's socket (SSH_AUTH_SOCK)")
                }
                if !secretEnv.contains(where: { $0.hasPrefix("SSH_AUTH_SOCK=") }) { secretEnv.append("SSH_AUTH_SOCK=" + m.target) }
                var sm = m
                sm.readOnly = false
                resolved.append((sm, sock))
            case .bind:
                let fd: Int32
                let what: String
                if let from = m.from {
                    fd = try openInState(from, m.source, "--mount=type=bind")
                    what = "\(from):\(m.source ?? "/")"
                } else {
                    guard let ctxSource = contextSources[i] else { throw err(line, "--mount=type=bind needs a build context") }
                    let view = try contextBindView(ctxSource, staging: staging)
                    fd = open(view, oPath | O_NOFOLLOW | O_CLOEXEC)
                    if fd < 0 { throw FS.sys("open", view) }
                    what = "context:\(m.source ?? ".")"
                }
                defer { close(fd) }
                let src = m.readOnly ? try staging.bindReadOnly(fd, what: what) : try staging.copyOnWrite(fd, what: what)
                resolved.append((m, src))
            }
        }
        // Proxy build args reach every RUN without an ARG line, and stay out of the cache key
        // and the history unless the Dockerfile declares them (BuildKit's rule).
        let proxies = buildArgs.proxyEnvironment.sorted { $0.key < $1.key }
            .filter { p in !env.contains { $0.hasPrefix(p.key + "=") } }.map { $0.key + "=" + $0.value }
        var req = RunRequest(argv: argv, env: env + proxies + secretEnv, workdir: workdir, uid: ids.uid, gid: ids.gid, lowers: v.dirs,
                             network: network, mounts: resolved, scriptFiles: scriptFiles)
        if !user.isEmpty, !user.contains(":") { req.additionalGids = v.supplementaryGroups(user).filter { $0 != ids.gid } }
        let stageName = st.name
        let outcome = try Runner.run(req, tmp: cache.tmp) { line in
            self.progress(.output(stage: stageName, number: number, line: line))
        }
        let base = (outcome.upper as NSString).deletingLastPathComponent
        if outcome.status != 0 {
            FS.removeTree(base)
            throw BuildError.runFailed(command: ins.command.prependShell ? ins.command.arguments.joined(separator: " ") : goList(argv),
                                       status: outcome.status, output: outcome.output, line: line)
        }
        defer { FS.removeTree(base) }
        // The upper outlives the step's directory: its layer is written while the next steps run.
        let layerDir = "\(cache.tmp)/layer-\(UUID().uuidString.prefix(12))"
        guard rename(outcome.upper, layerDir) == 0 else { throw FS.sys("keep the RUN's changes at", layerDir) }
        try commit(dir: layerDir, fromUpper: true, key: key, &st, createdBy: by)
        return false
    }

    /// The state named by `--from` (a stage or an image).
    func sourceState(_ ref: String, line: Int) throws -> StageState {
        if let named = try namedContext(ref, line: line) { return named }
        if let i = stageIndex(ref) {
            guard let r = stageResult(i) else { throw err(line, "stage `\(ref)` is not built yet (a stage can only use earlier stages)") }
            return r
        }
        return try baseState(ref, line: line)
    }

    /// A directory showing a state's whole file system, always read-only: an empty temp dir, or
    /// a read-only overlay of its layers (over an empty directory when there is one layer, since
    /// overlayfs needs two lowers without an upper; whiteouts are then hidden as in a RUN). The
    /// unpacked layer directories that builds share are never handed out themselves.
    func mountedRoot(_ st: StageState) throws -> (path: String, mounted: Bool) {
        let dirs = try view(st).dirs
        if dirs.isEmpty { return (try cache.tempDir("empty"), false) }
        let m = try cache.tempDir("from")
        do {
            try store.snapshotter.mount(lowers: dirs, at: m, flags: UInt(MS_NOSUID | MS_NODEV))
        } catch {
            rmdir(m)
            throw BuildError.system("cannot mount the layers of \(st.name) read-only: \(error)")
        }
        return (m, true)
    }
}
