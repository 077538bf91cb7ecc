/// One tar entry's metadata, in the form the PAX writer needs. Paths are raw bytes: Linux file names
/// need not be UTF-8, and a layer must carry them unchanged.
struct TarHeader {
    enum Kind: UInt8 {
        case regular = 0x30      // '0'
        case hardlink = 0x31     // '1'
        case symlink = 0x32      // '2'
        case charDevice = 0x33   // '3'
        case blockDevice = 0x34  // '4'
        case directory = 0x35    // '5'
        case fifo = 0x36         // '6'
    }

    var name: [UInt8]
    var kind: Kind
    var mode: UInt32 = 0o644
    var uid: UInt32 = 0
    var gid: UInt32 = 0
    var uname: [UInt8] = []
    var gname: [UInt8] = []
    var size: Int64 = 0
    var mtime: Int64 = 0
    var linkname: [UInt8] = []
    var devmajor: UInt32 = 0
    var devminor: UInt32 = 0
    /// Sorted by name.
    var xattrs: [(name: [UInt8], value: [UInt8])] = []
}

/// Encodes headers as POSIX.1-2001 (PAX) tar: a plain ustar header when everything fits, preceded by an
/// `x` extended header carrying whatever does not (long names, big sizes and ids, xattrs).
enum PaxEncoder {
    static let block = 512

    /// The header bytes (one or more 512-byte blocks) for `h`; the content follows separately.
    static func encode(_ h: TarHeader) -> [UInt8] {
        var records: [UInt8] = []
        var nameField = h.name
        if h.name.count > 100 {
            appendRecord(&records, "path", h.name)
            nameField = Array(h.name.suffix(100))
        }
        var linkField = h.linkname
        if h.linkname.count > 100 {
            appendRecord(&records, "linkpath", h.linkname)
            linkField = Array(h.linkname.prefix(100))
        }
        let maxOctal11: Int64 = 0o77777777777
        let maxOctal7: UInt32 = 0o7777777
        if h.size > maxOctal11 { appendRecord(&records, "size", Array(String(h.size).utf8)) }
        if h.uid > maxOctal7 { appendRecord(&records, "uid", Array(String(h.uid).utf8)) }
        if h.gid > maxOctal7 { appendRecord(&records, "gid", Array(String(h.gid).utf8)) }
        if h.mtime < 0 || h.mtime > maxOctal11 { appendRecord(&records, "mtime", Array(String(h.mtime).utf8)) }
        var unameField = h.uname
        if h.uname.count > 32 { appendRecord(&records, "uname", h.uname); unameField = [] }
        var gnameField = h.gname
        if h.gname.count > 32 { appendRecord(&records, "gname", h.gname); gnameField = [] }
        for x in h.xattrs {
            appendRecord(&records, "SCHILY.xattr." + String(decoding: x.name, as: UTF8.self), x.value)
        }

        var out: [UInt8] = []
        out.reserveCapacity(records.isEmpty ? block : 2 * block + records.count + block)
        if !records.isEmpty {
            // The extended header's own name is derived from the entry's, so it is deterministic too.
            let base = h.name.split(separator: UInt8(ascii: "/")).last.map(Array.init) ?? []
            var xname = Array("PaxHeaders/".utf8) + base
            if xname.count > 100 { xname = Array(xname.prefix(100)) }
            var x = TarHeader(name: xname, kind: .regular)
            x.size = Int64(records.count)
            x.mtime = min(max(h.mtime, 0), maxOctal11)
            appendUstar(&out, x, name: xname, link: [], uname: [], gname: [], typeflag: UInt8(ascii: "x"))
            out.append(contentsOf: records)
            pad(&out)
        }
        appendUstar(&out, h, name: nameField, link: linkField, uname: unameField, gname: gnameField, typeflag: h.kind.rawValue)
        return out
    }

