import Foundation
import Testing
@testable import Dockerfile

/// The fixture cases: `Fixtures/<case>/Dockerfile` with `result` (BuildKit's AST
/// dump, produced by BuildKit's own parser) and/or `error` (the expected error).
enum Fixtures {
    static var root: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    }

    static var cases: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted()
    }

    static func read(_ name: String, _ file: String) -> String? {
        guard let data = FileManager.default.contents(atPath: root.appendingPathComponent(name).appendingPathComponent(file).path)
        else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}

@Suite struct ParseFixtureTests {
    @Test func thereAreEnoughCases() {
        #expect(Fixtures.cases.count >= 60)
        let negative = Fixtures.cases.filter { Fixtures.read($0, "error") != nil }
        #expect(negative.count >= 10)
    }

    @Test(arguments: Fixtures.cases)
    func fixture(_ name: String) throws {
        let text = try #require(Fixtures.read(name, "Dockerfile"), "missing Dockerfile in \(name)")
        let expectedDump = Fixtures.read(name, "result")
        let expectedError = Fixtures.read(name, "error").map { $0.trimmingCharacters(in: .newlines) }
        #expect(expectedDump != nil || expectedError != nil, "case \(name) has neither result nor error")

        if let expectedDump {
            let tree = try SyntaxTree.parse(text, fileName: "Dockerfile")
            #expect(tree.dump() + "\n" == expectedDump, "dump of \(name)")
        }
        if let expectedError {
            do {
                if expectedDump == nil {
                    _ = try SyntaxTree.parse(text, fileName: "Dockerfile")
                } else {
                    _ = try Dockerfile.parse(text, fileName: "Dockerfile")
                }
                Issue.record("\(name): expected error \(expectedError)")
            } catch let error as DockerfileError {
                #expect(error.description == expectedError, "error of \(name)")
            }
        } else {
            // A valid case must also pass the instruction layer.
            _ = try Dockerfile.parse(text, fileName: "Dockerfile")
        }
    }
}
