import Foundation
import Testing
import OCI
import ImageStore
@testable import Build

/// Builder behaviour that must match current BuildKit (issue #15), one minimal Dockerfile each.
@Suite(.serialized) struct FidelityTests {
    func build(_ ws: Workspace, _ text: String, _ configure: (inout BuildOptions) -> Void = { _ in }) throws -> String {
        var o = BuildOptions(contextDir: nil, dockerfileText: text)
        configure(&o)
        let r = try Builder(store: ws.store, options: o).build()
        return try ws.files(r.image)
    }

    /// RUN heredoc bodies reach the shell unchanged: the shell, not the builder, expands `$X`, `$#`, `$0`.
    @Test(.enabled(if: getuid() == 0)) func runHeredocBodyIsTheShellsToExpand() throws {
        let ws = try Workspace()
        let fs = try build(ws, #"""
        FROM busybox:test
        ARG X=outer
        RUN <<EOF
        X=inner; echo "[$X] [$#] [$0]" > /x
        for i in 1 2 3; do echo "n$i"; done > /loop.txt
        echo "a b c" | awk '{ print $2 }' > /awk.txt
        EOF
        RUN <<'EOF'
        Y=quoted; echo "$Y" > /y
        EOF
        RUN <<EOF
        #!/bin/sh
        set -- one two
        echo "script $# $1" > /shebang.txt
        EOF
        """#)
        #expect(ws.read(fs + "/x") == "[inner] [0] [/bin/sh]\n")
        #expect(ws.read(fs + "/loop.txt") == "n1\nn2\nn3\n")
        #expect(ws.read(fs + "/awk.txt") == "b\n")
        #expect(ws.read(fs + "/y") == "quoted\n")
        #expect(ws.read(fs + "/shebang.txt") == "script 2 one\n")
    }

    /// COPY heredocs with an unquoted delimiter expand variables and keep every quote as written.
    @Test func copyHeredocKeepsQuotes() throws {
        let ws = try Workspace()
        let fs = try build(ws, #"""
        FROM busybox:test
        ARG name=world
        COPY <<EOF /quotes.txt
        Don't panic, ${name}. It's fine
        Hello '${name}'!
        Say "${name}" and \$name
        EOF
        COPY <<'EOF' /raw.txt
        Hello '${name}'!
        EOF
        """#)
        #expect(ws.read(fs + "/quotes.txt") == "Don't panic, world. It's fine\nHello 'world'!\nSay \"world\" and $name\n")
        #expect(ws.read(fs + "/raw.txt") == "Hello '${name}'!\n")
    }

    /// COPY and ADD as BuildKit does them (checked side by side with docker's BuildKit on this
    /// machine): symlinked sources are followed, a one-file wildcard copies to a file, an empty
    /// wildcard is no error, `ADD *.tar` extracts each archive, a copied directory's destination
    /// is made fresh (root, 0755), `--chmod` keeps directories traversable, a destination under
    /// a symlinked directory is written through the link.
    @Test(.enabled(if: getuid() == 0)) func copyAndAddFollowBuildKit() throws {
        let ws = try Workspace()
        let ctx = ws.dir + "/ctx"
        let fm = FileManager.default
        for d in ["sub/inner", "t1", "t2"] { try fm.createDirectory(atPath: ctx + "/" + d, withIntermediateDirectories: true) }
        func put(_ p: String, _ t: String) throws { try Data(t.utf8).write(to: URL(fileURLWithPath: ctx + "/" + p)) }
        try put("target.txt", "hello\n"); try put("fa.go", "a\n"); try put("sub/s.txt", "s\n"); try put("sub/inner/i.txt", "i\n")
        try put("t1/one", "1\n"); try put("t2/two", "2\n")
        try put("suid", "#!/bin/sh\n"); chmod(ctx + "/suid", 0o4755)
        symlink("target.txt", ctx + "/link.txt")
        symlink("sub", ctx + "/linkdir")
        chmod(ctx + "/sub", 0o700)
        #expect(try sh(["tar", "-cf", ctx + "/a1.tar", "-C", ctx + "/t1", "one"]).0 == 0)
        #expect(try sh(["tar", "-cf", ctx + "/a2.tar", "-C", ctx + "/t2", "two"]).0 == 0)
        var o = BuildOptions(contextDir: ctx, dockerfileText: """
        FROM busybox:test AS a
        RUN mkdir -p /d/e && touch /d/f && chown -R 100:200 /d && chmod 750 /d
        FROM busybox:test
        COPY --from=a /d /out
        COPY suid /suid
        COPY --chown=100:200 suid /suid-owned
        COPY link.txt /l1
        COPY link* /l2/
        COPY linkdir /ld
        COPY f*.go /foo2.go
        COPY fa.go nomatch* /multi/
        ADD *.tar /dest
        COPY sub /subcopy
        COPY --chmod=644 sub /subchmod
        RUN mkdir /real && ln -s /real /symdir
        COPY fa.go /symdir/
        """)
        o.tags = []
        let r = try Builder(store: ws.store, options: o).build()
        let fs = try ws.files(r.image)
        func kind(_ p: String) -> String {
            guard let a = try? fm.attributesOfItem(atPath: fs + p) else { return "missing" }
            let t = a[.type] as? FileAttributeType
            return t == .typeDirectory ? "dir" : t == .typeSymbolicLink ? "link" : "file"
        }
        func meta(_ p: String) -> String {
            guard let m = stat(fs + p) else { return "missing" }
            return "\(m.uid):\(m.gid) \(String(m.mode & 0o7777, radix: 8)) \(kind(p))"
        }
        #expect(meta("/out") == "0:0 755 dir")
        #expect(meta("/out/e") == "100:200 755 dir")
        #expect(meta("/out/f") == "100:200 644 file")
        // the owner is set before the mode, so a chown does not clear setuid (as BuildKit)
        #expect(meta("/suid") == "0:0 4755 file" && meta("/suid-owned") == "100:200 4755 file")
        #expect(meta("/l1") == "0:0 644 file" && ws.read(fs + "/l1") == "hello\n")
        #expect(meta("/l2/link.txt") == "0:0 644 file" && meta("/l2/s.txt") == "0:0 644 file")
        #expect(meta("/ld") == "0:0 755 dir" && meta("/ld/s.txt") == "0:0 644 file")
        #expect(meta("/foo2.go") == "0:0 644 file")
        #expect(meta("/multi/fa.go") == "0:0 644 file")
        #expect(meta("/dest/one") == "0:0 644 file" && meta("/dest/two") == "0:0 644 file")
        #expect(meta("/subcopy") == "0:0 755 dir" && meta("/subcopy/inner") == "0:0 755 dir")
        #expect(meta("/subchmod") == "0:0 755 dir" && meta("/subchmod/s.txt") == "0:0 644 file")
        #expect(meta("/subchmod/inner") == "0:0 755 dir")   // 644 + x where r: still traversable
        #expect(meta("/real/fa.go") == "0:0 644 file")
        #expect(kind("/symdir") == "link")
    }

    /// .dockerignore exceptions inside excluded directories re-include their files, and
    /// `NAME.dockerignore` beside a Dockerfile wins over the context's `.dockerignore`.
    @Test func dockerignoreExceptionsAndPerDockerfileIgnore() throws {
        let ws = try Workspace()
        let ctx = ws.dir + "/ctx"
        let fm = FileManager.default
        for d in ["dist/sub", "secret/public", "other"] { try fm.createDirectory(atPath: ctx + "/" + d, withIntermediateDirectories: true) }
        for f in ["dist/app.jar", "dist/other.jar", "dist/sub/x", "secret/key", "secret/public/cert", "other/o", "a.txt", "b.txt"] {
            try Data(f.utf8).write(to: URL(fileURLWithPath: ctx + "/" + f))
        }
        try Data("*\n!dist/app.jar\n!secret\nsecret\n!secret/public\n".utf8).write(to: URL(fileURLWithPath: ctx + "/.dockerignore"))
        var o = BuildOptions(contextDir: ctx, dockerfileText: "FROM busybox:test\nCOPY . /app/\n")
        o.tags = []
        let fs = try ws.files(try Builder(store: ws.store, options: o).build().image)
        #expect(ws.read(fs + "/app/dist/app.jar") == "dist/app.jar")
        #expect(ws.read(fs + "/app/secret/public/cert") == "secret/public/cert")
        for gone in ["dist/other.jar", "dist/sub", "secret/key", "other", "a.txt"] {
            #expect(!fm.fileExists(atPath: fs + "/app/" + gone), "\(gone) is ignored")
        }

        // build.Dockerfile.dockerignore beside the Dockerfile replaces .dockerignore.
        let df = ws.dir + "/build.Dockerfile"
        try Data("FROM busybox:test\nCOPY . /app/\n".utf8).write(to: URL(fileURLWithPath: df))
        try Data("b.txt\ndist\nsecret\nother\n".utf8).write(to: URL(fileURLWithPath: df + ".dockerignore"))
        var o2 = BuildOptions(contextDir: ctx, dockerfileText: "FROM busybox:test\nCOPY . /app/\n", dockerfileName: df)
        o2.tags = []
        let fs2 = try ws.files(try Builder(store: ws.store, options: o2).build().image)
        #expect(ws.read(fs2 + "/app/a.txt") == "a.txt")
        #expect(!fm.fileExists(atPath: fs2 + "/app/b.txt"))
        #expect(!fm.fileExists(atPath: fs2 + "/app/dist"))
    }

    /// A base without PATH gets BuildKit's default, so `ENV PATH=/custom:$PATH` extends it;
    /// `FROM scratch` has WorkingDir `/`; proxy build args reach RUN without an ARG line and
    /// stay out of the image's history and config.
    @Test(.enabled(if: getuid() == 0)) func defaultPathScratchWorkdirAndProxyArgs() throws {
        let ws = try Workspace()
        var plain = ImageConfig(platform: .host)
        let busybox = try ws.store.image("busybox:test")
        plain.rootfs = busybox.config.rootfs
        try ws.store.putImage(config: plain, layers: busybox.manifest.layers, tag: try ImageReference(parsing: "nopath:test"))
        var o = BuildOptions(contextDir: nil, dockerfileText: """
        FROM nopath:test
        ENV PATH=/custom:$PATH
        RUN echo "$PATH" > /p && echo "${HTTP_PROXY:-unset} ${no_proxy:-unset}" > /proxy
        """)
        o.buildArgs = ["HTTP_PROXY": "http://proxy.example:3128", "no_proxy": "localhost"]
        let r = try Builder(store: ws.store, options: o).build()
        let fs = try ws.files(r.image)
        let path = "/custom:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        #expect(ws.read(fs + "/p") == path + "\n")
        #expect(r.image.config.config?.env == ["PATH=" + path])
        #expect(ws.read(fs + "/proxy") == "http://proxy.example:3128 localhost\n")
        let history = (r.image.config.history ?? []).compactMap(\.createdBy).joined(separator: "\n")
        #expect(!history.contains("proxy.example"), "proxy values stay out of the history: \(history)")

        let scratch = try Builder(store: ws.store, options: BuildOptions(contextDir: nil, dockerfileText: "FROM scratch\nLABEL a=b\n")).build()
        #expect(scratch.image.config.config?.workingDir == "/")
    }

    /// History `created_by` strings as BuildKit writes them (checked against docker's BuildKit on
    /// this machine; HEALTHCHECK with current BuildKit's start interval), and ArgsEscaped on CMD.
    @Test(.enabled(if: getuid() == 0)) func historyAsBuildKitWritesIt() throws {
        let ws = try Workspace()
        let ctx = ws.dir + "/ctx"
        try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
        try Data("x\n".utf8).write(to: URL(fileURLWithPath: ctx + "/f.txt"))
        var o = BuildOptions(contextDir: ctx, dockerfileText: """
        FROM busybox:test
        ARG ZED=1
        ARG ALPHA=2
        ARG EMPTY
        ENV DIR=/opt
        EXPOSE 80 443/tcp
        EXPOSE 9000/udp
        LABEL foo=bar "with space"="a b"
        COPY f.txt $DIR/
        RUN echo hi
        HEALTHCHECK --interval=1m30s --timeout=500ms --retries=3 CMD wget -q -O- localhost:8080 || exit 1
        CMD ["sh"]
        """)
        o.tags = []
        let r = try Builder(store: ws.store, options: o).build()
        let h = (r.image.config.history ?? []).compactMap(\.createdBy)
        #expect(h.contains("EXPOSE map[443/tcp:{} 80/tcp:{}]"))
        #expect(h.contains("EXPOSE map[9000/udp:{}]"))
        #expect(h.contains("LABEL foo=bar with space=a b"))
        #expect(h.contains("COPY f.txt /opt/ # buildkit"))
        #expect(h.contains("RUN |3 ZED=1 ALPHA=2 EMPTY= /bin/sh -c echo hi # buildkit"))
        #expect(h.contains(#"HEALTHCHECK &{["CMD-SHELL" "wget -q -O- localhost:8080 || exit 1"] "1m30s" "500ms" "0s" "0s" '\x03'}"#))
        #expect(r.image.config.config?.argsEscaped == true)
        #expect(goDuration(2 * 3_600_000_000_000) == "2h0m0s" && goDuration(1_500_000_000) == "1.5s" && goQuoteRune(65) == "'A'")
    }

    /// The context index: a rebuild takes unchanged files' digests from it (stat unchanged),
    /// rehashes a file whose content changed even with the same size and mtime (its ctime moved),
    /// and never remembers a file hashed within a second of its last change.
    @Test func contextIndexSkipsUnchangedFilesAndCatchesChanges() throws {
        let ws = try Workspace()
        let ctx = ws.dir + "/ctx"
        try FileManager.default.createDirectory(atPath: ctx + "/d", withIntermediateDirectories: true)
        for i in 0..<20 { try Data("file \(i)\n".utf8).write(to: URL(fileURLWithPath: ctx + "/d/f\(i)")) }
        let text = "FROM busybox:test\nCOPY d /d\n"
        func build(text: String = text) throws -> (BuildResult, Builder) {
            var o = BuildOptions(contextDir: ctx, dockerfileText: text)
            o.tags = []
            let b = try Builder(store: ws.store, options: o)
            return (try b.build(), b)
        }
        // Just written: racy, so not remembered yet.
        let (r0, b0) = try build()
        let index = try #require(b0.contextDigests).file
        #expect(!(FileManager.default.contents(atPath: index).map { String(decoding: $0, as: UTF8.self) } ?? "").contains("/d/f1\t"))
        usleep(1_200_000)
        var before = stat()
        lstat(ctx + "/d/f1", &before)
        let (r1, _) = try build()
        #expect(r1.image.descriptor.digest == r0.image.descriptor.digest)
        let lines = String(decoding: FileManager.default.contents(atPath: index) ?? Data(), as: UTF8.self)
        #expect(lines.split(separator: "\n").count == 20)
        // A COPY (even one that misses the cache) never touches the context's files: a hard link
        // would move their ctime (the store and the context share a file system here) and every
        // rebuild would hash the whole context again.
        let (missed, _) = try build(text: "FROM busybox:test\nCOPY d /elsewhere\n")
        #expect(missed.cachedSteps == 0)
        var after = stat()
        lstat(ctx + "/d/f1", &after)
        #expect(after.st_ctim.tv_sec == before.st_ctim.tv_sec && after.st_ctim.tv_nsec == before.st_ctim.tv_nsec && after.st_nlink == 1)

        // The index is what a rebuild trusts: a doctored digest for an unchanged file changes the key.
        let doctored = lines.split(separator: "\n").map { l -> String in
            l.hasPrefix(ctx + "/d/f3\t") ? String(l.dropLast(64)) + String(repeating: "0", count: 64) : String(l)
        }.joined(separator: "\n") + "\n"
        try Data(doctored.utf8).write(to: URL(fileURLWithPath: index))
        let (r2, _) = try build()
        #expect(r1.cachedSteps == 1 && r2.cachedSteps == 0, "the doctored digest made the COPY a miss")

        // Same size, same mtime, new content: the ctime moved, so it is rehashed and copied.
        let f = ctx + "/d/f5"
        var st = stat()
        lstat(f, &st)
        try Data("FILE 5\n".utf8).write(to: URL(fileURLWithPath: f))
        var times = [st.st_atim, st.st_mtim]
        utimensat(AT_FDCWD, f, &times, 0)
        let (r3, _) = try build()
        let fs = try ws.files(r3.image)
        #expect(ws.read(fs + "/d/f5") == "FILE 5\n")
    }

    /// The context prefetch (a build that misses the cache hashes its COPY sources in the
    /// background from its first executed step) reads only
    /// what the COPYs name, skips what `.dockerignore` leaves out, never walks a root that is a
    /// symlink (here to a host directory), and gives the same image as a build without it.
    @Test func contextPrefetchStaysInsideWhatTheBuildReads() throws {
        let ws = try Workspace()
        let ctx = ws.dir + "/ctx"
        let host = ws.dir + "/hostdir"
        let fm = FileManager.default
        for d in ["app/sub", "unused"] { try fm.createDirectory(atPath: ctx + "/" + d, withIntermediateDirectories: true) }
        try fm.createDirectory(atPath: host, withIntermediateDirectories: true)
        for i in 0..<40 { try Data("file \(i)\n".utf8).write(to: URL(fileURLWithPath: ctx + "/app/sub/f\(i)")) }
        try Data(repeating: 7, count: 1 << 21).write(to: URL(fileURLWithPath: ctx + "/app/big.bin"))
        try Data("ignored".utf8).write(to: URL(fileURLWithPath: ctx + "/app/secret.txt"))
        try Data("unused".utf8).write(to: URL(fileURLWithPath: ctx + "/unused/u.txt"))
        try Data("host".utf8).write(to: URL(fileURLWithPath: host + "/h.txt"))
        symlink(host, ctx + "/h")
        try Data("app/secret.txt\n".utf8).write(to: URL(fileURLWithPath: ctx + "/.dockerignore"))
        usleep(1_200_000)   // not racy: every file hashed is remembered in the index
        func build(_ text: String) throws -> (BuildResult, String) {
            var o = BuildOptions(contextDir: ctx, dockerfileText: text)
            o.tags = []
            let b = try Builder(store: ws.store, options: o)
            let r = try b.build()
            let index = try #require(b.contextDigests).file
            return (r, String(decoding: fm.contents(atPath: index) ?? Data(), as: UTF8.self))
        }
        let (r, index) = try build("FROM busybox:test\nCOPY app/ /app/\n")
        #expect(index.contains(ctx + "/app/big.bin\t") && index.contains(ctx + "/app/sub/f39\t"))
        #expect(!index.contains("secret.txt") && !index.contains("/unused/") && !index.contains("h.txt"))
        let fs = try ws.files(r.image)
        #expect(ws.read(fs + "/app/sub/f7") == "file 7\n" && !fm.fileExists(atPath: fs + "/app/secret.txt"))
        // the same layer as a build that found every digest in the index (prefetched or not)
        let (again, _) = try build("FROM busybox:test\nCOPY app/ /app/\n")
        #expect(again.image.manifest.layers == r.image.manifest.layers && again.cachedSteps == 1)
        // a root that is a symlink out of the context: left to the COPY, which fails inside the context
        // (the prefetch starts at the first step that misses the cache: the RUN, which gives it time)
        #expect(throws: BuildError.self) { try build("FROM busybox:test\nRUN sleep 0.3\nCOPY h/ /x/\n") }
        let after = String(decoding: fm.contents(atPath: try #require(Builder(store: ws.store, options: BuildOptions(contextDir: ctx, dockerfileText: "FROM busybox:test\n")).contextDigests).file) ?? Data(), as: UTF8.self)
        #expect(!after.contains("h.txt"), "nothing behind the link was hashed")
    }

    /// `--build-context`: a directory, an image and an OCI layout stand in for a name in FROM,
    /// `COPY --from` and RUN mounts.
    @Test(.enabled(if: getuid() == 0)) func namedBuildContexts() throws {
        let ws = try Workspace()
        let dir = ws.dir + "/extra"
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        try Data("from a named context\n".utf8).write(to: URL(fileURLWithPath: dir + "/sub/note.txt"))
        // an OCI layout holding busybox:test with one more file
        var base = BuildOptions(contextDir: nil, dockerfileText: "FROM busybox:test\nRUN echo layout > /layout.txt\n")
        base.tags = [try ImageReference(parsing: "withfile:test")]
        _ = try Builder(store: ws.store, options: base).build()
        let layout = ws.dir + "/layout"
        #expect(try sh(["mkdir", "-p", layout]).0 == 0)
        try ws.store.save(["withfile:test"], format: .oci, to: ws.dir + "/layout.tar")
        #expect(try sh(["tar", "-xf", ws.dir + "/layout.tar", "-C", layout]).0 == 0)

        var o = BuildOptions(contextDir: nil, dockerfileText: """
        FROM base
        COPY --from=extra sub/note.txt /note.txt
        COPY --from=lay /layout.txt /copied-layout.txt
        RUN --mount=type=bind,from=extra,target=/x cat /x/sub/note.txt > /mounted.txt
        """)
        o.buildContexts = ["base": "docker-image://busybox:test", "extra": dir, "lay": "oci-layout://" + layout]
        let r = try Builder(store: ws.store, options: o).build()
        let fs = try ws.files(r.image)
        #expect(ws.read(fs + "/note.txt") == "from a named context\n")
        #expect(ws.read(fs + "/copied-layout.txt") == "layout\n")
        #expect(ws.read(fs + "/mounted.txt") == "from a named context\n")
        #expect(stat(fs + "/note.txt")?.uid == 0)

        var bad = BuildOptions(contextDir: nil, dockerfileText: "FROM nowhere\n")
        bad.buildContexts = ["nowhere": ws.dir + "/missing"]
        #expect(throws: BuildError.self) { try Builder(store: ws.store, options: bad).build() }
    }

    /// `--progress tty` (and `auto` on a terminal) draws BuildKit's live view: a `[+] Building`
    /// header, one `=>` line per step, output tails under running steps, `CACHED` steps, and a
    /// final `FINISHED` frame. Driven through tmux, as a person at a terminal sees it.
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux")))
    func ttyProgressIsBuildKitsLiveView() throws {
        let ws = try Workspace()
        let pkg = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let bin = pkg + "/.build/debug/dockbuild"
        try #require(FileManager.default.isExecutableFile(atPath: bin))
        let ctx = ws.dir + "/ttyctx"
        try FileManager.default.createDirectory(atPath: ctx, withIntermediateDirectories: true)
        try Data("FROM busybox:test\nRUN echo first-output && sleep 1.5\nRUN echo two\n".utf8)
            .write(to: URL(fileURLWithPath: ctx + "/Dockerfile"))
        let session = "dbtty\(getpid())"
        let out = ws.dir + "/screen.txt"
        /// tmux through posix_spawn on /dev/null (its server keeps the descriptors it is given).
        @discardableResult
        func tmux(_ args: [String], stdout: String = "/dev/null") -> Int32 {
            var fa = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&fa)
            defer { posix_spawn_file_actions_destroy(&fa) }
            posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&fa, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0)
            var argv: [UnsafeMutablePointer<CChar>?] = (["/usr/bin/tmux"] + args).map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            var pid: pid_t = 0
            guard posix_spawn(&pid, "/usr/bin/tmux", &fa, nil, &argv, environ) == 0 else { return -1 }
            var st: Int32 = 0
            while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
            return st
        }
        func screen() -> String {
            tmux(["capture-pane", "-p", "-t", session], stdout: out)
            return ws.read(out) ?? ""
        }
        func start(_ extra: String) {
            tmux(["new-session", "-d", "-s", session, "-x", "120", "-y", "30",
                  "\(bin) build --root \(ws.store.root) --network none \(extra) \(ctx); sleep 20"])
        }
        defer { tmux(["kill-session", "-t", session]) }
        start("--progress tty")
        var mid = ""
        for _ in 0..<50 where !mid.contains(" => => # first-output") { usleep(100_000); mid = screen() }
        #expect(mid.contains("[+] Building"))
        #expect(mid.contains(" => => # first-output"), "the running step shows its output: \(mid)")
        var end = ""
        for _ in 0..<100 where !end.contains("FINISHED") { usleep(100_000); end = screen() }
        #expect(end.contains("(3/3) FINISHED"))
        #expect(end.contains(" => [stage-0 2/3] RUN echo first-output && sleep 1.5"))
        #expect(!end.contains(" => => # first-output"), "finished steps collapse to one line")
        tmux(["kill-session", "-t", session])
        start("")   // auto on a terminal: the same view; the steps are cached now
        end = ""
        for _ in 0..<100 where !end.contains("FINISHED") { usleep(100_000); end = screen() }
        #expect(end.contains(" => CACHED [stage-0 2/3] RUN echo first-output"))
    }

    /// `RUN --mount=type=secret`: a private copy (mode 0400 root by default, or `mode`/`uid`/`gid`),
    /// never the host file itself; `env=` exposes the value as a variable (with no target, only
    /// that); `required` fails without the secret.
    @Test(.enabled(if: getuid() == 0)) func secretMountsAsBuildKitDoes() throws {
        let ws = try Workspace()
        let secret = ws.dir + "/token"
        try Data("s3cr3t".utf8).write(to: URL(fileURLWithPath: secret))
        chmod(secret, 0o644)
        var o = BuildOptions(contextDir: nil, dockerfileText: """
        FROM busybox:test
        RUN --mount=type=secret,id=token stat -c '%a %u:%g' /run/secrets/token > /default.txt && cat /run/secrets/token >> /default.txt
        RUN --mount=type=secret,id=token,target=/s,mode=0440,uid=1000,gid=100 stat -c '%a %u:%g' /s > /custom.txt
        RUN --mount=type=secret,id=token,env=TOKEN echo "[$TOKEN]" > /env.txt && test ! -e /run/secrets/token
        RUN --mount=type=secret,id=token,env=TOKEN2,target=/both echo "[$TOKEN2] $(cat /both)" > /both.txt
        RUN --mount=type=secret,id=token,target=/w sh -c 'echo x > /w' 2>/dev/null; cat /w > /after.txt
        """)
        o.secrets = ["token": secret]
        let r = try Builder(store: ws.store, options: o).build()
        let fs = try ws.files(r.image)
        #expect(ws.read(fs + "/default.txt") == "400 0:0\ns3cr3t")
        #expect(ws.read(fs + "/custom.txt") == "440 1000:100\n")
        #expect(ws.read(fs + "/env.txt") == "[s3cr3t]\n")
        #expect(ws.read(fs + "/both.txt") == "[s3cr3t] s3cr3t\n")
        #expect(ws.read(fs + "/after.txt") == "s3cr3t", "a secret mount is read-only")
        #expect(ws.read(secret) == "s3cr3t")
        #expect(!(r.image.config.config?.env ?? []).contains { $0.contains("s3cr3t") })
        for h in r.image.config.history ?? [] { #expect(!(h.createdBy ?? "").contains("s3cr3t")) }

        var req = BuildOptions(contextDir: nil, dockerfileText: "FROM busybox:test\nRUN --mount=type=secret,id=missing,required=true true\n")
        req.noCache = true
        #expect(throws: BuildError.self) { try Builder(store: ws.store, options: req).build() }
    }

    /// `type=cache,sharing=`: `locked` makes concurrent builds take turns, `private` gives the
    /// second one its own directory, `shared` lets them interleave.
    @Test(.enabled(if: getuid() == 0)) func cacheMountSharingModes() throws {
        let ws = try Workspace()
        let store = ws.store
        func together(_ sharing: String) throws -> String {
            let errors = ErrorCollector()
            DispatchQueue.concurrentPerform(iterations: 2) { n in
                do {
                    var o = BuildOptions(contextDir: nil, dockerfileText: """
                    FROM busybox:test
                    RUN --mount=type=cache,id=\(sharing),target=/c,sharing=\(sharing) sh -c 'echo start >> /c/log; sleep 1; echo end >> /c/log; echo \(n)'
                    """)
                    o.noCache = true
                    o.network = "none"
                    _ = try Builder(store: store, options: o).build()
                } catch { errors.add(error) }
            }
            try errors.check()
            var o = BuildOptions(contextDir: nil, dockerfileText: "FROM busybox:test\nRUN --mount=type=cache,id=\(sharing),target=/c cp /c/log /log\n")
            o.noCache = true
            o.network = "none"
            let r = try Builder(store: ws.store, options: o).build()
            return (ws.read(try ws.files(r.image) + "/log") ?? "").split(separator: "\n").joined(separator: " ")
        }
        #expect(try together("locked") == "start end start end")
        #expect(try together("shared") == "start start end end")
        #expect(try together("private") == "start end")
    }

    /// `--ssh ID=SOCKET` and `RUN --mount=type=ssh`: the agent's socket at BuildKit's default
    /// target (or `target=`), `SSH_AUTH_SOCK` set; without `--ssh` the mount is skipped, or the
    /// step fails when `required=true`.
    @Test(.enabled(if: getuid() == 0)) func sshAgentForwarding() throws {
        let ws = try Workspace()
        let sock = ws.dir + "/agent.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in sock.utf8.enumerated() where i < p.count - 1 { p[i] = b }
        }
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        try #require(bound == 0 && listen(fd, 4) == 0)
        var o = BuildOptions(contextDir: nil, dockerfileText: """
        FROM busybox:test
        RUN --mount=type=ssh test -S "$SSH_AUTH_SOCK" && echo "$SSH_AUTH_SOCK" > /ssh.txt
        RUN --mount=type=ssh,id=work,target=/agent test -S /agent && echo ok > /work.txt
        RUN --mount=type=ssh,id=absent echo skipped > /absent.txt
        """)
        o.ssh = ["default": sock, "work": sock]
        let r = try Builder(store: ws.store, options: o).build()
        let fs = try ws.files(r.image)
        #expect(ws.read(fs + "/ssh.txt") == "/run/buildkit/ssh_agent.0\n")
        #expect(ws.read(fs + "/work.txt") == "ok\n")
        #expect(ws.read(fs + "/absent.txt") == "skipped\n")
        #expect(!FileManager.default.fileExists(atPath: fs + "/run/buildkit/ssh_agent.0") || ws.read(fs + "/run/buildkit/ssh_agent.0") == "")

        let req = BuildOptions(contextDir: nil, dockerfileText: "FROM busybox:test\nRUN --mount=type=ssh,required=true true\n")
        #expect(throws: BuildError.self) { try Builder(store: ws.store, options: req).build() }
    }
}

final class ErrorCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [any Error] = []
    func add(_ e: any Error) { lock.lock(); errors.append(e); lock.unlock() }
    func check() throws { if let e = errors.first { throw e } }
}
