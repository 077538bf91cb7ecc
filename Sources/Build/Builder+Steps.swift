import Foundation
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

    /// The parent file system as a read-only view (unpacks layers the first time they are needed).
    func view(_ st: StageState) throws -> LayerView {
        LayerView(dirs: try st.layers.reversed().map { try cache.unpacked($0) })
    }

    var writerOptions: LayerWriter.Options { LayerWriter.Options(sourceDateEpoch: options.sourceDateEpoch) }

    /// Looks a step up in the cache; on a hit applies it to `st`.
    func hit(_ key: String, _ st: inout StageState, createdBy: String) -> Bool {
        if options.noCache { return false }
        guard let rec = cache.lookup(key) else { return false }
        apply(rec, key: key, &st, createdBy: createdBy)
        return true
    }

    func apply(_ rec: CacheRecord, key: String, _ st: inout StageState, createdBy: String) {
        if let l = rec.layer { st.layers.append(l) }
        if let c = rec.created {
            lock.lock()
            if latestCached.map({ c > $0 }) ?? true { latestCached = c }
            lock.unlock()
        }
        history(&st, createdBy, empty: rec.layer == nil)
        st.key = key
        record(key)
    }

    /// Turns a finished directory (staging tree or overlay upper) into a layer in the store,
    /// keeps the directory as that layer's unpacked form, and records the step in the cache.
    func commit(dir: String, fromUpper: Bool, key: String, _ st: inout StageState, createdBy: String) throws {
        var rec = CacheRecord(layer: nil, created: created)
        if !FS.list(dir).isEmpty {
            let out = "\(store.tempDir)/layer-\(UUID().uuidString.prefix(12))"
            let info: LayerInfo
            do {
                info = fromUpper
                    ? try LayerDiff.fromOverlayUpper(dir, to: out, compression: options.compression, options: writerOptions)
                    : try LayerWriter.write(directory: dir, to: out, compression: options.compression, options: writerOptions)
                try store.adoptFile(at: out, digest: info.digest, verify: false)
            } catch {
                unlink(out)
                throw BuildError.system("cannot write the layer for `\(createdBy)`: \(error)")
            }
            let ref = LayerRef(descriptor: Descriptor(mediaType: info.mediaType, digest: info.digest, size: info.size), diffID: info.diffID)
            cache.adopt(dir, as: cache.layerDir(info.diffID))
            rec.layer = ref
        } else {
            FS.removeTree(dir)
        }
        try cache.save(key, rec)
        apply(rec, key: key, &st, createdBy: createdBy)
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
            guard let host = view.find(a), let st = FS.info(host), FS.isDir(st) else { continue }
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
        let mounts = try specs.map { try RunMount($0, file: dockerfile.fileName, line: line) }
        let network = ins.flagsUsed.contains("network") ? ins.network : options.network
        guard ["default", "host", "none"].contains(network) else { throw err(line, "--network=\(network): use default, host or none") }
        if ins.security != "sandbox" { throw err(line, "--security=\(ins.security) is not supported; only sandbox") }
        let user = cc.user ?? ""
        let workdir = cc.workingDir ?? "/"
        // Bind mounts from the context or another stage are inputs: their content goes into the key.
        var mountKeys: [String] = []
        for m in mounts {
            var k = "\(m.kind.rawValue):\(m.target):\(m.id ?? ""):\(m.readOnly)"
            if m.kind == .bind {
                if let from = m.from {
                    k += ":from=" + (try sourceState(from, line: line).key) + ":" + (m.source ?? "/")
                } else if let ctx = options.contextDir {
                    var h = Digest.Hasher()
                    let src = cleanPath(m.source ?? ".")
                    let abs = src.isEmpty ? ctx : ctx + "/" + src
                    try FS.hashTree(abs, into: &h, skip: { r in self.ignore.matches(src.isEmpty ? r : src + "/" + r) }, withOwner: false)
                    k += ":ctx=" + h.finalize().encoded
                }
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
        var tempMounts: [String] = []
        defer { for t in tempMounts { umount2(t, Int32(MNT_DETACH)); FS.removeTree(t) } }
        for m in mounts {
            switch m.kind {
            case .cache:
                let name = Digest.compute(Data((m.id ?? m.target).utf8)).encoded.prefix(32)
                let d = "\(cache.dir)/mounts/\(name)"
                let fresh = !FS.exists(d)
                if fresh { try FS.mkdirs(d) }
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
                resolved.append((m, src))
            case .tmpfs:
                resolved.append((m, ""))
            case .ssh:
                throw err(line, "--mount=type=ssh is not supported")
            case .bind:
                let src: String
                if let from = m.from {
                    let root = try mountedRoot(try sourceState(from, line: line))
                    if root.mounted { tempMounts.append(root.path) }
                    src = root.path + "/" + cleanPath(m.source ?? "/")
                } else {
                    guard let ctx = options.contextDir else { throw err(line, "--mount=type=bind needs a build context") }
                    src = ctx + "/" + cleanPath(m.source ?? ".")
                }
                guard FS.exists(src) else { throw err(line, "--mount=type=bind: source \(m.source ?? ".") does not exist") }
                resolved.append((m, src))
            }
        }
        // Proxy build args reach every RUN without an ARG line, and stay out of the cache key
        // and the history unless the Dockerfile declares them (BuildKit's rule).
        let proxies = buildArgs.proxyEnvironment.sorted { $0.key < $1.key }
            .filter { p in !env.contains { $0.hasPrefix(p.key + "=") } }.map { $0.key + "=" + $0.value }
        var req = RunRequest(argv: argv, env: env + proxies, workdir: workdir, uid: ids.uid, gid: ids.gid, lowers: v.dirs,
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
        try commit(dir: outcome.upper, fromUpper: true, key: key, &st, createdBy: by)
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

    /// A directory showing a state's whole file system: a layer dir itself, or a read-only overlay.
    func mountedRoot(_ st: StageState) throws -> (path: String, mounted: Bool) {
        let dirs = try view(st).dirs
        if dirs.isEmpty { return (try cache.tempDir("empty"), false) }
        if dirs.count == 1 { return (dirs[0], false) }
        let m = try cache.tempDir("from")
        let opts = "lowerdir=" + dirs.joined(separator: ":")
        if mount("overlay", m, "overlay", UInt(MS_RDONLY), opts) != 0 {
            let e = String(cString: strerror(errno))
            FS.removeTree(m)
            throw BuildError.system("cannot mount the layers of \(st.name) read-only: \(e)")
        }
        return (m, true)
    }
}
