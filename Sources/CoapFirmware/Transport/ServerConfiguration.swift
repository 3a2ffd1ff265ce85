/// Why the server could not start.
public struct ServerError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// How `serve` runs (SPEC §4, §5, §7).
public struct ServerConfiguration: Sendable {
    public var repository: String
    /// Plain CoAP endpoints; empty turns plain CoAP off.
    public var listen: [EndpointSpec] = [EndpointSpec("[::]:5683")!, EndpointSpec("0.0.0.0:5683")!]
    /// coaps endpoints, used when PSK or certificates are configured.
    public var listenSecure: [EndpointSpec] = [EndpointSpec("coaps://[::]:5684")!, EndpointSpec("coaps://0.0.0.0:5684")!]
    /// DTLS pre-shared keys.
    public var psk: [PSK] = []
    /// DTLS X.509: certificate and private key files (PEM), optional CA file.
    public var certificateFile: String?
    public var privateKeyFile: String?
    public var caFile: String?
    /// At most this many sessions at once; more get 5.03 (RFC 7252 §5.9.3.4).
    public var maxSessions = 1000
    /// Seconds after which an idle session is dropped.
    public var idleTimeout = 300
    /// Max-Age of manifest responses (RFC 7252 §5.10.5); Observe tells of changes sooner.
    public var manifestMaxAge = 60
    /// How often the repository is re-scanned for new releases.
    public var rescanMilliseconds: UInt32 = 1000

    public init(repository: String) { self.repository = repository }

    public var usesDTLS: Bool { !psk.isEmpty || certificateFile != nil }
}
