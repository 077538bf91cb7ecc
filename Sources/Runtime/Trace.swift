import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Phase timings on stderr when DOCKBUILD_RUNTIME_TRACE is set (for the benchmarks).
enum Trace {
    static let enabled = getenv("DOCKBUILD_RUNTIME_TRACE") != nil
    static func mark(_ what: String) {
        guard enabled else { return }
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let ms = Double(ts.tv_sec % 1000) * 1000 + Double(ts.tv_nsec) / 1e6
        let line = "trace \(Int(ms * 1000)) us \(what)\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
    }
}
