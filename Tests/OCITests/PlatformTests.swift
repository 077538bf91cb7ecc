import Testing
@testable import OCI

@Suite struct PlatformTests {
    @Test(arguments: [
        ("linux/amd64", "linux/amd64"), ("linux/x86_64", "linux/amd64"), ("linux/aarch64", "linux/arm64"),
        ("linux/arm64/v8", "linux/arm64"), ("linux/arm64/v9", "linux/arm64/v9"), ("linux/arm", "linux/arm/v7"),
        ("linux/arm/v6", "linux/arm/v6"), ("linux/armhf", "linux/arm/v7"), ("linux/armel", "linux/arm/v6"),
        ("linux/i386", "linux/386"), ("LINUX/AMD64", "linux/amd64"), ("windows/amd64", "windows/amd64"),
        ("linux/s390x", "linux/s390x"), ("linux/ppc64le", "linux/ppc64le"), ("linux/riscv64", "linux/riscv64"),
    ])
    func parsesAndNormalises(_ input: String, _ expected: String) throws {
        #expect(try Platform(parsing: input).description == expected)
    }

    @Test func loneArchitectureTakesHostOS() throws {
        #expect(try Platform(parsing: "arm64").description == "\(Platform.host.os)/arm64")
        #expect(try Platform(parsing: "linux").os == "linux")
    }

    @Test(arguments: ["", "linux/", "/amd64", "a/b/c/d", "linux/am d64", "nonsense"])
    func rejects(_ input: String) {
        #expect(throws: OCIError.self) { try Platform(parsing: input) }
    }

    @Test func hostMatchingFollowsDocker() throws {
        let amd64 = try Platform(parsing: "linux/amd64")
        #expect(amd64.matches(try Platform(parsing: "linux/amd64")))
        #expect(amd64.matches(try Platform(parsing: "linux/386")))
        #expect(!amd64.matches(try Platform(parsing: "linux/arm64")))
        #expect(!amd64.matches(try Platform(parsing: "windows/amd64")))
        let armv7 = try Platform(parsing: "linux/arm/v7")
        #expect(armv7.matches(try Platform(parsing: "linux/arm/v6")))
        #expect(armv7.matches(try Platform(parsing: "linux/arm/v5")))
        #expect(try !Platform(parsing: "linux/arm/v6").matches(armv7))
        let arm64 = try Platform(parsing: "linux/arm64")
        #expect(arm64.matches(Platform(os: "linux", architecture: "aarch64", variant: "v8")))
        #expect(arm64.matches(try Platform(parsing: "linux/arm/v7")))
        // Exact beats compatible.
        let list = [try Platform(parsing: "linux/386"), try Platform(parsing: "linux/amd64"), try Platform(parsing: "linux/arm64")]
        #expect(amd64.best(of: list) { $0 }?.architecture == "amd64")
        #expect(arm64.best(of: list) { $0 }?.architecture == "arm64")
    }

    @Test func indexChoosesHostManifest() throws {
        let d1 = Descriptor(mediaType: MediaType.imageManifest, digest: Digest.compute([1]), size: 1,
                            platform: Platform(os: "linux", architecture: "arm64", variant: "v8"))
        let d2 = Descriptor(mediaType: MediaType.imageManifest, digest: Digest.compute([2]), size: 1,
                            platform: Platform(os: "linux", architecture: "amd64"))
        let idx = ImageIndex(manifests: [d1, d2])
        #expect(idx.manifest(for: try Platform(parsing: "linux/amd64")) == d2)
        #expect(idx.manifest(for: try Platform(parsing: "linux/aarch64")) == d1)
        #expect(idx.manifest(for: try Platform(parsing: "linux/s390x")) == nil)
    }
}
