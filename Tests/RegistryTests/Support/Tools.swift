import Foundation

/// Runs a tool and returns its stdout; fails the test with the tool's stderr when it fails or is missing.
@discardableResult
func runTool(_ args: [String], input: Data? = nil, environment: [String: String]? = nil) throws -> Data {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    if let environment { p.environment = environment }
    let out = Pipe(), err = Pipe(), inp = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = inp
    try p.run()
    if let input { inp.fileHandleForWriting.write(input) }
    try? inp.fileHandleForWriting.close()
    // Read both pipes concurrently so a chatty tool cannot block on a full stderr pipe.
    let errBox = DataBox()
    let t = Thread { errBox.set(err.fileHandleForReading.readDataToEndOfFile()) }
    t.start()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    while !errBox.done { usleep(1000) }
    if p.terminationStatus == 127 {
        throw TestError("\(args[0]) is not installed (run `make deps`)")
    }
    guard p.terminationStatus == 0 else {
        throw TestError("\(args.joined(separator: " ")) failed (\(p.terminationStatus)): \(String(decoding: errBox.data, as: UTF8.self))")
    }
    return o
}

final class DataBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value = Data()
    private var finished = false
    func set(_ d: Data) { lock.withLock { value = d; finished = true } }
    var data: Data { lock.withLock { value } }
    var done: Bool { lock.withLock { finished } }
}

/// A temporary directory removed by `remove()`.
struct TempDir {
    let path: String
    init(_ prefix: String = "registry-test") throws {
        path = FileManager.default.temporaryDirectory.path + "/\(prefix)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

func base64url(_ d: Data) -> String {
    d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}
