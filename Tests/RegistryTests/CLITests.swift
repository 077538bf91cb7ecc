import Foundation
import ImageStore
import OCI
import Registry
import Testing

/// The built `dockbuild` binary next to this package's sources.
func dockbuildBinary() throws -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    for config in ["debug", "release"] {
        let p = root.path + "/.build/\(config)/dockbuild"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    throw TestError("no .build/debug/dockbuild: run `swift build` before the tests")
}

/// Runs dockbuild; returns (status, stdout, stderr).
func dockbuild(_ args: [String], env: [String: String], stdin: String? = nil) throws -> (Int32, String, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try dockbuildBinary())
    p.arguments = args
    var environment = ProcessInfo.processInfo.environment
    for (k, v) in env { environment[k] = v }
    p.environment = environment
    let out = Pipe(), err = Pipe(), inp = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = inp
    try p.run()
    if let stdin { inp.fileHandleForWriting.write(Data(stdin.utf8)) }
    try? inp.fileHandleForWriting.close()
    let errBox = DataBox()
    let t = Thread { errBox.set(err.fileHandleForReading.readDataToEndOfFile()) }
    t.start()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    while !errBox.done { usleep(1000) }
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: errBox.data, as: UTF8.self))
}

@Suite("dockbuild login / push / pull / logout")
struct CLITests {
    @Test(arguments: RegistryKind.allCases)
    func loginPushPullLogout(_ kind: RegistryKind) async throws {
        // dockbuild's server runs here as the built `dockbuild registry serve`, like the client.
        let registry = try TestRegistry(kind, auth: .htpasswd(user: "alice", password: "s3cret"), asProcess: true)
        defer { registry.stop() }
        try loginPushPullLogout(registry)
    }

    /// dockbuild's server only: `registry serve --htpasswd F --token-auth`, tokens from its own `/token`.
    @Test func loginPushPullLogoutWithDockbuildTokenAuth() async throws {
        let registry = try TestRegistry(.dockbuild, auth: .ownToken(user: "alice", password: "s3cret"), asProcess: true)
        defer { registry.stop() }
        try loginPushPullLogout(registry)
    }

    func loginPushPullLogout(_ registry: TestRegistry) throws {
        let work = try TempDir("cli")
        defer { work.remove() }
        let env = ["DOCKER_CONFIG": work.path + "/docker"]

        let bad = try dockbuild(["login", "-u", "alice", "--password-stdin", registry.host], env: env, stdin: "wrong\n")
        #expect(bad.0 != 0)
        #expect(bad.2.contains("rejected the credentials"))

        let ok = try dockbuild(["login", "-u", "alice", "--password-stdin", registry.host], env: env, stdin: "s3cret\n")
        #expect(ok.0 == 0, "\(ok.2)")
        #expect(ok.1.contains("Login Succeeded"))
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work.path + "/docker/config.json"))) as? [String: Any]
        #expect((config?["auths"] as? [String: Any])?[registry.host] != nil)

        let store = try ImageStore(root: work.path + "/src")
        let image = try TestImages.make(in: store, tag: "\(registry.host)/cli/app:1", layers: PullPushTests.layers)
        let push = try dockbuild(["push", "--root", work.path + "/src", "\(registry.host)/cli/app:1"], env: env)
        #expect(push.0 == 0, "\(push.2)")
        #expect(push.1 == image.descriptor.digest.description + "\n")
        // Not a terminal: plain lines, one per blob.
        #expect(push.2.contains("Pushed"))

        let pull = try dockbuild(["pull", "-q", "--root", work.path + "/dst", "\(registry.host)/cli/app:1"], env: env)
        #expect(pull.0 == 0, "\(pull.2)")
        #expect(pull.1 == image.descriptor.digest.description + "\n")
        #expect(pull.2.isEmpty)
        // --debug prints the client's exchanges, one swift-log line each, in docker's logrus format.
        let debug = try dockbuild(["--debug", "pull", "-q", "--root", work.path + "/dst3", "\(registry.host)/cli/app:1"], env: env)
        #expect(debug.0 == 0, "\(debug.2)")
        let traces = debug.2.split(separator: "\n").filter { $0.contains("level=debug msg=\"registry-trace") }
        #expect(traces.contains { $0.contains("GET /v2/cli/app/manifests/1 -> 200") }, "\(debug.2)")
        #expect(traces.allSatisfy { $0.hasPrefix("time=\"") })

        let out = try dockbuild(["logout", registry.host], env: env)
        #expect(out.0 == 0)
        let again = try dockbuild(["pull", "-q", "--root", work.path + "/dst2", "\(registry.host)/cli/app:1"], env: env)
        #expect(again.0 != 0)
        #expect(again.2.contains("dockbuild login"))
    }

    @Test func badReferenceIsAClearError() throws {
        let work = try TempDir("cli")
        defer { work.remove() }
        let r = try dockbuild(["pull", "--root", work.path, "UPPER/Case"], env: [:])
        #expect(r.0 != 0)
        #expect(r.2.contains("lowercase"))
    }

    /// `push ID` without a destination: an ID names no repository, so nothing is pushed
    /// (docker.io/library/ID would be the guess); an out-of-range `--chunk-size` is refused.
    @Test func pushOfAnIDNeedsADestination() throws {
        let work = try TempDir("cli")
        defer { work.remove() }
        let store = try ImageStore(root: work.path + "/src")
        let image = try TestImages.make(in: store, tag: "127.0.0.1:1/cli/app:1", layers: PullPushTests.layers)
        let id = String(image.descriptor.digest.encoded.prefix(12))
        let r = try dockbuild(["push", "--root", work.path + "/src", id], env: [:])
        #expect(r.0 != 0)
        #expect(r.2.contains("not a name"), "\(r.2)")
        #expect(!r.2.contains("docker.io"))
        let big = try dockbuild(["push", "--root", work.path + "/src", "--chunk-size", "99999999999999", "127.0.0.1:1/cli/app:1"], env: [:])
        #expect(big.0 == 125, "a usage error exits 125 as docker's")
        #expect(big.2.contains("--chunk-size"), "\(big.2)")
    }
}

