import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One line per HTTP exchange on stderr when `DOCKBUILD_REGISTRY_TRACE` is set: when it
/// started and ended (ms since the first request), method, path, status, bytes each way and
/// curl's own phase times. It is how the push benchmark was taken apart; a user can send it
/// along with a slow-transfer report.
enum RegistryTrace {
    static let enabled = getenv("DOCKBUILD_REGISTRY_TRACE") != nil
    private static let origin = now()

    /// Monotonic milliseconds since the first call.
    static func elapsedMs() -> Double { (now() - origin) / 1e6 }

    private static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) * 1e9 + Double(ts.tv_nsec)
    }

    /// Writes one line with a single `write`, so lines from concurrent transfers do not mix.
    static func emit(_ line: String) {
        guard enabled else { return }
        let l = line + "\n"
        _ = l.withCString { write(2, $0, strlen($0)) }
    }
}
