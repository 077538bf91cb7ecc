import Foundation

/// Thin POSIX socket helpers (blocking; each connection is served by its own threads).
enum Sock {
    static func unixListen(_ path: String) throws -> Int32 {
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ContainersError.system("socket", errno: errno) }
        let rc = try withBindablePath(path) { short in
            var addr = try unixAddr(short)
            return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        }
        guard rc == 0, listen(fd, 16) == 0 else { let e = errno; close(fd); throw ContainersError.system("cannot listen on \(path)", errno: e) }
        chmod(path, 0o600)
        return fd
    }

    static func unixConnect(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ContainersError.system("socket", errno: errno) }
        let rc = try withBindablePath(path) { short in
            var addr = try unixAddr(short)
            return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        }
        guard rc == 0 else { let e = errno; close(fd); throw ContainersError.system("cannot connect to \(path)", errno: e) }
        return fd
    }

    /// `sun_path` holds 107 bytes, less than a store under a deep --root needs. A longer path is
    /// reached through its directory's descriptor (`/proc/self/fd/N/name`), which Linux resolves
    /// like the full path.
    private static func withBindablePath<T>(_ path: String, _ body: (String) throws -> T) throws -> T {
        if path.utf8.count < 100 { return try body(path) }
        let dir = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let dfd = open(dir, 0o10000000 /* O_PATH */ | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw ContainersError.system("cannot open \(dir)", errno: errno) }
        defer { close(dfd) }
        return try body("/proc/self/fd/\(dfd)/\(name)")
    }

    private static func unixAddr(_ path: String) throws -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw ContainersError.invalidArgument("socket path too long: \(path) (use a shorter --root)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { buf in
            for (i, b) in bytes.enumerated() { buf[i] = b }
        }
        return addr
    }

    static func inetAddr(_ ip: String, _ port: Int) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = in_port_t(UInt16(port).bigEndian)
        a.sin_addr.s_addr = ip.isEmpty ? INADDR_ANY : inet_addr(ip)
        return a
    }

    /// Binds a TCP or UDP socket on ip:port (port 0 = any free); returns (fd, actual port).
    static func inetBind(_ ip: String, _ port: Int, udp: Bool) throws -> (Int32, Int) {
        let type = udp ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_STREAM.rawValue)
        let fd = socket(AF_INET, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ContainersError.system("socket", errno: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var a = inetAddr(ip, port)
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else {
            let e = errno; close(fd)
            throw ContainersError.system("cannot publish port \(ip.isEmpty ? "0.0.0.0" : ip):\(port)/\(udp ? "udp" : "tcp")", errno: e)
        }
        if !udp { listen(fd, 128) }
        var got = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &got) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return (fd, Int(UInt16(bigEndian: got.sin_port)))
    }

    static func tcpConnect(_ ip: String, _ port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var a = inetAddr(ip, port)
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc != 0 { close(fd); return nil }
        return fd
    }

    static func writeAll(_ fd: Int32, _ data: UnsafeRawBufferPointer) -> Bool {
        var off = 0
        while off < data.count {
            let n = send(fd, data.baseAddress! + off, data.count - off, Int32(MSG_NOSIGNAL))
            if n < 0 {
                if errno == EINTR { continue }
                if errno == ENOTSOCK {
                    let w = write(fd, data.baseAddress! + off, data.count - off)
                    if w < 0 { if errno == EINTR { continue }; return false }
                    off += w; continue
                }
                return false
            }
            off += n
        }
        return true
    }

    static func writeAll(_ fd: Int32, _ data: Data) -> Bool { data.withUnsafeBytes { writeAll(fd, $0) } }

    static func readFull(_ fd: Int32, _ count: Int) -> Data? {
        var out = Data(count: count)
        var off = 0
        while off < count {
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + off, count - off) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            off += n
        }
        return out
    }
}

/// Frames between the monitor and attached clients: 1 byte kind, 4 bytes big-endian length, payload.
public enum AttachFrame: UInt8, Sendable {
    case stdin = 0, stdout = 1, stderr = 2, resize = 3, stdinClose = 4, exit = 5

    static func encode(_ kind: AttachFrame, _ payload: Data) -> Data {
        var d = Data([kind.rawValue])
        var len = UInt32(payload.count).bigEndian
        withUnsafeBytes(of: &len) { d.append(contentsOf: $0) }
        d.append(payload)
        return d
    }

    static func read(_ fd: Int32) -> (AttachFrame, Data)? {
        guard let h = Sock.readFull(fd, 5), let kind = AttachFrame(rawValue: h[h.startIndex]) else { return nil }
        let len = h.dropFirst().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard len < 16 << 20 else { return nil }
        if len == 0 { return (kind, Data()) }
        guard let p = Sock.readFull(fd, Int(len)) else { return nil }
        return (kind, p)
    }
}
