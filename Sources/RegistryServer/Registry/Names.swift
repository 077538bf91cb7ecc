/// Grammar checks of distribution-spec names and tags ("Pulling manifests" section).
enum Names {
    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
    static func isValidRepository(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 255 else { return false }
        // One pass over the bytes, no copies: every request's name is checked, and the access
        // log checks it again.
        var name = name
        return name.withUTF8 { b in
            var start = 0
            for i in 0...b.count where i == b.count || b[i] == UInt8(ascii: "/") {
                guard isValidComponent(UnsafeBufferPointer(rebasing: b[start..<i])) else { return false }
                start = i + 1
            }
            return true
        }
    }

    private static func isAlnum(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) }

    private static func isValidComponent(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let first = b.first, let last = b.last, isAlnum(first), isAlnum(last) else { return false }
        var i = 0
        while i < b.count {
            if isAlnum(b[i]) { i += 1; continue }
            // A separator run: ".", "_", "__" or one or more "-".
            var j = i
            while j < b.count && !isAlnum(b[j]) { j += 1 }
            let n = j - i
            let ok = (n == 1 && (b[i] == 0x2E || b[i] == 0x5F)) || (n == 2 && b[i] == 0x5F && b[i + 1] == 0x5F)
                || (i..<j).allSatisfy { b[$0] == 0x2D }
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
