// Dispatch: one method per Dockerfile instruction, as BuildKit's dispatcher has. Metadata
// instructions change the stage's config and add an empty-layer history entry; WORKDIR, RUN,
// COPY and ADD make layers (Builder+Steps.swift, Builder+Copy.swift).
import Foundation
import OCI
import ImageStore
import Dockerfile

extension Builder {
    /// Applies one instruction. Returns nil for metadata-only steps, true when a layer step was a cache hit.
    func dispatch(_ ins: Instruction, line: Int, _ st: inout StageState, _ scope: inout StageEnvironment, number: Int) throws -> Bool? {
        let expanded = try expandForDispatch(ins, line: line, &scope)
        switch (ins, expanded) {
        case (.env(let e), _): try dispatchEnv(e, line: line, &st)
        case (.label, .label(let l)): dispatchLabel(l, &st)
        case (.maintainer(let m), _): try dispatchMaintainer(m, line: line, &st)
        case (.arg, .arg(let a)): dispatchArg(a, scope: scope, &st)
        case (.expose(let e), _): try dispatchExpose(e, line: line, &st)
        case (.volume, .volume(let v)): try dispatchVolume(v, line: line, &st)
        case (.user, .user(let u)): update(&st, "USER " + u.user) { $0.user = u.user }
        case (.stopSignal, .stopSignal(let s)): update(&st, "STOPSIGNAL " + s.signal) { $0.stopSignal = s.signal }
        case (.shell(let s), _): update(&st, "SHELL [" + s.shell.joined(separator: " ") + "]") { $0.shell = s.shell }
        case (.cmd(let c), _): dispatchCmd(c, &st)
        case (.entrypoint(let e), _): dispatchEntrypoint(e, &st)
        case (.onbuild(let o), _):
            // BuildKit stores the trigger and writes no history entry for ONBUILD.
            var cc = st.config.config ?? ContainerConfig()
            cc.onBuild = (cc.onBuild ?? []) + [o.expression]
            st.config.config = cc
        case (.healthcheck(let h), _): dispatchHealthcheck(h, &st)
        case (.workdir, .workdir(let w)): return try dispatchWorkdir(w, &st)
        case (.run(let r), .run(let x)): return try runStep(r, mounts: x.mounts, line: line, &st, number: number)
        case (.copy(let c), .copy(let x)): return try copyStep(copySpec(c, x, line: line), &st)
        case (.add(let a), .add(let x)): return try copyStep(addSpec(a, x, line: line), &st)
        case (.from, _): throw err(line, "FROM cannot be used here")
        default: return nil
        }
        return nil
    }

    /// The instruction with its words expanded by what is visible before it (ARG/ENV scoping);
    /// the scope then takes the instruction's own ARG/ENV. Heredoc bodies are left to COPY.
    private func expandForDispatch(_ ins: Instruction, line: Int, _ scope: inout StageEnvironment) throws -> Instruction {
        do {
            var words = ins
            if case .copy(var c) = ins { c.sourceContents = []; words = .copy(c) }
            if case .add(var a) = ins { a.sourceContents = []; words = .add(a) }
            let expanded = try scope.expand(words)
            try scope.apply(ins)
            return expanded
        } catch {
            throw err(line, "\(ins.keyword): \(error)")
        }
    }

    /// Changes the stage's container config and records the instruction as an empty layer.
    private func update(_ st: inout StageState, _ createdBy: String, _ change: (inout ContainerConfig) -> Void) {
        var cc = st.config.config ?? ContainerConfig()
        change(&cc)
        st.config.config = cc
        history(&st, createdBy, empty: true)
    }

    private func dispatchEnv(_ e: EnvInstruction, line: Int, _ st: inout StageState) throws {
        var pairs: [String] = []
        var list = st.config.config?.env ?? []
        // Every value sees the environment from before this instruction, as in BuildKit:
        // `ENV A=x B=$A` gives B the old A.
        let before = expansionEnvWith(st, list)
        for kv in e.env {
            let k = kv.key
            let v = try expand(kv.value, before, line)
            if let idx = list.firstIndex(where: { $0.hasPrefix(k + "=") }) { list[idx] = k + "=" + v } else { list.append(k + "=" + v) }
            pairs.append(k + "=" + v)
        }
        update(&st, "ENV " + pairs.joined(separator: " ")) { $0.env = list }
    }

    private func dispatchLabel(_ l: LabelInstruction, _ st: inout StageState) {
        let pairs = l.labels.map { $0.key + "=" + $0.value }   // BuildKit writes `LABEL k=v`, unquoted
        update(&st, "LABEL " + pairs.joined(separator: " ")) { cc in
            var labels = cc.labels ?? [:]
            for kv in l.labels { labels[kv.key] = kv.value }
            cc.labels = labels
        }
    }

    private func dispatchMaintainer(_ m: MaintainerInstruction, line: Int, _ st: inout StageState) throws {
        st.config.author = try expand(m.maintainer, expansionEnv(st), line)
        history(&st, "MAINTAINER " + (st.config.author ?? ""), empty: true)
    }

