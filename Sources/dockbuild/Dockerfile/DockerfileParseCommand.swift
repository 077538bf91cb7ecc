import ArgumentParser
import Dockerfile
import Foundation

/// `dockbuild dockerfile parse [--json] [FILE]`: prints the AST as BuildKit's
/// `Node.Dump` does, or as JSON with source ranges.
struct DockerfileParseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parse",
        abstract: "Parse a Dockerfile and print its syntax tree (BuildKit's AST dump format).",
        discussion: """
            Without --json the output is byte for byte what BuildKit's parser prints for \
            its AST dump. A Dockerfile BuildKit would reject (unknown instruction, bad \
            flag, ...) is rejected with FILE:LINE:COLUMN and a suggested fix.
            """
    )

    @Flag(name: .long, help: "Print JSON with source ranges instead of the dump.")
    var json = false

    @Flag(name: .long, help: "Only run the syntax layer (accepts unknown instructions, as BuildKit's parser does).")
    var syntaxOnly = false

    @Option(name: .long, help: ArgumentHelp("Parse N times and report the mean time on standard error (benchmarks).", visibility: .hidden))
    var repeatCount: Int?

    @Argument(help: "The Dockerfile to read (default: ./Dockerfile; - for standard input).")
    var file: String?

    func run() throws {
        let (path, data) = try DockerfileInput.read(file)
        let text = String(decoding: data, as: UTF8.self)
        let name = path == "-" ? "<stdin>" : path
        do {
            if let n = repeatCount, n > 0 {
                let clock = ContinuousClock()
                var count = 0
                let elapsed = try clock.measure {
                    for _ in 0..<n {
                        count += syntaxOnly ? try SyntaxTree.parse(text, fileName: name).instructions.count
                            : try Dockerfile.parse(text, fileName: name).instructions.count
                    }
                }
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                FileHandle.standardError.write(Data(String(format: "parsed %d instructions x %d in %.3f s: %.2f ms per parse\n",
                                                           count / n, n, seconds, seconds * 1000 / Double(n)).utf8))
                return
            }
            let tree: SyntaxTree
            if syntaxOnly {
                tree = try SyntaxTree.parse(text, fileName: name)
            } else {
                tree = try Dockerfile.parse(text, fileName: name).syntax
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                let out = try encoder.encode(tree)
                FileHandle.standardOutput.write(out)
                FileHandle.standardOutput.write(Data("\n".utf8))
            } else {
                for warning in tree.warnings {
                    FileHandle.standardError.write(Data("[WARNING]: \(warning.message)\n".utf8))
                }
                if !tree.warnings.isEmpty {
                    FileHandle.standardError.write(Data("[WARNING]: Empty continuation lines will become errors in a future release.\n".utf8))
                }
                print(tree.dump())
            }
        } catch let error as DockerfileError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
