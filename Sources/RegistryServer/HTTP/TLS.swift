/// TLS termination. Not built in this version: the constructor explains what to do instead.
struct TLSContext: Sendable {
    init(certificate: String, key: String) throws {
        throw RegistryServerError.invalidConfiguration(
            "TLS is not supported by this build; put a TLS proxy (e.g. nginx, stunnel) in front of the registry, or serve on 127.0.0.1")
    }

    func accept(_ fd: Int32) throws -> any HTTPTransport { PlainTransport(fd: fd) }
}
