import Foundation
import Runtime

/// Parsers for the values of the container flags (`run`, `create`, `update`, `stop`, `logs`).
///
/// They live in the library so that a library user validates exactly as the CLI does, and so
/// that no value, however hostile, reaches an unchecked integer conversion: every function
/// either returns a value in range or throws `ContainersError.invalidArgument` with one line
/// that names the flag, the value and the accepted form.
public enum FlagValue {
    // MARK: - sizes

    /// A byte size as docker takes it: `67108864`, `64m`, `1.5g`, `512KiB`, `1 GB` (units b, k, m,
    /// g, t, p, binary multiples, case-insensitive). `-1` is accepted only where `unlimited` says
    /// so (`--memory-swap`). The result always fits an `Int64`.
    public static func bytes(_ text: String, flag: String, unlimited: Bool = false) throws -> Int64 {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if unlimited && t == "-1" { return -1 }
        func bad(_ why: String) -> ContainersError {
            .invalidArgument("\(flag) \(quote(text)): \(why); give a size such as 64m, 1.5g or 1048576\(unlimited ? " (-1 for unlimited)" : "")")
        }
        do { return try ByteSize.parse(t, unlimited: unlimited) } catch {
            switch error {
            case .negative: throw bad("a size cannot be negative")
            case .tooLarge: throw bad("too large (at most \(Int64.max) bytes)")
            case .notASize: throw bad("not a size")
            }
        }
    }

    // MARK: - cpus, pids, times

    /// `--cpus`: a decimal number of CPUs from 0.01 to the number of CPUs this machine has (0
    /// means no limit), returned as nano-CPUs (docker's NanoCpus).
    public static func nanoCPUs(_ text: String, flag: String = "--cpus", available: Int = ProcessInfo.processInfo.activeProcessorCount) throws -> Int64 {
        let t = text.trimmingCharacters(in: .whitespaces)
        let maxCPUs = max(available, 1)
        func bad(_ why: String) -> ContainersError {
            .invalidArgument("\(flag) \(quote(text)): \(why); give a number of CPUs from 0.01 to \(maxCPUs) (0 for no limit), e.g. 0.5")
        }
        // only plain decimals: Double() would also take "nan", "inf", hex and exponents
        let parts = t.split(separator: ".", omittingEmptySubsequences: false)
        guard !t.isEmpty, parts.count <= 2, parts.allSatisfy({ $0.allSatisfy(isDigit) }),
              parts.contains(where: { !$0.isEmpty }), let v = Double(t), v.isFinite else {
            throw bad(t.hasPrefix("-") ? "cannot be negative" : "not a number")
        }
        if v == 0 { return 0 }
        guard v >= 0.01, v <= Double(maxCPUs) else { throw bad("out of range") }
        return Int64((v * 1e9).rounded())
    }

    /// `--pids-limit`: a whole number of processes; 0 or -1 means no limit (returned as 0).
    public static func pidsLimit(_ text: String, flag: String = "--pids-limit") throws -> Int64 {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard let v = Int64(t), v >= -1 else {
            throw ContainersError.invalidArgument("\(flag) \(quote(text)): give a whole number of processes from 1 to \(Int64.max) (0 or -1 for no limit)")
        }
        return max(v, 0)
    }

    /// The most seconds a stop timeout may be (68 years; docker's is an Int32 too).
    public static let maxTimeoutSeconds = Int(Int32.max)

    /// `stop -t`, `restart -t`, `--stop-timeout`: whole seconds, 0 to 2147483647; -1 waits
    /// without a limit (returned as the maximum).
    public static func timeoutSeconds(_ text: String, flag: String) throws -> Int {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard let v = Int(t), (-1...maxTimeoutSeconds).contains(v) else {
            throw ContainersError.invalidArgument("\(flag) \(quote(text)): give whole seconds from 0 to \(maxTimeoutSeconds) (-1 to wait without a limit)")
        }
        return v < 0 ? maxTimeoutSeconds : v
    }

