import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The clock of the transport's debug log: one line per HTTP exchange, logged at debug level
/// through `TransportOptions.logger` (`dockbuild --debug`, or `DOCKBUILD_REGISTRY_TRACE=1` for
/// the registry client alone): when it started and ended (ms since the first request),
/// method, path, status, bytes each way and curl's own phase times. It is how the push
/// benchmark was taken apart; a user can send it along with a slow-transfer report.
enum RegistryTrace {
    private static let origin = now()

    /// Monotonic milliseconds since the first call.
    static func elapsedMs() -> Double { (now() - origin) / 1e6 }

    private static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) * 1e9 + Double(ts.tv_nsec)
    }
}
