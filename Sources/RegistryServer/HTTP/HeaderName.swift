extension String {
    /// Whether two header names are equal ignoring ASCII case (RFC 9110 field names are ASCII).
    /// Foundation's `caseInsensitiveCompare` goes through CFString and locale folding: a
    /// microsecond per call, several calls per request. Names of another length differ at
    /// once; the bytes are compared through pointers where both strings are contiguous (all
    /// parsed and literal names are).
    func equalsHeaderName(_ other: String) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        let fast: Bool?? = utf8.withContiguousStorageIfAvailable { a in
            other.utf8.withContiguousStorageIfAvailable { b in
                for i in 0..<a.count where a[i] != b[i] {
                    if String.lowered(a[i]) != String.lowered(b[i]) { return false }
                }
                return true
            }
        }
        if let fast, let result = fast { return result }
        var a = utf8.makeIterator()
        var b = other.utf8.makeIterator()
        while true {
            switch (a.next(), b.next()) {
            case (nil, nil): return true
            case (let x?, let y?):
                if x == y { continue }
                if String.lowered(x) != String.lowered(y) { return false }
            default: return false
            }
        }
    }

    @inline(__always) private static func lowered(_ c: UInt8) -> UInt8 { (c >= 0x41 && c <= 0x5A) ? c | 0x20 : c }
}
