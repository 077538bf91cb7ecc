import Foundation

/// Reads one S3 object in ranges (`Range: bytes=a-b`), streaming each answer's body to the
/// caller as it arrives: serving a blob holds no more than curl's buffer in memory, and a
/// ranged blob GET fetches only that range. Every request carries `If-Match` with the ETag the
/// object had when opened, so a replaced object (an upload continued elsewhere) fails the read
/// instead of mixing two versions.
struct S3ObjectReader: StorageRangeReader {
    let client: S3Client
    let key: String
    let size: Int64
    let etag: String?
    /// Largest range asked for in one request; a failed request is resumed where it stopped.
    static let pieceSize: Int64 = 64 << 20

    func read(offset: Int64, length: Int64, into sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard offset >= 0, length >= 0, offset + length <= size else {
            throw RegistryServerError.storage(path: client.location(key), reason: "range \(offset)+\(length) is outside the object's \(size) bytes")
        }
        var done: Int64 = 0
        var failures = 0
        while done < length {
            let from = offset + done
            let to = min(offset + length, from + S3ObjectReader.pieceSize) - 1
            var headers = ["Range: bytes=\(from)-\(to)"]
            if let etag { headers.append("If-Match: \(etag)") }
            var got: Int64 = 0
            do {
                let r = try client.send("GET", key: key, headers: headers) { chunk in
                    guard got + Int64(chunk.count) <= to - from + 1 else {
                        throw RegistryServerError.storage(path: client.location(key), reason: "S3 sent more than the range bytes=\(from)-\(to)")
                    }
                    try sink(chunk)
                    got += Int64(chunk.count)
                }
                switch r.status {
                case 206, 200:
                    guard got == to - from + 1 else {
                        throw RegistryServerError.storage(path: client.location(key), reason: "S3 sent \(got) of the \(to - from + 1) bytes of range bytes=\(from)-\(to)")
                    }
                case 404 where r.errorCode != "NoSuchBucket":
                    throw RegistryServerError.notFound(key)
                case 412:
                    throw RegistryServerError.storage(path: client.location(key), reason: "the object changed while it was read (ETag is no longer \(etag ?? "?")); retry the request")
                default:
                    throw client.failure(r, "GET bytes=\(from)-\(to)", key: key)
                }
                done += got
                failures = 0
            } catch let e as RegistryServerError {
                // A transfer cut after some bytes went out resumes after them, a few times.
                done += got
                guard got > 0, failures < 3, case .storage = e else { throw e }
                failures += 1
            }
        }
    }
}
