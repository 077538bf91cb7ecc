extension String {
    /// Whether two header names are equal ignoring ASCII case (RFC 9110 field names are ASCII).
    /// Foundation's `caseInsensitiveCompare` goes through CFString and locale folding: a
    /// microsecond per call, several calls per request.
    func equalsHeaderName(_ other: String) -> Bool {
        var a = utf8.makeIterator()
        var b = other.utf8.makeIterator()
        while true {
            switch (a.next(), b.next()) {
            case (nil, nil): return true
            case (let x?, let y?):
                if x == y { continue }
                let lx = (x >= 0x41 && x <= 0x5A) ? x | 0x20 : x
                let ly = (y >= 0x41 && y <= 0x5A) ? y | 0x20 : y
                if lx != ly { return false }
            default: return false
            }
        }
    }
}
