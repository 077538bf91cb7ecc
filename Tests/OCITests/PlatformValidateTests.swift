import Testing
@testable import OCI

/// `Platform.validated()`: the checks behind `manifest add/annotate --os/--arch/--variant`.
@Suite struct PlatformValidateTests {
    @Test func acceptsKnownValuesAndKeepsTheVariant() throws {
        let p = try Platform(os: "Linux", architecture: "aarch64", variant: "v8").validated()
        #expect(p.os == "linux" && p.architecture == "arm64")
        #expect(p.variant == "v8", "the variant stays as given, unlike Platform(parsing:)")
        let w = try Platform(os: "windows", architecture: "x86_64", osVersion: "10.0.17763.1040").validated()
        #expect(w.architecture == "amd64" && w.osVersion == "10.0.17763.1040")
    }

    @Test(arguments: [
        (Platform(os: "plan10", architecture: "amd64"), "unknown operating system"),
        (Platform(os: "linux", architecture: "bogus"), "unknown architecture"),
        (Platform(os: "linux", architecture: "arm", variant: "v7 x"), "variant"),
        (Platform(os: "linux", architecture: "arm", variant: ""), "empty"),
        (Platform(os: "", architecture: "amd64"), "empty"),
        (Platform(os: "linux", architecture: "amd64", features: ["a b"]), "feature"),
    ])
    func refusesBadFields(_ p: Platform, _ reason: String) {
        #expect { try p.validated() } throws: { e in
            guard case let OCIError.invalidPlatform(_, r) = e else { return false }
            return r.contains(reason)
        }
    }
}
