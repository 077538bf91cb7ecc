import ArgumentParser
import Foundation
import Registry

struct LogoutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logout",
        abstract: "Remove a registry's stored credentials from docker's config.json (and its helper).")

    @Argument(help: "Registry host[:port] (default: docker.io).")
    var registry: String = "docker.io"

    func run() throws {
        let host = normalizeRegistryArgument(registry)
        let removed = try DockerConfig().erase(for: host)
        print(removed ? "Removing login credentials for \(host)" : "Not logged in to \(host)")
    }
}
