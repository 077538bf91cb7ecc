import Testing
@testable import Dockerfile

@Suite struct InstructionTests {
    func parse(_ text: String) throws -> Dockerfile { try Dockerfile.parse(text, fileName: "Dockerfile") }

    @Test func fromWithPlatformAndName() throws {
        let df = try parse("FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\n")
        guard case .from(let f) = df.instructions[0] else { Issue.record("not FROM"); return }
        #expect(f.baseName == "golang:1.22")
        #expect(f.stageName == "build")
        #expect(f.platform == "$BUILDPLATFORM")
        #expect(f.source.range.start == Position(line: 1, column: 1))
    }

    @Test func runMountsNetworkSecurity() throws {
        let df = try parse("""
            FROM busybox
            RUN --mount=type=cache,target=/root/.cache,id=go,sharing=locked,uid=1000,mode=0755 \\
                --mount=type=secret,id=token,required --mount=type=tmpfs,target=/tmp,size=64m \\
                --mount=type=ssh --mount=from=builder,source=/out,target=/in,rw \\
                --network=none --security=insecure make

            """)
        guard case .run(let r) = df.stages[0].instructions[0] else { Issue.record("not RUN"); return }
        #expect(r.mounts.count == 5)
        #expect(r.mounts[0].type == .cache && r.mounts[0].target == "/root/.cache" && r.mounts[0].cacheID == "go")
        #expect(r.mounts[0].sharing == .locked && r.mounts[0].uid == 1000 && r.mounts[0].mode == 0o755)
        #expect(r.mounts[0].readOnly == false)
        #expect(r.mounts[1].type == .secret && r.mounts[1].required && r.mounts[1].readOnly)
        #expect(r.mounts[2].type == .tmpfs && r.mounts[2].sizeLimit == 64 * 1024 * 1024)
        #expect(r.mounts[3].type == .ssh)
        #expect(r.mounts[4].type == .bind && r.mounts[4].from == "builder" && r.mounts[4].readOnly == false)
        #expect(r.network == "none" && r.security == "insecure")
        #expect(r.command == CommandLine(arguments: ["make"], prependShell: true, files: []))
        #expect(Set(r.flagsUsed) == ["mount", "network", "security"])
    }

    @Test func mountWithVariablesIsParsedLater() throws {
        let df = try parse("FROM busybox\nRUN --mount=type=$T,target=/x true\n")
        guard case .run(let r) = df.stages[0].instructions[0] else { Issue.record("not RUN"); return }
        #expect(r.mounts.isEmpty && r.mountSpecs == ["type=$T,target=/x"])
        let m = try Mount.parse("type=cache,target=/x")
        #expect(m.type == .cache)
        #expect(throws: ExpansionError.self) { try Mount.parse("type=cahce") }
    }

