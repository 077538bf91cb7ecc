import Foundation

/// Userland port publishing: listens on the host and relays each connection (TCP) or
/// datagram flow (UDP) to the container's address on the bridge.
final class PortForwarder: @unchecked Sendable {
    let binding: PortBinding
    let fd: Int32
    let target: String

    init(_ b: PortBinding, target: String) throws {
        let (fd, port) = try Sock.inetBind(b.hostIP, b.hostPort, udp: b.proto == "udp")
        var actual = b
        actual.hostPort = port
        self.binding = actual
        self.fd = fd
        self.target = target
    }

    func start() {
        let t = binding.proto == "udp" ? Thread { [self] in udpLoop() } : Thread { [self] in tcpLoop() }
        t.stackSize = 1 << 18
        t.start()
    }

    private func tcpLoop() {
        while true {
            let c = Sys.acceptCloexec(fd)
            if c < 0 { if errno == EINTR || errno == ECONNABORTED { continue }; return }
            let port = binding.containerPort, target = self.target
            let t = Thread {
                guard let up = Sock.tcpConnect(target, port) else { close(c); return }
                let done = DispatchSemaphore(value: 0)
                let a = Thread { PortForwarder.pump(from: c, to: up); done.signal() }
                a.stackSize = 1 << 18
                a.start()
                PortForwarder.pump(from: up, to: c)
                done.wait()
                close(c); close(up)
            }
            t.stackSize = 1 << 18
            t.start()
        }
    }

    static func pump(from: Int32, to: Int32) {
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(from, &buf, buf.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            if !buf.withUnsafeBytes({ Sock.writeAll(to, UnsafeRawBufferPointer(rebasing: $0[0..<n])) }) { break }
        }
        shutdown(to, Int32(SHUT_WR))
    }

    private func udpLoop() {
        var flows: [String: Int32] = [:]   // only this loop uses it
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            var from = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = withUnsafeMutablePointer(to: &from) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buf, buf.count, 0, $0, &len) }
            }
            if n < 0 { if errno == EINTR { continue }; return }
            let key = "\(from.sin_addr.s_addr):\(from.sin_port)"
            var up = flows[key] ?? -1
            if up < 0 {
                up = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                var t = Sock.inetAddr(target, binding.containerPort)
                _ = withUnsafePointer(to: &t) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(up, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
                flows[key] = up
                let listenFD = fd, upFD = up, client = from
                let th = Thread {
                    var b = [UInt8](repeating: 0, count: 65536)
                    var c = client
                    while true {
                        let m = recv(upFD, &b, b.count, 0)
                        if m < 0 { if errno == EINTR { continue }; break }
                        _ = withUnsafePointer(to: &c) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(listenFD, b, m, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
                    }
                }
                th.stackSize = 1 << 18
                th.start()
            }
            _ = send(up, buf, n, 0)
        }
    }
}
