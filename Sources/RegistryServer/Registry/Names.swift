/// Grammar checks of distribution-spec names and tags ("Pulling manifests" section).
enum Names {
    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
    static func isValidRepository(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 255 else { return false }
        for component in name.split(separator: "/", omittingEmptySubsequences: false) {
            guard isValidComponent(Array(component.utf8)) else { return false }
        }
        return true
    }

    private static func isAlnum(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) }

    private static func isValidComponent(_ b: [UInt8]) -> Bool {
        guard let first = b.first, let last = b.last, isAlnum(first), isAlnum(last) else { return false }
        var i = 0
        while i < b.count {
            if isAlnum(b[i]) { i += 1; continue }
            // A separator run: ".", "_", "__" or one or more "-".
            var j = i
            while j < b.count && !isAlnum(b[j]) { j += 1 }
            let sep = b[i..<j]
            let ok = sep.elementsEqual([0x2E]) || sep.elementsEqual([0x5F]) || sep.elementsEqual([0x5F, 0x5F]) || sep.allSatisfy { $0 == 0x2D }
            if !ok { return false }
            i = j
        }
        return true
    }

    /// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
    static func isValidTag(_ tag: String) -> Bool {
        let b = Array(tag.utf8)
        guard let first = b.first, b.count <= 128 else { return false }
        func word(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x5F }
        guard word(first) else { return false }
        return b.dropFirst().allSatisfy { word($0) || $0 == 0x2E || $0 == 0x2D }
    }
}
