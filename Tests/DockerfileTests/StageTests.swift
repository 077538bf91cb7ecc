import Testing
@testable import Dockerfile

@Suite struct StageTests {
    let multi = """
        ARG BASE=alpine
        ARG VERSION=3.20
        FROM ${BASE}:${VERSION} AS base
        RUN echo base

        FROM base AS build
        ARG VERSION
        RUN echo $VERSION

        FROM golang AS tools

        FROM scratch AS final
        COPY --from=build /out /out
        COPY --from=nginx:latest /etc/nginx /etc/nginx
        RUN --mount=from=tools,target=/t true

        FROM busybox AS unrelated

        """

    @Test func stagesAndMetaArgs() throws {
        let df = try Dockerfile.parse(multi)
        #expect(df.stages.map(\.displayName) == ["base", "build", "tools", "final", "unrelated"])
        #expect(df.metaArgs.count == 2)
        #expect(df.stage(named: "BUILD")?.index == 1)
    }

    @Test func planPrunesToTarget() throws {
        let df = try Dockerfile.parse(multi)
        let plan = try df.plan(target: "final")
        #expect(plan.stages.map(\.stage.displayName) == ["base", "build", "tools", "final"])
        #expect(plan.allStages[0].baseName == "alpine:3.20")
        #expect(plan.allStages[1].base == .stage(0))
        #expect(plan.allStages[3].base == .scratch)
        #expect(plan.allStages[3].dependencies == [1, 2])
        #expect(plan.allStages[3].externalImages == ["nginx:latest"])
        let last = try df.plan()
        #expect(last.stages.map(\.stage.displayName) == ["unrelated"])
    }

    @Test func buildArgsOverrideMetaArgs() throws {
        let df = try Dockerfile.parse(multi)
        let plan = try df.plan(target: "base", buildArgs: BuildArgs(["VERSION": "3.19"]))
        #expect(plan.stages.map(\.baseName) == ["alpine:3.19"])
        #expect(plan.globalArgs["TARGETSTAGE"] == "base")
    }

    @Test func argScopingInsideStage() throws {
        let df = try Dockerfile.parse(multi)
        let args = BuildArgs([:], buildPlatform: "linux/arm64/v8", targetPlatform: "linux/amd64")
        let plan = try df.plan(target: "build", buildArgs: args)
        var env = StageEnvironment(plan: plan, buildArgs: args, baseEnv: ["PATH": "/bin"])
        #expect(try env.expand("$VERSION") == "")  // not visible before ARG
        for instruction in df.stages[1].instructions { try env.apply(instruction) }
        #expect(try env.expand("$VERSION-$PATH") == "3.20-/bin")  // inherited from the global ARG
        #expect(plan.globalArgs["TARGETARCH"] == "amd64" && plan.globalArgs["BUILDVARIANT"] == "v8")
        try env.apply(.arg(ArgInstruction(source: df.stages[1].from.source, args: [ArgDeclaration(key: "TARGETOS", value: nil)])))
        #expect(try env.expand("$TARGETOS") == "linux")
        try env.apply(.env(EnvInstruction(source: df.stages[1].from.source,
                                          env: [KeyValuePair(key: "VERSION", value: "env-${VERSION}", noDelimiter: false)])))
        #expect(try env.expand("$VERSION") == "env-3.20")  // ENV wins over ARG
        // One ENV's values all see the environment from before it (BuildKit, docker).
        try env.apply(.env(EnvInstruction(source: df.stages[1].from.source,
                                          env: [KeyValuePair(key: "VERSION", value: "new", noDelimiter: false),
                                                KeyValuePair(key: "OLD", value: "$VERSION", noDelimiter: false)])))
        #expect(try env.expand("$VERSION $OLD") == "new env-3.20")
    }

    @Test func unknownTargetSuggests() throws {
        let df = try Dockerfile.parse(multi)
        #expect {
            _ = try df.plan(target: "fina")
        } throws: { error in
            (error as? DockerfileError)?.text == "target stage \"fina\" could not be found (did you mean final?)"
        }
    }

    @Test func cyclesAreReported() throws {
        let df = try Dockerfile.parse("FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nCOPY --from=a /y /y\n")
        #expect {
            _ = try df.plan()
        } throws: { error in
            (error as? DockerfileError)?.description == "Dockerfile:4:1: circular dependency detected on stage: a"
        }
    }

    @Test func badStageIndexAndVariableFrom() throws {
        let bad = try Dockerfile.parse("FROM busybox\nCOPY --from=3 /x /x\n")
        #expect(throws: DockerfileError.self) { try bad.plan() }
        let variable = try Dockerfile.parse("FROM busybox\nCOPY --from=$X /x /x\n")
        #expect {
            _ = try variable.plan()
        } throws: { error in
            (error as? DockerfileError)?.message.hasPrefix("variable expansion is not supported for --from") == true
        }
        let blank = try Dockerfile.parse("ARG IMG\nFROM $IMG\n")
        #expect {
            _ = try blank.plan()
        } throws: { error in
            (error as? DockerfileError)?.message == "base name ($IMG) should not be blank"
        }
    }

    @Test func indexReference() throws {
        let df = try Dockerfile.parse("FROM busybox\nRUN true\nFROM alpine\nCOPY --from=0 /a /a\n")
        let plan = try df.plan()
        #expect(plan.stages.count == 2 && plan.allStages[1].dependencies == [0])
    }
}

@Suite struct InstructionExpansionTests {
    @Test func expandsTheWordsBuildKitExpands() throws {
        let df = try Dockerfile.parse("""
            FROM busybox
            ARG USER=app DIR=/srv
            ENV HOME=/home/$USER
            WORKDIR ${DIR}/data
            COPY --chown=${USER}:${USER} --from=build ${DIR}/a "$HOME/b" /dst/
            RUN --mount=type=cache,target=${DIR}/cache,id=${USER} echo $USER
            EXPOSE ${PORT:-80} 53/udp 8000-8002/tcp

            """)
        let args = BuildArgs(["USER": "root"])
        let plan = try df.plan(buildArgs: args)
        var env = StageEnvironment(plan: plan, buildArgs: args, lex: df.shellLex)
        var out: [Instruction] = []
        for instruction in df.stages[0].instructions {
            try env.apply(instruction)
            out.append(try env.expand(instruction))
        }
        guard case .workdir(let w) = out[2], case .copy(let c) = out[3], case .run(let r) = out[4],
              case .expose(let e) = out[5] else { Issue.record("unexpected"); return }
        #expect(w.path == "/srv/data")
        #expect(c.chown == "root:root" && c.sources == ["/srv/a", "/home/root/b"] && c.from == "build")
        #expect(r.mounts.first?.target == "/srv/cache" && r.mounts.first?.cacheID == "root")
        #expect(r.command.arguments == ["echo $USER"])  // left to the shell
        let ports = try e.exposedPorts(lex: df.shellLex, env: env.variables)
        #expect(ports.map(\.description) == ["80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp"])
    }

    @Test func badPortsAreReported() throws {
        let df = try Dockerfile.parse("FROM busybox\nEXPOSE 80/xyz\nEXPOSE 9-3\n")
        for instruction in df.stages[0].instructions {
            guard case .expose(let e) = instruction else { continue }
            #expect(throws: ExpansionError.self) { try e.exposedPorts(env: [String: String]()) }
        }
    }
}
