import ArgumentParser
import Foundation

/// Parses `dockbuild VERB ...` (and `dockbuild GROUP VERB ...`) with the one command it names
/// instead of the whole command tree (issue #19). `Dockbuild.parseAsRoot` builds the tree of
/// every command and derives the names of those with no configured `commandName` by
/// reflection (`String(describing:)` of each type: a scan of the binary's conformance records
/// per type); that was two thirds of the instructions of `version` and a third of `images`.
///
/// Only a path whose every word is a configured `commandName` (or alias) of the command it
/// descends into, ending at a command without subcommands, is parsed here; anything that asks
/// for help or completion, and any parse or validation error with a message, goes to the full
/// parse, so that help, usage and error messages stay those of the tree. `DOCKBUILD_DIRECT_PARSE=0` turns
/// this off (tests compare the two).
enum DirectParse {
    /// The command `leaf` (see `resolve`) parsed from the words after its path, or nil where
    /// the full parse must decide.
    static func parse(_ args: [String], leaf: (type: any ParsableCommand.Type, depth: Int)) -> sending (any ParsableCommand)? {
        let rest = Array(args[leaf.depth...])
        guard !rest.contains(where: asksForHelp) else { return nil }
        do {
            return try leaf.type.parseAsRoot(rest)
        } catch {
            // A `validate()` that printed its own message and threw an ExitCode (the run/create
            // flags do) has said everything: running it again through the tree would print twice.
            if leaf.type.fullMessage(for: error).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                GlobalCommandLine.exit(for: error)
            }
            return nil
        }
    }

    /// The command the leading words name and how many words that took; nil unless every word
    /// of the path is a configured name and the path ends at a command without subcommands
    /// (or when `DOCKBUILD_DIRECT_PARSE=0`).
    static func resolve(_ args: [String]) -> (type: any ParsableCommand.Type, depth: Int)? {
        if let v = getenv("DOCKBUILD_DIRECT_PARSE"), String(cString: v) == "0" { return nil }
        var candidates = Dockbuild.allCommands
        var depth = 0
        while depth < args.count {
            let word = args[depth]
            guard let next = candidates.first(where: { named($0, word) }) else { return nil }
            depth += 1
            let config = next.configuration
            if config.subcommands.isEmpty { return (next, depth) }
            // a group's default subcommand is the tree's to pick
            guard config.defaultSubcommand == nil else { return nil }
            candidates = config.subcommands
        }
        return nil
    }

    /// Whether `type` answers to `word` by its configured name or an alias. A type with no
    /// configured name never matches here (its name would need the reflection this avoids).
    static func named(_ type: any ParsableCommand.Type, _ word: String) -> Bool {
        let config = type.configuration
        return config.commandName == word || config.aliases.contains(word)
    }

    /// Words the tree treats specially anywhere: help (`-h` also inside short-flag groups such
    /// as `-ah`), the `help` subcommand, completion and the help dump.
    static func asksForHelp(_ a: String) -> Bool {
        if a == "help" || a.hasPrefix("--help") || a.hasPrefix("---") { return true }
        if a == "--generate-completion-script" || a.hasPrefix("--generate-completion-script=") { return true }
        if a == "--experimental-dump-help" { return true }
        return a.hasPrefix("-") && !a.hasPrefix("--") && a.contains("h")
    }
}
