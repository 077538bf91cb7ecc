import CArchive
import Glibc
import OCI

/// Everything that can go wrong while writing, reading, applying or diffing a layer.
/// Each case names the file or archive entry involved and says what to do about it.
public enum ArchiveError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call failed on a path of the local filesystem.
    case io(path: String, operation: String, errno: Int32)
    /// An archive entry is unsafe (escapes the target, absolute, ...) and was refused.
    case unsafeEntry(entry: String, reason: String)
    /// The layer bytes are not a readable archive (corrupt, truncated, unknown format).
    case malformed(entry: String?, reason: String)
    /// A compression library reported an error.
    case compression(String)
    /// A caller-supplied argument is not usable.
    case invalidArgument(String)
    /// A layer's uncompressed stream does not hash to the `diff_id` its image config gives:
    /// the layer (or the config) is corrupt or was tampered with.
    case diffIDMismatch(layer: String, expected: Digest, actual: Digest)

    public var description: String {
        switch self {
        case let .io(path, operation, code):
            let msg = String(cString: strerror(code))
            return "\(operation) \(path): \(msg) (errno \(code)); check that the path exists and is accessible"
        case let .unsafeEntry(entry, reason):
            return "refusing layer entry \"\(entry)\": \(reason); the layer is malformed or hostile, nothing was written outside the target"
        case let .malformed(entry, reason):
            if let entry { return "malformed layer at entry \"\(entry)\": \(reason); re-create or re-download the layer" }
            return "malformed layer: \(reason); re-create or re-download the layer"
        case let .compression(reason):
            return "compression failed: \(reason)"
        case let .invalidArgument(reason):
            return "invalid argument: \(reason)"
        case let .diffIDMismatch(layer, expected, actual):
            return "layer \(layer): its uncompressed content is \(actual) but the image config's diff_id is \(expected); "
                + "the layer or the config is corrupt or was tampered with, nothing was unpacked or stored from it — "
                + "pull or load the image again from a source you trust"
        }
    }

    static func sys(_ path: String, _ operation: String, _ code: Int32 = errno) -> ArchiveError {
        .io(path: path, operation: operation, errno: code)
    }
}

/// Why `archive_read_new()` gave NULL: libarchive could not be loaded (the loader's message
/// says what to install), or there was no memory.
public func libarchiveReaderFailure() -> String {
    dockbuild_archive_load_error().map { String(cString: $0) } ?? "cannot create a libarchive reader (out of memory?)"
}
