import Foundation
import Testing

/// `dockbuild compose` end to end (issue #24): real projects of busybox containers on the
/// scenario's own bridge, driven through the CLI as a user would.
@Suite(.serialized) struct ComposeCLITests {
    static func scenario(_ tag: Int) throws -> Scenario {
        let s = try Scenario(tag)
        try #require(FileManager.default.isExecutableFile(atPath: s.binary), "\(s.binary) is missing: run `swift build` first")
        try s.makeBusyboxImage()
        return s
    }

    /// Writes `files` (name -> text) into a fresh project directory; returns it.
    func project(_ s: Scenario, _ files: [String: String]) throws -> String {
        let dir = "\(s.root)/proj-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (n, t) in files {
            try FileManager.default.createDirectory(atPath: ("\(dir)/\(n)" as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try t.write(toFile: "\(dir)/\(n)", atomically: true, encoding: .utf8)
        }
        return dir
    }

    /// `dockbuild compose -f DIR/compose.yaml -p NAME args...`
    func compose(_ s: Scenario, _ dir: String, _ name: String, _ args: [String], file: String = "compose.yaml",
                 env: [String: String] = [:]) throws -> Scenario.Result {
        try s.db(["compose", "-f", "\(dir)/\(file)", "-p", name] + args, env: env)
    }

    func ids(_ s: Scenario, _ project: String) throws -> [String: String] {
        let out = try s.ok(["ps", "-a", "--filter", "label=com.docker.compose.project=\(project)", "--no-trunc",
                            "--format", "{{.Names}} {{.ID}}"])
        var m: [String: String] = [:]
        for l in out.split(separator: "\n") {
            let f = l.split(separator: " ")
            if f.count == 2 { m[String(f[0])] = String(f[1]) }
        }
        return m
    }

    static let app = """
        services:
          web:
            image: busybox:test
            # reads the key-value service by name when it starts, then serves what it read
            command: ["sh", "-c", "mkdir -p /srv && nc kv 7000 > /srv/index.html && echo web up && exec httpd -f -p 8080 -h /srv"]
            stop_grace_period: 1s
            environment:
              GREETING: ${GREETING:-hello}
            ports:
              - "127.0.0.1:${WEB_PORT}:8080"
            depends_on:
              kv:
                condition: service_healthy
              migrate:
                condition: service_completed_successfully
          kv:
            image: busybox:test
            command: ["sh", "-c", "cat /data/value 2>/dev/null || echo fresh > /data/value; echo kv started; exec nc -ll -p 7000 -e cat /data/value"]
            stop_grace_period: 1s
            volumes:
              - data:/data
            healthcheck:
              test: ["CMD", "test", "-f", "/data/value"]
              interval: 500ms
              retries: 20
          migrate:
            image: busybox:test
            command: sh -c 'echo migrated; exit ${MIGRATE_STATUS:-0}'
        volumes:
          data:
        """

    @Test(.enabled(if: Scenario.canRun)) func webReachesKeyValueServiceByName() throws {
        let s = try Self.scenario(141)
        defer { s.cleanup() }
        let port = Scenario.freePort()
        let dir = try project(s, ["compose.yaml": Self.app, ".env": "WEB_PORT=\(port)\n"])
        let up = try compose(s, dir, "shop", ["up", "-d"])
        #expect(up.status == 0, "\(up.err)")
        // names and labels as docker compose
        let names = try ids(s, "shop").keys.sorted()
        #expect(names == ["shop-kv-1", "shop-migrate-1", "shop-web-1"])
        let labels = try s.inspect("shop-web-1")["Config"] as? [String: Any]
        let l = labels?["Labels"] as? [String: String] ?? [:]
        #expect(l["com.docker.compose.project"] == "shop")
        #expect(l["com.docker.compose.service"] == "web")
        #expect(l["com.docker.compose.container-number"] == "1")
        #expect(l["com.docker.compose.oneoff"] == "False")
        #expect(l["com.docker.compose.config-hash"]?.count == 64)
        #expect(try s.ok(["volume", "ls", "-q"]).split(separator: "\n").contains("shop_data"))
        // the web service read the kv service by name at its start, and publishes it
        var page = ""
        #expect(Scenario.eventually(10) {
            page = (try? Shell.out(["/bin/busybox", "wget", "-qO-", "http://127.0.0.1:\(port)/"])) ?? ""
            return page == "fresh\n"
        }, "page: \(page)")
        // and by its container name, from exec; the environment came through interpolation
        let r = try compose(s, dir, "shop", ["exec", "-T", "web", "sh", "-c", "nc shop-kv-1 7000; echo $GREETING"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out == "fresh\nhello\n")
        #expect(try compose(s, dir, "shop", ["exec", "-T", "web", "sh", "-c", "exit 3"]).status == 3)
        // ps and logs
        let ps = try compose(s, dir, "shop", ["ps"])
        #expect(ps.out.contains("shop-web-1") && ps.out.contains("127.0.0.1:\(port)->8080/tcp") && !ps.out.contains("shop-migrate-1"))
        #expect(try compose(s, dir, "shop", ["ps", "-a", "--services"]).out == "kv\nmigrate\nweb\n")
        let logs = try compose(s, dir, "shop", ["logs", "kv", "migrate"])
        #expect(logs.out.contains("kv-1       | kv started\n"), "\(logs.out)")
        #expect(logs.out.contains("migrate-1  | migrated\n"), "\(logs.out)")
        #expect(try compose(s, dir, "shop", ["logs", "--no-log-prefix", "-n", "1", "web"]).out == "web up\n")
        // stop and start bring it back under the same names
        #expect(try compose(s, dir, "shop", ["stop"]).status == 0)
        #expect(try compose(s, dir, "shop", ["ps", "-q"]).out.isEmpty)
        #expect(try compose(s, dir, "shop", ["start"]).status == 0)
        #expect(Scenario.eventually(10) {
            (try? Shell.out(["/bin/busybox", "wget", "-qO-", "http://127.0.0.1:\(port)/"])) == "fresh\n"
        })
        // ls lists the project; -p alone (no compose file) is enough for down
        let ls = try s.db(["compose", "ls"])
        #expect(ls.out.contains("shop") && ls.out.contains("running(2)") && ls.out.contains("\(dir)/compose.yaml"), "\(ls.out)")
        let empty = try project(s, [:])
        let down = try s.db(["compose", "--project-directory", empty, "-p", "shop", "down"])
        #expect(down.status == 0, "\(down.err)")
        #expect(try ids(s, "shop").isEmpty)
        #expect(try s.db(["compose", "ls", "-a", "-q"]).out.isEmpty)
    }

    @Test(.enabled(if: Scenario.canRun)) func upTwiceIsANoOpAndAChangedServiceIsRecreatedAlone() throws {
        let s = try Self.scenario(142)
        defer { s.cleanup() }
        let port = Scenario.freePort()
        let dir = try project(s, ["compose.yaml": Self.app, ".env": "WEB_PORT=\(port)\n"])
        #expect(try compose(s, dir, "twice", ["up", "-d"]).status == 0)
        let first = try ids(s, "twice")
        let again = try compose(s, dir, "twice", ["up", "-d"])
        #expect(again.status == 0, "\(again.err)")
        #expect(again.err.contains("Container twice-web-1  Running") && again.err.contains("Container twice-kv-1  Running"))
        #expect(try ids(s, "twice") == first)
        // GREETING changes web's environment only: web is recreated, kv is not
        let changed = try compose(s, dir, "twice", ["up", "-d"], env: ["GREETING": "bonjour"])
        #expect(changed.status == 0, "\(changed.err)")
        #expect(changed.err.contains("Container twice-web-1  Recreate"))
        let after = try ids(s, "twice")
        #expect(after["twice-kv-1"] == first["twice-kv-1"])
        #expect(after["twice-web-1"] != first["twice-web-1"] && after["twice-web-1"] != nil)
        let env = try compose(s, dir, "twice", ["exec", "-T", "web", "sh", "-c", "echo $GREETING"])
        #expect(env.out == "bonjour\n")
        // --force-recreate recreates all
        #expect(try compose(s, dir, "twice", ["up", "-d", "--force-recreate"], env: ["GREETING": "bonjour"]).status == 0)
        #expect(try ids(s, "twice")["twice-kv-1"] != first["twice-kv-1"])
        #expect(try compose(s, dir, "twice", ["down"]).status == 0)
    }

    @Test(.enabled(if: Scenario.canRun)) func namedVolumeSurvivesDownAndGoesWithDownV() throws {
        let s = try Self.scenario(143)
        defer { s.cleanup() }
        let port = Scenario.freePort()
        let dir = try project(s, ["compose.yaml": Self.app, ".env": "WEB_PORT=\(port)\n"])
        #expect(try compose(s, dir, "vol", ["up", "-d", "kv"]).status == 0)
        // only kv (no dependencies) was started
        #expect(try ids(s, "vol").keys.sorted() == ["vol-kv-1"])
        #expect(try compose(s, dir, "vol", ["exec", "-T", "kv", "sh", "-c", "echo kept > /data/value"]).status == 0)
        #expect(try compose(s, dir, "vol", ["down"]).status == 0)
        #expect(try s.ok(["volume", "ls", "-q"]).split(separator: "\n").contains("vol_data"))
        #expect(try compose(s, dir, "vol", ["up", "-d", "kv"]).status == 0)
        let r = try compose(s, dir, "vol", ["exec", "-T", "kv", "cat", "/data/value"])
        #expect(r.out == "kept\n")
        let down = try compose(s, dir, "vol", ["down", "-v"])
        #expect(down.status == 0)
        #expect(down.err.contains("Volume vol_data  Removed"))
        #expect(!(try s.ok(["volume", "ls", "-q"]).split(separator: "\n").contains("vol_data")))
        #expect(try ids(s, "vol").isEmpty)
    }

    @Test(.enabled(if: Scenario.canRun)) func failedDependencyStopsUp() throws {
        let s = try Self.scenario(144)
        defer { s.cleanup() }
        let port = Scenario.freePort()
        let dir = try project(s, ["compose.yaml": Self.app, ".env": "WEB_PORT=\(port)\nMIGRATE_STATUS=4\n"])
        let up = try compose(s, dir, "fail", ["up", "-d"])
        #expect(up.status == 1)
        #expect(up.err.contains("service \"migrate\" didn't complete successfully: exit 4"), "\(up.err)")
        #expect(try ids(s, "fail")["fail-web-1"] == nil)
        // an unhealthy dependency
        let sick = """
            services:
              db:
                image: busybox:test
                command: sleep 60
                healthcheck: {test: "exit 1", interval: 200ms, retries: 2}
              app:
                image: busybox:test
                command: sleep 60
                depends_on: {db: {condition: service_healthy}}
            """
        let d2 = try project(s, ["compose.yaml": sick])
        let r = try compose(s, d2, "sick", ["up", "-d"])
        #expect(r.status == 1)
        #expect(r.err.contains("dependency failed to start: container sick-db-1 is unhealthy"), "\(r.err)")
        #expect(try compose(s, d2, "sick", ["down", "-t", "1"]).status == 0)
        #expect(try compose(s, dir, "fail", ["down"]).status == 0)
        #expect(try ids(s, "fail").isEmpty && ids(s, "sick").isEmpty)
    }

    @Test(.enabled(if: Scenario.canRun)) func badInputIsReportedWithFileServiceAndKey() throws {
        let s = try Self.scenario(145)
        defer { s.cleanup() }
        func fails(_ text: String, _ expected: [String], args: [String] = ["config"]) throws {
            let dir = try project(s, ["compose.yaml": text])
            let r = try compose(s, dir, "bad", args)
            #expect(r.status == 1, "\(text)")
            for e in expected { #expect(r.err.contains(e), "\(r.err) lacks \(e)") }
            #expect(try ids(s, "bad").isEmpty)
        }
        try fails("services:\n  web:\n    image: busybox:test\n    comand: [true]\n",
                  ["compose.yaml:4", "service \"web\"", "key \"comand\"", "unknown key"])
        try fails("services:\n  web:\n    image: busybox:test\n  ports: [80\n", ["compose.yaml", "invalid YAML", "line"])
        try fails("services:\n  a: {image: busybox:test, depends_on: [b]}\n  b: {image: busybox:test, depends_on: [a]}\n",
                  ["dependency cycle", "a -> b -> a"])
        try fails("services:\n  web:\n    image: busybox:test\n    volumes: [\"data:/data\"]\n",
                  ["compose.yaml:4", "undefined volume \"data\""], args: ["up", "-d"])
        try fails("services:\n  web:\n    image: busybox:test\n    sysctls: {a: 1}\n", ["service \"web\"", "key \"sysctls\"", "not supported yet"])
        try fails("services:\n  web:\n    image: ${IMG:?set IMG}\n", ["compose.yaml:3", "IMG is missing: set IMG"])
        // a missing image is pulled: here from a loopback registry that is not there
        try fails("services:\n  web:\n    image: 127.0.0.1:1/nosuch:1\n", ["service \"web\"", "127.0.0.1:1/nosuch:1"], args: ["up", "-d"])
        let dir = try project(s, [:])
        let none = try s.db(["compose", "--project-directory", dir, "config"])
        #expect(none.status == 1 && none.err.contains("no configuration file provided"))
    }

    @Test(.enabled(if: Scenario.canRun)) func attachedUpPrintsOutputAndExitCodes() throws {
        let s = try Self.scenario(146)
        defer { s.cleanup() }
        let dir = try project(s, ["compose.yaml": """
            services:
              a:
                image: busybox:test
                command: sh -c 'for i in 1 2 3; do echo a$$i; sleep 0.2; done'
              b:
                image: busybox:test
                command: sh -c 'echo b; exit 2'
            """])
        let r = try compose(s, dir, "att", ["up"])
        #expect(r.status == 0, "\(r.err)")
        for l in ["a-1  | a1\n", "a-1  | a3\n", "b-1  | b\n", "b-1 exited with code 2\n", "a-1 exited with code 0\n"] {
            #expect(r.out.contains(l), "\(r.out) lacks \(l)")
        }
        // a second attached run shows that run's output only
        let again = try compose(s, dir, "att", ["up"])
        #expect(again.out.components(separatedBy: "a-1  | a1\n").count == 2, "\(again.out)")
        #expect(try compose(s, dir, "att", ["down"]).status == 0)
        // --exit-code-from / --abort-on-container-exit: the first exit stops the others
        let d2 = try project(s, ["compose.yaml": """
            services:
              tests:
                image: busybox:test
                command: sh -c 'sleep 0.5; echo testing; exit 3'
              server:
                image: busybox:test
                command: sleep 60
                stop_signal: SIGKILL
            """])
        let from = try compose(s, d2, "ab", ["up", "--exit-code-from", "tests"])
        #expect(from.status == 3, "\(from.err)")
        #expect(from.out.contains("tests-1   | testing\n") && from.out.contains("tests-1 exited with code 3\n"), "\(from.out)")
        #expect(try compose(s, d2, "ab", ["ps", "-q"]).out.isEmpty)
        #expect(try compose(s, d2, "ab", ["up", "--abort-on-container-exit"]).status == 3)
        #expect(try compose(s, d2, "ab", ["up", "-d", "--exit-code-from", "tests"]).status != 0)
        #expect(try compose(s, d2, "ab", ["down"]).status == 0)
    }

    @Test(.enabled(if: Scenario.canRun)) func portInUseFailsNamingTheServiceAndDownCleansUp() throws {
        let s = try Self.scenario(147)
        defer { s.cleanup() }
        // hold a port on the host
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        try #require(bound == 0 && listen(fd, 1) == 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let port = Int(UInt16(bigEndian: a.sin_port))
        let dir = try project(s, ["compose.yaml": """
            services:
              web:
                image: busybox:test
                command: sleep 30
                ports: ["127.0.0.1:\(port):80"]
            """])
        let r = try compose(s, dir, "busy", ["up", "-d"])
        #expect(r.status == 1)
        #expect(r.err.contains("service \"web\""), "\(r.err)")
        #expect(try compose(s, dir, "busy", ["down"]).status == 0)
        #expect(try ids(s, "busy").isEmpty)
    }

    @Test(.enabled(if: Scenario.canRun)) func resourcesAndAliases() throws {
        let s = try Self.scenario(148)
        defer { s.cleanup() }
        let dir = try project(s, ["compose.yaml": """
            services:
              kv:
                image: busybox:test
                command: ["nc", "-ll", "-p", "7000", "-e", "echo", "hi"]
                stop_signal: SIGKILL
                networks:
                  default:
                    aliases: [store, cache.local]
                mem_limit: 64m
                pids_limit: 50
                ulimits:
                  nofile: {soft: 1024, hard: 2048}
                deploy:
                  resources:
                    limits: {cpus: "0.5"}
            """])
        let up = try compose(s, dir, "res", ["up", "-d"])
        #expect(up.status == 0, "\(up.err)")
        let host = try s.inspect("res-kv-1")["HostConfig"] as? [String: Any] ?? [:]
        #expect(host["Memory"] as? Int == 64 << 20)
        #expect(host["NanoCpus"] as? Int == 500_000_000)
        #expect(host["PidsLimit"] as? Int == 50)
        let r = try compose(s, dir, "res", ["exec", "-T", "kv", "sh", "-c", "nc store 7000; nc cache.local 7000; ulimit -n"])
        #expect(r.out == "hi\nhi\n1024\n", "\(r.err)")
        #expect(try compose(s, dir, "res", ["down"]).status == 0)
    }

    @Test(.enabled(if: Scenario.canRun)) func runOneOffKillAndPause() throws {
        let s = try Self.scenario(149)
        defer { s.cleanup() }
        let port = Scenario.freePort()
        let dir = try project(s, ["compose.yaml": Self.app, ".env": "WEB_PORT=\(port)\n"])
        // the dependencies come up; the one-off reads kv by name; its status is passed through; --rm removes it
        let r = try compose(s, dir, "one", ["run", "--rm", "-T", "web", "sh", "-c", "nc kv 7000; exit 5"])
        #expect(r.status == 5, "\(r.err)")
        #expect(r.out == "fresh\n")
        var names = try ids(s, "one").keys.sorted()
        #expect(names == ["one-kv-1", "one-migrate-1"])
        // -d prints the name of a container labelled as a one-off, which ps leaves out and down removes
        let d = try compose(s, dir, "one", ["run", "-d", "--no-deps", "kv", "sleep", "30"])
        let name = d.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(d.status == 0 && name.hasPrefix("one-kv-run-"), "\(d.err)")
        let l = (try s.inspect(name)["Config"] as? [String: Any])?["Labels"] as? [String: String] ?? [:]
        #expect(l["com.docker.compose.oneoff"] == "True" && l["com.docker.compose.service"] == "kv")
        #expect(!(try compose(s, dir, "one", ["ps", "-a"]).out.contains(name)))
        #expect(try compose(s, dir, "one", ["pause", "kv"]).status == 0)
        #expect(try compose(s, dir, "one", ["ps"]).out.contains("(Paused)"))
        #expect(try compose(s, dir, "one", ["unpause", "kv"]).status == 0)
        #expect(try compose(s, dir, "one", ["kill", "kv"]).status == 0)
        #expect(Scenario.eventually(5) { (try? compose(s, dir, "one", ["ps", "-q", "kv"]).out.isEmpty) == true })
        #expect(try compose(s, dir, "one", ["down"]).status == 0)
        names = try ids(s, "one").keys.sorted()
        #expect(names.isEmpty, "\(names)")
    }

    @Test(.enabled(if: Scenario.canRun)) func buildsServiceImagesAndRecreatesOnANewImage() throws {
        let s = try Self.scenario(150)
        defer { s.cleanup() }
        let dir = try project(s, [
            "compose.yaml": """
                services:
                  app:
                    build:
                      context: ./app
                      args: {MSG: from-args}
                    command: ["sh", "-c", "cat /msg /file"]
                """,
            "app/Dockerfile": "FROM busybox:test\nARG MSG=none\nRUN echo \"$MSG\" > /msg\nCOPY file /file\n",
            "app/file": "one\n",
        ])
        let up = try compose(s, dir, "bld", ["up"])
        #expect(up.status == 0, "\(up.err)")
        #expect(up.out.contains("app-1  | from-args\napp-1  | one\n"), "\(up.out)")
        #expect(try s.ok(["images", "--format", "{{.Repository}}:{{.Tag}}"]).contains("bld-app:latest"))
        // the same file and image: nothing to build, the container is only started again
        let again = try compose(s, dir, "bld", ["up"])
        #expect(!again.err.contains("Building") && !again.err.contains("Recreate"), "\(again.err)")
        // a change in the context: `build` makes a new image, `up` recreates the container on it
        try "two\n".write(toFile: "\(dir)/app/file", atomically: true, encoding: .utf8)
        #expect(try compose(s, dir, "bld", ["build"]).status == 0)
        let third = try compose(s, dir, "bld", ["up"])
        #expect(third.err.contains("Container bld-app-1  Recreate"), "\(third.err)")
        #expect(third.out.contains("app-1  | two\n"), "\(third.out)")
        // up --build rebuilds (from the cache here)
        #expect(try compose(s, dir, "bld", ["up", "--build", "-d"]).err.contains("Service app  Built"))
        #expect(try compose(s, dir, "bld", ["down"]).status == 0)
        // a missing context is named
        let bad = try project(s, ["compose.yaml": "services:\n  app:\n    build: ./nowhere\n"])
        let r = try compose(s, bad, "bad", ["config"])
        #expect(r.status == 1 && r.err.contains("compose.yaml:3") && r.err.contains("key \"build\"") && r.err.contains("nowhere"), "\(r.err)")
    }

    /// A network per project (`PROJECT_default`) and the declared ones, created by `up` with
    /// docker compose's labels and removed by `down`; a service reaches the others of its network
    /// by service name, container name and alias, even those started after it.
    @Test(.enabled(if: Scenario.canRun)) func projectNetworksAndNameResolution() throws {
        let s = try Self.scenario(152)
        defer { s.cleanup() }
        let dir = try project(s, ["compose.yaml": """
            services:
              first:
                image: busybox:test
                command: ["sleep", "300"]
                stop_signal: SIGKILL
              late:
                image: busybox:test
                command: ["sleep", "300"]
                stop_signal: SIGKILL
                networks:
                  default:
                    aliases: [later.local]
              other:
                image: busybox:test
                command: ["sleep", "300"]
                stop_signal: SIGKILL
                networks: [back]
            networks:
              back:
                labels: {tier: back}
            """, "external.yaml": """
            services:
              x: {image: busybox:test, networks: [outside]}
            networks:
              outside: {external: true, name: nosuchnet}
            """])
        // `first` starts alone, on netp_default
        #expect(try compose(s, dir, "netp", ["up", "-d", "first"]).status == 0)
        #expect(try s.ok(["network", "ls", "-q"]) == "netp_default")
        let doc = try s.ok(["network", "inspect", "netp_default"])
        #expect(doc.contains("\"com.docker.compose.network\": \"default\"") && doc.contains("\"com.docker.compose.project\": \"netp\""), "\(doc)")
        // `late` comes after it: `first` resolves it by service name, container name and alias
        let up = try compose(s, dir, "netp", ["up", "-d", "late", "other"])
        #expect(up.status == 0, "\(up.err)")
        #expect(up.err.contains("Network netp_back  Created"), "\(up.err)")
        for name in ["late", "netp-late-1", "later.local"] {
            let r = try compose(s, dir, "netp", ["exec", "-T", "first", "ping", "-c", "1", "-W", "3", name])
            #expect(r.status == 0, "first -> \(name): \(r.out) \(r.err)")
        }
        #expect(try compose(s, dir, "netp", ["exec", "-T", "late", "ping", "-c", "1", "-W", "3", "first"]).status == 0)
        // `other` is on the back network alone: its name does not resolve on the default one
        #expect(try compose(s, dir, "netp", ["exec", "-T", "first", "ping", "-c", "1", "-W", "1", "other"]).status != 0)
        #expect(try s.ok(["network", "ls", "-q", "--filter", "label=tier=back"]) == "netp_back")
        let ip = try s.ok(["inspect", "--format", "{{(index .NetworkSettings.Networks \"netp_back\").IPAddress}}", "netp-other-1"])
        #expect(ip.hasPrefix("10."), "\(ip)")
        // down removes the containers, then the networks
        let down = try compose(s, dir, "netp", ["down"])
        #expect(down.status == 0 && down.err.contains("Network netp_default  Removed"), "\(down.err)")
        #expect(try s.ok(["network", "ls", "-q"]) == "")
        // an external network must exist; an undefined one is an error of the file
        let ext = try compose(s, dir, "netx", ["up", "-d"], file: "external.yaml")
        #expect(ext.status == 1 && ext.err.contains("external network \"nosuchnet\" not found"), "\(ext.err)")
        let bad = try project(s, ["compose.yaml": "services:\n  a: {image: busybox:test, networks: [nope]}\n"])
        #expect(try compose(s, bad, "bad", ["config", "-q"]).err.contains("undefined network nope"))
    }

    /// Services resolve each other through the embedded DNS server at 127.0.0.11 (`nslookup`
    /// asks DNS, not /etc/hosts): by service name (every replica), container name and alias,
    /// a service started after the asker too; the other network's names stay unknown.
    @Test(.enabled(if: Scenario.canRun)) func servicesResolveEachOtherThroughEmbeddedDNS() throws {
        let s = try Self.scenario(134)
        defer { s.cleanup() }
        let dir = try project(s, ["compose.yaml": """
            services:
              web:
                image: busybox:test
                command: ["sleep", "300"]
                stop_signal: SIGKILL
              kv:
                image: busybox:test
                command: ["sleep", "300"]
                stop_signal: SIGKILL
                deploy: {replicas: 2}
                networks:
                  default:
                    aliases: [store]
              hidden:
                image: busybox:test
                command: ["sleep", "300"]
                stop_signal: SIGKILL
                networks: [back]
            networks:
              back: {}
            """])
        // no upstream: only the project's names are answered
        let env = ["DOCKBUILD_DNS_UPSTREAM": ""]
        #expect(try compose(s, dir, "dnsp", ["up", "-d", "web"], env: env).status == 0)
        let up = try compose(s, dir, "dnsp", ["up", "-d", "kv", "hidden"], env: env)
        #expect(up.status == 0, "\(up.err)")
        var ips: [String] = []
        for n in 1...2 {
            ips.append(try s.ok(["inspect", "--format", "{{(index .NetworkSettings.Networks \"dnsp_default\").IPAddress}}", "dnsp-kv-\(n)"]))
        }
        for name in ["kv", "store", "dnsp-kv-2"] {
            let r = try compose(s, dir, "dnsp", ["exec", "-T", "web", "nslookup", name, "127.0.0.11"])
            let want = name == "dnsp-kv-2" ? [ips[1]] : ips
            #expect(r.status == 0 && want.allSatisfy { r.out.contains("Address: \($0)\n") }, "web -> \(name): \(r.out) \(r.err)")
        }
        let back = try compose(s, dir, "dnsp", ["exec", "-T", "--index", "2", "kv", "nslookup", "web", "127.0.0.11"])
        #expect(back.status == 0 && back.out.contains("Name:\tweb"), "\(back.out) \(back.err)")
        let hidden = try compose(s, dir, "dnsp", ["exec", "-T", "web", "nslookup", "hidden", "127.0.0.11"])
        #expect(hidden.status != 0, "\(hidden.out)")
        #expect(try compose(s, dir, "dnsp", ["down"]).status == 0)
    }

    /// `deploy.replicas`: containers PROJECT-SERVICE-1..N, the service name resolving to each;
    /// `up --scale` and `scale` scale up and down, leaving the other containers alone.
    @Test(.enabled(if: Scenario.canRun)) func replicasScaleUpAndDown() throws {
        let s = try Self.scenario(153)
        defer { s.cleanup() }
        let dir = try project(s, ["compose.yaml": """
            services:
              web:
                image: busybox:test
                command: ["sh", "-c", "hostname > /www/index.html; exec httpd -f -p 80 -h /www"]
                stop_signal: SIGKILL
                deploy: {replicas: 3}
              client:
                image: busybox:test
                command: ["sleep", "300"]
                stop_signal: SIGKILL
            """])
        #expect(try compose(s, dir, "rep", ["config"]).out.contains("    scale: 3\n"))
        let up = try compose(s, dir, "rep", ["up", "-d"])
        #expect(up.status == 0, "\(up.err)")
        var ids = try self.ids(s, "rep")
        #expect(ids.keys.sorted() == ["rep-client-1", "rep-web-1", "rep-web-2", "rep-web-3"])
        // the service name resolves to every replica, and one of them answers
        let hosts = try compose(s, dir, "rep", ["exec", "-T", "client", "cat", "/etc/hosts"]).out
        #expect(hosts.split(separator: "\n").filter { $0.hasSuffix("\tweb") }.count == 3, "\(hosts)")
        var page = Scenario.Result(status: -1, out: "", err: "")
        #expect(try Scenario.eventually(10) {
            page = try compose(s, dir, "rep", ["exec", "-T", "client", "wget", "-qO-", "http://web/"])
            return page.status == 0 && page.out.count == 13
        }, "\(page)")
        let second = try compose(s, dir, "rep", ["exec", "-T", "--index", "2", "web", "cat", "/www/index.html"]).out
        #expect(second == (ids["rep-web-2"].map { String($0.prefix(12)) + "\n" } ?? "-"), "\(second)")
        // down to 1: the others go, web-1 stays as it was
        let down = try compose(s, dir, "rep", ["up", "-d", "--scale", "web=1"])
        #expect(down.status == 0, "\(down.err)")
        var now = try self.ids(s, "rep")
        #expect(now.keys.sorted() == ["rep-client-1", "rep-web-1"] && now["rep-web-1"] == ids["rep-web-1"])
        #expect(try compose(s, dir, "rep", ["exec", "-T", "client", "cat", "/etc/hosts"]).out
            .split(separator: "\n").filter { $0.hasSuffix("\tweb") }.count == 1)
        // `scale` up again: one more, the first untouched
        #expect(try compose(s, dir, "rep", ["scale", "web=2"]).status == 0)
        now = try self.ids(s, "rep")
        #expect(now.keys.sorted() == ["rep-client-1", "rep-web-1", "rep-web-2"] && now["rep-web-1"] == ids["rep-web-1"])
        // plain `up` goes back to the file's 3
        #expect(try compose(s, dir, "rep", ["up", "-d"]).status == 0)
        ids = try self.ids(s, "rep")
        #expect(ids.count == 4 && ids["rep-web-1"] == now["rep-web-1"])
        #expect(try compose(s, dir, "rep", ["up", "-d", "--scale", "nope=2"]).err.contains("no such service: nope"))
        #expect(try compose(s, dir, "rep", ["down"]).status == 0)
        #expect(try self.ids(s, "rep").isEmpty)
    }

    /// `-f -`, `create`, `images`, `cp`, `ls` and `push` (to dockbuild's own registry on loopback).
    @Test(.enabled(if: Scenario.canRun)) func createImagesCpPushAndStdinFile() throws {
        let s = try Self.scenario(154)
        defer { s.cleanup() }
        let yaml = """
            services:
              app:
                image: busybox:test
                command: ["sleep", "300"]
                stop_signal: SIGKILL
                deploy: {replicas: 2}
            """
        // the file from stdin; `create` makes the containers and starts none
        let created = try s.db(["compose", "-f", "-", "-p", "misc", "create"], input: yaml)
        #expect(created.status == 0, "\(created.err)")
        #expect(try s.ok(["ps", "-a", "--filter", "label=com.docker.compose.project=misc", "--format", "{{.Names}} {{.State}}"])
            .split(separator: "\n").sorted() == ["misc-app-1 created", "misc-app-2 created"])
        #expect(try s.db(["compose", "-f", "-", "-p", "misc", "ps", "-q"], input: yaml).out.isEmpty)
        // images: one row per container
        let imageID = try s.ok(["images", "-q", "busybox:test"])
        let images = try s.db(["compose", "-f", "-", "-p", "misc", "images"], input: yaml)
        let rows = images.out.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(rows.first == ["CONTAINER", "REPOSITORY", "TAG", "IMAGE", "ID", "SIZE"], "\(images.out) \(images.err)")
        #expect(rows.dropFirst().map { Array($0.prefix(4)) } == [["misc-app-1", "busybox", "test", imageID], ["misc-app-2", "busybox", "test", imageID]],
                "\(images.out)")
        #expect(try s.db(["compose", "-f", "-", "-p", "misc", "images", "-q"], input: yaml).out == "\(imageID)\n")
        #expect(try s.db(["compose", "-f", "-", "-p", "misc", "start"], input: yaml).status == 0)
        // cp: to every replica with --all, back from the second
        let host = "\(s.root)/note.txt"
        try "copied\n".write(toFile: host, atomically: true, encoding: .utf8)
        let cp = try s.db(["compose", "-f", "-", "-p", "misc", "cp", "--all", host, "app:/tmp/note.txt"], input: yaml)
        #expect(cp.status == 0, "\(cp.err)")
        #expect(try s.ok(["exec", "misc-app-1", "cat", "/tmp/note.txt"]) == "copied")
        _ = try s.ok(["exec", "misc-app-2", "sh", "-c", "echo second > /tmp/note.txt"])
        let back = try s.db(["compose", "-f", "-", "-p", "misc", "cp", "--index", "2", "app:/tmp/note.txt", "\(s.root)/back.txt"], input: yaml)
        #expect(back.status == 0, "\(back.err)")
        #expect((try? String(contentsOfFile: "\(s.root)/back.txt", encoding: .utf8)) == "second\n")
        #expect(try s.db(["compose", "-f", "-", "-p", "misc", "cp", "nosuch:/x", host], input: yaml).err.contains("no such service"))
        // ls lists the running project
        #expect(try s.ok(["compose", "ls", "-q"]).split(separator: "\n").contains("misc"))
        #expect(try s.db(["compose", "-f", "-", "-p", "misc", "down"], input: yaml).status == 0)

        // push: the built image to a registry on loopback (dockbuild's own)
        let port = Scenario.freePort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: s.binary)
        server.arguments = ["registry", "serve", "--root", "\(s.root)/registry", "--addr", "127.0.0.1:\(port)"]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { server.terminate(); server.waitUntilExit() }
        #expect(Scenario.eventually(10) {
            (try? Shell.out(["/bin/busybox", "wget", "-qO-", "http://127.0.0.1:\(port)/v2/"])) != nil
        })
        let dir = try project(s, [
            "compose.yaml": """
                services:
                  app:
                    image: 127.0.0.1:\(port)/shop/app:1
                    build: ./app
                  db:
                    image: busybox:test
                """,
            "app/Dockerfile": "FROM busybox:test\nRUN echo built > /built\n",
        ])
        #expect(try compose(s, dir, "pushp", ["push"]).err.contains("is not in the store: build it first"))
        #expect(try compose(s, dir, "pushp", ["build"]).status == 0)
        let push = try compose(s, dir, "pushp", ["push"])
        #expect(push.status == 0 && push.err.contains("app Pushed sha256:") && !push.err.contains("db Push"), "\(push.err)")
        let tags = try Shell.out(["/bin/busybox", "wget", "-qO-", "http://127.0.0.1:\(port)/v2/shop/app/tags/list"])
        #expect(tags.contains("\"1\""), "\(tags)")
    }

    /// A service on two networks (eth0 and eth1) is reached from each by its aliases there; the
    /// services of one network do not see those of the other.
    @Test(.enabled(if: Scenario.canRun)) func serviceOnTwoNetworks() throws {
        let s = try Self.scenario(155)
        defer { s.cleanup() }
        let dir = try project(s, ["compose.yaml": """
            services:
              web: {image: busybox:test, command: ["sleep", "300"], stop_signal: SIGKILL, networks: [front]}
              api:
                image: busybox:test
                command: ["sleep", "300"]
                stop_signal: SIGKILL
                networks:
                  front: {aliases: [api.front]}
                  back: {aliases: [api.back]}
              db: {image: busybox:test, command: ["sleep", "300"], stop_signal: SIGKILL, networks: [back]}
            networks:
              front:
              back:
            """])
        let up = try compose(s, dir, "two", ["up", "-d"])
        #expect(up.status == 0, "\(up.err)")
        func reach(_ from: String, _ name: String) throws -> Bool {
            try compose(s, dir, "two", ["exec", "-T", from, "ping", "-c", "1", "-W", "2", name]).status == 0
        }
        #expect(try reach("web", "api") && reach("web", "api.front") && reach("db", "api") && reach("db", "api.back"))
        #expect(try reach("api", "web") && reach("api", "db"))
        #expect(try !reach("web", "db") && !reach("web", "api.back") && !reach("db", "web"))
        let nets = try s.inspect("two-api-1")["NetworkSettings"] as? [String: Any]
        let byName = nets?["Networks"] as? [String: [String: Any]] ?? [:]
        #expect(byName.keys.sorted() == ["two_back", "two_front"], "\(byName)")
        let ips = byName.values.compactMap { $0["IPAddress"] as? String }
        #expect(ips.count == 2 && ips.allSatisfy { $0.hasPrefix("10.") } && Set(ips).count == 2, "\(ips)")
        #expect(try compose(s, dir, "two", ["exec", "-T", "api", "ip", "-o", "-4", "addr"]).out.contains("eth1"))
        #expect(try compose(s, dir, "two", ["down"]).status == 0)
        #expect(try s.ok(["network", "ls", "-q"]) == "")
    }

    /// `secrets` and `configs` from files, an environment variable and inline content,
    /// bind-mounted read-only at /run/secrets/NAME and /NAME (or their targets).
    @Test(.enabled(if: Scenario.canRun)) func secretsAndConfigs() throws {
        let s = try Self.scenario(142)
        defer { s.cleanup() }
        let dir = try project(s, ["compose.yaml": """
            services:
              app:
                image: busybox:test
                command: ["sleep", "300"]
                stop_signal: SIGKILL
                secrets: [db_pw, {source: api_key, target: key.txt}]
                configs: [app_conf, {source: inline, target: /etc/inline.conf}]
            secrets:
              db_pw: {file: ./pw.txt}
              api_key: {environment: API_KEY}
            configs:
              app_conf: {file: ./app.conf}
              inline: {content: "x=1"}
            """, "pw.txt": "hunter2\n", "app.conf": "port=80\n"])
        let up = try compose(s, dir, "sec", ["up", "-d"], env: ["API_KEY": "k-123"])
        #expect(up.status == 0, "\(up.err)")
        let r = try compose(s, dir, "sec", ["exec", "-T", "app", "sh", "-c",
                                            "cat /run/secrets/db_pw /run/secrets/key.txt; echo; cat /app_conf /etc/inline.conf"])
        #expect(r.out == "hunter2\nk-123\nport=80\nx=1", "\(r.out) \(r.err)")
        #expect(try compose(s, dir, "sec", ["exec", "-T", "app", "sh", "-c", "echo x > /run/secrets/db_pw"]).status != 0)
        #expect(FileManager.default.fileExists(atPath: "\(s.root)/compose/sec/configs/inline"))
        #expect(try compose(s, dir, "sec", ["down"], env: ["API_KEY": "k-123"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: "\(s.root)/compose/sec"))
        // an unset variable and an undefined secret are errors of the file
        #expect(try compose(s, dir, "sec", ["up", "-d"]).err.contains("API_KEY is not set"))
        #expect(try compose(s, dir, "sec", ["down"]).status == 0)
        let bad = try project(s, ["compose.yaml": "services:\n  a: {image: busybox:test, secrets: [nope]}\n"])
        #expect(try compose(s, bad, "bad", ["config", "-q"]).err.contains("undefined secret nope"))
    }

    /// `include` (a file loaded from its own directory, its services joined to the project) and
    /// `extends` from another file (its relative paths kept relative to that file).
    @Test(.enabled(if: Scenario.canRun)) func includeAndExtends() throws {
        let s = try Self.scenario(143)
        defer { s.cleanup() }
        let dir = try project(s, [
            "compose.yaml": """
                include:
                  - db/compose.yaml
                services:
                  web:
                    extends: {file: lib/common.yaml, service: base}
                    depends_on: [db]
                    command: ["sleep", "300"]
                """,
            "lib/common.yaml": """
                services:
                  base:
                    image: busybox:test
                    stop_signal: SIGKILL
                    environment: {ROLE: web}
                    volumes: ["./shared:/shared:ro"]
                """,
            "lib/shared/msg": "from lib\n",
            "db/compose.yaml": """
                services:
                  db:
                    image: busybox:test
                    command: ["sh", "-c", "echo $$DB_NAME > /tmp/name; exec sleep 300"]
                    stop_signal: SIGKILL
                    env_file: db.env
                """,
            "db/db.env": "DB_NAME=shopdb\n",
        ])
        #expect(try compose(s, dir, "inc", ["config", "--services"]).out == "db\nweb\n")
        let up = try compose(s, dir, "inc", ["up", "-d"])
        #expect(up.status == 0, "\(up.err)")
        #expect(try ids(s, "inc").keys.sorted() == ["inc-db-1", "inc-web-1"])
        let r = try compose(s, dir, "inc", ["exec", "-T", "web", "sh", "-c", "cat /shared/msg; echo $ROLE; ping -c 1 -W 2 db >/dev/null && echo reached"])
        #expect(r.out == "from lib\nweb\nreached\n", "\(r.out) \(r.err)")
        #expect(Scenario.eventually(5) { (try? compose(s, dir, "inc", ["exec", "-T", "db", "cat", "/tmp/name"]).out) == "shopdb\n" })
        #expect(try compose(s, dir, "inc", ["down"]).status == 0)
        // a service defined twice (here and in the included file) is an error
        let twice = try project(s, ["compose.yaml": "include: [other.yaml]\nservices:\n  db: {image: busybox:test}\n",
                                    "other.yaml": "services:\n  db: {image: busybox:test}\n"])
        #expect(try compose(s, twice, "tw", ["config", "-q"]).err.contains("service \"db\" is defined by"))
    }
}
