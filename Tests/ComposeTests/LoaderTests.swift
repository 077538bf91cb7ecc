import Compose
import Foundation
import Testing

/// Loading compose files: discovery, merging, project names, typing and the errors (no
/// containers: these run anywhere).
@Suite final class LoaderTests {
    /// Every directory of one test, removed after it.
    let base = "/var/tmp/compose-loader-\(getpid())-\(UUID().uuidString.prefix(8))"
    deinit { try? FileManager.default.removeItem(atPath: base) }

    /// A fresh directory with `files` in it.
    func dir(_ files: [String: String]) throws -> String {
        let d = "\(base)/\(UUID().uuidString.prefix(8))/My_App"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        for (n, t) in files {
            let p = "\(d)/\(n)"
            try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try t.write(toFile: p, atomically: true, encoding: .utf8)
        }
        return d
    }

    func load(_ d: String, files: [String] = [], env: [String: String] = [:], configure: (inout ComposeLoader.Options) -> Void = { _ in }) throws -> ComposeProject {
        var o = ComposeLoader.Options()
        o.currentDirectory = d
        o.files = files
        o.environment = env
        configure(&o)
        var l = ComposeLoader(o)
        return try l.load()
    }

    func error(_ d: String, files: [String] = [], env: [String: String] = [:]) -> String {
        do { _ = try load(d, files: files, env: env); return "" } catch { return "\(error)" }
    }

    @Test func discoveryOverrideAndProjectName() throws {
        let d = try dir(["compose.yaml": "services:\n  web:\n    image: a\n    environment: [A=1]\n",
                         "compose.override.yaml": "services:\n  web:\n    environment: {B: '2'}\n",
                         "docker-compose.yml": "services: {other: {image: x}}\n", "sub/deeper/.keep": ""])
        // found from a subdirectory too; compose.yaml wins over docker-compose.yml; the override merges
        let p = try load("\(d)/sub/deeper")
        #expect(p.name == "my_app")
        #expect(p.workingDir == d)
        #expect(p.files == ["\(d)/compose.yaml", "\(d)/compose.override.yaml"])
        #expect(p.services.map(\.name) == ["web"])
        #expect(p.service("web")?.environment == ["A": "1", "B": "2"])
        #expect(try load(d, env: ["COMPOSE_PROJECT_NAME": "From_Env"]).name == "from_env")
        #expect(try load(d) { $0.projectName = "given" }.name == "given")
        #expect(throws: ComposeError.self) { try load(d) { $0.projectName = "Bad Name" } }
    }

