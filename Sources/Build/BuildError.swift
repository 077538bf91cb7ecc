import Foundation

/// Everything that stops a build, with where it happened and what to do.
public enum BuildError: Error, Sendable, CustomStringConvertible {
    /// The Dockerfile is wrong at `line`.
    case dockerfile(file: String, line: Int, message: String)
    /// A file or directory the build needs is missing or unreadable.
    case context(String)
    /// A RUN step exited with a status other than 0 (`platform`: which one, in a multi-platform build).
    case runFailed(command: String, status: Int32, output: String, line: Int, platform: String? = nil)
    /// A flag or option given to the build is malformed.
    case invalidOption(String)
    /// An image, stage or cache entry could not be found or read.
    case notFound(String)
    /// A system call or tool failed.
    case system(String)

    public var description: String {
        switch self {
        case let .dockerfile(file, line, message):
            return line > 0 ? "\(file):\(line): \(message)" : "\(file): \(message)"
        case let .context(m): return "build context: \(m)"
        case let .runFailed(command, status, output, line, platform):
            var s = "RUN failed" + (platform.map { " for " + $0 } ?? "") + " (Dockerfile line \(line)): `\(command)` exited with status \(status)"
            let tail = output.split(separator: "\n", omittingEmptySubsequences: false).suffix(30).joined(separator: "\n")
            if !tail.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { s += "\n--- output ---\n" + tail }
            return s
        case let .invalidOption(m): return "invalid option: \(m)"
        case let .notFound(m): return m
        case let .system(m): return m
        }
    }
}
