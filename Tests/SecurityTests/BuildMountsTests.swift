import Foundation
import Testing

/// Build mounts and contexts (issue #14): `RUN --mount` sources resolve inside their root, `rw`
/// binds are copy-on-write and thrown away, the unpacked layers that builds share are never
/// written, context binds honour `.dockerignore`, and there is one RUN runner. Every test is the
/// attack's repro through `dockbuild build`.
@Suite(.serialized) struct BuildMountsTests {
    // MARK: 1. sources resolve inside their root

    @Test(.enabled(if: Sec.canRun)) func contextSymlinkToHostDirectoryIsResolvedInTheContext() throws {
        let s = try SecStore()
        let token = "host-secret-\(UUID().uuidString)"
        let host = try s.path("host")
        try s.write("marker", token, in: host)
        let ctx = try s.path("ctx")
        try s.write("sub/f", "inside-context", in: ctx)
        symlink(host, ctx + "/e")          // absolute: to a host directory
        symlink("/etc", ctx + "/etc")       // the repro: e -> /etc, read shadow
        symlink("sub", ctx + "/link")       // a symlink that stays inside the context
        let attack = try bmBuild(s, ctx, "FROM busybox:test\nRUN --mount=type=bind,source=e,target=/x cat /x/marker\n")
        #expect(attack.status != 0, "a bind of a context symlink to a host dir must not succeed")
        #expect(!(attack.out + attack.err).contains(token), "the host file leaked through a context symlink")
        let shadow = (try? String(contentsOfFile: "/etc/shadow", encoding: .utf8))?.split(separator: "\n").first.map(String.init)
        let r2 = try bmBuild(s, ctx, "FROM busybox:test\nRUN --mount=type=bind,source=etc,target=/x head -2 /x/shadow\n")
        #expect(r2.status != 0)
        if let shadow, !shadow.isEmpty { #expect(!(r2.out + r2.err).contains(shadow), "the host's /etc/shadow leaked") }
        // A symlink that stays inside the context still works.
        let ok = try bmBuild(s, ctx, "FROM busybox:test\nRUN --mount=type=bind,source=link,target=/x cat /x/f\n")
        #expect(ok.status == 0, "\(ok.err)")
        #expect((ok.out + ok.err).contains("inside-context"))
        #expect(bmLeakedMounts(s).isEmpty, "mounts left behind: \(bmLeakedMounts(s))")
    }

    @Test(.enabled(if: Sec.canRun)) func stageSymlinkCannotReadOrWriteTheHost() throws {
        let s = try SecStore()
        let token = "host-secret-\(UUID().uuidString)"
        let host = try s.path("hostdir")
        try s.write("marker", token, in: host)
        let ctx = try s.path("ctx")
        let write = """
            FROM busybox:test AS a
            RUN ln -s \(host) /hd
            FROM busybox:test
            RUN --mount=type=bind,from=a,source=hd,target=/x,rw sh -c "echo PWNED > /x/f"
            """
        _ = try bmBuild(s, ctx, write)
        #expect(!FileManager.default.fileExists(atPath: host + "/f"), "a RUN wrote the host's \(host)/f through a stage symlink")
        let read = """
            FROM busybox:test AS a
            RUN ln -s \(host) /hd
            FROM busybox:test
            RUN --mount=type=bind,from=a,source=hd/marker,target=/x cat /x
            """
        let r = try bmBuild(s, ctx, read)
        #expect(r.status != 0)
        #expect(!(r.out + r.err).contains(token), "a host file leaked through a stage symlink")
        let cache = """
            FROM busybox:test AS a
            RUN ln -s \(host) /hd
            FROM busybox:test
            RUN --mount=type=cache,id=bm-\(UUID().uuidString),from=a,source=hd,target=/c cat /c/marker
            """
        let c = try bmBuild(s, ctx, cache)
        #expect(!(c.out + c.err).contains(token), "a cache mount was seeded from a host directory")
        #expect(bmLeakedMounts(s).isEmpty, "mounts left behind: \(bmLeakedMounts(s))")
    }

    @Test(.enabled(if: Sec.canRun)) func contextSwappedForASymlinkDuringTheBuildNeverLeaks() throws {
        let s = try SecStore()
        let token = "host-secret-\(UUID().uuidString)"
        let host = try s.path("host")
        try s.write("marker", token, in: host)
        let ctx = try s.path("ctx")
        try s.write("real/marker", "inside", in: ctx)
        // A process on the host flips `real` between a directory and a symlink to a host dir
        // while builds resolve and mount it: a mount by path after the check would follow it.
        var outputs = ""
        try bmFlipping(ctx + "/real", to: host) {
            for _ in 0..<12 {
                let r = try bmBuild(s, ctx, "FROM busybox:test\nRUN --mount=type=bind,source=real,target=/x cat /x/marker\n")
                outputs += r.out + r.err
            }
        }
        #expect(!outputs.contains(token), "a host file leaked while the context was being swapped")
    }

    @Test(.enabled(if: Sec.canRun)) func contextSwappedDuringCopyNeverLeaks() throws {
        let s = try SecStore()
        let token = "host-secret-\(UUID().uuidString)"
        let host = try s.path("host")
        try s.write("marker", token, in: host)
        let ctx = try s.path("ctx")
        try s.write("real/marker", "inside", in: ctx)
        // COPY matched `real` as a directory, then copied by path: a swap in between copied the
        // host's files into the image (4 of 40 builds before the fix).
        var outputs = ""
        try bmFlipping(ctx + "/real", to: host) {
            for _ in 0..<20 {
                let r = try bmBuild(s, ctx, "FROM busybox:test\nCOPY real /out\nRUN cat /out/marker\n")
                outputs += r.out + r.err
            }
        }
        #expect(!outputs.contains(token), "COPY took a host file while the context was being swapped")
    }

    @Test(.enabled(if: Sec.canRun)) func imageSymlinksAreNotFollowedOnTheHost() throws {
        let s = try SecStore()
        let ctx = try s.path("ctx")
        // The builder reads the image's /etc/passwd for USER from the unpacked layers: an image
        // whose /etc/passwd links to a host file made it read the host's file (uid 4242 here).
        try s.write("hostpasswd", "evil:x:4242:4343::/:/bin/sh\n")
        try s.write("hostdir/etc/passwd", "evil2:x:4244:4244::/:/bin/sh\n")
        let file = try bmBuild(s, ctx, "FROM busybox:test\nRUN ln -sf \(s.dir)/hostpasswd /etc/passwd\nUSER evil\nRUN echo uid-$(id -u)\n")
        #expect(!(file.out + file.err).contains("uid-4242"), "USER was resolved from a host file")
        #expect(file.status != 0)
        let dir = try bmBuild(s, ctx, "FROM busybox:test\nRUN rm -rf /etc && ln -s \(s.dir)/hostdir/etc /etc\nUSER evil2\nRUN echo uid-$(id -u)\n")
        #expect(!(dir.out + dir.err).contains("uid-4244"), "USER was resolved through a host directory")
        #expect(dir.status != 0)
        // Symlinks that stay in the image still resolve (inside it).
        let ok = try bmBuild(s, ctx, "FROM busybox:test\nRUN cp /etc/passwd /etc/passwd.real && echo inner:x:4545:4545::/:/bin/sh >> /etc/passwd.real && ln -sf passwd.real /etc/passwd\nUSER inner\nRUN echo uid-$(id -u)\n")
        #expect(ok.status == 0, "\(ok.err)")
        #expect((ok.out + ok.err).contains("uid-4545"))
    }

    @Test(.enabled(if: Sec.canRun)) func heredocNameCannotWriteAHostFile() throws {
        let s = try SecStore()
        let ctx = try s.path("ctx")
        let target = s.dir + "/pwned-by-heredoc"
        let up = String(repeating: "../", count: 24)
        // The heredoc's name was joined to a staging path as is: `..` wrote a host file as root.
        let r = try bmBuild(s, ctx, "FROM busybox:test\nCOPY <<\(up)\(target.dropFirst()) /x\nhello\n\(up)\(target.dropFirst())\nRUN cat /x\n")
        #expect(!FileManager.default.fileExists(atPath: target), "a COPY heredoc wrote a host file")
        #expect(r.status == 0, "\(r.err)")
        #expect((r.out + r.err).contains("hello"))
    }

    @Test(.enabled(if: Sec.canRun)) func addURLNameCannotWriteAHostFile() throws {
        let s = try SecStore()
        let ctx = try s.path("ctx")
        let target = s.dir + "/pwned-by-add"
        let server = try BuildMountsHTTPServer(body: "PAYLOAD")
        defer { server.stop() }
        // The file name is the URL's last segment, percent-decoded: `..%2F` climbed out of the
        // download dir and curl wrote the server's bytes to any host path.
        let up = String(repeating: "..%2F", count: 24)
        let path = target.dropFirst().replacingOccurrences(of: "/", with: "%2F")
        let r = try bmBuild(s, ctx, "FROM busybox:test\nADD http://127.0.0.1:\(server.port)/\(up)\(path) /y\nRUN cat /y\n")
        #expect(!FileManager.default.fileExists(atPath: target), "ADD <url> wrote a host file")
        #expect(r.status == 0, "\(r.err)")
        #expect((r.out + r.err).contains("PAYLOAD"))
    }

    @Test(.enabled(if: Sec.canRun)) func fifosInImagesDoNotHangTheBuilder() throws {
        let s = try SecStore()
        let ctx = try s.path("ctx")
        // An image whose /etc/passwd is a FIFO, and a rw bind of a FIFO: opening either to read
        // it blocked the builder for ever.
        let df = s.dir + "/Dockerfile-fifo"
        try s.write("Dockerfile-fifo", """
            FROM busybox:test AS a
            RUN mkfifo /f && rm /etc/passwd && mkfifo /etc/passwd
            FROM busybox:test AS b
            RUN --mount=type=bind,from=a,source=f,target=/x,rw ls -l /x
            FROM a
            USER someone
            RUN id
            """)
        let r = try Sec.run(["timeout", "60", Sec.binary, "build", "--root", s.root, "--progress", "plain", "--network", "none", "-f", df, ctx])
        #expect(r.status != 124, "the build hung on a FIFO")
        #expect(r.err.contains("someone"), "\(r.err)")
        let bind = try Sec.run(["timeout", "60", Sec.binary, "build", "--root", s.root, "--progress", "plain", "--network", "none", "--target", "b", "-f", df, ctx])
        #expect(bind.status == 0, "\(bind.err)")
    }

    // MARK: 2. rw is copy-on-write; the shared layers are never written

    @Test(.enabled(if: Sec.canRun)) func rwContextBindIsThrownAway() throws {
        let s = try SecStore()
        let ctx = try s.path("ctx")
        try s.write("keep.txt", "orig", in: ctx)
        try s.write("gone.txt", "here", in: ctx)
        let df = """
            FROM busybox:test
            RUN --mount=type=bind,target=/ctx,rw sh -c "echo planted > /ctx/planted; echo changed > /ctx/keep.txt; rm /ctx/gone.txt; echo seen-\\$(cat /ctx/keep.txt)"
            RUN --mount=type=bind,target=/ctx sh -c "echo later-\\$(cat /ctx/keep.txt); ls /ctx"
            USER user
            RUN --mount=type=bind,target=/ctx,rw sh -c "echo as-user-\\$(cat /ctx/keep.txt); id -u"
            """
        let r = try bmBuild(s, ctx, df)
        #expect(r.status == 0, "\(r.err)")
        let all = r.out + r.err
        #expect(all.contains("seen-changed"), "a rw bind must be writable during its step")
        #expect(all.contains("later-orig"), "a later step saw what an earlier rw bind wrote")
        #expect(all.contains("as-user-orig"), "a non-root RUN must read its rw bind")
        #expect(!FileManager.default.fileExists(atPath: ctx + "/planted"), "a rw bind wrote into the context")
        #expect((try? String(contentsOfFile: ctx + "/keep.txt", encoding: .utf8)) == "orig")
        #expect(FileManager.default.fileExists(atPath: ctx + "/gone.txt"), "a rw bind deleted a context file")
        #expect(bmLeakedMounts(s).isEmpty, "mounts left behind: \(bmLeakedMounts(s))")
    }

    @Test(.enabled(if: Sec.canRun)) func rwImageBindDoesNotPoisonLaterBuilds() throws {
        let s = try SecStore()
        let ctx = try s.path("ctx")
        // busybox:test has one layer: the bind used to be its unpacked layer directory itself.
        let poison = """
            FROM busybox:test
            RUN --mount=type=bind,from=busybox:test,target=/x,rw sh -c "echo poisoned > /x/etc/poison; echo x > /x/planted; rm /x/bin/ls; echo wrote"
            """
        let r = try bmBuild(s, ctx, poison)
        #expect(r.status == 0, "\(r.err)")
        #expect((r.out + r.err).contains("wrote"))
        #expect(bmFind(s.root + "/snapshots/layers", names: ["poison", "planted"]).isEmpty, "a RUN wrote into the shared unpacked layers")
        let later = try bmBuild(s, ctx, "FROM busybox:test\nRUN cat /etc/poison /planted 2>/dev/null; ls /bin/ls && echo CLEAN\n")
        #expect(later.status == 0, "\(later.err)")
        #expect(!(later.out + later.err).contains("poisoned"), "a later build saw a file planted through a rw bind")
        #expect((later.out + later.err).contains("CLEAN"))
    }

    @Test(.enabled(if: Sec.canRun)) func rwStageBindDoesNotChangeTheStage() throws {
        let s = try SecStore()
        let ctx = try s.path("ctx")
        let df = """
            FROM busybox:test AS a
            RUN echo base > /base
            FROM busybox:test
            RUN --mount=type=bind,from=a,target=/x,rw sh -c "echo poisoned > /x/base; touch /x/new; echo in-step-\\$(cat /x/base)"
            RUN --mount=type=bind,from=a,source=base,target=/b,rw sh -c "echo file-poisoned > /b; echo file-\\$(cat /b)"
            RUN --mount=type=bind,from=a,source=base,target=/b sh -c "echo ro-\\$(cat /b)"
            """
        let r = try bmBuild(s, ctx, df)
        #expect(r.status == 0, "\(r.err)")
        #expect((r.out + r.err).contains("in-step-poisoned"))
        #expect((r.out + r.err).contains("file-file-poisoned"), "a rw bind of a file must be writable in its step")
        #expect((r.out + r.err).contains("ro-base"), "a rw bind of a file changed the stage")
        let later = try bmBuild(s, ctx, "FROM busybox:test AS a\nRUN echo base > /base\nFROM a\nRUN echo got-$(cat /base); ls /new 2>/dev/null || echo NONEW\n")
        #expect(later.status == 0, "\(later.err)")
        #expect((later.out + later.err).contains("got-base"), "the stage's layer was changed through a rw bind")
        #expect((later.out + later.err).contains("NONEW"))
        #expect(bmFind(s.root + "/snapshots/layers", names: ["new"]).isEmpty)
    }

    @Test(.enabled(if: Sec.canRun)) func bindWithoutRwIsReadOnly() throws {
        let s = try SecStore()
        let ctx = try s.path("ctx")
        try s.write("f", "orig", in: ctx)
        let c = try bmBuild(s, ctx, "FROM busybox:test\nRUN --mount=type=bind,target=/ctx sh -c \"echo x > /ctx/f; touch /ctx/new\"\n")
        #expect(c.status != 0, "a read-only context bind accepted a write")
        #expect(!FileManager.default.fileExists(atPath: ctx + "/new"))
        #expect((try? String(contentsOfFile: ctx + "/f", encoding: .utf8)) == "orig")
        let i = try bmBuild(s, ctx, "FROM busybox:test\nRUN --mount=type=bind,from=busybox:test,target=/x touch /x/etc/bm-planted\n")
        #expect(i.status != 0, "a read-only image bind accepted a write")
        #expect(bmFind(s.root + "/snapshots/layers", names: ["bm-planted"]).isEmpty)
        // A mount over the whole root is refused with a message, not a broken container.
        let root = try bmBuild(s, ctx, "FROM busybox:test\nRUN --mount=type=bind,target=/.. ls /\n")
        #expect(root.status != 0)
        #expect(root.err.contains("whole root file system"), "\(root.err)")
        // A secret is read-only even when the mount says rw.
        let secret = s.dir + "/secret"
        try s.write("secret", "s3cret")
        let sr = try bmBuild(s, ctx, "FROM busybox:test\nRUN --mount=type=secret,id=t,rw sh -c \"echo changed > /run/secrets/t\"\n",
                             extra: ["--secret", "id=t,src=\(secret)"])
        #expect(sr.status != 0, "a secret mount accepted a write")
        #expect((try? String(contentsOfFile: secret, encoding: .utf8)) == "s3cret")
        #expect(bmLeakedMounts(s).isEmpty, "mounts left behind: \(bmLeakedMounts(s))")
    }

    @Test(.enabled(if: Sec.canRun)) func tmpfsSizeIsEnforced() throws {
        let s = try SecStore()
        let ctx = try s.path("ctx")
        let big = try bmBuild(s, ctx, "FROM busybox:test\nRUN --mount=type=tmpfs,target=/t,size=1m dd if=/dev/zero of=/t/f bs=1k count=4096\n")
        #expect(big.status != 0, "a tmpfs mount took more than its size= limit")
        let small = try bmBuild(s, ctx, "FROM busybox:test\nRUN --mount=type=tmpfs,target=/t,size=1m dd if=/dev/zero of=/t/f bs=1k count=512\n")
        #expect(small.status == 0, "\(small.err)")
    }

    @Test(.enabled(if: Sec.canRun && Sec.which("setpriv") != nil)) func setuidFilesOfBuildsAreOutOfReachOfLocalUsers() throws {
        let s = try SecStore()
        let ctx = try s.path("ctx")
        // An image or a RUN puts a setuid-root shell in a layer and in a cache mount; both live
        // unpacked under the store, where a local user could run them.
        let df = """
            FROM busybox:test
            RUN cp /bin/busybox /suid && chmod 4755 /suid
            RUN --mount=type=cache,id=bm-suid-\(UUID().uuidString),target=/c cp /bin/busybox /c/suid && chmod 4755 /c/suid
            """
        let r = try bmBuild(s, ctx, df)
        #expect(r.status == 0, "\(r.err)")
        // The layer is a snapshot of the store's, the cache mount the builder's.
        let found = try Sec.run(["find", s.root + "/build", s.root + "/snapshots", "-perm", "-4000", "-type", "f"]).out
            .split(separator: "\n").map(String.init)
        #expect(found.count >= 2, "the attack's setuid files should exist under the store: \(found)")
        for f in found {
            let as65534 = try Sec.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", "/bin/busybox", "stat", f])
            #expect(as65534.status != 0, "a local user can reach the setuid file \(f)")
        }
    }

    // MARK: 3. .dockerignore

    @Test(.enabled(if: Sec.canRun)) func contextBindHonoursDockerignore() throws {
        let s = try SecStore()
        let ctx = try s.path("ctx")
        let t1 = "ignored-\(UUID().uuidString)", t2 = "ignored-\(UUID().uuidString)"
        try s.write("secret.txt", t1, in: ctx)
        try s.write("sub/hidden.txt", t2, in: ctx)
        try s.write("sub/shown.txt", "shown", in: ctx)
        try s.write("a.log", "log-a", in: ctx)
        try s.write("keep.log", "log-kept", in: ctx)
        try s.write(".dockerignore", "secret.txt\nsub/hidden.txt\n*.log\n!keep.log\n", in: ctx)
        let df = """
            FROM busybox:test
            RUN --mount=type=bind,target=/ctx sh -c "cat /ctx/secret.txt /ctx/sub/hidden.txt /ctx/a.log; echo x-\\$(cat /ctx/keep.log)-\\$(cat /ctx/sub/shown.txt); true"
            RUN --mount=type=bind,source=sub,target=/s sh -c "cat /s/hidden.txt; ls /s; true"
            """
        let r = try bmBuild(s, ctx, df)
        #expect(r.status == 0, "\(r.err)")
        let all = r.out + r.err
        #expect(!all.contains(t1) && !all.contains(t2), "a .dockerignore'd file was readable through a bind mount")
        #expect(!all.contains("log-a"))
        #expect(all.contains("x-log-kept-shown"), "the non-ignored files must be there")
        let direct = try bmBuild(s, ctx, "FROM busybox:test\nRUN --mount=type=bind,source=secret.txt,target=/s cat /s\n")
        #expect(direct.status != 0)
        #expect(!(direct.out + direct.err).contains(t1))
        #expect((direct.out + direct.err).contains(".dockerignore"))
        #expect(bmLeakedMounts(s).isEmpty, "mounts left behind: \(bmLeakedMounts(s))")
    }

    @Test(.enabled(if: Sec.canRun)) func contextBindCacheKeyIsWhatTheViewHolds() throws {
        let s = try SecStore()
        let ctx = try s.path("ctx")
        try s.write("shown.txt", "one", in: ctx)
        try s.write("ignored.txt", "one", in: ctx)
        try s.write(".dockerignore", "ignored.txt\n", in: ctx)
        let df = s.dir + "/Dockerfile-cache"
        try s.write("Dockerfile-cache", "FROM busybox:test\nRUN --mount=type=bind,target=/ctx cat /ctx/shown.txt\n")
        func build() throws -> String {
            let r = try s.db(["build", "--progress", "plain", "--network", "none", "-f", df, ctx])
            #expect(r.status == 0, "\(r.err)")
            return r.out + r.err
        }
        #expect(!(try build()).contains("CACHED"))
        try s.write("ignored.txt", "two", in: ctx)
        #expect(try build().contains("CACHED"), "an ignored file is not an input of the step")
        try s.write("shown.txt", "two", in: ctx)
        #expect(!(try build()).contains("CACHED"), "a mounted file is an input of the step")
    }

    @Test(.enabled(if: Sec.canRun)) func contextDockerfileAndDockerignoreAreReadInsideTheContext() throws {
        let s = try SecStore()
        let ctx = try s.path("ctx")
        let token = "SECRETHASH\(UUID().uuidString.prefix(8))"
        // A context's Dockerfile or .dockerignore linking to a host file made the builder read
        // it and print its first line in the parse error.
        try s.write("hostsecret", "root:\(token):19000:0:99999:7:::\n")
        try s.write("hostignore", "[\(token)\n")
        symlink(s.dir + "/hostsecret", ctx + "/Dockerfile")
        let df = try s.db(["build", "--progress", "plain", "--network", "none", ctx])
        #expect(df.status != 0)
        #expect(!(df.out + df.err).contains(token), "the host file behind the context's Dockerfile leaked")
        unlink(ctx + "/Dockerfile")
        try s.write("docker/Dockerfile.prod", "FROM busybox:test\nRUN echo via-link\n", in: ctx)
        symlink("docker/Dockerfile.prod", ctx + "/Dockerfile")   // inside the context: still works
        symlink(s.dir + "/hostignore", ctx + "/.dockerignore")
        let ok = try s.db(["build", "--progress", "plain", "--network", "none", "--no-cache", ctx])
        #expect(ok.status == 0, "\(ok.err)")
        #expect((ok.out + ok.err).contains("via-link"))
        #expect(!(ok.out + ok.err).contains(token), "the host file behind the context's .dockerignore leaked")
    }

    // MARK: 4. one RUN runner

    @Test(.enabled(if: Sec.canRun)) func theUnshareRunnerIsGone() throws {
        let s = try SecStore()
        let ctx = try s.path("ctx")
        // The old runner (`DOCKBUILD_BUILD_RUNNER=unshare`) ran without seccomp and left the host's
        // hostname; the Runtime runner always sets docker's defaults.
        let r = try bmBuild(s, ctx, "FROM busybox:test\nRUN echo host-$(hostname)\n", env: ["DOCKBUILD_BUILD_RUNNER": "unshare"])
        #expect(r.status == 0, "\(r.err)")
        #expect((r.out + r.err).contains("host-buildkitsandbox"), "RUN did not go through the Runtime library")
    }
}

// MARK: helpers (this area's)

/// `dockbuild build` of `dockerfile` (written beside the context) with `--network none` and
/// `--no-cache`, plain progress.
func bmBuild(_ s: SecStore, _ ctx: String, _ dockerfile: String, extra: [String] = [], env: [String: String] = [:]) throws -> Sec.Result {
    let df = s.dir + "/Dockerfile-\(UUID().uuidString.prefix(8))"
    try Data(dockerfile.utf8).write(to: URL(fileURLWithPath: df))
    return try s.db(["build", "--progress", "plain", "--network", "none", "--no-cache", "-f", df] + extra + [ctx], env: env)
}

/// Paths under `dir` whose last component is one of `names`.
func bmFind(_ dir: String, names: Set<String>) -> [String] {
    guard let e = FileManager.default.enumerator(atPath: dir) else { return [] }
    var found: [String] = []
    while let p = e.nextObject() as? String {
        if names.contains((p as NSString).lastPathComponent) { found.append(p) }
    }
    return found
}

/// Mount points left under the store after a build.
func bmLeakedMounts(_ s: SecStore) -> [String] {
    guard let m = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return [] }
    return m.split(separator: "\n").compactMap { line in
        let f = line.split(separator: " ")
        return f.count > 4 && f[4].hasPrefix(s.root) ? String(f[4]) : nil
    }
}

