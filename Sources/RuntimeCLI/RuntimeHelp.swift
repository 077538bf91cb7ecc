import ArgumentParser
import Foundation
import Runtime

/// `dockbuild-runc -h`, `--help` and `help` in runc's layout (urfave/cli's NAME, USAGE,
/// VERSION, COMMANDS, GLOBAL OPTIONS), for callers and people used to runc's. The command
/// list comes from the verbs' own configurations, so it cannot fall behind them; the help of
/// one verb (`dockbuild-runc kill -h`) is rewritten from ArgumentParser's.
public enum RuntimeHelp {
    /// The help text of binary `name`, listing `commands` (the root command's subcommands).
    public static func runcText(name: String, about: String, commands: [any ParsableCommand.Type]) -> String {
        var rows: [(String, String)] = commands.map { c in
            let conf = c.configuration
            let names = [conf.commandName ?? "\(c)"] + conf.aliases
            return (names.joined(separator: ", "), sentence(conf.abstract))
        }
        rows.append(("help, h", "Shows a list of commands or help for one command"))
        let globals: [(String, String)] = [
            ("--debug", "enable debug logging"),
            ("--log value", "set the log file to write runtime errors to, in runc's format (default is '/dev/stderr')"),
            ("--log-format value", "set the log format ('text' (default), or 'json') (default: \"text\")"),
            ("--root value", "root directory for storage of container state (this should be located in tmpfs) (default: \"\(Runtime.defaultRoot)\")"),
            ("--systemd-cgroup", "accepted for runc compatibility; cgroupfs is used"),
            ("--rootless value", "accepted for runc compatibility ('true', 'false', or 'auto') (default: \"auto\")"),
            ("--help, -h", "show help"),
            ("--version, -v", "print the version"),
        ]
        let version = RuntimeVersion.text(name).split(separator: "\n").map(String.init)
        var out = "NAME:\n   \(name) - \(sentence(about))\n\n"
        out += "USAGE:\n   \(name) [global options] command [command options] [arguments...]\n\n"
        out += "VERSION:\n   \(version.first.map { $0.replacingOccurrences(of: "\(name) version ", with: "") } ?? "")\n"
        out += version.dropFirst().map { $0 + "\n" }.joined()
        out += "\nCOMMANDS:\n" + table(rows) + "\nGLOBAL OPTIONS:\n" + table(globals)
        return out
    }

    /// The help of one verb in runc's layout (NAME, USAGE, OPTIONS), made from ArgumentParser's
    /// own help of it (`helpText`, printed unwrapped), so it lists exactly the flags the verb
    /// takes: `-a, --all` becomes `--all, -a`, a value `<x>` becomes `value`, `--help` and the
    /// ARGUMENTS section go as in runc's.
    public static func runcVerbText(name: String, verb: String, abstract: String, helpText: String) -> String {
        let lines = helpText.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // USAGE: the verb's arguments after runc's "[command options]".
        var usage = lines.first { $0.hasPrefix("USAGE: ") }.map { String($0.dropFirst(7)) } ?? "\(name) \(verb)"
        usage = usage.replacingOccurrences(of: #"\[--?[^\]]*\]\s*|\[<options>\]\s*"#, with: "", options: .regularExpression)
        let args = usage.split(separator: " ").drop { !$0.hasPrefix("<") && !$0.hasPrefix("[<") }.joined(separator: " ")
        // OPTIONS: an entry starts with two spaces and a dash; deeper lines continue it.
        var options: [(String, String)] = []
        var inOptions = false
        for line in lines {
            if line == "OPTIONS:" { inOptions = true; continue }
            guard inOptions else { continue }
            if line.isEmpty || !line.hasPrefix(" ") { if !options.isEmpty { break } else { continue } }
            if line.hasPrefix("  -"), let m = line.firstMatch(of: #/^  ((?:-\w, )?--?[A-Za-z0-9-]+(?: <[^>]+>)?(?: \.\.\.)?)\s*(.*)$/#) {
                options.append((String(m.1), String(m.2)))
            } else if let last = options.popLast() {
                let more = line.trimmingCharacters(in: .whitespaces)
                options.append((last.0, last.1.isEmpty ? more : last.1 + " " + more))
            }
        }
        let rows: [(String, String)] = options.compactMap { label, text in
            let names = label.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard !names.contains(where: { $0.hasPrefix("--help") }) else { return nil }
            let takesValue = label.contains("<")
            let plain = names.map { String($0.split(separator: " ").first ?? "") }
            // runc lists the long name first, each name followed by "value" when it takes one.
            let ordered = plain.filter { $0.hasPrefix("--") } + plain.filter { !$0.hasPrefix("--") }
            return (ordered.map { takesValue ? $0 + " value" : $0 }.joined(separator: ", "), sentence(text))
        }
        var out = "NAME:\n   \(name) \(verb) - \(sentence(abstract))\n\n"
        out += "USAGE:\n   \(name) \(verb)\(rows.isEmpty ? "" : " [command options]")\(args.isEmpty ? "" : " " + args)\n"
        if !rows.isEmpty { out += "\nOPTIONS:\n" + table(rows) }
        return out
    }

    /// urfave/cli's two columns: three spaces, the names padded to the widest plus two.
    static func table(_ rows: [(String, String)]) -> String {
        let width = (rows.map(\.0.count).max() ?? 0) + 2
        return rows.map { "   " + $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + $0.1 + "\n" }.joined()
    }

    /// An abstract as runc words its usage lines: lower-case start, no final full stop.
    static func sentence(_ s: String) -> String {
        var t = s
        if t.hasSuffix(".") { t.removeLast() }
        // "Run ..." becomes "run ...", an acronym ("CDI ...") stays.
        guard let first = t.first, t.dropFirst().first?.isUppercase != true else { return t }
        return first.lowercased() + t.dropFirst()
    }
}
