import ArgumentParser
import Dockerfile
import Foundation

/// `dockbuild dockerfile stages`: the stage graph a build of `--target` needs.
struct DockerfileStagesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stages",
        abstract: "Show the stages a build needs: bases after ARG expansion and dependencies.",
        discussion: """
            Expands FROM lines with the global ARGs and --build-arg values, links stages \
            (FROM <stage>, COPY --from, RUN --mount from=), checks for unknown targets, bad \
            stage indexes and cycles, and lists only the stages --target needs, in build order.
            """
    )

    @Option(name: .long, help: "The stage to build (default: the last one).")
    var target: String?

    @Option(name: .customLong("build-arg"), help: "KEY=VALUE, repeatable.")
    var buildArgs: [String] = []

    @Option(name: .long, help: "Target platform, os/arch[/variant] (default: this machine's).")
    var platform: String?

    @Argument(help: "The Dockerfile to read (default: ./Dockerfile; - for standard input).")
    var file: String?

    func run() throws {
        let (path, data) = try DockerfileInput.read(file)
        var values: [String: String] = [:]
        for arg in buildArgs {
            guard let eq = arg.firstIndex(of: "=") else {
                throw ValidationError("--build-arg \(arg): expected KEY=VALUE")
            }
            values[String(arg[..<eq])] = String(arg[arg.index(after: eq)...])
        }
        do {
            let df = try Dockerfile.parse(String(decoding: data, as: UTF8.self), fileName: path == "-" ? "<stdin>" : path)
            let plan = try df.plan(target: target, buildArgs: BuildArgs(values, targetPlatform: platform))
            for resolved in plan.stages {
                let base: String
                switch resolved.base {
                case .scratch: base = "scratch"
                case .stage(let i): base = "stage \(plan.allStages[i].stage.displayName)"
                case .image(let ref): base = "image \(ref)"
                }
                var line = "\(resolved.stage.index) \(resolved.stage.displayName): from \(base)"
                if let p = resolved.platform { line += " (platform \(p))" }
                let deps = resolved.dependencies.map { plan.allStages[$0].stage.displayName }
                if !deps.isEmpty { line += "; needs \(deps.joined(separator: ", "))" }
                if !resolved.externalImages.isEmpty { line += "; copies from images \(resolved.externalImages.joined(separator: ", "))" }
                if resolved.stage.index == plan.target { line += " [target]" }
                print(line)
            }
        } catch let error as DockerfileError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