    static func pad(_ out: inout [UInt8]) {
        let r = out.count % block
        if r != 0 { out.append(contentsOf: repeatElement(0, count: block - r)) }
    }

    /// `"%d %s=%s\n"` where the leading decimal counts the whole record, itself included.
    static func appendRecord(_ out: inout [UInt8], _ key: String, _ value: [UInt8]) {
        let body = key.utf8.count + value.count + 3 // space, '=', newline
        var total = body + String(body).utf8.count
        if String(total).utf8.count != String(body).utf8.count { total = body + String(total).utf8.count }
        out.append(contentsOf: String(total).utf8)
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: key.utf8)
        out.append(UInt8(ascii: "="))
        out.append(contentsOf: value)
        out.append(UInt8(ascii: "\n"))
    }

    private static func appendUstar(_ out: inout [UInt8], _ h: TarHeader, name: [UInt8], link: [UInt8],
                                    uname: [UInt8], gname: [UInt8], typeflag: UInt8) {
        var b = [UInt8](repeating: 0, count: block)
        put(&b, 0, 100, name)
        octal(&b, 100, 8, UInt64(h.mode & 0o7777))
        numeric(&b, 108, 8, Int64(h.uid))
        numeric(&b, 116, 8, Int64(h.gid))
        numeric(&b, 124, 12, h.size)
        octal(&b, 136, 12, UInt64(min(max(h.mtime, 0), 0o77777777777)))
        b[156] = typeflag
        put(&b, 157, 100, link)
        put(&b, 257, 6, Array("ustar\0".utf8))
        b[263] = UInt8(ascii: "0"); b[264] = UInt8(ascii: "0")
        put(&b, 265, 32, uname)
        put(&b, 297, 32, gname)
        if h.kind == .charDevice || h.kind == .blockDevice {
            numeric(&b, 329, 8, Int64(h.devmajor))
            numeric(&b, 337, 8, Int64(h.devminor))
        } else {
            octal(&b, 329, 8, 0)
            octal(&b, 337, 8, 0)
        }
        // Checksum: the sum of all bytes with the checksum field read as spaces.
        for i in 148..<156 { b[i] = UInt8(ascii: " ") }
        var sum = 0
        for v in b { sum += Int(v) }
        let digits = Array(String(sum, radix: 8).utf8)
        var field = [UInt8](repeating: UInt8(ascii: "0"), count: 6)
        for (i, d) in digits.suffix(6).reversed().enumerated() { field[5 - i] = d }
        for i in 0..<6 { b[148 + i] = field[i] }
        b[154] = 0
        b[155] = UInt8(ascii: " ")
        out.append(contentsOf: b)
    }

    private static func put(_ b: inout [UInt8], _ offset: Int, _ width: Int, _ value: [UInt8]) {
        for (i, v) in value.prefix(width).enumerated() { b[offset + i] = v }
    }

    /// Zero-padded octal with a terminating NUL.
    private static func octal(_ b: inout [UInt8], _ offset: Int, _ width: Int, _ value: UInt64) {
        var v = value
        var i = offset + width - 2
        while i >= offset {
            b[i] = UInt8(ascii: "0") + UInt8(v & 7)
            v >>= 3
            i -= 1
        }
        b[offset + width - 1] = 0
    }

    /// Octal when it fits, else GNU base-256 (high bit set), which GNU tar, bsdtar and Go read;
    /// the PAX record next to it is what POSIX readers use.
    private static func numeric(_ b: inout [UInt8], _ offset: Int, _ width: Int, _ value: Int64) {
        let maxOctal: Int64 = (1 << (3 * Int64(width - 1))) - 1
        if value >= 0 && value <= maxOctal {
            octal(&b, offset, width, UInt64(value))
            return
        }
        var v = UInt64(bitPattern: value)
        for i in stride(from: offset + width - 1, to: offset, by: -1) {
            b[i] = UInt8(truncatingIfNeeded: v)
            v >>= 8
        }
        b[offset] = 0x80
    }
}
