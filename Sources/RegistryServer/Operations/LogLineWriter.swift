import Glibc
import SystemSupport

/// Writes one access-log line through a pointer into memory sized for it up front. Appending
/// to an array a piece at a time (a capacity and uniqueness check per append, a boxed array for
/// the helpers that captured it) cost ten thousand instructions a line, more than the rest of
/// what logging and metrics do per request; here each field checks its room once.
struct LogLineWriter {
    private let start: UnsafeMutablePointer<UInt8>
    private var p: UnsafeMutablePointer<UInt8>
    private let end: UnsafeMutablePointer<UInt8>

    /// Writes into `count` bytes at `base`.
    init(_ base: UnsafeMutablePointer<UInt8>, count: Int) {
        start = base
        p = base
        end = base + count
    }

    /// Bytes written so far.
    var count: Int { p - start }

    /// A line's size is bounded before it is written (`RegistryServer.logLine`): running out
    /// of room is a bug in that bound, never something a request can cause.
    @inline(__always) private func room(_ n: Int) {
        precondition(end - p >= n, "access-log line longer than the room reserved for it")
    }

    mutating func byte(_ b: UInt8) {
        room(1)
        p.pointee = b
        p += 1
    }

    mutating func bytes(_ s: StaticString) {
        let n = s.utf8CodeUnitCount
        room(n)
        p.update(from: s.utf8Start, count: n)
        p += n
    }

    /// `s` as it is, for text the server made itself (an address, a request id, a route name).
    mutating func raw(_ s: String) {
        each(s) { w, b in
            w.room(b.count)
            if let base = b.baseAddress { w.p.update(from: base, count: b.count) }
            w.p += b.count
        }
    }

    /// `n` in decimal (at most 20 bytes).
    mutating func decimal(_ n: Int64) {
        room(20)
        if n < 0 { p.pointee = UInt8(ascii: "-"); p += 1 }
        var v = n.magnitude
        var digits = 1
        var t = v
        while t >= 10 { t /= 10; digits += 1 }
        var q = p + digits
        p = q
        repeat {
            q -= 1
            q.pointee = UInt8(truncatingIfNeeded: 48 + v % 10)
            v /= 10
        } while v > 0
    }

    /// Microseconds as milliseconds with up to three decimals, the shortest form (`0.042`,
    /// `1.5`, `12.0`), as a Double's description of the rounded value printed before.
    mutating func millis(_ micros: Int64) {
        let micros = max(0, micros)
        decimal(micros / 1000)
        room(4)
        p.pointee = UInt8(ascii: ".")
        p += 1
        var frac = Int(micros % 1000)
        if frac == 0 { p.pointee = UInt8(ascii: "0"); p += 1; return }
        var digits = 3
        while frac % 10 == 0 { frac /= 10; digits -= 1 }
        var q = p + digits
        p = q
        for _ in 0..<digits {
            q -= 1
            q.pointee = UInt8(truncatingIfNeeded: 48 + frac % 10)
            frac /= 10
        }
    }

    /// RFC 3339 in UTC with milliseconds.
    mutating func time(_ ts: timespec) {
        room(UTCTime.millisLength)
        UTCTime.writeMillis(ts, to: p)
        p += UTCTime.millisLength
    }

    /// The inside of a JSON string (at most six bytes per byte of `s`): quotes, backslashes and
    /// control characters escaped; `/` and non-ASCII kept. Runs that need no escape (all of
    /// most fields) are copied whole.
    mutating func jsonEscaped(_ s: String) {
        each(s) { w, b in
            guard let src = b.baseAddress else { return }
            w.room(6 * b.count)
            var q = w.p
            var i = 0
            let n = b.count
            while i < n {
                var j = i
                while j < n, src[j] >= 0x20, src[j] != 0x22, src[j] != 0x5C, src[j] != 0x7F { j += 1 }
                if j > i {
                    q.update(from: src + i, count: j - i)
                    q += j - i
                    if j == n { break }
                }
                let c = src[j]
                q[0] = UInt8(ascii: "\\")
                switch c {
                case 0x22, 0x5C: q[1] = c; q += 2
                case 0x0A: q[1] = UInt8(ascii: "n"); q += 2
                case 0x0D: q[1] = UInt8(ascii: "r"); q += 2
                case 0x09: q[1] = UInt8(ascii: "t"); q += 2
                default:
                    q[1] = UInt8(ascii: "u"); q[2] = UInt8(ascii: "0"); q[3] = UInt8(ascii: "0")
                    q[4] = LogLineWriter.hex(c >> 4, upper: false); q[5] = LogLineWriter.hex(c & 0xF, upper: false)
                    q += 6
                }
                i = j + 1
            }
            w.p = q
        }
    }

    /// A JSON string: `jsonEscaped` between quotes.
    mutating func jsonString(_ s: String) {
        byte(UInt8(ascii: "\""))
        jsonEscaped(s)
        byte(UInt8(ascii: "\""))
    }

    /// A JSON string of text the server made itself and knows needs no escape (an address,
    /// a route name, a request id it generated, a repository name that passed the grammar).
    mutating func jsonPlain(_ s: String) {
        byte(UInt8(ascii: "\""))
        raw(s)
        byte(UInt8(ascii: "\""))
    }

    /// `s` with what would break a text log line percent-escaped (at most three bytes per
    /// byte): controls, space, `"`, `%` and non-ASCII.
    mutating func percentEscaped(_ s: String) {
        each(s) { w, b in
            w.room(3 * b.count)
            var q = w.p
            for c in b {
                if c <= 0x20 || c >= 0x7F || c == UInt8(ascii: "\"") || c == UInt8(ascii: "%") {
                    q[0] = UInt8(ascii: "%")
                    q[1] = LogLineWriter.hex(c >> 4, upper: true)
                    q[2] = LogLineWriter.hex(c & 0xF, upper: true)
                    q += 3
                } else {
                    q.pointee = c
                    q += 1
                }
            }
            w.p = q
        }
    }

    @inline(__always) private static func hex(_ v: UInt8, upper: Bool) -> UInt8 {
        v < 10 ? 48 + v : (upper ? 55 : 87) + v
    }

    /// Hands `s`'s UTF-8 bytes to `body` without a copy where the string is contiguous (all
    /// strings parsed from a request are).
    private mutating func each(_ s: String, _ body: (inout LogLineWriter, UnsafeBufferPointer<UInt8>) -> Void) {
        let done: Void? = s.utf8.withContiguousStorageIfAvailable { body(&self, $0) }
        if done == nil {
            let copy = Array(s.utf8)
            copy.withUnsafeBufferPointer { body(&self, $0) }
        }
    }
}
