import Foundation
import ImageStore
import OCI
import Registry
import RegistryServer
import Testing

/// `dockbuild registry serve --proxy-remote-url` (distribution's `proxy`) in front of Debian's
/// `docker-registry`: dockbuild's client and skopeo pull through it, what was pulled is served
/// with the upstream stopped, tags are revalidated after the TTL, writes are refused, an
/// upstream with htpasswd is reached with the proxy's credentials, a corrupt upstream blob is
/// never stored, and concurrent misses of one blob fetch it once.
@Suite("Pull-through cache (registry serve in proxy mode)", .serialized)
struct PullThroughTests {
    static let layers: [[String: Data]] = [
        ["etc/hostname": Data("proxy\n".utf8)],
        ["data/blob.bin": randomBytes(3_000_000, seed: 23)],
    ]

    /// Pushes an image made in a fresh store to `reference` with dockbuild's CLI.
    @discardableResult
    static func push(_ reference: String, layers: [[String: Data]] = layers, env: [String: String] = [:], work: TempDir) throws -> Digest {
        let root = work.path + "/src-\(UUID().uuidString.prefix(8))"
        let store = try ImageStore(root: root)
        let image = try TestImages.make(in: store, tag: reference, layers: layers)
        let r = try dockbuild(["push", "--root", root, reference], env: env)
        guard r.0 == 0 else { throw TestError("push \(reference) failed: \(r.2)") }
        return image.descriptor.digest
    }

