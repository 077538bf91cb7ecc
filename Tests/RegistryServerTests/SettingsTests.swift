import Foundation
import Testing
@testable import RegistryServer

/// `RegistryServeSettings`: a config file's values under the flags', and every check with a
/// message naming what to change (the library gives `registry serve` its whole configuration).
@Suite struct SettingsTests {
    func file(_ json: String) throws -> String {
        let p = FileManager.default.temporaryDirectory.path + "/serve-settings-\(UUID().uuidString).json"
        try Data(json.utf8).write(to: URL(fileURLWithPath: p))
        return p
    }

    @Test func flagsWinOverTheFileAndTheFileOverDefaults() throws {
        let path = try file(#"{"addr": "127.0.0.1:7000", "readOnly": true, "logFormat": "json", "maxConnections": 8, "idleTimeout": 5}"#)
        defer { unlink(path) }
        var flags = RegistryServeSettings()
        flags.maxConnections = 16
        let cfg = try flags.over(try RegistryServeSettings.load(file: path)).configuration(defaultStorage: "/tmp/reg")
        #expect(cfg.address == "127.0.0.1:7000" && cfg.readOnly && cfg.logFormat == .json)
        #expect(cfg.limits.maxConnections == 16 && cfg.limits.idleTimeout == 5)
        #expect(cfg.root == "/tmp/reg")
        #expect(cfg.limits.headerTimeout == HTTPServerLimits().headerTimeout)
    }

    @Test func badValuesAreRefusedWithWhatToChange() throws {
        let notObject = try file("[1]")
        defer { unlink(notObject) }
        #expect(throws: RegistryServerError.invalidConfiguration("cannot read config file \(notObject): expected a JSON object")) {
            try RegistryServeSettings.load(file: notObject)
        }
        let wrongType = try file(#"{"idleTimeout": "soon"}"#)
        defer { unlink(wrongType) }
        #expect(throws: RegistryServerError.invalidConfiguration("config file \(wrongType): idleTimeout must be a number")) {
            try RegistryServeSettings.load(file: wrongType)
        }
        var s = RegistryServeSettings()
        s.maxConnections = 0.5
        #expect(throws: RegistryServerError.self) { try s.configuration(defaultStorage: "/x") }
        s = RegistryServeSettings()
        s.headerTimeout = -1
        #expect(throws: RegistryServerError.invalidConfiguration("--header-timeout must be a number of seconds above 0, not -1.0")) {
            try s.configuration(defaultStorage: "/x")
        }
        s = RegistryServeSettings()
        s.logFormat = "xml"
        #expect(throws: RegistryServerError.invalidConfiguration("--log-format must be text, json or none, not xml")) {
            try s.configuration(defaultStorage: "/x")
        }
        s = RegistryServeSettings()
        s.tokenRealm = "https://auth.example/token"
        #expect(throws: RegistryServerError.self) { try s.configuration(defaultStorage: "/x") }
    }
}