    /// `logs --tail`: `all` (nil) or a number of lines; a negative number means all, as in docker.
    public static func tailLines(_ text: String, flag: String = "--tail") throws -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if t == "all" { return nil }
        guard let v = Int(t) else {
            throw ContainersError.invalidArgument("\(flag) \(quote(text)): give a number of lines or \"all\"")
        }
        return v < 0 ? nil : v
    }

    // MARK: - environment and labels

    /// `--env-file FILE`: one KEY=VALUE (or KEY, taken from this environment) per line; blank
    /// lines and lines starting with # are skipped.
    public static func envFile(_ path: String) throws -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ContainersError.invalidArgument("--env-file \(path): cannot read the file")
        }
        var out: [String] = []
        for line in text.split(separator: "\n") {
            let l = line.trimmingCharacters(in: .whitespaces)
            if l.isEmpty || l.hasPrefix("#") { continue }
            out.append(try env(l, flag: "--env-file \(path)"))
        }
        return out
    }

    /// `-e KEY=VALUE` or `-e KEY` (copied from the caller's environment): the key must be
    /// non-empty and free of whitespace and NUL.
    public static func env(_ text: String, flag: String = "-e") throws -> String {
        let key = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard !key.isEmpty, !key.contains(where: { $0.isWhitespace || $0 == "\0" }), !text.contains("\0") else {
            throw ContainersError.invalidArgument("\(flag) \(quote(text)): give KEY=VALUE or KEY, with a KEY that is not empty and has no spaces")
        }
        return text
    }

    /// `--label KEY=VALUE` (or `KEY` for an empty value): the key must not be empty.
    public static func label(_ text: String, flag: String = "--label") throws -> (key: String, value: String) {
        let kv = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let key = kv.first, !key.isEmpty, !text.contains("\0") else {
            throw ContainersError.invalidArgument("\(flag) \(quote(text)): give KEY=VALUE with a KEY that is not empty")
        }
        return (key, kv.count > 1 ? kv[1] : "")
    }

    // MARK: - process settings

    /// `--hostname`: 1 to 64 letters, digits, `-`, `.` or `_` (the kernel's limit; no spaces or
    /// newlines, which would add lines to the container's /etc/hosts).
    public static func hostname(_ text: String, flag: String = "--hostname") throws -> String {
        guard (1...64).contains(text.utf8.count), text.first != "-",
              text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._".contains($0)) }) else {
            throw ContainersError.invalidArgument("\(flag) \(quote(text)): give 1 to 64 letters, digits, - . or _ (not starting with -)")
        }
        return text
    }

    /// `-w`: an absolute path in the container.
    public static func workdir(_ text: String, flag: String = "--workdir") throws -> String {
        guard text.hasPrefix("/"), !text.contains("\0") else {
            throw ContainersError.invalidArgument("\(flag) \(quote(text)): give an absolute path in the container (starting with /)")
        }
        return text
    }

    // MARK: - mounts

    /// A container path for a mount: absolute, no NUL, no `..` component.
    public static func containerPath(_ path: String, flag: String, text: String) throws -> String {
        guard path.hasPrefix("/"), !path.contains("\0"),
              !path.split(separator: "/").contains("..") else {
            throw ContainersError.invalidArgument("\(flag) \(quote(text)): the container path \(quote(path)) must be absolute (start with /) without ..")
        }
        return path
    }

    static let tmpfsFlags: Set<String> = ["rw", "ro", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "atime", "noatime",
                                         "relatime", "norelatime", "strictatime", "nostrictatime", "diratime", "nodiratime",
                                         "sync", "async", "dirsync", "tmpcopyup", "notmpcopyup",
                                         "private", "rprivate", "shared", "rshared", "slave", "rslave"]

    /// One tmpfs mount option (`size=64m`, `mode=1777`, `uid=1000`, `noexec`, ...), normalised:
    /// sizes become bytes so the kernel never sees a value the CLI did not check.
    public static func tmpfsOption(_ option: String, flag: String, text: String) throws -> String {
        let kv = option.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let key = kv[0].lowercased()
        func bad(_ why: String) -> ContainersError {
            .invalidArgument("\(flag) \(quote(text)): option \(quote(option)) \(why); use size=SIZE, mode=OCTAL, uid=N, gid=N, nr_inodes=N or a flag such as noexec")
        }
        if kv.count == 1 {
            guard tmpfsFlags.contains(key) else { throw bad("is unknown") }
            return key
        }
        let value = kv[1]
        switch key {
        case "size":
            if value.hasSuffix("%"), let p = Int(value.dropLast()), (1...100).contains(p) { return "size=\(p)%" }
            return "size=\(try bytes(value, flag: flag))"
        case "mode":
            guard !value.isEmpty, value.count <= 5, let m = Int(value, radix: 8), (0...0o7777).contains(m) else { throw bad("needs an octal mode up to 7777") }
            return "mode=\(String(m, radix: 8))"
        case "uid", "gid":
            guard let n = UInt32(value) else { throw bad("needs a number from 0 to \(UInt32.max)") }
            return "\(key)=\(n)"
        case "nr_inodes", "nr_blocks":
            guard let n = UInt64(value) else { throw bad("needs a whole number") }
            return "\(key)=\(n)"
        default:
            throw bad("is unknown")
        }
    }

    /// `--tmpfs PATH[:OPTIONS]` with comma-separated options.
    public static func tmpfs(_ text: String, flag: String = "--tmpfs") throws -> MountPoint {
        let p = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let dst = try containerPath(p[0], flag: flag, text: text)
        var opts: [String] = []
        if p.count > 1 {
            for o in p[1].split(separator: ",", omittingEmptySubsequences: false) {
                guard !o.isEmpty else {
                    throw ContainersError.invalidArgument("\(flag) \(quote(text)): empty option; give PATH[:OPTION,OPTION...], e.g. /run:size=64m,noexec")
                }
                opts.append(try tmpfsOption(String(o), flag: flag, text: text))
            }
        }
        return MountPoint(type: .tmpfs, source: "", destination: dst, options: opts)
    }

    /// A volume name: letters, digits, `_ . -`, starting with a letter or digit.
    public static func volumeName(_ name: String, flag: String, text: String) throws -> String {
        guard ContainerStore.validName(name) else {
            throw ContainersError.invalidArgument("\(flag) \(quote(text)): \(quote(name)) is not a volume name (letters, digits, _ . -) nor a host path (start it with / or .)")
        }
        return name
    }

    private static func isDigit(_ c: Character) -> Bool { ("0"..."9").contains(c) }

    static func quote(_ s: String) -> String {
        let shown = s.count > 80 ? String(s.prefix(80)) + "…" : s
        return "\"" + shown.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined() + "\""
    }
}

