import Foundation

/// Sizes as docker and runc read them (`64m`, `1.5g`, `512MiB`, `1048576`): binary units,
/// case-insensitive, an optional `b`/`ib`. The one parser behind `run -m`, `--shm-size`,
/// `runtime update --memory` and the rest.
public enum ByteSize {
    public enum Failure: Error, Sendable, Equatable {
        case notASize, negative, tooLarge
    }

    /// The number of bytes `text` names; -1 for "-1" when `unlimited` allows it.
    public static func parse(_ text: String, unlimited: Bool = false) throws(Failure) -> Int64 {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if unlimited && t == "-1" { return -1 }
        var rest = Substring(t)
        var mult: Int64 = 1
        if rest.hasSuffix("b") { rest = rest.dropLast() }
        let binary = rest.hasSuffix("i")
        if binary { rest = rest.dropLast() }
        if let unit = rest.last, let shift = ["k": 10, "m": 20, "g": 30, "t": 40, "p": 50][String(unit)] {
            mult = 1 << Int64(shift)
            rest = rest.dropLast()
        } else if binary {
            throw .notASize
        }
        if rest.hasSuffix(" ") { rest = rest.dropLast() }
        let parts = rest.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !parts[0].isEmpty, parts.allSatisfy({ $0.allSatisfy(isDigit) }),
              parts.count == 1 || !parts[1].isEmpty else {
            throw t.hasPrefix("-") ? .negative : .notASize
        }
        guard let whole = Int64(parts[0]) else { throw .tooLarge }
        let (product, overflow) = whole.multipliedReportingOverflow(by: mult)
        guard !overflow else { throw .tooLarge }
        guard parts.count == 2 else { return product }
        // the fraction, at most 18 digits, is below one unit: it only adds bytes less than `mult`
        let digits = parts[1].prefix(18)
        guard let frac = Int64(digits) else { throw .notASize }
        var scale: Int64 = 1
        for _ in 0..<digits.count { scale *= 10 }
        let extra = Int64((Double(frac) / Double(scale) * Double(mult)).rounded(.down))
        let (sum, o2) = product.addingReportingOverflow(min(max(extra, 0), mult))
        guard !o2 else { throw .tooLarge }
        return sum
    }

    private static func isDigit(_ c: Character) -> Bool { ("0"..."9").contains(c) }
}