    /// Status and `Docker-Content-Digest` of a HEAD of a manifest, through curl.
    static func headManifest(_ url: String) throws -> (status: Int, digest: String?) {
        let out = String(decoding: try runTool(["curl", "-s", "-I", "-H", "Accept: \(RegistryClient.manifestAccept.joined(separator: ", "))", url]), as: UTF8.self)
        let lines = out.components(separatedBy: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        let digest = lines.first { $0.lowercased().hasPrefix("docker-content-digest:") }
            .map { String($0.dropFirst("docker-content-digest:".count)).trimmingCharacters(in: .whitespaces) }
        return (status, digest)
    }

    /// Status and body of a request, through curl.
    static func request(_ method: String, _ url: String) throws -> (status: Int, body: String) {
        let out = String(decoding: try runTool(["curl", "-s", "-X", method, "-w", "\n%{http_code}", url]), as: UTF8.self)
        let status = Int(out.split(separator: "\n").last ?? "") ?? 0
        return (status, String(out.split(separator: "\n").dropLast().joined(separator: "\n")))
    }

    static func proxy(_ upstream: String, _ extra: [String] = []) throws -> TestRegistry {
        try TestRegistry(.dockbuild, asProcess: true, extraArgs: ["--proxy-remote-url", "http://\(upstream)"] + extra)
    }

    @Test func clientAndSkopeoPullThroughAndCachedContentOutlivesTheUpstream() throws {
        let upstream = try TestRegistry(.distribution)
        var upstreamStopped = false
        defer { if !upstreamStopped { upstream.stop() } }
        let work = try TempDir("pull-through")
        defer { work.remove() }
        let digest = try PullThroughTests.push("\(upstream.host)/lib/app:1", work: work)
        let proxy = try PullThroughTests.proxy(upstream.host)
        defer { proxy.stop() }

        let pull = try dockbuild(["pull", "-q", "--root", work.path + "/dst1", "\(proxy.host)/lib/app:1"], env: [:])
        #expect(pull.0 == 0, "\(pull.2)\n\(proxy.log)")
        #expect(pull.1 == digest.description + "\n")
        // Stored under the proxy's storage, each blob once.
        let blobs = FileManager.default.enumerator(atPath: proxy.storage + "/blobs")?.allObjects.compactMap { $0 as? String }
            .filter { $0.hasSuffix("/data") } ?? []
        #expect(blobs.count == 4, "manifest, config, two layers: \(blobs)")

        if FileManager.default.isExecutableFile(atPath: "/usr/bin/skopeo") {
            _ = try runTool(["skopeo", "copy", "--src-tls-verify=false", "docker://\(proxy.host)/lib/app:1", "oci:\(work.path)/oci:app"])
            let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work.path + "/oci/index.json"))) as? [String: Any]
            let m = (index?["manifests"] as? [[String: Any]])?.first
            #expect(m?["digest"] as? String == digest.description)
        }

        // Writes are refused as distribution's proxy refuses them.
        let push = try dockbuild(["push", "--root", work.path + "/dst1", "\(proxy.host)/lib/app:1"], env: [:])
        #expect(push.0 != 0)
        #expect(push.2.contains("405") && push.2.contains("UNSUPPORTED") && push.2.contains("pull-through cache"), "\(push.2)")
        let post = try PullThroughTests.request("POST", "http://\(proxy.host)/v2/lib/app/blobs/uploads/")
        #expect(post.status == 405 && post.body.contains("\"UNSUPPORTED\""), "\(post)")
        let delete = try PullThroughTests.request("DELETE", "http://\(proxy.host)/v2/lib/app/manifests/\(digest)")
        #expect(delete.status == 405 && delete.body.contains("\"UNSUPPORTED\""), "\(delete)")

        // The upstream goes away: what was pulled is still served (the tag is within its TTL),
        // what was not gets a clear 503 at once instead of a hang.
        upstream.stop()
        upstreamStopped = true
        let again = try dockbuild(["pull", "-q", "--root", work.path + "/dst2", "\(proxy.host)/lib/app:1"], env: [:])
        #expect(again.0 == 0, "\(again.2)\n\(proxy.log)")
        #expect(again.1 == digest.description + "\n")
        let started = Date()
        let missing = try PullThroughTests.request("GET", "http://\(proxy.host)/v2/lib/other/manifests/latest")
        #expect(missing.status == 503, "\(missing)")
        #expect(missing.body.contains("\"UNAVAILABLE\"") && missing.body.contains("cannot be reached"), "\(missing)")
        #expect(Date().timeIntervalSince(started) < 15)
        // The operator reads why in the server's log.
        #expect(proxy.log.contains("level=warning msg=\"pull-through cache: the upstream registry cannot be reached"), "\(proxy.log)")
    }

    @Test func aTagChangedUpstreamIsSeenAfterTheTTLAndNotBefore() throws {
        let upstream = try TestRegistry(.distribution)
        var upstreamStopped = false
        defer { if !upstreamStopped { upstream.stop() } }
        let work = try TempDir("pull-through")
        defer { work.remove() }
        let first = try PullThroughTests.push("\(upstream.host)/lib/moving:cur", work: work)
        let second = try PullThroughTests.push("\(upstream.host)/lib/moving:next",
                                               layers: [["etc/motd": Data("second\n".utf8)]], work: work)
        let ttl = 4.0
        let proxy = try PullThroughTests.proxy(upstream.host, ["--proxy-ttl", "\(Int(ttl))s"])
        defer { proxy.stop() }

        // The tag is cached between these two instants.
        let cached = Date()
        #expect(try PullThroughTests.headManifest("http://\(proxy.host)/v2/lib/moving/manifests/cur").digest == first.description)
        let cachedBy = Date()
        // Move the tag upstream: one manifest PUT of the second image's bytes under `cur`.
        let m = work.path + "/next.json"
        _ = try runTool(["curl", "-s", "-f", "-o", m, "-H", "Accept: \(RegistryClient.manifestAccept.joined(separator: ", "))",
                         "http://\(upstream.host)/v2/lib/moving/manifests/next"])
        let mediaType = (try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: m))) as? [String: Any])?["mediaType"] as? String ?? ""
        _ = try runTool(["curl", "-s", "-f", "-X", "PUT", "-H", "Content-Type: \(mediaType)", "--data-binary", "@" + m,
                         "http://\(upstream.host)/v2/lib/moving/manifests/cur"])
        #expect(try PullThroughTests.headManifest("http://\(upstream.host)/v2/lib/moving/manifests/cur").digest == second.description)

        // Within the TTL the proxy answers from its cache without asking.
        let before = try PullThroughTests.headManifest("http://\(proxy.host)/v2/lib/moving/manifests/cur")
        if Date().timeIntervalSince(cached) < ttl - 0.5 {
            #expect(before.digest == first.description)
        }
        // After it, the tag is revalidated and the new image comes through.
        let wait = ttl + 0.3 - Date().timeIntervalSince(cachedBy)
        if wait > 0 { usleep(UInt32(wait * 1_000_000)) }
        let after = try PullThroughTests.headManifest("http://\(proxy.host)/v2/lib/moving/manifests/cur")
        #expect(after.status == 200)
        #expect(after.digest == second.description, "\(proxy.log)")
        let pull = try dockbuild(["pull", "-q", "--root", work.path + "/dst", "\(proxy.host)/lib/moving:cur"], env: [:])
        #expect(pull.0 == 0, "\(pull.2)")
        #expect(pull.1 == second.description + "\n")

        // Past the TTL with the upstream gone, the cached tag is still served.
        upstream.stop()
        upstreamStopped = true
        usleep(UInt32((ttl + 0.5) * 1_000_000))
        let stale = try PullThroughTests.headManifest("http://\(proxy.host)/v2/lib/moving/manifests/cur")
        #expect(stale.status == 200 && stale.digest == second.description, "\(stale)\n\(proxy.log)")
    }

    /// An upstream that accepts connections and never answers: the client gets 504 with the
    /// registry's error body after the proxy's time limit, not a hang.
    @Test func aSilentUpstreamTimesOutWithAnErrorBody() throws {
        let (fd, port) = try Sock.listen()
        defer { close(fd) }
        let dir = try TempDir("pull-through")
        defer { dir.remove() }
        var cfg = RegistryServerConfiguration(root: dir.path + "/storage")
        cfg.address = "127.0.0.1:0"
        cfg.logFormat = .none
        var proxy = ProxyConfig(remoteURL: "http://127.0.0.1:\(port)")
        proxy.timeout = 1.5
        cfg.proxy = proxy
        let server = try RegistryServer(configuration: cfg)
        try server.start()
        defer { server.stop() }
        let started = Date()
        let r = try PullThroughTests.request("GET", "http://127.0.0.1:\(server.port)/v2/lib/app/manifests/1")
        #expect(r.status == 504, "\(r)")
        #expect(r.body.contains("\"UNAVAILABLE\"") && r.body.contains("did not answer"), "\(r)")
        #expect(Date().timeIntervalSince(started) < 10)
    }

    /// The upstream wants Basic auth: the config file's `proxy.username`/`proxy.password` are
    /// used; without them the client hears that the upstream refused the proxy.
    @Test func anUpstreamWithHtpasswdIsReachedWithTheConfiguredCredentials() throws {
        let upstream = try TestRegistry(.distribution, auth: .htpasswd(user: "mirror", password: "m1rr0r"))
        defer { upstream.stop() }
        let work = try TempDir("pull-through")
        defer { work.remove() }
        let env = ["DOCKER_CONFIG": work.path + "/docker"]
        let login = try dockbuild(["login", "-u", "mirror", "--password-stdin", upstream.host], env: env, stdin: "m1rr0r\n")
        #expect(login.0 == 0, "\(login.2)")
        let digest = try PullThroughTests.push("\(upstream.host)/private/app:1", env: env, work: work)

        let config = work.path + "/config.yml"
        try """
        version: 0.1
        proxy:
          remoteurl: http://\(upstream.host)
          username: mirror
          password: m1rr0r
          ttl: 1h
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let proxy = try TestRegistry(.dockbuild, asProcess: true, extraArgs: ["--config", config])
        defer { proxy.stop() }
        let pull = try dockbuild(["pull", "-q", "--root", work.path + "/dst", "\(proxy.host)/private/app:1"], env: [:])
        #expect(pull.0 == 0, "\(pull.2)\n\(proxy.log)")
        #expect(pull.1 == digest.description + "\n")

        // The same with flags: the password from a file, its newline not part of it.
        try "m1rr0r\n".write(toFile: work.path + "/password", atomically: true, encoding: .utf8)
        let flagged = try PullThroughTests.proxy(upstream.host, ["--proxy-username", "mirror", "--proxy-password-file", work.path + "/password"])
        defer { flagged.stop() }
        let viaFlags = try dockbuild(["pull", "-q", "--root", work.path + "/dst2", "\(flagged.host)/private/app:1"], env: [:])
        #expect(viaFlags.0 == 0, "\(viaFlags.2)\n\(flagged.log)")
        #expect(viaFlags.1 == digest.description + "\n")

        let anonymous = try PullThroughTests.proxy(upstream.host)
        defer { anonymous.stop() }
        let refused = try PullThroughTests.request("GET", "http://\(anonymous.host)/v2/private/app/manifests/1")
        #expect(refused.status == 502, "\(refused)")
        #expect(refused.body.contains("refused the proxy's credentials"), "\(refused)")
    }

    /// An upstream with Docker token auth (as Docker Hub): the proxy's credentials get a
    /// bearer token from the upstream's token service.
    @Test func anUpstreamWithTokenAuthIsReachedThroughItsTokenService() throws {
        let issuer = try TokenIssuer(users: ["mirror": "t0ken"])
        defer { issuer.stop() }
        let upstream = try TestRegistry(.distribution, auth: .token(issuer))
        defer { upstream.stop() }
        let work = try TempDir("pull-through")
        defer { work.remove() }
        let env = ["DOCKER_CONFIG": work.path + "/docker"]
        let login = try dockbuild(["login", "-u", "mirror", "--password-stdin", upstream.host], env: env, stdin: "t0ken\n")
        #expect(login.0 == 0, "\(login.2)")
        let digest = try PullThroughTests.push("\(upstream.host)/team/app:1", env: env, work: work)
        try "t0ken".write(toFile: work.path + "/password", atomically: true, encoding: .utf8)
        let proxy = try PullThroughTests.proxy(upstream.host, ["--proxy-username", "mirror", "--proxy-password-file", work.path + "/password"])
        defer { proxy.stop() }
        let pull = try dockbuild(["pull", "-q", "--root", work.path + "/dst", "\(proxy.host)/team/app:1"], env: [:])
        #expect(pull.0 == 0, "\(pull.2)\n\(proxy.log)")
        #expect(pull.1 == digest.description + "\n")
    }

    /// An upstream (behind a proxy that flips a byte of every blob) sends bytes that do not
    /// match their digest: the request fails one byte short, and nothing is stored.
    @Test func aBlobThatDoesNotMatchItsDigestIsNeverStored() throws {
        let upstream = try TestRegistry(.distribution)
        defer { upstream.stop() }
        let work = try TempDir("pull-through")
        defer { work.remove() }
        try PullThroughTests.push("\(upstream.host)/lib/app:1", work: work)
        let flaky = try FlakyProxy(upstream: upstream.port, fault: .corruptBlobs)
        defer { flaky.stop() }
        let proxy = try PullThroughTests.proxy(flaky.host)
        defer { proxy.stop() }

        let pull = try dockbuild(["pull", "-q", "--root", work.path + "/dst", "\(proxy.host)/lib/app:1"], env: [:])
        #expect(pull.0 != 0, "a corrupt blob must not pull")
        // A client of the biggest layer gets all of it but the last byte: a short body.
        let raw = try runTool(["curl", "-s", "-f", "-H", "Accept: \(RegistryClient.manifestAccept.joined(separator: ", "))",
                               "http://\(upstream.host)/v2/lib/app/manifests/1"])
        let layers = (try JSONSerialization.jsonObject(with: raw) as? [String: Any])?["layers"] as? [[String: Any]] ?? []
        let big = layers.max { ($0["size"] as? Int ?? 0) < ($1["size"] as? Int ?? 0) }
        let size = big?["size"] as? Int ?? 0
        let out = work.path + "/layer"
        #expect(throws: (any Error).self) {
            try runTool(["curl", "-s", "-o", out, "http://\(proxy.host)/v2/lib/app/blobs/\(big?["digest"] as? String ?? "")"])
        }
        let got = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? -1
        #expect(size > 1_000_000 && got == size - 1, "\(got) of \(size) bytes")
        // The manifest (not a blob) was cached; no blob but it was, and no upload is left.
        var leftovers: [String] = []
        for _ in 0..<100 {
            leftovers = FileManager.default.enumerator(atPath: proxy.storage)?.allObjects.compactMap { $0 as? String }
                .filter { $0.hasPrefix("_uploads/") || ($0.hasPrefix("blobs/") && $0.hasSuffix("/data")) } ?? []
            if leftovers.count == 1 { break }
            usleep(50_000)
        }
        #expect(leftovers.count == 1 && leftovers.allSatisfy { $0.hasPrefix("blobs/") }, "only the manifest: \(leftovers)")
        #expect(proxy.log.contains("/blobs/sha256:"))
    }

    /// Four clients miss the same 3 MB blob at once: the upstream sees one GET for it, and
    /// every client gets the whole blob.
    @Test func concurrentMissesOfOneBlobFetchItOnce() throws {
        let upstream = try TestRegistry(.distribution)
        defer { upstream.stop() }
        let work = try TempDir("pull-through")
        defer { work.remove() }
        let root = work.path + "/src"
        let store = try ImageStore(root: root)
        let image = try TestImages.make(in: store, tag: "\(upstream.host)/lib/big:1", layers: PullThroughTests.layers)
        #expect(try dockbuild(["push", "--root", root, "\(upstream.host)/lib/big:1"], env: [:]).0 == 0)
        let manifest = try JSONSerialization.jsonObject(with: store.readBlob(image.descriptor.digest)) as? [String: Any]
        let layers = manifest?["layers"] as? [[String: Any]] ?? []
        guard let big = layers.max(by: { ($0["size"] as? Int ?? 0) < ($1["size"] as? Int ?? 0) }),
              let ds = big["digest"] as? String, let d = try? Digest(parsing: ds) else {
            Issue.record("no layer in \(String(describing: manifest))")
            return
        }
        let counter = try FlakyProxy(upstream: upstream.port, fault: .fail500(pathContains: "-never-", count: 0))
        defer { counter.stop() }
        let proxy = try PullThroughTests.proxy(counter.host)
        defer { proxy.stop() }

        let results = Gathered<[String]>([])
        let threads = (0..<4).map { i in
            Thread {
                let out = work.path + "/get\(i)"
                let r = (try? runTool(["curl", "-s", "-o", out, "-w", "%{http_code}", "http://\(proxy.host)/v2/lib/big/blobs/\(d)"]))
                    .map { String(decoding: $0, as: UTF8.self) } ?? "error"
                let got = (try? Data(contentsOf: URL(fileURLWithPath: out))).map { Digest.compute($0).description } ?? "-"
                results.withLock { $0.append("\(r) \(got)") }
            }
        }
        threads.forEach { $0.start() }
        for _ in 0..<600 where results.withLock({ $0.count }) < 4 { usleep(50_000) }
        #expect(results.withLock { $0 } == Array(repeating: "200 \(d)", count: 4), "\(proxy.log)")
        let gets = counter.log.filter { $0.hasPrefix("GET ") && $0.contains("/blobs/\(d)") }
        #expect(gets.count == 1, "\(counter.log)")
        // A later GET is served from storage: still one upstream GET.
        let later = try runTool(["curl", "-s", "-f", "http://\(proxy.host)/v2/lib/big/blobs/\(d)"])
        #expect(Digest.compute(later) == d)
        #expect(counter.log.filter { $0.hasPrefix("GET ") && $0.contains("/blobs/\(d)") }.count == 1)
    }
}

/// A value guarded by a lock, for results gathered from threads.
final class Gathered<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) -> R) -> R { lock.withLock { body(&value) } }
}