/// Runs `body` while a thread flips `path` (a directory) with a symlink to `target` and back,
/// as a hostile process on the host could; leaves `path` a directory.
func bmFlipping(_ path: String, to target: String, _ body: () throws -> Void) throws {
    let stop = BuildMountsFlag()
    let flipper = Thread {
        while !stop.isSet {
            rename(path, path + ".d")
            symlink(target, path)
            usleep(100)
            unlink(path)
            rename(path + ".d", path)
            usleep(100)
        }
        stop.done()
    }
    flipper.start()
    defer { stop.set(); stop.waitDone() }
    try body()
}

/// A stop flag for a helper thread, and a way to wait until it has stopped.
final class BuildMountsFlag: @unchecked Sendable {
    private let cond = NSCondition()
    private var stop = false, finished = false
    var isSet: Bool { cond.lock(); defer { cond.unlock() }; return stop }
    func set() { cond.lock(); stop = true; cond.unlock() }
    func done() { cond.lock(); finished = true; cond.broadcast(); cond.unlock() }
    func waitDone() { cond.lock(); while !finished { cond.wait() }; cond.unlock() }
}

/// A loopback HTTP server (python3's http.server) that answers every GET with `body`, as a
/// hostile server behind an `ADD <url>` would.
final class BuildMountsHTTPServer: @unchecked Sendable {
    let port: Int
    private let process = Process()

    /// The server binds port 0 and prints the port the kernel gave it: a port picked here at
    /// random could be taken on the machine that runs the tests.
    init(body: String) throws {
        let script = """
            import http.server, sys
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    b = sys.argv[1].encode()
                    self.send_response(200); self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
                def log_message(self, *a): pass
            s = http.server.HTTPServer(("127.0.0.1", 0), H)
            print(s.server_address[1], flush=True)
            s.serve_forever()
            """
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, body]
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let line = String(decoding: pipe.fileHandleForReading.availableData, as: UTF8.self)
        guard let port = Int(line.trimmingCharacters(in: .whitespacesAndNewlines)), port > 0 else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw POSIXError(.EADDRNOTAVAIL)
        }
        self.port = port
    }

    /// SIGKILL: the child inherits the test thread's signal mask, where SIGTERM may be blocked.
    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
