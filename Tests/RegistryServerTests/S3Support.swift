import Foundation
import Testing
@testable import RegistryServer

/// The Ceph radosgw the S3 tests store into: `scripts/ceph-dev.sh` is started once per test
/// process (in ~15 s) and stopped at exit when this process started it. Where Ceph is not
/// installed, or with DOCKBUILD_S3_TESTS=off, the S3 tests are cancelled (skipped) with the
/// reason, never failed.
enum S3TestCluster {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/ceph-dev.sh").path

    /// The cluster's S3 settings, or why there is none.
    static let shared: Result<S3Config, S3Unavailable> = start()

    struct S3Unavailable: Error, CustomStringConvertible { var description: String }

    private static func sh(_ command: String) -> (Int32, String) {
        let out = "/var/tmp/rs-ceph-\(getpid())-\(UUID().uuidString).log"
        defer { unlink(out) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        // Output to a file, not a pipe: the daemons the script starts would hold a pipe open.
        p.arguments = ["-c", "\(command) >\(out) 2>&1 </dev/null"]
        do { try p.run() } catch { return (127, "\(error)") }
        p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }

    private static func start() -> Result<S3Config, S3Unavailable> {
        if ProcessInfo.processInfo.environment["DOCKBUILD_S3_TESTS"] == "off" {
            let why = "S3 tests skipped: DOCKBUILD_S3_TESTS=off"
            FileHandle.standardError.write(Data((why + "\n").utf8))
            return .failure(S3Unavailable(description: why))
        }
        for tool in ["ceph-mon", "ceph-osd", "radosgw"] where which(tool) == nil {
            let why = "S3 tests skipped: \(tool) is not installed (make deps, or apt-get install ceph-mon ceph-osd radosgw)"
            FileHandle.standardError.write(Data((why + "\n").utf8))
            return .failure(S3Unavailable(description: why))
        }
        let wasRunning = sh("\(script) status").0 == 0
        let (status, log) = sh("\(script) start")
        guard status == 0 else {
            let why = "S3 tests skipped: scripts/ceph-dev.sh start failed: \(log.suffix(600))"
            FileHandle.standardError.write(Data((why + "\n").utf8))
            return .failure(S3Unavailable(description: why))
        }
        register(startedHere: !wasRunning)
        let (_, env) = sh("\(script) env")
        var vars: [String: String] = [:]
        for line in env.split(separator: "\n") where line.hasPrefix("export ") {
            let kv = line.dropFirst(7).split(separator: "=", maxSplits: 1).map(String.init)
            if kv.count == 2 { vars[kv[0]] = kv[1] }
        }
        guard let endpoint = vars["S3_ENDPOINT"], let bucket = vars["S3_BUCKET"], let access = vars["AWS_ACCESS_KEY_ID"],
              let secret = vars["AWS_SECRET_ACCESS_KEY"] else {
            return .failure(S3Unavailable(description: "S3 tests skipped: scripts/ceph-dev.sh env printed no settings: \(env)"))
        }
        return .success(S3Config(endpoint: endpoint, region: vars["S3_REGION"] ?? "us-east-1", bucket: bucket,
                                 accessKey: access, secretKey: secret))
    }

    static var stateDir: String { ProcessInfo.processInfo.environment["CEPH_DEV_DIR"] ?? "/var/tmp/dockbuild-ceph" }

    /// Test processes using the cluster register under `users/` (a file per pid), so several
    /// can run at once: the last one to exit stops the cluster when test processes started
    /// it (`users/started-by-tests`); one started by hand is left running.
    private static func register(startedHere: Bool) {
        let users = stateDir + "/users"
        try? FileManager.default.createDirectory(atPath: users, withIntermediateDirectories: true)
        if startedHere { _ = FileManager.default.createFile(atPath: users + "/started-by-tests", contents: nil) }
        _ = FileManager.default.createFile(atPath: users + "/\(getpid())", contents: nil)
        atexit {
            let users = S3TestCluster.stateDir + "/users"
            unlink(users + "/\(getpid())")
            let others = ((try? FileManager.default.contentsOfDirectory(atPath: users)) ?? []).compactMap { Int32($0) }
                .filter { kill($0, 0) == 0 }
            if others.isEmpty && FileManager.default.fileExists(atPath: users + "/started-by-tests") {
                _ = S3TestCluster.sh("\(S3TestCluster.script) stop")
            }
        }
    }

    /// Settings for a fresh, private root directory in the cluster's bucket; cancels the
    /// running test (a skip, with the reason) where there is no cluster.
    static func config() throws -> S3Config {
        switch shared {
        case .failure(let why): try Test.cancel(Comment(rawValue: why.description))
        case .success(var c):
            c.rootDirectory = "rs-test-\(getpid())-\(UUID().uuidString.lowercased())"
            return c
        }
    }
}
