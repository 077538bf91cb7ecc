import Foundation
import OCI

/// One error from the registry's JSON error body (distribution spec "Error Codes").
public struct RegistryErrorDetail: Sendable, Equatable, Codable {
    public var code: String
    public var message: String
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}

/// Errors of the Registry library. Each names the URL or registry involved and, where the
/// registry sent one, its own error code and message.
public enum RegistryError: Error, Sendable, CustomStringConvertible {
    /// The connection failed (DNS, refused, reset, TLS...). `retryable` says whether a retry may help.
    case transport(url: String, message: String, retryable: Bool)
    /// The registry answered with an HTTP status we cannot continue from.
    case http(status: Int, method: String, url: String, errors: [RegistryErrorDetail], body: String)
    /// Credentials were missing or rejected.
    case unauthorized(registry: String, url: String, errors: [RegistryErrorDetail], hadCredentials: Bool)
    /// Bytes did not hash to the digest they were asked for; nothing was stored.
    case digestMismatch(url: String, expected: Digest, actual: Digest)
    /// Size announced by a descriptor differs from what was received.
    case sizeMismatch(url: String, expected: Int64, actual: Int64)
    /// Docker image manifest v2 schema 1 (deprecated, unsigned content addressing).
    case schema1(reference: String)
    /// The response made no sense for the protocol (bad JSON, missing header, ...).
    case invalidResponse(url: String, reason: String)
    /// No manifest in the index matches the wanted platform.
    case platformNotFound(reference: String, wanted: String, available: [String])
    /// docker config.json could not be read or written.
    case config(path: String, reason: String)
    /// A docker-credential-NAME helper failed.
    case credentialHelper(name: String, reason: String)
    /// A local file (or the store) could not be used.
    case local(String)
    /// The user asked for something that cannot work.
    case usage(String)

    public var description: String {
        switch self {
        case let .transport(url, message, _):
            return "cannot reach \(url): \(message) (check the registry address, your network, or use --insecure for a plain-HTTP registry)"
        case let .http(status, method, url, errors, body):
            let detail = errors.isEmpty ? (body.isEmpty ? "" : ": \(body.prefix(300))")
                : ": " + errors.map { "\($0.code): \($0.message)" }.joined(separator: "; ")
            return "\(method) \(url) failed with HTTP \(status)\(detail)"
        case let .unauthorized(registry, url, errors, had):
            let detail = errors.isEmpty ? "" : " (" + errors.map { "\($0.code): \($0.message)" }.joined(separator: "; ") + ")"
            return had
                ? "\(registry) rejected the credentials for \(url)\(detail); run `dockbuild login \(registry)` again"
                : "\(registry) requires authentication for \(url)\(detail); run `dockbuild login \(registry)` first"
        case let .digestMismatch(url, expected, actual):
            return "content from \(url) has digest \(actual), expected \(expected); it was not stored (the registry or a proxy corrupted it; try again)"
        case let .sizeMismatch(url, expected, actual):
            return "content from \(url) has \(actual) bytes, its descriptor says \(expected); it was not stored"
        case let .schema1(reference):
            return "\(reference) is a Docker schema 1 image, which is deprecated and unsupported; push it again with a current client (docker, skopeo or dockbuild) to convert it to schema 2 / OCI"
        case let .invalidResponse(url, reason):
            return "unexpected response from \(url): \(reason)"
        case let .platformNotFound(reference, wanted, available):
            return "\(reference) has no image for platform \(wanted); it has: \(available.joined(separator: ", ")) (choose one with --platform)"
        case let .config(path, reason):
            return "docker config \(path): \(reason)"
        case let .credentialHelper(name, reason):
            return "credential helper docker-credential-\(name): \(reason)"
        case let .local(message):
            return message
        case let .usage(message):
            return message
        }
    }

    /// Parses a distribution error body `{"errors":[{"code":..,"message":..}]}`; empty if it is not one.
    static func details(from body: Data) -> [RegistryErrorDetail] {
        struct Envelope: Decodable {
            struct Item: Decodable { var code: String?; var message: String? }
            var errors: [Item]?
        }
        guard let env = try? JSONDecoder().decode(Envelope.self, from: body), let items = env.errors else { return [] }
        return items.map { RegistryErrorDetail(code: $0.code ?? "UNKNOWN", message: $0.message ?? "") }
    }
}
