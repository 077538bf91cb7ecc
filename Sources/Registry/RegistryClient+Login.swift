import Foundation

extension RegistryClient {
    /// Checks credentials against a registry the way `docker login` does and returns what to
    /// store: the same credentials, with an identity (refresh) token when the token service
    /// hands one out, so the password need not be kept.
    public static func login(registry: String, credentials: Credentials, insecure: Bool = false,
                             transport: Transport = Transport()) async throws -> Credentials {
        let client = RegistryClient(registry: registry, insecure: insecure, credentials: .explicit(credentials), transport: transport)
        // An --insecure registry may be plain HTTP: find out before the ping (HTTPS first, as docker).
        await client.settleScheme()
        try await client.auth.ping()
        guard let challenge = await client.auth.currentChallenge else {
            // An open registry: nothing to check, nothing to refuse.
            return credentials
        }
        switch challenge.scheme {
        case .bearer:
            let (_, refresh) = try await AuthSession.fetchToken(
                transport: transport, challenge: challenge, scopes: [], credentials: credentials,
                refreshToken: nil, registry: registry, offline: true)
            if let refresh, !refresh.isEmpty {
                return Credentials(username: credentials.username, password: "", identityToken: refresh)
            }
            return credentials
        default:
            let url = client.endpoint.url("/v2/")
            let resp = try await client.send("GET", url, scopes: [])
            guard resp.status / 100 == 2 else { throw client.httpError(resp, "GET", url) }
            return credentials
        }
    }
}
