/// Why the server could not start; `isUsage` when the command line asks for
/// something unusable (exit 2), not when the machine refuses it (exit 1).
public struct ServerError: Error, CustomStringConvertible {
    public var message: String
    public var isUsage: Bool
    public init(_ message: String, isUsage: Bool = false) { (self.message, self.isUsage) = (message, isUsage) }
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
    /// Idle sessions kept at most; past it libcoap frees the oldest idle one.
    public var maxSessions = 1000
    /// Observing sessions kept at most, in all and per peer address; past a
    /// bound the oldest registration is dropped (`ObserverLimits`).
    public var maxObservers = 1000
    public var maxObserversPerAddress = 32
    /// RFC 9175 Echo before answering an address not yet verified.
    public var echo = EchoMode.off
    /// With Echo: seconds an address stays verified after its last request.
    public var echoTrustSeconds = 600
    /// Seconds after which an idle session is dropped.
    public var idleTimeout = 300
    /// Max-Age of manifest responses (RFC 7252 §5.10.5); Observe tells of changes sooner.
    public var manifestMaxAge = 60
    /// How often the repository is re-scanned for new releases.
    public var rescanMilliseconds: UInt32 = 1000
    /// Devices' reports (issue #12): a product's log is rotated past this size.
    public var reportLogBytes: Int64 = 1 << 20
    /// At most this many reports per peer address a minute (4.29 past it).
    public var reportsPerMinute = 5

    public init(repository: String) { self.repository = repository }

    public var usesDTLS: Bool { !psk.isEmpty || certificateFile != nil }
}

/// When `serve` asks an unverified peer to echo a value first (RFC 9175 §2.4).
public enum EchoMode: String, Sendable, CaseIterable {
    /// Never (the default: aiocoap's and CoAPthon3's clients do not repeat a
    /// request with Echo, so they could not update). `/.well-known/core` is
    /// served in small blocks instead, which keeps its factor near 3.
    case off
    /// Before any answer to an address not verified in the last
    /// `echoTrustSeconds` (default ten minutes).
    case all
}