    @Test func copyAndAddFlags() throws {
        let df = try parse("""
            FROM busybox
            COPY --from=build --chown=1:2 --chmod=644 --link --parents --exclude=*.md --exclude=tmp a b /dst/
            ADD --checksum=sha256:00 --keep-git-dir --unpack=false --exclude=x https://e.com/f.tgz /d
            COPY <<EOF <<-"raw" /etc/
            hello $HOME
            EOF
            \traw body
            \traw

            """)
        let ins = df.stages[0].instructions
        guard case .copy(let c) = ins[0], case .add(let a) = ins[1], case .copy(let h) = ins[2] else {
            Issue.record("unexpected instructions"); return
        }
        #expect(c.from == "build" && c.chown == "1:2" && c.chmod == "644" && c.link && c.parents)
        #expect(c.excludes == ["*.md", "tmp"] && c.sources == ["a", "b"] && c.destination == "/dst/")
        #expect(a.checksum == "sha256:00" && a.keepGitDir == true && a.unpack == false && a.excludes == ["x"])
        #expect(a.link == false && a.chown == nil)
        #expect(h.sources.isEmpty)
        #expect(h.sourceContents == [
            SourceContent(path: "EOF", data: "hello $HOME\n", expand: true),
            SourceContent(path: "raw", data: "raw body\n", expand: false),
        ])
    }

    @Test func shellAndExecForms() throws {
        let df = try parse("""
            FROM busybox
            CMD ["sh", "-c", "echo hi"]
            ENTRYPOINT exec /bin/app --flag
            SHELL ["/bin/bash", "-c"]
            RUN <<EOF
            echo one
            EOF

            """)
        let ins = df.stages[0].instructions
        guard case .cmd(let c) = ins[0], case .entrypoint(let e) = ins[1], case .shell(let s) = ins[2],
              case .run(let r) = ins[3] else { Issue.record("unexpected"); return }
        #expect(c.command.arguments == ["sh", "-c", "echo hi"] && !c.command.prependShell)
        #expect(e.command.arguments == ["exec /bin/app --flag"] && e.command.prependShell)
        #expect(s.shell == ["/bin/bash", "-c"])
        #expect(r.command.arguments == ["<<EOF"] && r.command.files.first?.content == "echo one\n")
    }

    @Test func envLabelArgExpose() throws {
        let df = try parse("""
            ARG A B=2
            FROM busybox
            ENV X=1 Y="two words"
            ENV OLD style value
            LABEL a=b "c d"=e
            EXPOSE 8080 80/tcp 53/udp
            STOPSIGNAL SIGKILL
            USER nobody
            WORKDIR /app
            VOLUME ["/a", "/b"]
            MAINTAINER me

            """)
        #expect(df.metaArgs.first?.args == [ArgDeclaration(key: "A", value: nil), ArgDeclaration(key: "B", value: "2")])
        let ins = df.stages[0].instructions
        guard case .env(let e1) = ins[0], case .env(let e2) = ins[1], case .label(let l) = ins[2],
              case .expose(let x) = ins[3], case .stopSignal(let s) = ins[4], case .user(let u) = ins[5],
              case .workdir(let w) = ins[6], case .volume(let v) = ins[7], case .maintainer(let m) = ins[8]
        else { Issue.record("unexpected"); return }
        #expect(e1.env == [KeyValuePair(key: "X", value: "1", noDelimiter: false),
                           KeyValuePair(key: "Y", value: "\"two words\"", noDelimiter: false)])
        #expect(e2.env == [KeyValuePair(key: "OLD", value: "style value", noDelimiter: true)])
        #expect(l.labels.map(\.key) == ["a", "\"c d\""])
        #expect(x.ports == ["53/udp", "80/tcp", "8080"])
        #expect(s.signal == "SIGKILL" && u.user == "nobody" && w.path == "/app" && v.volumes == ["/a", "/b"])
        #expect(m.maintainer == "me")
        #expect(ins[0].expandsVariables && !Instruction.run(RunInstruction(
            source: ins[0].source, command: CommandLine(arguments: [], prependShell: true, files: []), mountSpecs: [],
            mounts: [], network: "default", security: "sandbox", flagsUsed: [])).expandsVariables)
    }

    @Test func healthcheckAndOnbuild() throws {
        let df = try parse("""
            FROM busybox
            HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2s --start-interval=1.5s --retries=4 CMD wget -q localhost
            HEALTHCHECK NONE
            HEALTHCHECK CMD ["/check"]
            ONBUILD COPY . /app

            """)
        let ins = df.stages[0].instructions
        guard case .healthcheck(let h) = ins[0], case .healthcheck(let n) = ins[1], case .healthcheck(let j) = ins[2],
              case .onbuild(let o) = ins[3] else { Issue.record("unexpected"); return }
        #expect(h.test == ["CMD-SHELL", "wget -q localhost"])
        #expect(h.interval == 90_000_000_000 && h.timeout == 500_000_000 && h.startPeriod == 2_000_000_000)
        #expect(h.startInterval == 1_500_000_000 && h.retries == 4)
        #expect(n.test == ["NONE"])
        #expect(j.test == ["CMD", "/check"])
        #expect(o.expression == "COPY . /app" && o.triggerKeyword == "COPY")
        guard case .copy(let trigger) = try o.trigger() else { Issue.record("trigger is not COPY"); return }
        #expect(trigger.sources == ["."] && trigger.destination == "/app")
    }

    @Test func onbuildHeredocTriggerKeepsItsBody() throws {
        let df = try Dockerfile.parse("FROM busybox\nONBUILD RUN <<EOF\necho hi\nEOF\n")
        guard case .onbuild(let o) = df.stages[0].instructions[0] else { Issue.record("not ONBUILD"); return }
        #expect(o.expression == "RUN <<EOF\necho hi\nEOF")
        guard case .run(let r) = try o.trigger() else { Issue.record("trigger is not RUN"); return }
        #expect(r.command.files.first?.content == "echo hi\n")
    }

    @Test func errorsCarryLocationAndSuggestion() {
        do {
            _ = try Dockerfile.parse("FROM busybox\n\n  RUNN echo hi\n", fileName: "app.Dockerfile")
            Issue.record("expected an error")
        } catch let error as DockerfileError {
            #expect(error.position == Position(line: 3, column: 3))
            #expect(error.suggestion == "RUN")
            #expect(error.description == "app.Dockerfile:3:3: unknown instruction: RUNN (did you mean RUN?)")
        } catch {
            Issue.record("wrong error type \(error)")
        }
    }

    @Test func sourceRangesOfArgumentsAndFlags() throws {
        let tree = try SyntaxTree.parse("FROM a\nCOPY --chown=1 \\\n   src \\\n   dst\n")
        let copy = tree.instructions[1]
        #expect(copy.flagRanges == [SourceRange(start: Position(line: 2, column: 6), end: Position(line: 2, column: 15))])
        #expect(copy.next.map(\.range.start) == [Position(line: 3, column: 4), Position(line: 4, column: 4)])
        #expect(copy.startLine == 2 && copy.endLine == 4)
    }

    @Test func badInputNeverCrashes() {
        let inputs = ["\u{0}", "FROM\u{0}", "[", "RUN [\"\\ud800\"]", "RUN [\"\\u12\"]", "FROM a\nRUN <<", "FROM a\nRUN <<\"",
                      "FROM a\nCOPY --=x a b", "FROM a\nRUN --mount=\"type=bind a", "# escape=`\n`", "\\", "FROM a\nENV =x",
                      "FROM a\nHEALTHCHECK --interval=.s CMD x", "FROM a\nHEALTHCHECK --retries=99999999999 CMD x",
                      "FROM a\nRUN [" + String(repeating: "[", count: 20000)]
        for input in inputs {
            _ = try? Dockerfile.parse(input)
        }
    }
}
