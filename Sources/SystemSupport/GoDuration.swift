import Foundation

/// Go's duration syntax (`time.ParseDuration`), as runc's flags take it: `5s`, `100ms`,
/// `1m30s`, `1.5h`, `300us`/`µs`, `10ns`; a sign is allowed, a bare `0` too.
package enum GoDuration {
    /// Seconds, or nil when `text` is not a duration.
    package static func seconds(_ text: String) -> Double? {
        var s = Substring(text)
        var sign = 1.0
        if let f = s.first, f == "-" || f == "+" { sign = f == "-" ? -1 : 1; s = s.dropFirst() }
        if s == "0" { return 0 }
        guard !s.isEmpty else { return nil }
        let units: [(String, Double)] = [("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("μs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600)]
        var total = 0.0
        while !s.isEmpty {
            let number = s.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, number != ".", number.filter({ $0 == "." }).count <= 1, let v = Double(number) else { return nil }
            s = s.dropFirst(number.count)
            // the longest unit that matches ("ms" before "m")
            guard let (name, scale) = units.filter({ s.hasPrefix($0.0) }).max(by: { $0.0.count < $1.0.count }) else { return nil }
            s = s.dropFirst(name.count)
            total += v * scale
        }
        return sign * total
    }
}
