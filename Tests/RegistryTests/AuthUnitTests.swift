import Foundation
import Testing
@testable import Registry

@Suite("Auth pieces")
struct AuthUnitTests {
    @Test func parsesBearerChallenge() {
        let c = AuthChallenge.parse([#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#])
        #expect(c.count == 1)
        #expect(c[0].scheme == .bearer)
        #expect(c[0].realm == "https://auth.docker.io/token")
        #expect(c[0].service == "registry.docker.io")
        #expect(c[0].scope == "repository:library/alpine:pull")
    }

    @Test func parsesBasicAndEscapes() {
        let c = AuthChallenge.parse([#"Basic realm="a \"quoted\" realm", charset=UTF-8"#])
        #expect(c.first?.scheme == .basic)
        #expect(c.first?.realm == #"a "quoted" realm"#)
        #expect(c.first?.parameters["charset"] == "UTF-8")
        let two = AuthChallenge.parse([#"Basic realm="x", Bearer realm="https://t/token",service=s"#])
        #expect(two.map(\.scheme) == [.basic, .bearer])
        #expect(two.last?.service == "s")
    }

    @Test func loopbackIsPlainHTTP() {
        #expect(RegistryEndpoint(registry: "localhost:5000").scheme == "http")
        #expect(RegistryEndpoint(registry: "127.3.2.1:80").scheme == "http")
        #expect(RegistryEndpoint(registry: "[::1]:5000").scheme == "http")
        #expect(RegistryEndpoint(registry: "registry.example.com").scheme == "https")
        // --insecure: HTTPS without verification first (plain HTTP if that does not answer).
        #expect(RegistryEndpoint(registry: "registry.example.com", insecure: true).scheme == "https")
        #expect(RegistryEndpoint(registry: "registry.example.com", insecure: true).verifyTLS == false)
        #expect(RegistryEndpoint(registry: "localhost:5000", insecure: true).scheme == "https")
        #expect(RegistryEndpoint(registry: "127.0.0.1.example.com").scheme == "https")
        let hub = RegistryEndpoint(registry: "docker.io")
        #expect(hub.url("/v2/").absoluteString == "https://registry-1.docker.io/v2/")
    }

    @Test func backoffHonoursRetryAfter() {
        #expect(Backoff.delay(attempt: 0, retryAfter: "3") == 3_000_000_000)
        let d = Backoff.delay(attempt: 3, retryAfter: nil, base: 0.25, cap: 8)
        #expect(d >= 1_000_000_000 && d <= 2_000_000_000)
    }

    @Test func dockerConfigRoundTrip() throws {
        let dir = try TempDir("docker-config")
        defer { dir.remove() }
        let path = dir.path + "/config.json"
        // Other keys in the file survive our writes.
        try Data(#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnB3"}},"psFormat":"table"}"#.utf8).write(to: URL(fileURLWithPath: path))
        let config = DockerConfig(path: path)
        #expect(try config.credentials(for: "docker.io") == Credentials(username: "hub", password: "pw"))
        try config.store(Credentials(username: "u", password: "p:w"), for: "localhost:5000")
        #expect(try config.credentials(for: "localhost:5000") == Credentials(username: "u", password: "p:w"))
        let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        #expect(obj?["psFormat"] as? String == "table")
        #expect(((obj?["auths"] as? [String: Any])?["localhost:5000"] as? [String: Any])?["auth"] as? String == "dTpwOnc=")
        #expect(try config.erase(for: "localhost:5000"))
        #expect(try config.credentials(for: "localhost:5000") == nil)
        #expect(try config.credentials(for: "docker.io") != nil)
        #expect(DockerConfig.defaultPath(environment: ["DOCKER_CONFIG": "/x"]) == "/x/config.json")
        #expect(DockerConfig.defaultPath(environment: ["HOME": "/h"]) == "/h/.docker/config.json")
    }

    @Test func badConfigIsAClearError() throws {
        let dir = try TempDir("docker-config")
        defer { dir.remove() }
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: dir.path + "/config.json"))
        #expect(throws: RegistryError.self) { try DockerConfig(path: dir.path + "/config.json").credentials(for: "x.io") }
    }

    @Test func credentialHelperProtocol() throws {
        let dir = try TempDir("cred-helper")
        defer { dir.remove() }
        // A helper keeping one secret in a file, speaking docker's protocol.
        let script = """
        #!/bin/sh
        store="\(dir.path)/store"
        case "$1" in
          get) read url; if [ -f "$store" ] && [ "$(head -1 "$store")" = "$url" ]; then tail -1 "$store"; else echo "credentials not found in native keychain"; exit 1; fi ;;
          store) payload=$(cat); url=$(echo "$payload" | sed 's/.*"ServerURL":"\\([^"]*\\)".*/\\1/'); user=$(echo "$payload" | sed 's/.*"Username":"\\([^"]*\\)".*/\\1/'); secret=$(echo "$payload" | sed 's/.*"Secret":"\\([^"]*\\)".*/\\1/'); printf '%s\\n{"ServerURL":"%s","Username":"%s","Secret":"%s"}\\n' "$url" "$url" "$user" "$secret" > "$store" ;;
          erase) read url; rm -f "$store" ;;
        esac
        """
        let helperName = "dockbuildtest\(UInt32.random(in: 0...UInt32.max))"
        let helperPath = dir.path + "/docker-credential-\(helperName)"
        try script.write(toFile: helperPath, atomically: true, encoding: .utf8)
        chmod(helperPath, 0o755)
        try Data(#"{"credHelpers":{"reg.example:5000":"\#(helperName)"}}"#.utf8).write(to: URL(fileURLWithPath: dir.path + "/config.json"))
        let helper = CredentialHelper(name: helperName, searchPath: [dir.path])
        #expect(try helper.get(serverURL: "reg.example:5000") == nil)
        try helper.store(serverURL: "reg.example:5000", username: "dora", secret: "tok")
        #expect(try helper.get(serverURL: "reg.example:5000") == Credentials(username: "dora", password: "tok"))
        let config = DockerConfig(path: dir.path + "/config.json", helperSearchPath: [dir.path])
        #expect(try config.credentials(for: "reg.example:5000") == Credentials(username: "dora", password: "tok"))
        #expect(try config.erase(for: "reg.example:5000"))
        #expect(try config.credentials(for: "reg.example:5000") == nil)

        // credsStore: the helper for every registry without its own credHelpers entry; an
        // identity token goes in as docker's "<token>" user and comes back as a token.
        try Data(#"{"credsStore":"\#(helperName)","auths":{}}"#.utf8).write(to: URL(fileURLWithPath: dir.path + "/config.json"))
        let viaStore = DockerConfig(path: dir.path + "/config.json", helperSearchPath: [dir.path])
        try viaStore.store(Credentials(username: "dora", password: "", identityToken: "refresh-123"), for: "other.example")
        #expect(try String(contentsOfFile: dir.path + "/store", encoding: .utf8).contains(#""Username":"<token>""#))
        #expect(try viaStore.credentials(for: "other.example") == Credentials(username: "", password: "", identityToken: "refresh-123"))
        let written = try String(contentsOfFile: dir.path + "/config.json", encoding: .utf8)
        #expect(!written.contains("refresh-123"))
    }
}
