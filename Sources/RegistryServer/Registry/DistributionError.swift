import Foundation

/// An error as the distribution-spec sends it: an HTTP status plus
/// `{"errors":[{"code","message","detail"}]}` (spec section "Error Codes").
public struct DistributionError: Error, Sendable, Equatable {
    public enum Code: String, Sendable {
        case blobUnknown = "BLOB_UNKNOWN"
        case blobUploadInvalid = "BLOB_UPLOAD_INVALID"
        case blobUploadUnknown = "BLOB_UPLOAD_UNKNOWN"
        case digestInvalid = "DIGEST_INVALID"
        case manifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
        case manifestInvalid = "MANIFEST_INVALID"
        case manifestUnknown = "MANIFEST_UNKNOWN"
        case nameInvalid = "NAME_INVALID"
        case nameUnknown = "NAME_UNKNOWN"
        case sizeInvalid = "SIZE_INVALID"
        case unauthorized = "UNAUTHORIZED"
        case denied = "DENIED"
        case unsupported = "UNSUPPORTED"
        case tooManyRequests = "TOOMANYREQUESTS"
        case rangeInvalid = "RANGE_INVALID"
        /// distribution's code for a service that cannot answer now (503: the storage failed; a
        /// pull-through cache's upstream is down, slow or broken).
        case unavailable = "UNAVAILABLE"
    }

    public var status: Int
    public var code: Code
    public var message: String
    public var detail: String?

    public init(_ status: Int, _ code: Code, _ message: String, detail: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
    }

    /// The JSON body.
    public var body: [UInt8] {
        var entry: [String: Any] = ["code": code.rawValue, "message": message]
        if let detail { entry["detail"] = detail }
        let obj: [String: Any] = ["errors": [entry]]
        return (try? [UInt8](JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes]))) ?? Array("{\"errors\":[]}".utf8)
    }

    static func blobUnknown(_ d: String) -> DistributionError { .init(404, .blobUnknown, "blob unknown to registry", detail: d) }
    static func manifestUnknown(_ r: String) -> DistributionError { .init(404, .manifestUnknown, "manifest unknown", detail: r) }
    static func nameUnknown(_ n: String) -> DistributionError { .init(404, .nameUnknown, "repository name not known to registry", detail: n) }
    static func uploadUnknown(_ u: String) -> DistributionError { .init(404, .blobUploadUnknown, "blob upload unknown to registry", detail: u) }
    static func digestInvalid(_ d: String) -> DistributionError { .init(400, .digestInvalid, "provided digest did not match uploaded content", detail: d) }
    static func unsupported(_ m: String) -> DistributionError { .init(405, .unsupported, m) }
}
