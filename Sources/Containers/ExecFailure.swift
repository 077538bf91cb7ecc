import Foundation
import Runtime

/// A container's or an exec's program that cannot run, told from the OCI runtime's error text
/// (dockbuild's runtime, runc or crun), as docker tells it: 127 when it is not there, 126 when
/// it is not executable (a directory, no execute bit).
enum ExecFailure {
    /// Docker's exit code for the runtime's error `message`, or nil when it is another failure.
    static func exitCode(_ message: String) -> Int32? { RuntimeError.execExitCode(forMessage: message) }

    /// A runtime command line (`RUNTIME --root R VERB ...`) with `--log FILE` among its global
    /// flags: the runtime appends its error there, apart from the stderr the process shares.
    static func withLog(_ args: [String], _ file: String) -> [String] {
        guard let i = args.firstIndex(of: "--root"), i + 2 <= args.count else { return args }
        var a = args
        a.insert(contentsOf: ["--log", file], at: i + 2)
        return a
    }
}
