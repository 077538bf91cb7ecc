import ArgumentParser
import Foundation
import OCI

/// How every listing and inspecting command applies `--format`, the way docker's formatter
/// does: `table` (the command's own columns), `json` (one object per line), `table TEMPLATE`
/// (a header row, then rows, aligned by tabs) or a bare template (one line per row).
enum OutputFormat {
    /// Parses a `--format` template; a malformed one is a usage error (exit 125) naming the flag.
    static func parse(_ text: String, typeName: String, strictMaps: Bool = false, flag: String = "--format") throws -> GoTemplate {
        do {
            return try GoTemplate(text, typeName: typeName, strictMaps: strictMaps)
        } catch let e as TemplateError {
            throw ValidationError("invalid \(flag) \(TemplateValue.quote(text)): \(e.description) (use a Go template such as '{{.ID}}', 'table {{.ID}}\\t{{.Names}}', or json)")
        }
    }

    /// docker's preFormat: `table` stripped, spaces trimmed, `\t` and `\n` as typed become tabs and newlines.
    static func listTemplate(_ format: String) -> (text: String, table: Bool) {
        var f = format
        var table = false
        if f.hasPrefix("table") { f = String(f.dropFirst(5)); table = true }
        f = f.trimmingCharacters(in: CharacterSet(charactersIn: " "))
        f = f.replacingOccurrences(of: "\\t", with: "\t").replacingOccurrences(of: "\\n", with: "\n")
        return (f, table)
    }

    /// True when `format` asks for the command's default table.
    static func isDefaultTable(_ format: String?) -> Bool {
        guard let format else { return true }
        return format.isEmpty || format == "table"
    }

    /// Renders `rows` for a list command; nil when `format` asks for the default table.
    /// `headers` maps field names to column titles (docker's header context).
    static func list(_ format: String?, rows: [TemplateValue], headers: [String: String], typeName: String) throws -> String? {
        guard !isDefaultTable(format), let format else { return nil }
        let (text, table) = format == "json" ? ("{{json .}}", false) : listTemplate(format)
        let t = try parse(text, typeName: typeName)
        var lines: [String] = []
        if table {
            let h = TemplateValue.object(headers.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })
            lines.append(try t.render(h, header: true))
        }
        for r in rows { lines.append(try t.render(r)) }
        let out = lines.joined(separator: "\n")
        return table ? tabwrite(out) : out
    }

    /// Go's tabwriter as docker sets it up (minwidth 10, padding 3, spaces): tab-separated
    /// cells line up in columns; the last cell of a line is not padded.
    /// `c.padding(toLength: n, withPad: " ", startingAt: 0)`: Foundation's counts UTF-16 units
    /// and cost 50K instructions a cell (half of `images`' table); the rare string longer
    /// than `n` in UTF-16 units still goes to Foundation (which cuts it).
    static func pad(_ c: String, _ n: Int) -> String {
        let units = c.utf16.count
        guard units <= n else { return c.padding(toLength: n, withPad: " ", startingAt: 0) }
        return c + String(repeating: " ", count: n - units)
    }

    static func tabwrite(_ text: String) -> String {
        // split on the bytes (Foundation's components(separatedBy:) was half of a 100-row table)
        func cut(_ s: String, _ byte: UInt8) -> [String] {
            s.utf8.split(separator: byte, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        }
        let lines = cut(text, 0x0A).map { cut($0, 0x09) }
        var widths: [Int] = []
        for cells in lines {
            for (i, c) in cells.dropLast().enumerated() {
                if widths.count <= i { widths.append(0) }
                widths[i] = max(widths[i], c.count)
            }
        }
        return lines.map { cells in
            cells.enumerated().map { i, c in
                i == cells.count - 1 ? c : pad(c, max(10, widths[i] + 3))
            }.joined()
        }.joined(separator: "\n")
    }

    /// A single-document format (`version`, `info`, `inspect`): "json" is `{{json .}}`.
    static func single(_ format: String, _ value: TemplateValue, typeName: String) throws -> String {
        let t = try parse(format == "json" ? "{{json .}}" : format, typeName: typeName)
        return try t.render(value)
    }

    /// Go's time.String() as docker prints CreatedAt in lists: "2006-01-02 15:04:05 -0700 MST".
    static func goTime(_ d: Date?) -> String {
        guard let d else { return "" }
        // localtime_r rather than a DateFormatter: `ps`/`images` print one per row, and building
        // an ICU formatter per row was a third of their run time.
        var t = time_t(d.timeIntervalSince1970.rounded(.down))
        var tmv = tm()
        localtime_r(&t, &tmv)
        let off = Int(tmv.tm_gmtoff)
        let sign = off < 0 ? "-" : "+"
        let zone = tmv.tm_zone.map { String(cString: $0) } ?? "UTC"
        let p = ImageConfig.pad
        return p(Int(tmv.tm_year) + 1900, 4) + "-" + p(Int(tmv.tm_mon) + 1, 2) + "-" + p(Int(tmv.tm_mday), 2) + " "
            + p(Int(tmv.tm_hour), 2) + ":" + p(Int(tmv.tm_min), 2) + ":" + p(Int(tmv.tm_sec), 2) + " "
            + sign + p(abs(off) / 3600, 2) + p(abs(off) % 3600 / 60, 2) + " " + (zone == "GMT" ? "UTC" : zone)
    }
}