    /// `a` is the expanded instruction. Its history entry shows each ARG's default as written in
    /// the Dockerfile (expanded), never a `--build-arg` value, as BuildKit writes it.
    private func dispatchArg(_ a: ArgInstruction, scope: StageEnvironment, _ st: inout StageState) {
        let committed = a.args.map { decl in decl.value.map { "\(decl.key)=\($0)" } ?? decl.key }
        st.args = scope.args.compactMapValues { $0 }
        st.argOrder += a.args.map(\.key)
        history(&st, "ARG " + committed.joined(separator: " "), empty: true)
    }

    private func dispatchExpose(_ e: ExposeInstruction, line: Int, _ st: inout StageState) throws {
        var these = Set<String>()
        let ports: [String]
        do { ports = try e.exposedPorts(lex: lex, env: expansionEnv(st)).map(\.description) } catch {
            throw err(line, "EXPOSE: \(error)")
        }
        these.formUnion(ports)
        // BuildKit prints this instruction's ports as Go prints a map (keys sorted).
        update(&st, "EXPOSE map[" + these.sorted().map { "\($0):{}" }.joined(separator: " ") + "]") { cc in
            var all = cc.exposedPorts ?? [:]
            for p in ports { all[p] = EmptyObject() }
            cc.exposedPorts = all
        }
    }

    private func dispatchVolume(_ vol: VolumeInstruction, line: Int, _ st: inout StageState) throws {
        if vol.volumes.contains(where: \.isEmpty) { throw err(line, "VOLUME specified can not be an empty string") }
        update(&st, "VOLUME [" + vol.volumes.joined(separator: " ") + "]") { cc in
            var vols = cc.volumes ?? [:]
            for v in vol.volumes { vols[v] = EmptyObject() }
            cc.volumes = vols
        }
    }

    private func dispatchCmd(_ c: CmdInstruction, _ st: inout StageState) {
        let cc = st.config.config ?? ContainerConfig()
        let cmd = c.command.prependShell ? shell(cc) + c.command.arguments : c.command.arguments
        st.cmdSet = true
        update(&st, "CMD " + goList(cmd)) {
            $0.cmd = cmd
            $0.argsEscaped = true   // BuildKit sets it on every CMD (Docker image spec compatibility)
        }
    }

    private func dispatchEntrypoint(_ e: EntrypointInstruction, _ st: inout StageState) {
        let cc = st.config.config ?? ContainerConfig()
        let entrypoint = e.command.prependShell ? shell(cc) + e.command.arguments : e.command.arguments
        let keepCmd = st.cmdSet
        update(&st, "ENTRYPOINT " + goList(entrypoint)) {
            $0.entrypoint = entrypoint
            if !keepCmd { $0.cmd = nil }
        }
    }

    private func dispatchHealthcheck(_ h: HealthcheckInstruction, _ st: inout StageState) {
        var hc = HealthConfig(test: h.test)
        if h.test != ["NONE"] {
            hc.interval = h.interval == 0 ? nil : h.interval
            hc.timeout = h.timeout == 0 ? nil : h.timeout
            hc.startPeriod = h.startPeriod == 0 ? nil : h.startPeriod
            hc.startInterval = h.startInterval == 0 ? nil : h.startInterval
            hc.retries = h.retries == 0 ? nil : h.retries
        }
        update(&st, "HEALTHCHECK " + goHealthcheck(hc)) { $0.healthcheck = hc }
    }

    private func dispatchWorkdir(_ w: WorkdirInstruction, _ st: inout StageState) throws -> Bool? {
        var cc = st.config.config ?? ContainerConfig()
        var wd = w.path
        if !wd.hasPrefix("/") { wd = (cc.workingDir ?? "/") + "/" + wd }
        wd = "/" + cleanPath(wd)
        cc.workingDir = wd
        st.config.config = cc
        return try workdirLayer(wd, &st)
    }

    private func copySpec(_ c: CopyInstruction, _ x: CopyInstruction, line: Int) -> CopySpec {
        CopySpec(isAdd: false, sources: x.sources, contents: c.sourceContents, rawDestination: c.destination,
                 destination: x.destination, from: c.from, chown: x.chown, chmod: x.chmod, link: c.link,
                 parents: c.parents, excludes: c.excludes, checksum: nil, unpack: false, keepGitDir: false, line: line)
    }

    private func addSpec(_ c: AddInstruction, _ x: AddInstruction, line: Int) -> CopySpec {
        CopySpec(isAdd: true, sources: x.sources, contents: c.sourceContents, rawDestination: c.destination,
                 destination: x.destination, from: nil, chown: x.chown, chmod: x.chmod, link: c.link,
                 parents: false, excludes: c.excludes, checksum: x.checksum, unpack: c.unpack ?? true,
                 keepGitDir: c.keepGitDir != nil, line: line)
    }
}
