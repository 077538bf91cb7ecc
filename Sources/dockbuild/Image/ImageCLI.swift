// Shared bits of the image commands: opening the store, docker-style sizes and times,
// aligned tables, and errors printed as the libraries word them.
import ArgumentParser
import Foundation
import ImageStore
import OCI

/// An error whose message is already what the user should read.
struct UserError: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}

enum ImageCLI {
    static func openStore(_ global: GlobalOptions) throws -> ImageStore {
        try ImageStore(root: global.resolvedRoot)
    }

    /// Runs `body`, turning library errors into plain messages (ArgumentParser prints "Error: ...").
    static func run<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as ImageStoreError {
            throw UserError(e.description)
        } catch let e as OCIError {
            throw UserError(e.description)
        }
    }

    /// docker's sizes: decimal units, 3 significant digits ("4.26MB", "812kB"), as
    /// units.HumanSizeWithPrecision(size, 3) prints them.
    static func humanSize(_ bytes: Int64) -> String {
        scaledSize(Double(bytes), base: 1000, units: ["B", "kB", "MB", "GB", "TB", "PB"], digits: 3)
    }

    /// docker's memory sizes: 1024-based units, 4 significant digits ("1.074MiB", "23.54GiB"),
    /// as units.BytesSize prints them.
    static func binarySize(_ bytes: UInt64) -> String {
        scaledSize(Double(bytes), base: 1024, units: ["B", "KiB", "MiB", "GiB", "TiB", "PiB"], digits: 4)
    }

    /// `value` divided by `base` until below it, with Go's `%.<digits>g` (C's `%g` is the same
    /// but for the exponent form, printed here as a whole number) and the unit reached.
    static func scaledSize(_ value: Double, base: Double, units: [String], digits: Int) -> String {
        var v = value
        var i = 0
        while v >= base && i < units.count - 1 { v /= base; i += 1 }
        var t = String(format: "%.\(digits)g", v)
        if t.contains("e") { t = String(format: "%.0f", v) }
        return t + units[i]
    }

    /// docker's "2 hours ago".
    static func since(_ date: Date?, now: Date = Date()) -> String {
        guard let date else { return "N/A" }
        let s = now.timeIntervalSince(date)
        if s < 1 { return "Less than a second ago" }
        let secs = Int(s)
        if secs == 1 { return "1 second ago" }
        if secs < 60 { return "\(secs) seconds ago" }
        let mins = secs / 60
        if mins == 1 { return "About a minute ago" }
        if mins < 60 { return "\(mins) minutes ago" }
        let hours = Int((s / 3600).rounded())
        if hours == 1 { return "About an hour ago" }
        if hours < 48 { return "\(hours) hours ago" }
        let days = hours / 24
        if days < 14 { return "\(days) days ago" }
        if days < 60 { return "\(days / 7) weeks ago" }
        if days < 365 * 2 { return "\(days / 30) months ago" }
        return "\(days / 365) years ago"
    }

    /// Columns as docker's tables (Go's tabwriter, minwidth 10, padding 3; see
    /// `OutputFormat.tabwrite`).
    static func table(_ rows: [[String]]) -> String {
        OutputFormat.tabwrite(rows.map { $0.joined(separator: "\t") }.joined(separator: "\n"))
    }

    static func shortID(_ d: Digest) -> String { String(d.encoded.prefix(12)) }

    static func writeStdout(_ s: String) {
        FileHandle.standardOutput.write(Data((s.hasSuffix("\n") ? s : s + "\n").utf8))
    }
}
