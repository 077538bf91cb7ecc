import ArgumentParser
import Foundation

/// The Dockerfile a `dockerfile` subcommand reads: FILE, `-` for standard input, or ./Dockerfile.
enum DockerfileInput {
    static func read(_ file: String?) throws -> (path: String, data: Data) {
        let path = file ?? "Dockerfile"
        if path == "-" { return (path, FileHandle.standardInput.readDataToEndOfFile()) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read \(path): no such file or not readable")
        }
        return (path, data)
    }
}
