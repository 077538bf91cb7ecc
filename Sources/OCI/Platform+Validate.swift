// Checks of platform fields given one by one (`manifest add/annotate --os/--arch/--variant`), as
// image-index.md's platform object defines them. Unlike `Platform(parsing:)` the variant is kept as
// given: `--variant v8` on arm64 is what the user asked the index to say.

extension Platform {
    /// Checks that `os` and `architecture` are values GOOS/GOARCH know (the spec's reference
    /// list) and that every field is made of letters, digits, `_`, `-` and `.`; returns the
    /// platform with the architecture in canonical form (`aarch64` -> `arm64`) and the variant as
    /// given.
    public func validated() throws -> Platform {
        var p = self
        p.os = os.lowercased()
        p.architecture = Platform.normalizeArch(architecture.lowercased(), variant: nil).arch
        let shown = "\(p.os)/\(p.architecture)" + (variant.map { "/\($0)" } ?? "")
        func check(_ value: String, _ what: String) throws {
            guard !value.isEmpty else {
                throw OCIError.invalidPlatform(shown, reason: "the \(what) is empty")
            }
            guard value.allSatisfy({ ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "_" || $0 == "-" || $0 == "." }) else {
                throw OCIError.invalidPlatform(shown, reason: "the \(what) \"\(value)\" has characters other than letters, digits, '_', '-', '.'")
            }
        }
        try check(p.os, "operating system")
        try check(p.architecture, "architecture")
        if let v = variant { try check(v, "variant") }
        guard Platform.knownOS.contains(p.os) else {
            throw OCIError.invalidPlatform(shown, reason: "unknown operating system \"\(p.os)\" (e.g. linux, windows, freebsd)")
        }
        guard Platform.knownArch.contains(p.architecture) else {
            throw OCIError.invalidPlatform(shown, reason: "unknown architecture \"\(p.architecture)\" (e.g. amd64, arm64, arm, ppc64le, s390x, riscv64)")
        }
        for f in (osFeatures ?? []) + (features ?? []) where f.isEmpty || f.contains(where: \.isWhitespace) {
            throw OCIError.invalidPlatform(shown, reason: "feature \"\(f)\" is empty or has spaces")
        }
        return p
    }
}