    @Test func filesMergeInOrder() throws {
        let d = try dir([
            "a.yml": """
                name: proj
                services:
                  web:
                    image: web:1
                    command: ["one"]
                    environment: {A: a, B: b}
                    labels: [x=1]
                    ports: ["80"]
                    volumes: ["data:/data", "/host:/cfg:ro"]
                    depends_on: [db]
                  db: {image: db:1}
                volumes: {data: {}}
                """,
            "b.yml": """
                services:
                  web:
                    command: two words
                    environment: [B=override, C=c]
                    labels: {y: "2"}
                    ports: ["81:81/udp"]
                    volumes: ["./local:/cfg"]
                    depends_on: {db: {condition: service_healthy}}
                """,
        ])
        let p = try load(d, files: ["a.yml", "b.yml"])
        let web = try #require(p.service("web"))
        #expect(p.name == "proj")
        #expect(web.command == ["two", "words"])
        #expect(web.environment == ["A": "a", "B": "override", "C": "c"])
        #expect(web.labels == ["x": "1", "y": "2"])
        #expect(web.ports.map { "\($0.published):\($0.target)/\($0.proto)" } == [":80/tcp", "81:81/udp"])
        #expect(web.volumes.map { "\($0.type.rawValue) \($0.source) \($0.target) \($0.readOnly)" }
                == ["volume data /data false", "bind \(d)/local /cfg false"])
        #expect(web.dependsOn == [Dependency(service: "db", condition: .serviceHealthy, required: true)])
        #expect(p.volumes.map(\.name) == ["proj_data"])
    }

    @Test func interpolationFromDotEnvAndEnvironment() throws {
        let d = try dir(["compose.yaml": "services:\n  web:\n    image: \"${IMG}:${TAG:-latest}\"\n    environment:\n      - FROM_HOST\n      - UNSET\n      - LIT=$$HOME\n",
                         ".env": "IMG=fromdotenv\nTAG=1\n", "other.env": "IMG=other\n"])
        let p = try load(d, env: ["TAG": "2", "FROM_HOST": "h"])
        #expect(p.service("web")?.image == "fromdotenv:2")
        #expect(p.service("web")?.environment == ["FROM_HOST": "h", "LIT": "$HOME"])
        #expect(try load(d) { $0.envFiles = ["other.env"] }.service("web")?.image == "other:latest")
    }

    @Test func errorsNameFileServiceAndKey() throws {
        func check(_ yaml: String, _ parts: [String]) throws {
            let d = try dir(["compose.yaml": yaml])
            let e = error(d)
            for p in parts { #expect(e.contains(p), "\(e) lacks \(p)") }
        }
        try check("services:\n  web:\n    image: a\n    ports: [\"x:80\"]\n", ["compose.yaml:4", "service \"web\"", "key \"ports\"", "\"x\""])
        try check("services:\n  web:\n    image: a\n    healthcheck: {interval: soon}\n", ["service \"web\"", "key \"healthcheck\"", "not a duration"])
        try check("services:\n  web:\n    image: a\n    depends_on: {db: {condition: service_ready}}\n", ["service_ready", "service_healthy"])
        try check("services:\n  web:\n    image: a\n    depends_on: [db]\n", ["undefined service \"db\""])
        try check("services:\n  web: {image: a}\nmodels: {}\n", ["compose.yaml:3", "\"models\"", "not supported yet"])
        try check("services:\n  web: {image: a}\nfoo: 1\n", ["unknown top-level key \"foo\""])
        try check("services:\n  web: {command: x}\n", ["service \"web\" has neither an image"])
        try check("services:\n  web:\n    image: a\n    image: b\n", ["compose.yaml:4", "\"image\" is given twice"])
        try check("services: [a]\n", ["`services` must be a mapping"])
        try check("services:\n  web:\n    image: a\n    command: \"unterminated\n", ["invalid YAML"])
        try check("x-common: &c {image: a}\nservices:\n  web:\n    <<: *c\n    restart: sometimes\n", ["key \"restart\"", "sometimes"])
        // a secret's or config's name becomes a file of the project: it cannot climb out
        try check("services:\n  web: {image: a}\nsecrets:\n  ../../../../etc/evil: {content: x}\n", ["secrets \"../../../../etc/evil\"", "letters, digits"])
        try check("services:\n  web: {image: a}\nconfigs:\n  a/b: {content: x}\n", ["configs \"a/b\"", "letters, digits"])
    }

    @Test func configPrintsTheNormalizedModel() throws {
        let d = try dir(["compose.yaml": """
            x-base: &base
              image: busybox:1
            services:
              web:
                <<: *base
                command: echo "a b"
                environment: [A=1, "N=8080"]
                ports: ["127.0.0.1:8080:80"]
                volumes: [data:/data:ro]
                healthcheck: {test: curl -f localhost, interval: 1m30s, retries: 3}
                restart: unless-stopped
            volumes: {data: {}}
            """])
        let p = try load(d) { $0.projectName = "demo" }
        #expect(ConfigWriter.yaml(p) == """
            name: demo
            services:
              web:
                command:
                  - echo
                  - a b
                environment:
                  A: "1"
                  "N": "8080"
                healthcheck:
                  test:
                    - CMD-SHELL
                    - curl -f localhost
                  interval: 1m30s
                  retries: 3
                image: busybox:1
                networks:
                  default: null
                ports:
                  - mode: ingress
                    host_ip: 127.0.0.1
                    target: 80
                    published: "8080"
                    protocol: tcp
                restart: unless-stopped
                volumes:
                  - type: volume
                    source: data
                    target: /data
                    read_only: true
                    volume: {}
            networks:
              default:
                name: demo_default
            volumes:
              data:
                name: demo_data

            """)
    }

    @Test func dependencyOrder() throws {
        let d = try dir(["compose.yaml": "services:\n  web: {image: a, depends_on: [api]}\n  api: {image: a, depends_on: [db, cache]}\n  db: {image: a}\n  cache: {image: a}\n  lone: {image: a}\n"])
        let p = try load(d)
        #expect(try DependencyOrder.sorted(p, services: ["web"]).map(\.name) == ["cache", "db", "api", "web"])
        #expect(try DependencyOrder.sorted(p, services: ["web"], withDependencies: false).map(\.name) == ["web"])
        #expect(try DependencyOrder.sorted(p, services: p.services.map(\.name)).map(\.name) == ["cache", "db", "api", "lone", "web"])
    }

    @Test func resourceKeys() throws {
        let d = try dir(["compose.yaml": """
            services:
              app:
                image: a
                mem_limit: 1g
                cpus: 0.5
                shm_size: 128m
                ulimits: {nproc: 100, nofile: {soft: 10, hard: 20}}
                deploy:
                  replicas: 1
                  resources:
                    limits: {pids: 40}
                    reservations:
                      devices: [{capabilities: [gpu], count: 2}]
                networks: {default: {aliases: [db]}}
                pull_policy: never
            """])
        let app = try #require(try load(d).service("app"))
        #expect(app.memLimit == 1 << 30 && app.nanoCpus == 500_000_000 && app.shmSize == 128 << 20 && app.pidsLimit == 40)
        #expect(app.ulimits.map { "\($0.name)=\($0.soft):\($0.hard)" } == ["nproc=100:100", "nofile=10:20"])
        #expect(app.gpus == "2" && app.aliases == ["db"] && app.pullPolicy == "never")
        let yaml = ConfigWriter.yaml(try load(d))
        for part in ["    cpus: 0.5\n", "    mem_limit: \"1073741824\"\n", "        aliases:\n          - db\n", "      nofile:\n        soft: 10\n        hard: 20\n"] {
            #expect(yaml.contains(part), "\(yaml) lacks \(part)")
        }
        for (yaml, part) in [("deploy: {replicas: -1}", "0 or more"), ("scale: 2\n    container_name: one", "one name for 2 replicas"), ("cpus: lots", "key \"cpus\""),
                             ("deploy: {resources: {limits: {memory: -5}}}", "deploy"), ("gpus: some", "key \"gpus\"")] {
            let bad = try dir(["compose.yaml": "services:\n  app:\n    image: a\n    \(yaml)\n"])
            #expect(error(bad).contains(part), "\(error(bad))")
        }
    }

    @Test func declaredNetworks() throws {
        let d = try dir(["compose.yaml": """
            name: shop
            services:
              web: {image: a, networks: {front: {aliases: [www]}}}
              db: {image: a}
              tool: {image: a, network_mode: host}
            networks:
              front: {labels: {tier: front}}
              ext: {external: true, name: shared}
            """])
        let p = try load(d)
        #expect(p.networks.map(\.key) == ["default", "ext", "front"])
        #expect(p.network("front")?.name == "shop_front" && p.network("ext")?.name == "shared" && p.network("ext")?.external == true)
        #expect(p.service("web")?.networks == ["front": ["www"]] && p.service("db")?.networks == ["default": []])
        #expect(p.service("tool")?.networks == [:])
        let yaml = ConfigWriter.yaml(p)
        for part in ["networks:\n  default:\n    name: shop_default\n  front:\n    name: shop_front\n    labels:\n      tier: front\n",
                     "    networks:\n      front:\n        aliases:\n          - www\n"] {
            #expect(yaml.contains(part), "\(yaml) lacks \(part)")
        }
        let two = try dir(["compose.yaml": "services:\n  app:\n    image: a\n    networks: {a: {aliases: [x]}, b: null}\nnetworks: {a: {}, b: {}}\n"])
        #expect(try load(two).service("app")?.networks == ["a": ["x"], "b": []])
        for (yaml, part) in [("networks: [nope]", "undefined network nope"),
                             ("network_mode: host\n    networks: [a]", "cannot be combined")] {
            let bad = try dir(["compose.yaml": "services:\n  app:\n    image: a\n    \(yaml)\nnetworks: {a: {}, b: {}}\n"])
            #expect(error(bad).contains(part), "\(error(bad))")
        }
        let badDriver = try dir(["compose.yaml": "services:\n  app: {image: a}\nnetworks: {a: {driver: overlay}}\n"])
        #expect(error(badDriver).contains("only the bridge driver"))
    }

    @Test func extendsSameFileAndOtherFile() throws {
        let d = try dir([
            "compose.yaml": """
                services:
                  base: {image: a, environment: {A: "1", B: "1"}, ports: ["80"]}
                  web:
                    extends: base
                    environment: {B: "2"}
                  api:
                    extends: {file: common/base.yaml, service: svc}
                    command: ["run"]
                volumes:
                  named:
                """,
            "common/base.yaml": """
                services:
                  svc:
                    extends: root
                    build: ./ctx
                    env_file: vars.env
                    volumes: ["./data:/data", "named:/n"]
                  root:
                    image: b
                    environment: {FROM_ROOT: "${TAG:-yes}"}
                volumes:
                  named:
                """,
            "common/vars.env": "FROM_FILE=1\n",
            "common/ctx/Dockerfile": "FROM scratch\n",
        ])
        let p = try load(d, configure: { $0.environment = [:] })
        let web = try #require(p.service("web"))
        #expect(web.image == "a" && web.environment == ["A": "1", "B": "2"] && web.ports.count == 1)
        let api = try #require(p.service("api"))
        #expect(api.command == ["run"] && api.environment == ["FROM_ROOT": "yes", "FROM_FILE": "1"], "\(api.environment)")
        #expect(api.build?.context == "\(d)/common/ctx")
        #expect(api.volumes.first?.source == "\(d)/common/data", "\(api.volumes)")
        let cycle = try dir(["compose.yaml": "services:\n  a: {extends: b, image: x}\n  b: {extends: a}\n"])
        #expect(error(cycle).contains("cycle"), "\(error(cycle))")
        let missing = try dir(["compose.yaml": "services:\n  a: {extends: nope, image: x}\n"])
        #expect(error(missing).contains("\"nope\" is not defined"), "\(error(missing))")
        let noFile = try dir(["compose.yaml": "services:\n  a: {extends: {file: other.yaml, service: x}}\n"])
        #expect(error(noFile).contains("does not exist"), "\(error(noFile))")
    }
}
