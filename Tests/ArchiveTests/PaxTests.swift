import CArchive
import Foundation
import Testing
@testable import Archive

/// Headers a ustar block cannot hold are carried by PAX records; libarchive must read them back.
@Suite struct PaxTests {
    func readBack(_ h: TarHeader) throws -> (path: String, size: Int64, uid: Int64, gid: Int64, uname: String, link: String, xattrs: [String: [UInt8]]) {
        var bytes = PaxEncoder.encode(h)
        bytes += [UInt8](repeating: 0, count: 1024)
        let a = try #require(archive_read_new())
        defer { archive_read_free(a) }
        archive_read_support_format_tar(a)
        return try bytes.withUnsafeBytes { raw in
            #expect(archive_read_open_memory(a, raw.baseAddress, raw.count) == ARCHIVE_OK)
            var e: OpaquePointer?
            let rc = archive_read_next_header(a, &e)
            #expect(rc == ARCHIVE_OK || rc == ARCHIVE_WARN)
            let entry = try #require(e)
            var xattrs: [String: [UInt8]] = [:]
            archive_entry_xattr_reset(entry)
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK {
                if let name, let value { xattrs[String(cString: name)] = Array(UnsafeRawBufferPointer(start: value, count: size)) }
            }
            return (String(cString: archive_entry_pathname(entry)), archive_entry_size(entry), archive_entry_uid(entry),
                    archive_entry_gid(entry), archive_entry_uname(entry).map { String(cString: $0) } ?? "",
                    archive_entry_symlink(entry).map { String(cString: $0) } ?? "", xattrs)
        }
    }

    @Test func filesOver8GiBAndBigIDs() throws {
        var h = TarHeader(name: Array("big.img".utf8), kind: .regular)
        h.size = 9 << 30
        h.uid = 100_000_000
        h.gid = 3_000_000
        h.uname = Array(String(repeating: "u", count: 40).utf8)
        let r = try readBack(h)
        #expect(r.size == 9 << 30)
        #expect(r.uid == 100_000_000 && r.gid == 3_000_000)
        #expect(r.uname == String(repeating: "u", count: 40))
    }

    @Test func longNamesLinksAndXattrs() throws {
        let name = (0..<30).map { "dir\($0)" }.joined(separator: "/") + "/file-ü-名前"
        var h = TarHeader(name: Array(name.utf8), kind: .symlink)
        h.linkname = Array(String(repeating: "../", count: 60).utf8) + Array("target".utf8)
        let cap: [UInt8] = [1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        h.xattrs = [(Array("security.capability".utf8), cap), (Array("user.bin".utf8), [0, 10, 0xff])]
        let r = try readBack(h)
        #expect(r.path == name)
        #expect(r.link == String(repeating: "../", count: 60) + "target")
        #expect(r.xattrs["security.capability"] == cap)
        #expect(r.xattrs["user.bin"] == [0, 10, 0xff])
    }

    @Test func recordLengthCountsItself() {
        // "9 k=vvv\n" is 8 bytes -> length field grows to two digits exactly at the boundary.
        for n in 0..<120 {
            var out: [UInt8] = []
            PaxEncoder.appendRecord(&out, "k", [UInt8](repeating: 0x61, count: n))
            let text = String(decoding: out, as: UTF8.self)
            let declared = Int(text.split(separator: " ").first ?? "") ?? -1
            #expect(declared == out.count, "value length \(n)")
        }
    }
}
