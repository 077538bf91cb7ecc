import Testing
@testable import OCI

/// Reference parsing, checked against docker's documented rules (distribution/reference grammar
/// and `docker pull` normalisation). `nil` means docker refuses it.
@Suite struct ImageReferenceTests {
    static let d = "sha256:" + String(repeating: "a", count: 64)
    static let hex64 = String(repeating: "f", count: 64)

    static let table: [(String, String?)] = [
        // docker.io normalisation
        ("ubuntu", "docker.io/library/ubuntu:latest"),
        ("ubuntu:22.04", "docker.io/library/ubuntu:22.04"),
        ("library/ubuntu", "docker.io/library/ubuntu:latest"),
        ("docker.io/ubuntu", "docker.io/library/ubuntu:latest"),
        ("docker.io/library/ubuntu:latest", "docker.io/library/ubuntu:latest"),
        ("index.docker.io/ubuntu", "docker.io/library/ubuntu:latest"),
        ("index.docker.io/user/app:1", "docker.io/user/app:1"),
        ("user/app", "docker.io/user/app:latest"),
        ("user/app/sub", "docker.io/user/app/sub:latest"),
        // other registries, ports, localhost
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("localhost:5000/app:v1", "localhost:5000/app:v1"),
        ("127.0.0.1:5000/a/b:c", "127.0.0.1:5000/a/b:c"),
        ("[::1]:5000/app:1", "[::1]:5000/app:1"),
        ("[2001:db8::1]/app", "[2001:db8::1]/app:latest"),
        ("registry.example.com/team/app", "registry.example.com/team/app:latest"),
        ("eu.gcr.io/project/a/b/c:1.0", "eu.gcr.io/project/a/b/c:1.0"),
        ("quay.io/coreos/etcd:v3.5.0", "quay.io/coreos/etcd:v3.5.0"),
        ("ghcr.io/owner/repo-name_x.y:tag_1.2-3", "ghcr.io/owner/repo-name_x.y:tag_1.2-3"),
        ("host-with-dash.example:443/a", "host-with-dash.example:443/a:latest"),
        ("Example.COM/app", "Example.COM/app:latest"),
        ("foo:5000/bar", "foo:5000/bar:latest"),
        // separators in path components
        ("a__b/c", "docker.io/a__b/c:latest"),
        ("a---b", "docker.io/library/a---b:latest"),
        ("a.b_c-d", "docker.io/library/a.b_c-d:latest"),
        // digests
        ("ubuntu@\(d)", "docker.io/library/ubuntu@\(d)"),
        ("ubuntu:22.04@\(d)", "docker.io/library/ubuntu:22.04@\(d)"),
        ("localhost:5000/app@\(d)", "localhost:5000/app@\(d)"),
        ("app:" + String(repeating: "t", count: 128), "docker.io/library/app:" + String(repeating: "t", count: 128)),
        ("app:_private", "docker.io/library/app:_private"),
        ("app:UPPER", "docker.io/library/app:UPPER"),
        // refusals
        ("", nil),
        ("Ubuntu", nil),
        ("user/App", nil),
        ("ubuntu:", nil),
        ("ubuntu:-tag", nil),
        ("ubuntu:.tag", nil),
        ("app:" + String(repeating: "t", count: 129), nil),
        ("ubuntu@sha256:abc", nil),
        ("ubuntu@md5:d41d8cd98f00b204e9800998ecf8427e", nil),
        ("ubuntu@", nil),
        (":latest", nil),
        ("a//b", nil),
        ("a/", nil),
        ("/a", nil),
        ("-a", nil),
        ("a-", nil),
        ("a..b", nil),
        ("a___b", nil),
        ("a_-b", nil),
        ("localhost:port/app", nil),
        ("host_name.com/app", nil),
        ("-host.com/app", nil),
        ("ubuntu tag", nil),
        ("ubuntu:tag:tag", nil),
        (hex64, nil),
        (String(repeating: "a", count: 256), nil),
    ]

    @Test(arguments: table.map { [$0.0, $0.1 ?? "<error>"] })
    func parses(_ pair: [String]) {
        let input = pair[0], expected = pair[1]
        if expected == "<error>" {
            #expect(throws: OCIError.self, "\"\(input)\" should be refused") { try ImageReference(parsing: input) }
        } else {
            #expect((try? ImageReference(parsing: input))?.description == expected, "\"\(input)\"")
        }
    }

    @Test func tableIsLargeEnough() { #expect(Self.table.count >= 40) }

    @Test func familiarNames() throws {
        #expect(try ImageReference(parsing: "docker.io/library/ubuntu").familiarString == "ubuntu:latest")
        #expect(try ImageReference(parsing: "user/app:1").familiarString == "user/app:1")
        #expect(try ImageReference(parsing: "docker.io/library/a/b").familiarName == "library/a/b")
        #expect(try ImageReference(parsing: "localhost:5000/app").familiarName == "localhost:5000/app")
        let r = try ImageReference(parsing: "eu.gcr.io/project/a/b/c:1.0")
        #expect(r.domain == "eu.gcr.io" && r.path == "project/a/b/c" && r.tag == "1.0")
    }

    @Test func errorsSayWhy() {
        #expect {
            try ImageReference(parsing: "Ubuntu")
        } throws: { "\($0)".contains("lowercase") }
        #expect {
            try ImageReference(parsing: "ubuntu:")
        } throws: { "\($0)".contains("tag") && "\($0)".contains("empty") }
        #expect {
            try ImageReference(parsing: Self.hex64)
        } throws: { "\($0)".contains("image ID") }
    }

    @Test func noDefaultTagWithParseNormalized() throws {
        let r = try ImageReference.parseNormalized("busybox")
        #expect(r.tag == nil && r.description == "docker.io/library/busybox")
        #expect(try ImageReference(parsing: "busybox@\(Self.d)").tag == nil)
    }
}
