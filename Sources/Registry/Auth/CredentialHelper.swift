import Foundation

/// A `docker-credential-NAME` program speaking docker's credential-helper protocol
/// (`get` / `store` / `erase` over stdin and stdout).
public struct CredentialHelper: Sendable {
    public let name: String
    /// Directories searched before `PATH` (tests, bundled helpers).
    public let searchPath: [String]

    public init(name: String, searchPath: [String] = []) {
        self.name = name
        self.searchPath = searchPath
    }

    var program: String { "docker-credential-" + name }

    /// Credentials for `serverURL`, nil when the helper has none.
    public func get(serverURL: String) throws -> Credentials? {
        let (status, out, err) = try run("get", input: Data(serverURL.utf8))
        if status != 0 {
            let msg = (String(data: out, encoding: .utf8) ?? "") + (String(data: err, encoding: .utf8) ?? "")
            if msg.lowercased().contains("credentials not found") { return nil }
            throw RegistryError.credentialHelper(name: name, reason: "`get` failed (exit \(status)): \(msg.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        struct Reply: Decodable { var Username: String?; var Secret: String? }
        guard let reply = try? JSONDecoder().decode(Reply.self, from: out) else {
            throw RegistryError.credentialHelper(name: name, reason: "`get` printed something that is not {\"Username\",\"Secret\"} JSON")
        }
        let user = reply.Username ?? ""
        let secret = reply.Secret ?? ""
        if user.isEmpty && secret.isEmpty { return nil }
        // docker's convention: the user "<token>" means the secret is an identity token.
        if user == "<token>" { return Credentials(username: "", password: "", identityToken: secret) }
        return Credentials(username: user, password: secret)
    }

    public func store(serverURL: String, username: String, secret: String) throws {
        let payload = try JSONSerialization.data(withJSONObject: ["ServerURL": serverURL, "Username": username, "Secret": secret], options: [.sortedKeys])
        let (status, out, err) = try run("store", input: payload)
        if status != 0 {
            let msg = (String(data: out, encoding: .utf8) ?? "") + (String(data: err, encoding: .utf8) ?? "")
            throw RegistryError.credentialHelper(name: name, reason: "`store` failed (exit \(status)): \(msg.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// Returns false when the helper had nothing for `serverURL`.
    public func erase(serverURL: String) throws -> Bool {
        let (status, out, err) = try run("erase", input: Data(serverURL.utf8))
        if status != 0 {
            let msg = (String(data: out, encoding: .utf8) ?? "") + (String(data: err, encoding: .utf8) ?? "")
            if msg.lowercased().contains("not found") { return false }
            throw RegistryError.credentialHelper(name: name, reason: "`erase` failed (exit \(status)): \(msg.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return true
    }

    private func run(_ verb: String, input: Data) throws -> (Int32, Data, Data) {
        let p = Process()
        if let local = searchPath.map({ $0 + "/" + program }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            p.executableURL = URL(fileURLWithPath: local)
            p.arguments = [verb]
        } else {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [program, verb]
        }
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        p.standardInput = stdin
        p.standardOutput = stdout
        p.standardError = stderr
        do { try p.run() } catch {
            throw RegistryError.credentialHelper(name: name, reason: "cannot run \(program): \(error.localizedDescription); install it or remove it from config.json")
        }
        stdin.fileHandleForWriting.write(input)
        try? stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if p.terminationStatus == 127 {
            throw RegistryError.credentialHelper(name: name, reason: "\(program) is not on PATH; install it or remove it from config.json")
        }
        return (p.terminationStatus, out, err)
    }
}
