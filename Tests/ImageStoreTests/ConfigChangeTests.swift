import OCI
import Testing
@testable import ImageStore

@Suite struct ConfigChangeTests {
    func apply(_ changes: [String]) throws -> ContainerConfig {
        var c = ImageConfig(platform: Platform(os: "linux", architecture: "amd64"))
        try ConfigChange.apply(changes, to: &c)
        return c.config ?? ContainerConfig()
    }

    @Test func cmdAndEntrypointForms() throws {
        #expect(try apply([#"CMD ["a", "b c"]"#]).cmd == ["a", "b c"])
        #expect(try apply(["CMD echo hi"]).cmd == ["/bin/sh", "-c", "echo hi"])
        #expect(try apply([#"SHELL ["/bin/bash", "-eu", "-c"]"#, "ENTRYPOINT run me"]).entrypoint == ["/bin/bash", "-eu", "-c", "run me"])
        #expect(try apply(["cmd [\"lower\"]"]).cmd == ["lower"])
    }

    @Test func envForms() throws {
        #expect(try apply(["ENV A=1 B=\"two words\" C=x\\ y"]).env == ["A=1", "B=two words", "C=x y"])
        #expect(try apply(["ENV OLD value with spaces"]).env == ["OLD=value with spaces"])
        #expect(try apply(["ENV A=1", "ENV A=2"]).env == ["A=2"])
    }

    @Test func portsVolumesLabels() throws {
        let c = try apply(["EXPOSE 80 443/tcp 53/udp 8000-8010", #"VOLUME ["/a", "/b"]"#, "VOLUME /c", "LABEL k=v 'x y'=z"])
        #expect(Set((c.exposedPorts ?? [:]).keys) == ["80/tcp", "443/tcp", "53/udp", "8000-8010/tcp"])
        #expect(Set((c.volumes ?? [:]).keys) == ["/a", "/b", "/c"])
        #expect(c.labels == ["k": "v", "x y": "z"])
    }

    @Test func workdirIsRelativeToPrevious() throws {
        #expect(try apply(["WORKDIR /srv", "WORKDIR app"]).workingDir == "/srv/app")
    }

    @Test func healthcheck() throws {
        #expect(try apply(["HEALTHCHECK NONE"]).healthcheck?.test == ["NONE"])
        let h = try apply([#"HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2s --retries=3 CMD ["curl", "-f", "x"]"#]).healthcheck
        #expect(h == HealthConfig(test: ["CMD", "curl", "-f", "x"], interval: 90_000_000_000, timeout: 500_000_000,
                                  startPeriod: 2_000_000_000, retries: 3))
    }

    @Test(arguments: ["RUN true", "FROM x", "", "EXPOSE notaport", "EXPOSE 80/xyz", "ENV", "LABEL novalue",
                      "HEALTHCHECK --interval=abc CMD x", "HEALTHCHECK --bogus=1 CMD x", "ONBUILD FROM x",
                      "SHELL /bin/sh", #"ENV A="unterminated"#])
    func refusals(_ change: String) {
        #expect(throws: ImageStoreError.self) { try apply([change]) }
    }
}
