import ArgumentParser
import Foundation
import Registry

struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Log in to a registry (stored in docker's config.json, shared with docker).",
        discussion: """
        The credentials are checked against the registry first. They are stored through the \
        credential helper config.json names (credsStore / credHelpers), else base64 in its \
        `auths`. With a token service that hands out refresh tokens, the token is stored \
        instead of the password.
        """)

    @Option(name: [.short, .long], help: "Username (asked for when not given).")
    var username: String?

    @Option(name: [.short, .long], help: "Password (visible in the process list: prefer --password-stdin).")
    var password: String?

    @Flag(name: .long, help: "Read the password from stdin.")
    var passwordStdin = false

    @Flag(name: .long, help: "HTTPS without checking the certificate, else plain HTTP (localhost and 127.0.0.0/8 get plain HTTP anyway).")
    var insecure = false

    @Argument(help: "Registry host[:port] (default: docker.io).")
    var registry: String = "docker.io"

    func validate() throws {
        if passwordStdin && password != nil { throw ValidationError("--password and --password-stdin are mutually exclusive") }
        if passwordStdin && username == nil { throw ValidationError("--password-stdin needs --username") }
    }

    func run() async throws {
        let host = normalizeRegistryArgument(registry)
        let user: String
        if let username { user = username } else {
            FileHandle.standardError.write(Data("Username: ".utf8))
            guard let line = readLine(), !line.isEmpty else { throw ValidationError("a username is required") }
            user = line
        }
        let secret: String
        if let password {
            FileHandle.standardError.write(Data("WARNING! Using --password is insecure; use --password-stdin.\n".utf8))
            secret = password
        } else if passwordStdin {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            secret = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
        } else {
            secret = try readSecret(prompt: "Password: ")
        }
        guard !secret.isEmpty else { throw ValidationError("the password is empty") }
        let toStore = try await RegistryClient.login(registry: host, credentials: Credentials(username: user, password: secret), insecure: insecure)
        let config = DockerConfig()
        try config.store(toStore, for: host)
        print("Login Succeeded")
    }
}

/// `https://index.docker.io/v1/` and friends -> `docker.io`; `https://host:5000/` -> `host:5000`.
func normalizeRegistryArgument(_ s: String) -> String {
    var h = Substring(s)
    for p in ["https://", "http://"] where h.hasPrefix(p) { h = h.dropFirst(p.count) }
    if let slash = h.firstIndex(of: "/") { h = h[..<slash] }
    switch h {
    case "index.docker.io", "registry-1.docker.io", "": return "docker.io"
    default: return String(h)
    }
}

/// Reads a line from the terminal without echo.
func readSecret(prompt: String) throws -> String {
    let fd = open("/dev/tty", O_RDWR | O_CLOEXEC)
    guard fd >= 0 else { throw ValidationError("no terminal to ask for the password: use --password-stdin") }
    defer { close(fd) }
    _ = prompt.withCString { write(fd, $0, strlen($0)) }
    var old = termios()
    tcgetattr(fd, &old)
    var quiet = old
    quiet.c_lflag &= ~tcflag_t(ECHO)
    tcsetattr(fd, TCSAFLUSH, &quiet)
    defer {
        tcsetattr(fd, TCSAFLUSH, &old)
        _ = "\n".withCString { write(fd, $0, 1) }
    }
    var bytes: [UInt8] = []
    var c: UInt8 = 0
    while read(fd, &c, 1) == 1, c != 10, c != 13 { bytes.append(c) }
    return String(decoding: bytes, as: UTF8.self)
}
