import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// RFC 3339 times in UTC, written by hand: an ICU date formatter per call cost more than the
/// work around it in every place that writes times (the access log, runc's state, docker's
/// container times, event lines, image configs). The one place that formats them.
package enum UTCTime {
    /// How much of the second is written.
    package enum Fraction: Sendable {
        /// `…:05Z`
        case none
        /// `…:05.123Z`
        case millis
        /// `…:05.123456789Z` (docker's container and event times)
        case nanos
        /// Nanoseconds without trailing zeros, none at all for a whole second (Go's RFC3339Nano).
        case trimmedNanos
    }

    /// The real-time clock now.
    package static func now() -> timespec {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return ts
    }

    /// `seconds` since the epoch (and `nanoseconds` into that second) as RFC 3339 in UTC.
    package static func format(seconds: Int, nanoseconds: Int = 0, _ fraction: Fraction) -> String {
        var t = time_t(seconds)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        var s = pad(Int(tmv.tm_year) + 1900, 4) + "-" + pad(Int(tmv.tm_mon) + 1, 2) + "-" + pad(Int(tmv.tm_mday), 2) + "T"
            + pad(Int(tmv.tm_hour), 2) + ":" + pad(Int(tmv.tm_min), 2) + ":" + pad(Int(tmv.tm_sec), 2)
        switch fraction {
        case .none: break
        case .millis: s += "." + pad(nanoseconds / 1_000_000, 3)
        case .nanos: s += "." + pad(nanoseconds, 9)
        case .trimmedNanos:
            var frac = pad(nanoseconds, 9)
            while frac.last == "0" { frac.removeLast() }
            if !frac.isEmpty { s += "." + frac }
        }
        return s + "Z"
    }

    /// `ts` as RFC 3339 in UTC.
    package static func format(_ ts: timespec, _ fraction: Fraction) -> String {
        format(seconds: Int(ts.tv_sec), nanoseconds: Int(ts.tv_nsec), fraction)
    }

    /// `n` in decimal, zero-padded to `width` digits.
    package static func pad(_ n: Int, _ width: Int) -> String {
        let s = String(n)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    /// Appends `ts` as RFC 3339 with milliseconds (`2026-12-05T17:23:47.424Z`) to `out` as ASCII
    /// bytes, with no String made on the way.
    package static func appendMillis(_ ts: timespec, to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: millisLength) { buffer in
            guard let base = buffer.baseAddress else { return }
            writeMillis(ts, to: base)
            out.append(contentsOf: UnsafeBufferPointer(start: base, count: millisLength))
        }
    }

    /// The length of a time written by `writeMillis`.
    package static var millisLength: Int { 24 }

    /// Writes `ts` as RFC 3339 with milliseconds, exactly `millisLength` ASCII bytes, at `out`:
    /// the access log writes one per request straight into its line.
    package static func writeMillis(_ ts: timespec, to out: UnsafeMutablePointer<UInt8>) {
        // The civil date by arithmetic, not gmtime_r: glibc's takes a process-wide lock, and
        // the registry's connection threads call this for every access-log line.
        let date = civil(seconds: Int(ts.tv_sec))
        @inline(__always) func two(_ v: Int, at i: Int) {
            out[i] = UInt8(truncatingIfNeeded: 48 + v / 10 % 10)
            out[i + 1] = UInt8(truncatingIfNeeded: 48 + v % 10)
        }
        let year = min(max(date.year, 0), 9999)
        two(year / 100, at: 0); two(year % 100, at: 2); out[4] = UInt8(ascii: "-")
        two(date.month, at: 5); out[7] = UInt8(ascii: "-")
        two(date.day, at: 8); out[10] = UInt8(ascii: "T")
        two(date.hour, at: 11); out[13] = UInt8(ascii: ":")
        two(date.minute, at: 14); out[16] = UInt8(ascii: ":")
        two(date.second, at: 17); out[19] = UInt8(ascii: ".")
        let ms = min(max(Int(ts.tv_nsec) / 1_000_000, 0), 999)
        out[20] = UInt8(truncatingIfNeeded: 48 + ms / 100)
        two(ms % 100, at: 21); out[23] = UInt8(ascii: "Z")
    }

    /// The UTC calendar date and time of `seconds` since the epoch (proleptic Gregorian; days
    /// counted in 400-year eras from 0000-03-01, so leap days fall at the end of a year).
    package static func civil(seconds: Int) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        var days = seconds / 86_400
        var rest = seconds % 86_400
        if rest < 0 { rest += 86_400; days -= 1 }
        let shifted = days + 719_468                  // days from 0000-03-01
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097          // 0...146096
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153      // 0 = March
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day, rest / 3_600, rest % 3_600 / 60, rest % 60)
    }

    /// Appends `n` in decimal to `out` as ASCII bytes.
    package static func appendDecimal(_ n: Int64, to out: inout [UInt8]) {
        if n < 0 { out.append(UInt8(ascii: "-")) }
        var v = n.magnitude
        var tmp: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                  UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &tmp) { buf in
            repeat {
                buf[count] = UInt8(48 + v % 10)
                v /= 10
                count += 1
            } while v > 0
            for i in stride(from: count - 1, through: 0, by: -1) { out.append(buf[i]) }
        }
    }
}
