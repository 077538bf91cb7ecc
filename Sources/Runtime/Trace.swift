import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

extension Runtime {
    /// Logs a phase of a start with its time (µs of the monotonic clock), at debug level:
    /// `dockbuild --debug runtime ...`, or `DOCKBUILD_RUNTIME_TRACE=1` for the runtime alone
    /// (it sets this logger's level), as the benchmarks take a start apart.
    func trace(_ what: String) {
        guard logger.logLevel <= .debug else { return }
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let ms = Double(ts.tv_sec % 1000) * 1000 + Double(ts.tv_nsec) / 1e6
        logger.debug("trace \(Int(ms * 1000)) us \(what)")
    }
}
