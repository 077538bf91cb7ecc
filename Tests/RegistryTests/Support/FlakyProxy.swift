import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An HTTP proxy in front of a registry that breaks things on purpose: it cuts a blob
/// download short, answers 500, or corrupts blob bytes. Each request is forwarded on its own
/// upstream connection (`Connection: close`).
final class FlakyProxy: @unchecked Sendable {
    enum Fault {
        /// The first GET of a blob sends its head and `afterBytes` bytes, then closes.
        case cutFirstBlobGet(afterBytes: Int)
        /// The first `count` requests whose path contains `pathContains` get a 500.
        case fail500(pathContains: String, count: Int)
        /// Every blob GET has one byte flipped.
        case corruptBlobs
        /// Like `cutFirstBlobGet`, and `Range` headers are dropped (a server without range support).
        case cutFirstBlobGetIgnoringRange(afterBytes: Int)
        /// The first upload `PATCH` reaches the registry with only `afterBytes` bytes of its body,
        /// then both connections close without a response (a link that broke mid-chunk).
        case cutFirstPatch(afterBytes: Int)
    }

    let upstream: UInt16
    let fd: Int32
    let port: UInt16
    var host: String { "127.0.0.1:\(port)" }
    private let lock = NSLock()
    private var fault: Fault
    private var stopped = false
    private var _log: [String] = []

    /// "METHOD PATH [range]" per request seen.
    var log: [String] { lock.withLock { _log } }

    init(upstream: UInt16, fault: Fault) throws {
        self.upstream = upstream
        self.fault = fault
        (fd, port) = try Sock.listen()
        let t = Thread { [self] in acceptLoop() }
        t.start()
    }

    func stop() {
        lock.withLock { stopped = true }
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    private func acceptLoop() {
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 { if lock.withLock({ stopped }) { return } else { continue } }
            let t = Thread { [self] in serve(c) }
            t.start()
        }
    }

    private func serve(_ c: Int32) {
        defer { close(c) }
        // Serve requests on this client connection one after another (keep-alive).
        while let (head, body) = Sock.readMessage(c) {
            var lines = head.components(separatedBy: "\r\n")
            guard let first = lines.first else { return }
            let parts = first.split(separator: " ")
            guard parts.count >= 2 else { return }
            let method = String(parts[0]), path = String(parts[1])
            let range = lines.first { $0.lowercased().hasPrefix("range:") || $0.lowercased().hasPrefix("content-range:") } ?? ""
            lock.withLock { _log.append("\(method) \(path)\(range.isEmpty ? "" : " " + range)") }
            let isBlobGet = method == "GET" && path.contains("/blobs/sha256:")

            var failNow = false
            var cutAfter: Int?
            var corrupt = false
            var dropRange = false
            var cutBody: Int?
            lock.withLock {
                switch fault {
                case let .fail500(p, n) where n > 0 && path.contains(p):
                    fault = .fail500(pathContains: p, count: n - 1)
                    failNow = true
                case let .cutFirstBlobGet(n) where isBlobGet:
                    cutAfter = n
                    fault = .fail500(pathContains: "-never-", count: 0)
                case .corruptBlobs where isBlobGet:
                    corrupt = true
                case let .cutFirstBlobGetIgnoringRange(n) where isBlobGet:
                    cutAfter = n
                    fault = .cutFirstBlobGetIgnoringRange(afterBytes: Int.max)
                    dropRange = true
                case .cutFirstBlobGetIgnoringRange:
                    dropRange = true
                case let .cutFirstPatch(n) where method == "PATCH":
                    cutBody = n
                    fault = .fail500(pathContains: "-never-", count: 0)
                default: break
                }
            }
            if failNow {
                let msg = Data(#"{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}"#.utf8)
                _ = Sock.writeAll(c, Data("HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: \(msg.count)\r\n\r\n".utf8) + msg)
                continue
            }
            lines.removeAll { $0.lowercased().hasPrefix("connection:") || (dropRange && $0.lowercased().hasPrefix("range:")) }
            let forwarded = lines.joined(separator: "\r\n") + "\r\nConnection: close\r\n\r\n"
            guard let u = Sock.connect(port: upstream) else { return }
            defer { close(u) }
            if let n = cutBody {
                // Part of the body, then the link is gone: the registry sees the body end early.
                _ = Sock.writeAll(u, Data(forwarded.utf8) + body.prefix(n))
                usleep(200_000)
                return
            }
            guard Sock.writeAll(u, Data(forwarded.utf8) + body) else { return }
            guard let (rhead, rbody) = Sock.readMessage(u, untilEOF: true) else { return }
            var out = rbody
            if corrupt, !out.isEmpty {
                let i = out.startIndex + out.count / 2
                out[i] ^= 0xFF
            }
            var respHead = rhead.components(separatedBy: "\r\n").filter { !$0.lowercased().hasPrefix("connection:") }
            respHead.append("Connection: keep-alive")
            let headData = Data((respHead.joined(separator: "\r\n") + "\r\n\r\n").utf8)
            if let n = cutAfter, n < out.count {
                _ = Sock.writeAll(c, headData + out.prefix(n))
                return
            }
            guard Sock.writeAll(c, headData + out) else { return }
        }
    }
}