/// `create --pull missing|always|never` (the Containers library's `ImagePull`): an image that is
/// not in the store is pulled from its registry by the client's own rules (a loopback registry
/// over plain HTTP), `always` follows a moved tag, `never` refuses with exit 125.
@Suite("create --pull against a registry")
struct CreatePullTests {
    @Test(arguments: RegistryKind.allCases)
    func createPullsWhatItNeeds(_ kind: RegistryKind) async throws {
        let registry = try TestRegistry(kind)
        defer { registry.stop() }
        let work = try TempDir("create-pull")
        defer { work.remove() }
        let (src, sdir) = try newStore()
        defer { sdir.remove() }
        let ref = "\(registry.host)/pulled/app:1"
        let client = RegistryClient(registry: registry.host, credentials: .none)
        let one = try TestImages.make(in: src, tag: ref, layers: [["a": Data("one".utf8)]])
        _ = try await client.push(one.descriptor, from: src, to: try ImageReference(parsing: ref))
        let root = work.path + "/root"
        let env = ["DOCKER_CONFIG": work.path + "/docker"]

        let never = try dockbuild(["create", "--root", root, "--pull", "never", ref, "true"], env: env)
        #expect(never.0 == 125, "\(never.2)")
        #expect(never.2.contains("not in the store"), "\(never.2)")

        let first = try dockbuild(["create", "--root", root, ref, "true"], env: env)
        #expect(first.0 == 0, "\(first.2)")
        #expect(first.2.contains("Pulling \(ref)"), "\(first.2)")
        #expect(try ImageStore(root: root).resolve(ref).digest == one.descriptor.digest)

        // Present: `missing` does not pull again.
        let second = try dockbuild(["create", "--root", root, ref, "true"], env: env)
        #expect(second.0 == 0 && !second.2.contains("Pulling"), "\(second.2)")

        // The tag moves: `always` follows it.
        let two = try TestImages.make(in: src, tag: ref, layers: [["a": Data("two".utf8)]])
        _ = try await client.push(two.descriptor, from: src, to: try ImageReference(parsing: ref))
        let always = try dockbuild(["create", "--root", root, "--pull", "always", ref, "true"], env: env)
        #expect(always.0 == 0, "\(always.2)")
        #expect(try ImageStore(root: root).resolve(ref).digest == two.descriptor.digest)

        let bad = try dockbuild(["create", "--root", root, "--pull", "sometimes", ref, "true"], env: env)
        #expect(bad.0 == 125 && bad.2.contains("use missing, always or never"), "\(bad.2)")
        let gone = try dockbuild(["create", "--root", root, "\(registry.host)/pulled/none:1", "true"], env: env)
        #expect(gone.0 == 125 && gone.2.contains("cannot pull"), "\(gone.2)")
        _ = try dockbuild(["rm", "-f", "--root", root] + (try dockbuild(["ps", "-aq", "--root", root], env: env).1.split(separator: "\n").map(String.init)), env: env)
    }
}
